"""Authentication under row-level security.

Before login nobody's organization is known, and the users policy shows no row. The one narrow door is
`crm_login_user_id(email)`, a SECURITY DEFINER function that returns only the id of the account with that
email; the backend then lets the users policy show that one row (`app.user_id`) and checks the password
the usual way. Inactive users never authenticate, and a deactivated user's next request is anonymous.
"""

from django.contrib.auth.backends import ModelBackend
from django.shortcuts import render
from django.utils.translation import gettext as _

from crm import tenancy
from crm.db.login import user_id_for_email
from crm.models import User


def reveal_user(user_id: str | None) -> None:
    """Let the users policy show this one account for the rest of the transaction."""
    tenancy.set_session_user_id(user_id)


class EmailBackend(ModelBackend):
    """Email + password, case-insensitive, through the login door."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        email = username or kwargs.get(User.USERNAME_FIELD)
        if not email or password is None:
            return None
        user_id = user_id_for_email(email)
        if user_id is None:
            # Same cost as a real check, so response time does not tell whether the account exists.
            User().set_password(password)
            return None
        reveal_user(user_id)
        user = User.objects.filter(pk=user_id).first()
        if user and user.check_password(password) and self.user_can_authenticate(user):
            tenancy.activate_user(user)
            return user
        return None

    def get_user(self, user_id):
        # Called with app.user_id already set to the session's user by the tenant middleware.
        user = User.objects.filter(pk=user_id).first()
        return user if user and self.user_can_authenticate(user) else None


def axes_username(request, credentials) -> str | None:
    """The name django-axes counts failures under: the login email, trimmed and lower-cased, because login
    ignores case (otherwise ALICE@ and alice@ would each get their own budget of attempts)."""
    value = None
    if credentials:
        value = credentials.get("username") or credentials.get(User.USERNAME_FIELD)
    if value is None and request is not None:
        value = getattr(request, "data", request.POST).get("username")
    return value.strip().lower() if isinstance(value, str) else value


def lockout_response(request, credentials, *args, **kwargs):
    """django-axes lockout: the login page again, with the message an unknown account would also get."""
    from crm.forms import LoginForm

    form = LoginForm(request, initial={"username": request.POST.get("username", "")[:254]})
    message = _("Too many failed attempts. Please wait a few minutes before trying again.")
    return render(request, "registration/login.html", {"form": form, "lockout_message": message}, status=429)
