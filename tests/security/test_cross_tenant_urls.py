"""Cross-tenant probes over every URL that takes an object id, discovered from the URLconf (admin site
included): signed in as org A's admin, the most privileged tenant role, every org B object answers 404 to
GET and to POST, shows nothing of B, and leaves every row of B exactly as it was."""

from __future__ import annotations

from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from crm.models import User
from crm.tenancy import system_context
from tests.factories import PASSWORD
from tests.security.conftest import (
    ADMIN_PLATFORM_MODELS,
    ADMIN_TENANT_MODELS,
    NOT_OBJECT_PARAMS,
    object_url_kwargs,
    org_snapshot,
    url_routes,
)

# A hostile POST: every field any of the probed forms or actions reads, set to something harmful.
HOSTILE_POST = {
    "first_name": "Pwned",
    "last_name": "Pwned",
    "email": "pwned@attacker.test",
    "role": "admin",
    "department": "sales",
    "job_title": "Pwned",
    "time_zone": "UTC",
    "is_active": "",
    "is_superuser": "on",
    "active": "0",
    "post": "yes",
    "password1": "attacker-chosen-passphrase",
    "password2": "attacker-chosen-passphrase",
    "usable_password": "true",
    "name": "Pwned",
    "slug": "pwned",
    "title": "Pwned",
    "body": "Pwned",
    "url": "https://attacker.test/",
    "level": "danger",
    "seat_limit": "1000",
    "_save": "Save",
}

# Own-object control: the same URL with org A's object must not be a 404, or the probe proves nothing.
# Django admin's "view on site" answers 404 for every object of models without get_absolute_url.
NO_OWN_OBJECT_CONTROL = {"admin:view_on_site"}


def _parameterised():
    return [route for route in url_routes() if route.params]


def _is_object_url(route) -> bool:
    if route.key in NOT_OBJECT_PARAMS:
        return False
    if route.is_admin and route.model_label:
        return route.model_label in ADMIN_TENANT_MODELS or route.model_label in ADMIN_PLATFORM_MODELS
    return True


def test_every_parameterised_url_is_probed_or_explicitly_not_an_object_url(tenants):
    """A new URL with a parameter must be taught to these tests (how to build another org's object for it)
    or listed, with a reason, among the parameters that are not object ids."""
    unknown = []
    for route in _parameterised():
        if route.key in NOT_OBJECT_PARAMS:
            if set(route.params) != NOT_OBJECT_PARAMS[route.key]:
                unknown.append(f"{route}: parameters {route.params} changed")
            continue
        try:
            probes = object_url_kwargs(route, tenants.b, tenants.a.admin)
        except KeyError:
            unknown.append(f"{route}: no mapping to an org B object (conftest.object_url_kwargs)")
            continue
        assert probes and all(set(kwargs) == set(route.params) for kwargs in probes), route
    assert not unknown, "\n".join(unknown)
    # No stale entries: each allowlisted route still exists.
    keys = {route.key for route in url_routes()}
    assert set(NOT_OBJECT_PARAMS) <= keys
    # Admin models are sorted correctly: tenant models carry organization rows, platform models do not.
    from django.apps import apps

    for label in ADMIN_TENANT_MODELS:
        model = apps.get_model(label)
        assert model._meta.db_table == "organizations" or any(
            f.column == "organization_id" for f in model._meta.concrete_fields
        ), label
    for label in ADMIN_PLATFORM_MODELS:
        assert not any(f.column == "organization_id" for f in apps.get_model(label)._meta.concrete_fields)


