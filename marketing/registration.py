"""What the marketing app adds to the platform: navigation, search, audit-trail nouns, customer 360 panels.
Each area registers in its own function (one per area, so each can grow without touching the others)."""

from django.utils.translation import gettext_lazy as _


def register() -> None:
    _register_audit_nouns()
    _register_campaigns()
    _register_templates()
    _register_sends()
    _register_tracking()
    _register_sequences()
    _register_forms()
    _register_reports()


def _register_audit_nouns() -> None:
    from crm.models import AuditLog

    AuditLog.NOUNS.update(
        {
            "campaigns": _("campaign"),
            "campaign_costs": _("campaign cost"),
            "email_templates": _("email template"),
            "marketing_sequences": _("sequence"),
            "marketing_sequence_steps": _("sequence step"),
            "marketing_forms": _("lead form"),
            "campaign_ab_tests": _("A/B test"),
        }
    )


def _register_campaigns() -> None:
    """Campaign list, pages and costs: the nav item and the search provider."""
    from crm import navigation, search
    from crm.permissions import Capability
    from marketing.selectors.campaigns import search_campaigns

    navigation.register(
        navigation.NavItem(
            _("Campaigns"), "marketing:campaign_list", "megaphone", Capability.VIEW_CAMPAIGNS, "marketing", 10
        )
    )
    search.register(search.SearchProvider(_("Campaigns"), Capability.VIEW_CAMPAIGNS, search_campaigns))


def _register_templates() -> None:
    """Email templates: the nav item."""
    from crm import navigation
    from crm.permissions import Capability

    navigation.register(
        navigation.NavItem(
            _("Email templates"),
            "marketing:template_list",
            "envelope-paper",
            Capability.MANAGE_CAMPAIGNS,
            "marketing",
            20,
        )
    )


def _register_sends() -> None:
    """Sending, tracking and suppressions."""


def _register_tracking() -> None:
    """Suppressions and the customer's marketing email panel; the email provider's delivery webhooks."""
    from anymail.signals import tracking

    from crm import navigation
    from crm.permissions import Capability
    from customers import panels
    from marketing.selectors.suppressions import email_panel_for_customer
    from marketing.webhooks import tracking_received

    navigation.register(
        navigation.NavItem(
            _("Suppressions"),
            "marketing:suppression_list",
            "slash-circle",
            Capability.SEND_CAMPAIGNS,
            "marketing",
            60,
        )
    )
    panels.register(
        panels.Panel(
            key="marketing_email",
            title=_("Marketing email"),
            template="marketing/customers/_email_panel.html",
            capability=Capability.VIEW_CAMPAIGNS,
            load=email_panel_for_customer,
            order=50,
        )
    )
    tracking.connect(tracking_received, dispatch_uid="marketing.webhooks.tracking_received")


def _register_sequences() -> None:
    """Drip sequences: the nav item and the customer 360 "Sequences" panel (the customer's enrollments)."""
    from crm import navigation
    from crm.permissions import Capability
    from customers import panels
    from marketing.selectors.sequences import enrollments_for_customer

    navigation.register(
        navigation.NavItem(
            _("Sequences"),
            "marketing:sequence_list",
            "diagram-3",
            Capability.MANAGE_CAMPAIGNS,
            "marketing",
            30,
        )
    )
    panels.register(
        panels.Panel(
            key="sequences",
            title=_("Sequences"),
            template="marketing/sequences/_customer_panel.html",
            capability=Capability.VIEW_CAMPAIGNS,
            load=enrollments_for_customer,
            order=60,
        )
    )


def _register_forms() -> None:
    """Lead capture forms."""
    from crm import navigation
    from crm.permissions import Capability

    navigation.register(
        navigation.NavItem(
            _("Lead forms"), "marketing:form_list", "ui-checks", Capability.MANAGE_CAMPAIGNS, "marketing", 40
        )
    )


def _register_reports() -> None:
    """Attribution, ROI and the campaign comparison."""
    from crm import navigation
    from crm.permissions import Capability

    navigation.register(
        navigation.NavItem(
            _("Marketing ROI"),
            "marketing:campaign_comparison",
            "graph-up-arrow",
            Capability.VIEW_MARKETING_REPORTS,
            "marketing",
            50,
        )
    )
