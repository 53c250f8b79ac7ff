"""The CSV upload form: what to import, what to do with emails already in the CRM, and the file."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from customers.models import ImportJob


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("What the file holds"), choices=ImportJob.Kind.choices)
    policy = forms.ChoiceField(
        label=_("Customers already in the CRM"),
        choices=ImportJob.Policy.choices,
        initial=ImportJob.Policy.SKIP,
        help_text=_(
            "Matched by email. “Update” overwrites fields with the file's filled cells; empty cells change "
            "nothing. Applies to customer files only."
        ),
    )
    file = forms.FileField(
        label=_("CSV file"),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_bytes = settings.CRM_IMPORT_MAX_BYTES
        self.fields["file"].help_text = _(
            "UTF-8 (“CSV UTF-8” in Excel), comma-separated, with a header line; at most %(size)s and "
            "%(rows)s rows."
        ) % {
            "size": filesizeformat(self.max_bytes),
            "rows": number_format(settings.CRM_IMPORT_MAX_ROWS, force_grouping=True),
        }

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith(".csv"):
            raise forms.ValidationError(_("Choose a .csv file (save spreadsheets as “CSV UTF-8”)."))
        if upload.size == 0:
            raise forms.ValidationError(_("The file is empty."))
        if upload.size > self.max_bytes:
            raise forms.ValidationError(
                _("The file is %(size)s; the most one import takes is %(max)s. Split it into smaller files.")
                % {"size": filesizeformat(upload.size), "max": filesizeformat(self.max_bytes)}
            )
        return upload
