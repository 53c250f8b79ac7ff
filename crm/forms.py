"""Forms of the platform app: sign-in, profile, organization settings, user management."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.utils.translation import gettext_lazy as _

from crm.auth import reveal_user
from crm.db.login import user_id_for_email
from crm.models import CURRENCY_CHOICES, TIME_ZONE_CHOICES, Department, Organization, User
from crm.permissions import Role


def personal_time_zone_field(help_text: str = "") -> forms.ChoiceField:
    return forms.ChoiceField(
        label=_("Time zone"),
        choices=[("", _("Organization default")), *TIME_ZONE_CHOICES],
        required=False,
        help_text=help_text,
    )


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label=_("Email"), widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        # One message for a wrong password and for an unknown account: nothing tells which.
        "invalid_login": _("That email and password do not match an active account."),
        "inactive": _("That email and password do not match an active account."),
    }


class TenantPasswordResetForm(PasswordResetForm):
    """Password reset under RLS: the account is found through the login door, not by a table scan."""

    def get_users(self, email):
        user_id = user_id_for_email(email)
        if not user_id:
            return []
        reveal_user(user_id)
        # Invited users have no usable password yet: the reset link is how they set their first one.
        return list(User.objects.filter(pk=user_id, is_active=True))


class ProfileForm(forms.ModelForm):
    theme = forms.ChoiceField(
        label=_("Theme"),
        choices=[("light", _("Light")), ("dark", _("Dark")), ("auto", _("Follow my system"))],
    )
    density = forms.ChoiceField(
        label=_("Table density"), choices=[("comfortable", _("Comfortable")), ("compact", _("Compact"))]
    )
    email_notifications = forms.BooleanField(label=_("Also send my notifications by email"), required=False)

    class Meta:
        model = User
        fields = ["first_name", "last_name", "job_title", "time_zone", "email_signature"]
        help_texts = {
            "time_zone": _("Dates and times are shown in this zone. Empty: your organization's."),
            "email_signature": _("Added to marketing emails of customers you own ({{ owner.signature }})."),
        }
        widgets = {"email_signature": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"] = personal_time_zone_field(self.fields["time_zone"].help_text)
        prefs = self.instance.preferences or {}
        self.fields["theme"].initial = prefs.get("theme", "light")
        self.fields["density"].initial = prefs.get("density", "comfortable")
        self.fields["email_notifications"].initial = prefs.get("email_notifications", True)

    def changes(self) -> dict:
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["preferences"] = {
            **(self.instance.preferences or {}),
            "theme": self.cleaned_data["theme"],
            "density": self.cleaned_data["density"],
            "email_notifications": self.cleaned_data["email_notifications"],
        }
        return data


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["name", "time_zone", "currency"]
        help_texts = {
            "time_zone": _("The default for users who have not chosen their own."),
            "currency": _("Money is shown in this currency unless a record says otherwise."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = CURRENCY_CHOICES
        self.fields["time_zone"] = forms.ChoiceField(
            label=_("Time zone"), choices=TIME_ZONE_CHOICES, help_text=self.fields["time_zone"].help_text
        )


class UserCreateForm(forms.ModelForm):
    send_invite = forms.BooleanField(label=_("Email a link to set a password"), required=False, initial=True)

    class Meta:
        model = User
        fields = ["email", "first_name", "last_name", "role", "department", "job_title"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = Role.choices
        self.fields["role"].required = True
        self.fields["department"].choices = [("", _("None")), *Department.choices]

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if user_id_for_email(email):
            raise forms.ValidationError(_("An account with this email already exists."))
        return email

    def validate_unique(self):
        # Email uniqueness spans organizations, which RLS hides: clean_email asks the login door instead.
        pass


class UserEditForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name", "role", "department", "job_title", "time_zone"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = Role.choices
        self.fields["role"].required = True
        self.fields["department"].choices = [("", _("None")), *Department.choices]
        self.fields["time_zone"] = personal_time_zone_field(self.fields["time_zone"].help_text)
