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
    """Campaign list, pages and costs."""


def _register_templates() -> None:
    """Email templates."""


def _register_sends() -> None:
    """Sending, tracking and suppressions."""


def _register_tracking() -> None:
    """Suppressions and the customer's marketing email panel."""


def _register_sequences() -> None:
    """Drip sequences."""


def _register_forms() -> None:
    """Lead capture forms."""


def _register_reports() -> None:
    """Attribution, ROI and the campaign comparison."""
