"""The privacy settings form (retention periods, the nightly anonymization switch)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from compliance.models import PrivacySettings
from compliance.services.settings import EDITABLE_FIELDS


class PrivacySettingsForm(forms.ModelForm):
    class Meta:
        model = PrivacySettings
        fields = EDITABLE_FIELDS
        help_texts = {
            "customer_retention_days": _(
                "Inactive customers with no contact for this long are anonymized (2555 days = 7 years)."
            ),
            "interaction_retention_months": _(
                "Monthly interaction logs older than this are dropped once no other organization with "
                "interactions in the same month still keeps it."
            ),
            "audit_retention_months": _(
                "Covers the audit trail and the data access log; at least 12 months."
            ),
            "anonymization_enabled": _(
                "Run the anonymization every night (it can also be run by an operator)."
            ),
        }
