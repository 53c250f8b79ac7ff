"""What the compliance app adds to the platform: navigation, audit-trail nouns, customer 360 panels.
Each area registers in its own function (one per area, so each can grow without touching the others)."""

from django.utils.translation import gettext_lazy as _


def register() -> None:
    _register_audit_nouns()


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
