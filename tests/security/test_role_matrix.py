"""The role matrix, against `crm.permissions.MATRIX`: every role x every view of the app (discovered from
the URLconf, objects of the user's own organization); anonymous visitors; and the Django admin site."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.test import Client
from django.urls import reverse

from crm.admin import TenantAdmin
from crm.permissions import MATRIX, Capability, Role
from tests.security.conftest import PUBLIC_VIEWS, app_routes, object_url_kwargs

# What a POST-only view is sent when the matrix probes it: harmless for an allowed role
# (users:set_active with active=1 reactivates an active user: nothing to do).
BENIGN_POST = {"active": "1"}


def _private_routes():
    return [route for route in app_routes() if route.key not in PUBLIC_VIEWS]


def _call(client, url):
    """GET, or POST when the view serves only POST (it answers GET with 405 before any other check)."""
    response = client.get(url)
    if response.status_code == 405 and "POST" in response.get("Allow", ""):
        return "POST", client.post(url, BENIGN_POST)
    return "GET", response


def _goes_to_login(response, login_url: str) -> bool:
    return response.status_code == 302 and response.url.split("?")[0] == login_url


def test_every_view_declares_a_capability_or_is_listed_as_public(db):
    routes = app_routes()
    undeclared = [str(r) for r in routes if r.capability is None and r.key not in PUBLIC_VIEWS]
    assert not undeclared, "views without a capability:\n" + "\n".join(undeclared)
    declared_public = [str(r) for r in routes if r.key in PUBLIC_VIEWS and r.capability is not None]
    assert not declared_public, "listed as public but declaring a capability:\n" + "\n".join(declared_public)
    assert {r.key for r in routes} >= PUBLIC_VIEWS, "stale entries in PUBLIC_VIEWS"
    assert all(Capability(r.capability) for r in routes if r.capability is not None)


def test_each_role_opens_exactly_the_views_its_capabilities_allow(tenants, signed_in):
    login_url = reverse("login")
    routes = _private_routes()
    failures = []
    outcomes = {}
    for role in Role.values:
        user = tenants.a.team[role]
        client = signed_in(user)
        for route in routes:
            kwargs = object_url_kwargs(route, tenants.a, user)[0] if route.params else {}
            url = route.url(**kwargs)
            method, response = _call(client, url)
            allowed = route.capability in MATRIX[role]
            status = response.status_code
            outcomes[role, route.key] = status
            if allowed:
                ok = (200 <= status < 300) or (
                    300 <= status < 400 and not _goes_to_login(response, login_url)
                )
            else:
                ok = status == 403
            if not ok:
                where = f" -> {response.url}" if 300 <= status < 400 else ""
                expected = "allowed" if allowed else "403"
                failures.append(
                    f"{role} {method} {url} ({route.key}, {route.capability}): {status}{where}, want {expected}"
                )
    assert not failures, "\n".join(failures)
    # The matrix is not trivially all-allowed or all-denied for the views probed.
    assert 403 in outcomes.values() and any(200 <= s < 300 for s in outcomes.values())


def test_anonymous_visitors_are_sent_to_the_login_page_from_every_non_public_view(tenants):
    client = Client()
    login_url = reverse("login")
    failures = []
    for route in _private_routes():
        kwargs = object_url_kwargs(route, tenants.a, tenants.a.admin)[0] if route.params else {}
        url = route.url(**kwargs)
        method, response = _call(client, url)
        if not _goes_to_login(response, login_url):
            failures.append(f"{method} {url}: {response.status_code} {response.get('Location', '')}")
        elif f"{REDIRECT_FIELD_NAME}=" not in response.url:
            failures.append(f"{method} {url}: login redirect without ?{REDIRECT_FIELD_NAME}=")
    assert not failures, "\n".join(failures)


def test_public_views_answer_anonymous_visitors_without_a_login_redirect(db):
    client = Client()
    for name in ("login", "password_reset", "password_reset_done", "password_reset_complete"):
        assert client.get(reverse(name)).status_code == 200, name
    assert client.get(reverse("healthz")).status_code in (200, 503)


# --- Django admin ---------------------------------------------------------------------------------------


def _changelists(*, tenant: bool) -> list[str]:
    """Tenant models are those whose ModelAdmin is a TenantAdmin (org admins see their organization's
    rows); the rest belong to the platform (groups, login attempts of every tenant)."""
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, TenantAdmin) == tenant
    ]


def _crm_changelists() -> list[str]:
    urls = _changelists(tenant=True)
    assert urls
    return urls


def _platform_changelists() -> list[str]:
    return _changelists(tenant=False)


def test_org_admin_opens_the_admin_site_and_every_crm_changelist(tenants, signed_in):
    client = signed_in(tenants.a.admin)
    assert client.get(reverse("admin:index")).status_code == 200
    for url in _crm_changelists():
        assert client.get(url).status_code == 200, url
    # The platform's own models (groups, login attempts of every tenant) stay out of reach.
    for url in _platform_changelists():
        assert client.get(url).status_code == 403, url


def test_other_roles_are_kept_out_of_the_admin_site(tenants, signed_in):
    admin_login = reverse("admin:login")
    failures = []
    for role in Role.values:
        if Capability.USE_ADMIN_SITE in MATRIX[role]:
            continue
        client = signed_in(tenants.a.team[role])
        for url in [reverse("admin:index"), *_crm_changelists(), *_platform_changelists()]:
            response = client.get(url)
            to_admin_login = response.status_code == 302 and response.url.split("?")[0] == admin_login
            if not (to_admin_login or response.status_code == 403):
                failures.append(f"{role} GET {url}: {response.status_code}")
    assert not failures, "\n".join(failures)
    # At least one role was checked: the matrix reserves the admin site.
    assert any(Capability.USE_ADMIN_SITE not in caps for caps in MATRIX.values())


def test_superuser_sees_every_organizations_users_in_the_admin_and_org_admin_only_their_own(
    tenants, signed_in
):
    url = reverse("admin:crm_user_changelist")
    platform = signed_in(tenants.superuser).get(url, {"all": ""}).content.decode()
    assert all(email in platform for email in tenants.a.emails | tenants.b.emails)

    own = signed_in(tenants.a.admin).get(url).content.decode()
    assert all(email in own for email in tenants.a.emails)
    assert not any(email in own for email in tenants.b.emails)
    assert tenants.superuser.email not in own

    organizations = signed_in(tenants.a.admin).get(reverse("admin:crm_organization_changelist"))
    assert tenants.a.org.name in organizations.content.decode()
    assert tenants.b.org.name not in organizations.content.decode()
    notifications = signed_in(tenants.a.admin).get(reverse("admin:crm_notification_changelist"))
    assert tenants.a.member_notification.title in notifications.content.decode()
    assert tenants.b.member_notification.title not in notifications.content.decode()
