"""Forms of the email template pages: the editor, its preview / test-send input, and the list's search."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from marketing.models import EmailTemplate


class EmailTemplateForm(forms.ModelForm):
    """Name, description, subject and both bodies. Merge fields are checked by the service (one place)."""

    class Meta:
        model = EmailTemplate
        fields = ["name", "description", "subject", "html_body", "text_body"]
        widgets = {
            "subject": forms.TextInput(attrs={"data-merge-target": "", "autocomplete": "off"}),
            "html_body": forms.Textarea(
                attrs={"rows": 18, "class": "font-monospace", "spellcheck": "false", "data-merge-target": ""}
            ),
            "text_body": forms.Textarea(
                attrs={"rows": 10, "class": "font-monospace", "data-merge-target": ""}
            ),
        }
        help_texts = {
            "subject": _("One line. Merge fields work here too."),
            "html_body": _(
                "The email as HTML. Customer values are escaped; add the unsubscribe link with "
                "{{ unsubscribe_url }}."
            ),
            "text_body": _(
                "Shown by mail clients without HTML. Leave it empty to send a version generated from the HTML."
            ),
        }

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class TemplatePreviewForm(forms.Form):
    """What the preview and the test send render: the editor's (possibly unsaved) parts and a customer."""

    subject = forms.CharField(required=False, strip=False)
    html_body = forms.CharField(required=False, strip=False)
    text_body = forms.CharField(required=False, strip=False)
    preview_customer = forms.UUIDField(required=False)


class TemplateTextForm(forms.Form):
    """The HTML body the plain-text one is generated from."""

    html_body = forms.CharField(required=False, strip=False)


class TemplateSearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    status = forms.ChoiceField(
        label=_("Show"),
        required=False,
        choices=[("active", _("Active")), ("archived", _("Archived")), ("all", _("All"))],
    )
