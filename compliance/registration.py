"""What the compliance app adds to the platform: navigation, audit-trail nouns, customer 360 panels.
Each area registers in its own function (one per area, so each can grow without touching the others)."""

from django.utils.translation import gettext_lazy as _


def register() -> None:
    _register_audit_nouns()
    _register_requests()
    _register_consent()
    _register_access_log()
    _register_settings()


def _register_audit_nouns() -> None:
    from crm.models import AuditLog

    AuditLog.NOUNS.update(
        {
            "gdpr_requests": _("GDPR request"),
            "ccpa_requests": _("CCPA request"),
            "consent_records": _("consent record"),
            "privacy_settings": _("privacy settings"),
        }
    )


def _register_access_log() -> None:
    """The access log: its nav item, the customer 360 panel "Viewed by", and the audit viewer's entries."""
    from compliance.access_log import record_audit_entry_view, viewed_by_panel
    from crm import navigation, signals
    from crm.permissions import Capability
    from customers import panels

    navigation.register(
        navigation.NavItem(
            _("Access log"), "compliance:access_log", "eye", Capability.VIEW_ACCESS_LOG, "privacy", 40
        )
    )
    panels.register(
        panels.Panel(
            key="viewed_by",
            title=_("Viewed by"),
            template="compliance/access_log/_customer_panel.html",
            capability=Capability.VIEW_ACCESS_LOG,
            load=viewed_by_panel,
            order=90,
        )
    )
    signals.audit_entry_viewed.connect(record_audit_entry_view, dispatch_uid="compliance.audit_entry_viewed")


def _register_consent() -> None:
    """The customer 360 "Consent and privacy" panel, and the merge step that keeps a merged customer's
    consent history (the proof must survive the source customer's deletion)."""
    from compliance.selectors.consent import consent_panel_for_customer
    from compliance.services.consent import consent_records_count, consent_records_reassign
    from crm.permissions import Capability
    from customers import merging, panels

    panels.register(
        panels.Panel(
            key="consent",
            title=_("Consent and privacy"),
            template="compliance/consent/_customer_panel.html",
            capability=Capability.VIEW_CUSTOMERS,
            load=consent_panel_for_customer,
            order=45,
        )
    )
    merging.register(consent_records_reassign, label=_("Consent records"), count=consent_records_count)


def _register_settings() -> None:
    """The privacy & retention settings page (settings section) and the anonymization runs' audit noun."""
    from crm import navigation
    from crm.models import AuditLog
    from crm.permissions import Capability

    AuditLog.NOUNS["anonymization_runs"] = _("anonymization run")
    navigation.register(
        navigation.NavItem(
            _("Privacy & retention"),
            "compliance:settings",
            "shield-lock",
            Capability.MANAGE_PRIVACY_SETTINGS,
            "settings",
            50,
        )
    )


def _register_requests() -> None:
    """The privacy request queue's nav item, and the customer 360 "Privacy requests" panel (the customer's
    requests and the "Log privacy request" button)."""
    from compliance.selectors.requests import privacy_panel_for_customer
    from crm import navigation
    from crm.permissions import Capability
    from customers import panels

    navigation.register(
        navigation.NavItem(
            _("Privacy requests"),
            "compliance:request_list",
            "shield-lock",
            Capability.VIEW_PRIVACY_REQUESTS,
            "privacy",
            10,
        )
    )
    panels.register(
        panels.Panel(
            key="privacy_requests",
            title=_("Privacy requests"),
            template="compliance/requests/_customer_panel.html",
            capability=Capability.SUBMIT_PRIVACY_REQUESTS,
            load=privacy_panel_for_customer,
            order=80,
        )
    )
