"""Forms of the suppression list page."""

from django import forms
from django.utils.translation import gettext_lazy as _

from marketing.models import Suppression


class SuppressionFilterForm(forms.Form):
    q = forms.CharField(label=_("Search addresses"), required=False, max_length=254)
    reason = forms.ChoiceField(
        label=_("Reason"), required=False, choices=[("", _("Any reason")), *Suppression.Reason.choices]
    )


class SuppressionAddForm(forms.Form):
    email = forms.CharField(
        label=_("Email address"),
        max_length=254,
        help_text=_("No campaign or sequence will email this address until it is removed from the list."),
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
