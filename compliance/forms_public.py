"""Forms of the public privacy pages: the request a data subject files, and the code that proves the email
address is theirs.

The request form is one list of choices grouped by law ("gdpr:access", "ccpa:delete", ...), each with a
plain-language explanation, so the law and the type are chosen together and the form works without
JavaScript. The state of residence is asked for California (CCPA) requests only, where it decides whether
the law applies at all.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from compliance.models import CcpaRequest, GdprRequest

# The name of the honeypot input: a plausible word, so form-filling bots fill it in; people never see it.
HONEYPOT = "website"

# What each request asks for, in words a data subject understands (the choice labels stay the short type
# names the staff queue shows).
GDPR_EXPLANATIONS = {
    GdprRequest.Type.ACCESS: _("Get a copy of the personal data we hold about you."),
    GdprRequest.Type.PORTABILITY: _(
        "Get your personal data in a machine-readable file (JSON and CSV) to take to another service."
    ),
    GdprRequest.Type.RECTIFY: _(
        "Have incorrect or incomplete data corrected. Tell us below what is wrong and what it should be."
    ),
    GdprRequest.Type.ERASE: _(
        "Have your personal data erased. Where a record must stay (an invoice, say), your name on it is "
        "replaced by a pseudonym."
    ),
    GdprRequest.Type.RESTRICT: _(
        "Ask us to stop using your data (we keep it stored) while, for example, a correction is checked."
    ),
    GdprRequest.Type.OBJECT: _("Object to marketing: no more marketing emails and no profiling or scoring."),
}
CCPA_EXPLANATIONS = {
    CcpaRequest.Type.ACCESS: _(
        "Know what personal information we collected about you, where it came from and how it is used."
    ),
    CcpaRequest.Type.DELETE: _("Have the personal information we collected about you deleted."),
    CcpaRequest.Type.OPT_OUT_SALE: _("Tell us not to sell your personal information."),
    CcpaRequest.Type.OPT_OUT_SHARING: _(
        "Tell us not to share your personal information for cross-context behavioral advertising."
    ),
}
LAWS = (
    (
        "gdpr",
        _("European data protection (GDPR)"),
        _("For people in the European Union, the EEA or the United Kingdom. We answer within 30 days."),
        GdprRequest.Type,
        GDPR_EXPLANATIONS,
    ),
    (
        "ccpa",
        _("California privacy rights (CCPA)"),
        _("For residents of California. We answer within 45 days."),
        CcpaRequest.Type,
        CCPA_EXPLANATIONS,
    ),
)
OUTSIDE_US = "outside_us"
US_STATES = (
    ("AL", "Alabama"),
    ("AK", "Alaska"),
    ("AZ", "Arizona"),
    ("AR", "Arkansas"),
    ("CA", "California"),
    ("CO", "Colorado"),
    ("CT", "Connecticut"),
    ("DE", "Delaware"),
    ("DC", "District of Columbia"),
    ("FL", "Florida"),
    ("GA", "Georgia"),
    ("HI", "Hawaii"),
    ("ID", "Idaho"),
    ("IL", "Illinois"),
    ("IN", "Indiana"),
    ("IA", "Iowa"),
    ("KS", "Kansas"),
    ("KY", "Kentucky"),
    ("LA", "Louisiana"),
    ("ME", "Maine"),
    ("MD", "Maryland"),
    ("MA", "Massachusetts"),
    ("MI", "Michigan"),
    ("MN", "Minnesota"),
    ("MS", "Mississippi"),
    ("MO", "Missouri"),
    ("MT", "Montana"),
    ("NE", "Nebraska"),
    ("NV", "Nevada"),
    ("NH", "New Hampshire"),
    ("NJ", "New Jersey"),
    ("NM", "New Mexico"),
    ("NY", "New York"),
    ("NC", "North Carolina"),
    ("ND", "North Dakota"),
    ("OH", "Ohio"),
    ("OK", "Oklahoma"),
    ("OR", "Oregon"),
    ("PA", "Pennsylvania"),
    ("RI", "Rhode Island"),
    ("SC", "South Carolina"),
    ("SD", "South Dakota"),
    ("TN", "Tennessee"),
    ("TX", "Texas"),
    ("UT", "Utah"),
    ("VT", "Vermont"),
    ("VA", "Virginia"),
    ("WA", "Washington"),
    ("WV", "West Virginia"),
    ("WI", "Wisconsin"),
    ("WY", "Wyoming"),
)


def request_choices() -> list[tuple[str, str]]:
    """Every (law, type) pair as "law:type", in the order the page lists them."""
    return [
        (f"{law}:{value}", label)
        for law, _label, _help, types, _text in LAWS
        for value, label in types.choices
    ]


class PublicRequestForm(forms.Form):
    """A data subject's request: what they ask for, who they are, and (CCPA) where they live."""

    request = forms.ChoiceField(
        label=_("What would you like us to do?"),
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose what you would like us to do.")},
    )
    requester_name = forms.CharField(
        label=_("Your name"), max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    requester_email = forms.EmailField(
        label=_("Your email address"),
        max_length=254,
        help_text=_("We send a code to this address to check that it is yours, and answer you there."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    resident_state = forms.ChoiceField(
        label=_("State of residence"),
        required=False,
        help_text=_("California requests only: the California law applies to California residents."),
        choices=[("", "—"), *US_STATES, (OUTSIDE_US, _("I do not live in the United States"))],
    )
    details = forms.CharField(
        label=_("Details"),
        required=False,
        max_length=5000,
        help_text=_(
            "Anything that helps us find your data. For a correction: what is wrong and what it should be."
        ),
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["request"].choices = request_choices()
        self.fields[HONEYPOT] = forms.CharField(
            label=_("Leave this field empty"),
            required=False,
            widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
        )

    @property
    def laws(self) -> list[dict]:
        """The choices grouped by law for the template: a heading, a note and (radio, explanation) pairs."""
        radios = {radio.data["value"]: radio for radio in self["request"]}
        return [
            {
                "key": law,
                "label": label,
                "help": help_text,
                "options": [(radios[f"{law}:{value}"], explanations[value]) for value in types.values],
            }
            for law, label, help_text, types, explanations in LAWS
        ]

    @property
    def contact_fields(self) -> list[forms.BoundField]:
        return [self["requester_name"], self["requester_email"]]

    @property
    def honeypot_field(self) -> forms.BoundField:
        return self[HONEYPOT]

    @property
    def is_spam(self) -> bool:
        """The honeypot is filled in: a bot (people never see the field)."""
        return bool((self.data.get(HONEYPOT) or "").strip())

    def clean_requester_name(self) -> str:
        return self.cleaned_data["requester_name"].strip()

    def clean_requester_email(self) -> str:
        return self.cleaned_data["requester_email"].strip().lower()

    def clean(self):
        cleaned = super().clean()
        choice = cleaned.get("request")
        if not choice:
            return cleaned
        kind, request_type = choice.split(":", 1)
        cleaned["kind"], cleaned["request_type"] = kind, request_type
        if kind == "ccpa" and not cleaned.get("resident_state"):
            self.add_error("resident_state", _("Choose the state you live in."))
        if kind == "gdpr":
            cleaned["resident_state"] = ""
        if choice == f"gdpr:{GdprRequest.Type.RECTIFY}" and not (cleaned.get("details") or "").strip():
            self.add_error("details", _("Tell us which data is wrong and what it should be."))
        return cleaned

    def request_values(self) -> dict:
        """The keyword arguments of `request_create` this form supplies."""
        state = self.cleaned_data["resident_state"]
        return {
            "kind": self.cleaned_data["kind"],
            "request_type": self.cleaned_data["request_type"],
            "requester_name": self.cleaned_data["requester_name"],
            "requester_email": self.cleaned_data["requester_email"],
            "details": self.cleaned_data["details"].strip(),
            # Outside the United States is no US state: the service reads any state but California as
            # "not a California resident".
            "resident_state": "" if state == OUTSIDE_US else state,
        }


class VerificationCodeForm(forms.Form):
    """The code from the email. Spaces and case are forgiven (the alphabet has no look-alike letters)."""

    code = forms.CharField(
        label=_("Code from the email"),
        max_length=32,
        error_messages={"required": _("Enter the code we emailed you.")},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )

    def clean_code(self) -> str:
        return "".join(self.cleaned_data["code"].split()).upper()
