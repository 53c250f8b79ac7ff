"""Signing in: django-axes throttling (per username and IP, with a cool-off, the same answer for unknown
accounts), case-insensitive email login, deactivation ending sessions at once, and the password rules."""

from __future__ import annotations

import re
from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm import services
from crm.models import User
from crm.tenancy import system_context, tenant_context
from tests.factories import PASSWORD

INVALID = "That email and password do not match an active account."
LOCKED = "Too many failed attempts. Please wait a few minutes before trying again."
IP = "203.0.113.10"
OTHER_IP = "203.0.113.20"


def _attempt(client, email, password, ip=IP):
    return client.post(reverse("login"), {"username": email, "password": password}, REMOTE_ADDR=ip)


def _signed_in_as(client) -> str | None:
    return client.session.get("_auth_user_id")


def _fail_until_locked(client, email, ip=IP) -> list:
    return [_attempt(client, email, "wrong-password-guess", ip) for _ in range(settings.AXES_FAILURE_LIMIT)]


def _normalised(response, email: str) -> str:
    """The page without what legitimately differs between two requests: the echoed email, the CSRF token,
    the CSP nonce and the request id."""
    body = response.content.decode().replace(email, "EMAIL")
    body = re.sub(r"\b[A-Za-z0-9]{64}\b", "CSRF-TOKEN", body)
    return re.sub(r'nonce="[^"]+"', "NONCE", body)


def test_failure_limit_locks_the_username_and_ip_and_then_even_the_right_password_is_refused(tenants):
    assert settings.AXES_FAILURE_LIMIT == 5
    client, email = Client(), tenants.a.member.email
    failures = _fail_until_locked(client, email)
    # The first four failures are ordinary failures; the fifth is the one that trips the lock.
    assert [r.status_code for r in failures] == [200, 200, 200, 200, 429]
    assert all(INVALID in r.content.decode() for r in failures[:4])

    sixth = _attempt(client, email, PASSWORD)
    assert sixth.status_code == 429
    assert LOCKED in sixth.content.decode()
    assert _signed_in_as(client) is None


def test_the_lock_cannot_be_dodged_by_changing_the_case_of_the_email(tenants):
    client, email = Client(), tenants.a.member.email
    _fail_until_locked(client, email)
    response = _attempt(client, email.upper(), PASSWORD)
    assert response.status_code == 429
    assert _signed_in_as(client) is None


def test_an_unknown_email_gets_exactly_the_answer_a_known_one_gets_before_and_after_lockout(tenants):
    known, unknown = tenants.a.member.email, "nobody-here@org-a.test"

    first_known = _attempt(Client(), known, "wrong-password-guess")
    first_unknown = _attempt(Client(), unknown, "wrong-password-guess")
    assert first_known.status_code == first_unknown.status_code == 200
    assert INVALID in first_known.content.decode()
    assert _normalised(first_known, known) == _normalised(first_unknown, unknown)

    locked_known = _fail_until_locked(Client(), known)[-1]
    locked_unknown = _fail_until_locked(Client(), unknown)[-1]
    assert locked_known.status_code == locked_unknown.status_code == 429
    assert LOCKED in locked_unknown.content.decode()
    assert _normalised(locked_known, known) == _normalised(locked_unknown, unknown)

    # And once locked, the right password of the known account looks like any other locked attempt.
    right = _attempt(Client(), known, PASSWORD)
    again_unknown = _attempt(Client(), unknown, PASSWORD)
    assert right.status_code == again_unknown.status_code == 429
    assert _normalised(right, known) == _normalised(again_unknown, unknown)


def test_after_the_cool_off_the_right_password_works_again(tenants):
    client, email = Client(), tenants.a.member.email
    _fail_until_locked(client, email)
    assert _attempt(client, email, PASSWORD).status_code == 429

    # Move the recorded attempts back beyond the cool-off instead of waiting for it.
    cool_off = settings.AXES_COOLOFF_TIME
    assert isinstance(cool_off, timedelta) and cool_off >= timedelta(minutes=1)
    moved = AccessAttempt.objects.filter(username=email).update(
        attempt_time=timezone.now() - cool_off - timedelta(seconds=5)
    )
    assert moved >= 1

    response = _attempt(client, email, PASSWORD)
    assert response.status_code == 302
    assert response.url == reverse("home")
    assert _signed_in_as(client) == str(tenants.a.member.pk)


