"""Forms of lead capture: the staff editor of a lead form, the list filter, and the public form a visitor
fills in (its fields are the ones the lead form asks for, built per form)."""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from marketing.models import LeadForm

# The widths of the customer columns each public field lands in (customers.models.Customer).
PUBLIC_FIELD_MAX_LENGTH = {
    "first_name": 100,
    "last_name": 100,
    "company_name": 200,
    "job_title": 150,
    "phone": 40,
    "city": 100,
    "country": 2,
}
AUTOCOMPLETE = {
    "first_name": "given-name",
    "last_name": "family-name",
    "company_name": "organization",
    "job_title": "organization-title",
    "phone": "tel",
    "city": "address-level2",
    "country": "country",
}
# The name of the honeypot input: a plausible word, so form-filling bots fill it in; people never see it.
HONEYPOT = "website"


class LeadFormForm(forms.Form):
    """The staff editor of a lead form. Campaigns and sequences are the organization's, passed in."""

    campaign = forms.TypedChoiceField(label=_("Campaign"), choices=(), empty_value=None)
    name = forms.CharField(
        label=_("Name"), max_length=150, help_text=_("For your team; visitors see the heading.")
    )
    slug = forms.SlugField(
        label=_("Address"),
        max_length=80,
        required=False,
        help_text=_("The last part of the public link; left empty, it is made from the name."),
    )
    title = forms.CharField(label=_("Heading"), max_length=200)
    intro = forms.CharField(
        label=_("Introduction"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Plain text shown under the heading."),
    )
    # Not named `fields`: that is the form's own attribute (templates could not reach the bound field).
    asked = forms.MultipleChoiceField(
        label=_("Fields to ask for"),
        choices=LeadForm.FIELD_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Email is always asked (it is how the lead is matched to an existing customer)."),
    )
    consent_text = forms.CharField(label=_("Consent checkbox text"), max_length=300)
    require_consent = forms.BooleanField(
        label=_("Consent required to submit"),
        required=False,
        help_text=_("Off: visitors may submit without agreeing to emails; they are then not opted in."),
    )
    thank_you_text = forms.CharField(
        label=_("Thank-you text"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    sequence = forms.TypedChoiceField(
        label=_("Enroll in sequence"),
        choices=(),
        required=False,
        empty_value=None,
        help_text=_("Each person who submits is enrolled (once) in this drip sequence."),
    )
    is_active = forms.BooleanField(
        label=_("Accepting submissions"),
        required=False,
        help_text=_("Off: the public page answers “not found”."),
    )

    def __init__(self, data=None, *, campaigns=(), sequences=(), **kwargs):
        super().__init__(data, **kwargs)
        self._campaigns = {str(c.pk): c for c in campaigns}
        self._sequences = {str(s.pk): s for s in sequences}
        self.fields["campaign"].choices = [("", _("Choose a campaign"))] + [
            (key, str(c)) for key, c in self._campaigns.items()
        ]
        self.fields["sequence"].choices = [("", _("None"))] + [
            (key, str(s)) for key, s in self._sequences.items()
        ]

    @classmethod
    def for_form(cls, lead_form: LeadForm | None, data=None, **kwargs) -> LeadFormForm:
        if lead_form is None:
            defaults = LeadForm()
            initial = {
                "consent_text": defaults.consent_text,
                "thank_you_text": defaults.thank_you_text,
                "asked": ["first_name", "last_name", "company_name"],
                "is_active": True,
            }
            if kwargs.get("campaign_id"):
                initial["campaign"] = str(kwargs["campaign_id"])
        else:
            initial = {
                "campaign": str(lead_form.campaign_id),
                "name": lead_form.name,
                "slug": lead_form.slug,
                "title": lead_form.title,
                "intro": lead_form.intro,
                "asked": list(lead_form.fields),
                "consent_text": lead_form.consent_text,
                "require_consent": lead_form.require_consent,
                "thank_you_text": lead_form.thank_you_text,
                "sequence": str(lead_form.sequence_id) if lead_form.sequence_id else "",
                "is_active": lead_form.is_active,
            }
        kwargs.pop("campaign_id", None)
        return cls(data, initial=initial, **kwargs)

    def clean_campaign(self):
        value = self.cleaned_data.get("campaign")
        return self._campaigns.get(value) if value else None

    def clean_sequence(self):
        value = self.cleaned_data.get("sequence")
        return self._sequences.get(value) if value else None

    def clean_asked(self):
        # In the order of FIELD_CHOICES, so the public page asks in a sensible order.
        chosen = set(self.cleaned_data.get("asked") or ())
        return [name for name, _label in LeadForm.FIELD_CHOICES if name in chosen]


class LeadFormFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), max_length=150, required=False)
    campaign = forms.UUIDField(label=_("Campaign"), required=False)
    state = forms.ChoiceField(
        label=_("Submissions"),
        required=False,
        choices=[("", _("Any")), ("open", _("Accepting")), ("closed", _("Closed"))],
    )


class PublicLeadForm(forms.Form):
    """What a visitor fills in: email, the lead form's chosen fields, consent, and the honeypot.

    Labels come from the field choices; every value is trimmed and length-checked to fit its customer
    column, so the service never has to truncate.
    """

    email = forms.EmailField(
        label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )

    def __init__(self, data=None, *, lead_form: LeadForm, **kwargs):
        super().__init__(data, **kwargs)
        self.lead_form = lead_form
        labels = dict(LeadForm.FIELD_CHOICES)
        for name in lead_form.fields:
            if name not in labels:
                continue
            attrs = {"autocomplete": AUTOCOMPLETE[name]}
            validators = []
            help_text = ""
            if name == "country":
                validators = [
                    RegexValidator(r"^[A-Za-z]{2}$", _("Enter the two-letter country code, e.g. US or DE."))
                ]
                help_text = _("Two-letter code, e.g. US or DE.")
                attrs["size"] = 4
            field = forms.CharField(
                label=labels[name],
                max_length=PUBLIC_FIELD_MAX_LENGTH[name],
                required=False,
                validators=validators,
                help_text=help_text,
                widget=forms.TelInput(attrs=attrs) if name == "phone" else forms.TextInput(attrs=attrs),
            )
            self.fields[name] = field
        self.fields["consent"] = forms.BooleanField(
            label=lead_form.consent_text, required=lead_form.require_consent
        )
        if lead_form.require_consent:
            self.fields["consent"].error_messages["required"] = _("Please tick the box to continue.")
        self.fields[HONEYPOT] = forms.CharField(
            label=_("Leave this field empty"),
            required=False,
            widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
        )

    @property
    def asked_fields(self) -> list[forms.BoundField]:
        """The visible inputs in order: email first, then the chosen customer fields."""
        return [self["email"], *(self[name] for name in self.lead_form.fields if name in self.fields)]

    @property
    def honeypot_field(self) -> forms.BoundField:
        return self[HONEYPOT]

    @property
    def is_spam(self) -> bool:
        """The honeypot is filled in: a bot (people never see the field)."""
        return bool((self.data.get(HONEYPOT) or "").strip())

    def customer_values(self) -> dict[str, str]:
        """The cleaned customer fields (email and the chosen ones)."""
        return {
            name: self.cleaned_data[name]
            for name in ("email", *self.lead_form.fields)
            if name in self.cleaned_data
        }
