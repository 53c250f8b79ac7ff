"""What the customers app adds to the platform: navigation, search, audit-trail nouns."""

from django.utils.translation import gettext_lazy as _


def register() -> None:
    from crm.models import AuditLog

    AuditLog.NOUNS.update(
        {
            "customers": _("customer"),
            "customer_segments": _("segment"),
            "lead_scoring_models": _("scoring model"),
        }
    )