def test_just_before_the_cool_off_ends_the_lock_still_holds(tenants):
    client, email = Client(), tenants.a.member.email
    _fail_until_locked(client, email)
    AccessAttempt.objects.filter(username=email).update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME + timedelta(seconds=30)
    )
    assert _attempt(client, email, PASSWORD).status_code == 429


def test_another_ip_is_not_locked_by_the_failures_of_one_ip(tenants):
    email = tenants.a.member.email
    _fail_until_locked(Client(), email, ip=IP)
    other = Client()
    response = _attempt(other, email, PASSWORD, ip=OTHER_IP)
    assert response.status_code == 302
    assert _signed_in_as(other) == str(tenants.a.member.pk)
    # ... while the locked IP stays locked.
    assert _attempt(Client(), email, PASSWORD, ip=IP).status_code == 429


def test_login_with_the_right_password_ignores_the_case_of_the_email(tenants):
    member = tenants.a.member
    for spelling in (member.email.upper(), member.email.title(), f"  {member.email}  "):
        client = Client()
        response = _attempt(client, spelling, PASSWORD)
        assert response.status_code == 302, spelling
        assert _signed_in_as(client) == str(member.pk), spelling


# --- Deactivation ends sessions at once ----------------------------------------------------------------


def test_deactivating_a_user_ends_their_session_at_once_and_reactivating_revives_none(tenants, signed_in):
    a = tenants.a
    victim = signed_in(a.member)
    assert victim.get(reverse("home")).status_code == 200

    with tenant_context(a.org.pk, user=a.admin):
        services.user_deactivate(user=User.objects.get(pk=a.member.pk), actor=a.admin)
    response = victim.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))

    with tenant_context(a.org.pk, user=a.admin):
        services.user_reactivate(user=User.objects.get(pk=a.member.pk), actor=a.admin)
    response = victim.get(reverse("home"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    # A fresh sign-in works again.
    fresh = Client()
    assert _attempt(fresh, a.member.email, PASSWORD, ip="203.0.113.30").status_code == 302


def test_deactivating_through_the_users_page_signs_the_user_out_at_once(tenants, signed_in):
    a = tenants.a
    victim = signed_in(a.member)
    assert victim.get(reverse("notifications:list")).status_code == 200
    response = signed_in(a.admin).post(reverse("users:set_active", args=[a.member.pk]), {"active": "0"})
    assert response.status_code == 302
    with system_context():
        assert User.objects.get(pk=a.member.pk).is_active is False
    response = victim.get(reverse("notifications:list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert _attempt(Client(), a.member.email, PASSWORD, ip="203.0.113.31").status_code == 200


# --- Password rules (OWASP ASVS 2.1) ---------------------------------------------------------------------


def _change_password(client, new):
    return client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )


def _password_works(user, password) -> bool:
    with system_context():
        return User.objects.get(pk=user.pk).check_password(password)


def test_a_password_shorter_than_12_characters_is_refused(tenants, signed_in):
    client = signed_in(tenants.a.member)
    short = "tidal-moss7"
    assert len(short) == 11
    response = _change_password(client, short)
    assert response.status_code == 200
    assert "at least 12 characters" in response.content.decode()
    assert _password_works(tenants.a.member, PASSWORD)


def test_a_common_password_is_refused(tenants, signed_in):
    client = signed_in(tenants.a.member)
    response = _change_password(client, "password1234")
    assert response.status_code == 200
    assert "This password is too common." in response.content.decode()
    assert _password_works(tenants.a.member, PASSWORD)


def test_a_long_passphrase_without_digits_or_symbols_is_accepted(tenants, signed_in):
    client = signed_in(tenants.a.member)
    passphrase = "lantern orchard quietly humming"
    response = _change_password(client, passphrase)
    assert response.status_code == 302
    assert response.url == reverse("password_change_done")
    assert _password_works(tenants.a.member, passphrase)
    assert client.get(reverse("password_change_done")).status_code == 200  # still signed in