def test_org_admin_gets_404_on_every_url_of_another_organizations_object_and_nothing_changes(
    tenants, signed_in
):
    a, b = tenants.a, tenants.b
    client = signed_in(a.admin)
    before = org_snapshot(b.org.pk)
    tell_tales = {b.member.email, b.member_notification.title, b.admin_notification.title, b.org.name}
    failures = []
    probed = set()
    for route in _parameterised():
        if not _is_object_url(route) or route.model_label in ADMIN_PLATFORM_MODELS:
            continue
        own_url = route.url(**object_url_kwargs(route, a, a.admin)[0])
        for kwargs in object_url_kwargs(route, b, a.admin):
            url = route.url(**kwargs)
            for method in ("get", "post"):
                data = HOSTILE_POST if method == "post" else None
                response = getattr(client, method)(url, data, follow=True)
                chain = " -> ".join(target for target, _ in response.redirect_chain)
                if response.status_code == 405 and getattr(client, method)(own_url).status_code == 405:
                    pass  # the view does not serve this method at all, whoever's object it is
                elif response.status_code != 404:
                    failures.append(f"{method.upper()} {url} ({route.key}): {response.status_code} {chain}")
                body = response.content.decode()
                if leaked := [t for t in tell_tales if t in body]:
                    failures.append(f"{method.upper()} {url} ({route.key}): shows {leaked}")
            probed.add(route.key)
        if route.key not in NO_OWN_OBJECT_CONTROL:
            for kwargs in object_url_kwargs(route, a, a.admin):
                own = client.get(route.url(**kwargs))
                if own.status_code == 404:
                    failures.append(f"control: GET {route.url(**kwargs)} of org A's own object is 404 too")
    assert not failures, "\n".join(failures)
    assert org_snapshot(b.org.pk) == before
    # The probe reached the views it was meant to: the app's object URLs and every tenant admin action.
    assert {
        "users:edit",
        "users:set_active",
        "audit:detail",
        "notifications:open",
        "admin:view_on_site",
    } <= probed
    assert {"admin:crm_user_change", "admin:crm_user_delete", "admin:auth_user_password_change"} <= probed
    with system_context():
        assert User.objects.get(pk=b.member.pk).check_password(PASSWORD)
        assert User.objects.get(pk=b.member.pk).is_active


def test_org_admin_cannot_open_or_change_platform_objects_in_the_admin(tenants, signed_in):
    """Groups and django-axes records (every tenant's login attempts, emails and IPs) are the platform's."""
    a, b = tenants.a, tenants.b
    client = signed_in(a.admin)
    routes = [r for r in _parameterised() if r.is_admin and r.model_label in ADMIN_PLATFORM_MODELS]
    assert {r.model_label for r in routes} == set(ADMIN_PLATFORM_MODELS)
    probes = [(route, kwargs) for route in routes for kwargs in object_url_kwargs(route, b, a.admin)]
    before = org_snapshot(b.org.pk)
    failures = []
    for route, kwargs in probes:
        url = route.url(**kwargs)
        for method in ("get", "post"):
            data = HOSTILE_POST if method == "post" else None
            response = getattr(client, method)(url, data, follow=True)
            if response.status_code not in (403, 404):
                failures.append(f"{method.upper()} {url} ({route.key}): {response.status_code}")
            if b.member.email in response.content.decode():
                failures.append(f"{method.upper()} {url} ({route.key}): shows {b.member.email}")
    assert not failures, "\n".join(failures)
    assert org_snapshot(b.org.pk) == before


def test_password_reset_link_naming_another_orgs_account_reveals_and_changes_nothing(tenants, signed_in):
    a, b = tenants.a, tenants.b
    client = signed_in(a.admin)
    before = org_snapshot(b.org.pk)
    uidb64 = urlsafe_base64_encode(force_bytes(b.member.pk))
    url = reverse("password_reset_confirm", kwargs={"uidb64": uidb64, "token": "forged-token"})
    for method, data in (("get", None), ("post", {"new_password1": "x" * 20, "new_password2": "x" * 20})):
        response = getattr(client, method)(url, data, follow=True)
        assert response.status_code == 200
        body = response.content.decode()
        assert b.member.email not in body
        assert "new_password1" not in body  # the invalid-link page, not the form
    assert org_snapshot(b.org.pk) == before
    # Control: with the real token the same URL does lead to the form (so the probe above was refused).
    with system_context():
        token = default_token_generator.make_token(User.objects.get(pk=b.member.pk))
    anonymous = client.__class__()
    real = anonymous.get(
        reverse("password_reset_confirm", kwargs={"uidb64": uidb64, "token": token}), follow=True
    )
    assert "new_password1" in real.content.decode()
