"""The form staff use to record a consent statement on the customer 360 page."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from compliance.models import ConsentPurpose, ConsentRecord, ConsentSource
from compliance.selectors.consent import STAFF_SOURCES


class ConsentRecordForm(forms.Form):
    purpose = forms.ChoiceField(label=_("Purpose"), choices=ConsentPurpose.choices)
    granted = forms.TypedChoiceField(
        label=_("Statement"),
        choices=[("1", _("Granted")), ("0", _("Withdrawn"))],
        coerce=lambda value: value == "1",
    )
    source = forms.ChoiceField(label=_("Source"), choices=STAFF_SOURCES, initial=ConsentSource.STAFF)
    proof = forms.CharField(
        label=_("Proof"),
        max_length=ConsentRecord._meta.get_field("proof").max_length,
        help_text=_(
            "What shows it: “phone call with the customer on 3 May”, the paper form's reference, ..."
        ),
        widget=forms.TextInput(),
    )
