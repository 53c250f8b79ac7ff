"""Forms of the staff request pages: the queue's filters, logging a request, and each workflow step."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db.models.functions import Lower
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from compliance.models import CcpaRequest, GdprRequest, PrivacyRequest, RequestStatus
from compliance.services.requests import RECTIFIABLE_FIELDS
from customers.models import Customer

KIND_CHOICES = [("gdpr", _("GDPR")), ("ccpa", _("CCPA"))]
TYPE_CHOICES = [
    (_("GDPR"), [(f"gdpr:{value}", label) for value, label in GdprRequest.Type.choices]),
    (_("CCPA"), [(f"ccpa:{value}", label) for value, label in CcpaRequest.Type.choices]),
]
ALL_TYPES = sorted({*GdprRequest.Type.values, *CcpaRequest.Type.values})


def find_customer(organization_id, value: str) -> Customer:
    """The organization's customer with this number (C-000042 or 42) or email, else a ValidationError."""
    customers = Customer.objects.filter(organization_id=organization_id)
    if "@" in value:
        customer = customers.alias(email_lower=Lower("email")).filter(email_lower=value.lower()).first()
    else:
        digits = value.upper().removeprefix("C-").lstrip("0") or "0"
        customer = customers.filter(number=int(digits)).first() if digits.isdigit() else None
    if customer is None:
        raise ValidationError(_("No customer with this number or email."))
    return customer


class QueueFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Law"), required=False, choices=[("", _("Both")), *KIND_CHOICES])
    request_type = forms.ChoiceField(
        label=_("Type"),
        required=False,
        choices=[
            ("", _("Any type")),
            *[(value, GdprRequest.Type(value).label) for value in GdprRequest.Type.values],
            *[
                (value, CcpaRequest.Type(value).label)
                for value in CcpaRequest.Type.values
                if value not in GdprRequest.Type.values
            ],
        ],
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("open", _("Open")), ("all", _("All")), *RequestStatus.choices],
    )
    assignee = forms.ChoiceField(label=_("Handled by"), required=False)
    overdue = forms.BooleanField(label=_("Overdue only"), required=False)

    def __init__(self, *args, users=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.users = {str(u.pk): u for u in users}
        self.fields["assignee"].choices = [
            ("", _("Anyone")),
            ("me", _("Me")),
            ("none", _("Nobody yet")),
            *[(pk, u.get_full_name() or u.email) for pk, u in self.users.items()],
        ]

    def filters(self) -> dict:
        """The selector's filters (an invalid form filters nothing but the default: open requests)."""
        if not self.is_valid():
            return {"status": "open"}
        data = {k: v for k, v in self.cleaned_data.items() if v not in ("", None, False)}
        if data.get("assignee") in self.users:
            data["assignee"] = self.users[data["assignee"]]
        data.setdefault("status", "open")
        return data


class RequestCreateForm(forms.Form):
    """A request a data subject made by phone, letter or email, logged by staff."""

    request_kind = forms.ChoiceField(
        label=_("Law and request type"),
        choices=TYPE_CHOICES,
        help_text=_("GDPR: 30 days to answer. CCPA: 45 days, California residents only."),
    )
    requester_name = forms.CharField(label=_("Requester name"), max_length=200)
    requester_email = forms.EmailField(
        label=_("Requester email"),
        max_length=254,
        help_text=_("Matched to a customer with this email; the verification code goes here."),
    )
    customer = forms.CharField(
        label=_("Customer"),
        required=False,
        max_length=254,
        help_text=_("Customer number (C-000042) or email, when it differs from the requester's."),
    )
    resident_state = forms.CharField(
        label=_("State of residence (CCPA)"),
        required=False,
        max_length=100,
        help_text=_("Used when the customer has no state on file. CCPA applies to California (CA) only."),
    )
    details = forms.CharField(
        label=_("Details"), required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        for name in RECTIFIABLE_FIELDS:
            model_field = Customer._meta.get_field(name)
            self.fields[f"fix_{name}"] = forms.CharField(
                label=capfirst(model_field.verbose_name), required=False, max_length=model_field.max_length
            )

    @property
    def rectification_fields(self):
        return [self[f"fix_{name}"] for name in RECTIFIABLE_FIELDS]

    def clean_customer(self) -> Customer | None:
        value = (self.cleaned_data.get("customer") or "").strip()
        if not value:
            return None
        return find_customer(self.organization.pk, value)

    def clean(self):
        cleaned = super().clean()
        kind, _sep, request_type = (cleaned.get("request_kind") or "").partition(":")
        cleaned["kind"], cleaned["request_type"] = kind, request_type
        rectification = {
            name: cleaned[f"fix_{name}"].strip() for name in RECTIFIABLE_FIELDS if cleaned.get(f"fix_{name}")
        }
        if kind == "gdpr" and request_type == GdprRequest.Type.RECTIFY:
            if not rectification and not cleaned.get("details"):
                self.add_error(
                    "details", _("Say what should be corrected (or fill in the corrected values).")
                )
            cleaned["rectification"] = rectification
        else:
            if rectification:
                self.add_error(None, _("Corrected values belong to a GDPR rectification request."))
            cleaned["rectification"] = None
        return cleaned


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class ExtendForm(ReasonForm):
    days = forms.IntegerField(label=_("Extend by (days)"), min_value=1, max_value=60, initial=30)


class MarkVerifiedForm(forms.Form):
    note = forms.CharField(
        label=_("How was the identity verified?"),
        max_length=500,
        help_text=_("For example: ID document checked at the desk, call back to the number on file."),
    )


class VerifyCodeForm(forms.Form):
    code = forms.CharField(label=_("Code the requester read to you"), max_length=20)


class AssignForm(forms.Form):
    assignee = forms.ChoiceField(label=_("Handled by"), required=False)

    def __init__(self, *args, users=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.users = {str(u.pk): u for u in users}
        self.fields["assignee"].choices = [
            ("", _("Nobody")),
            *[(pk, u.get_full_name() or u.email) for pk, u in self.users.items()],
        ]

    def clean_assignee(self):
        return self.users.get(self.cleaned_data.get("assignee") or "")


class LinkCustomerForm(forms.Form):
    customer = forms.CharField(label=_("Customer number or email"), max_length=254)

    def __init__(self, *args, organization_id, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization_id = organization_id

    def clean_customer(self) -> Customer:
        value = self.cleaned_data["customer"].strip()
        return find_customer(self.organization_id, value)


def kind_label(privacy_request: PrivacyRequest) -> str:
    return "CCPA" if isinstance(privacy_request, CcpaRequest) else "GDPR"
