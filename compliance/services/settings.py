"""The organization's privacy settings: retention periods and the nightly anonymization switch.

One row per organization, created on first use with the design document's defaults. Audited by the
`privacy_settings` trigger, so every change of a retention period is in the trail (who, from what, to what).
"""

from __future__ import annotations

from django.db import transaction

from compliance.models import PrivacySettings
from crm.models import User
from crm.permissions import Capability, require_capability

EDITABLE_FIELDS = (
    "customer_retention_days",
    "interaction_retention_months",
    "audit_retention_months",
    "anonymization_enabled",
)


@transaction.atomic
def privacy_settings_get_or_create(*, organization_id, actor: User | None) -> PrivacySettings:
    """The organization's settings row, created with the defaults if it has none yet."""
    require_capability(actor, Capability.MANAGE_PRIVACY_SETTINGS)
    settings, _ = PrivacySettings.objects.get_or_create(
        organization_id=organization_id, defaults={"updated_by": actor}
    )
    return settings


@transaction.atomic
def privacy_settings_update(*, settings: PrivacySettings, actor: User | None, **fields) -> PrivacySettings:
    """Change retention periods or the anonymization switch (validated by the model's own bounds)."""
    require_capability(actor, Capability.MANAGE_PRIVACY_SETTINGS)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    settings = PrivacySettings.objects.select_for_update().get(pk=settings.pk)
    for name, value in fields.items():
        setattr(settings, name, value)
    settings.updated_by = actor
    settings.full_clean(exclude=["organization", "updated_by"])
    settings.save()
    return settings
