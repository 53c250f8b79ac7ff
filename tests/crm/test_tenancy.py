"""Tenant context: no context fails loudly, contexts nest and restore, the middleware owns the transaction."""

import pytest
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.db import ProgrammingError, connection
from django.http import HttpResponse, HttpResponseServerError

from crm import services, tenancy
from crm.models import AuditLog, Notification, Organization, User
from crm.tenancy import TenantContextError, TenantMiddleware, system_context, tenant_context
from tests import factories

# One harmless column per model for the update() probe.
UPDATES = {
    User: {"job_title": "probe"},
    Notification: {"title": "probe"},
    AuditLog: {"request_id": "probe"},
    Organization: {"name": "probe"},
}
OPERATIONS = {
    "list": list,
    "count": lambda qs: qs.count(),
    "exists": lambda qs: qs.exists(),
    "first": lambda qs: qs.first(),
    "iterator": lambda qs: next(qs.iterator(), None),
    "update": lambda qs: qs.update(**UPDATES[qs.model]),
    "delete": lambda qs: qs.delete(),
}


def _setting(name: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [name])
        return cursor.fetchone()[0]


def _org_ids_of_visible_users() -> set:
    return set(User.objects.values_list("organization_id", flat=True))


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("model", list(UPDATES), ids=lambda m: m.__name__)
def test_tenant_model_query_outside_any_context_raises(admin_a, model, operation):
    factories.notification(admin_a, title="exists")
    assert tenancy.current() is None
    with pytest.raises(TenantContextError):
        OPERATIONS[operation](model.objects.all())
    # Nothing was changed by the refused update/delete.
    with system_context():
        assert User.objects.filter(pk=admin_a.pk, job_title="").exists()
        assert Notification.objects.filter(title="exists").count() == 1


def test_context_ends_with_its_block(org_a, admin_a):
    with tenant_context(org_a.pk):
        assert User.objects.count() == 1
    assert tenancy.current() is None
    with pytest.raises(TenantContextError):
        User.objects.count()


def test_tenant_context_without_an_organization_refuses():
    with pytest.raises(TenantContextError), tenant_context(""):
        pass


def test_nested_tenant_context_restores_the_outer_organizations_settings_on_exit(
    org_a, org_b, admin_a, admin_b
):
    with tenant_context(org_a.pk, user=admin_a, request_id="outer-request"):
        assert _setting("app.organization_id") == str(org_a.pk)
        assert _org_ids_of_visible_users() == {org_a.pk}
        with tenant_context(org_b.pk, user=admin_b, request_id="inner-request"):
            assert _setting("app.organization_id") == str(org_b.pk)
            assert _setting("app.user_id") == str(admin_b.pk)
            assert _setting("app.request_id") == "inner-request"
            assert _org_ids_of_visible_users() == {org_b.pk}
        assert _setting("app.organization_id") == str(org_a.pk)
        assert _setting("app.user_id") == str(admin_a.pk)
        assert _setting("app.user_role") == "admin"
        assert _setting("app.request_id") == "outer-request"
        assert tenancy.current().organization_id == org_a.pk
        assert _org_ids_of_visible_users() == {org_a.pk}
    assert tenancy.current() is None
    # Still inside the test's transaction: the settings were emptied, not left behind.
    assert _setting("app.organization_id") == ""
    assert _setting("app.user_role") == ""


def test_error_inside_a_nested_context_surfaces_and_the_outer_context_is_back(org_a, org_b, admin_a):
    with tenant_context(org_a.pk, user=admin_a):
        # The database's own error comes out (not "current transaction is aborted").
        with pytest.raises(ProgrammingError, match="permission denied"):
            with tenant_context(org_b.pk), connection.cursor() as cursor:
                cursor.execute("UPDATE crm_audit_log SET request_id = 'rewritten'")
        assert _setting("app.organization_id") == str(org_a.pk)
        assert tenancy.current().organization_id == org_a.pk
        assert _org_ids_of_visible_users() == {org_a.pk}


def test_tenant_context_outside_a_transaction_opens_one_and_commits(transactional_db, org_a, admin_a):
    assert not connection.in_atomic_block
    with tenant_context(org_a.pk, user=admin_a):
        assert connection.in_atomic_block
        assert _setting("app.organization_id") == str(org_a.pk)
        assert User.objects.count() == 1
        services.notification_create(recipient=admin_a, title="committed")
    assert not connection.in_atomic_block
    # Transaction-local: nothing of the context outlives the COMMIT on this connection.
    assert _setting("app.organization_id") in ("", None)
    assert _setting("app.user_role") in ("", None)
    with system_context():
        assert Notification.objects.filter(title="committed").count() == 1


def test_system_context_sees_both_organizations(org_a, org_b, admin_a, admin_b):
    with system_context():
        assert set(Organization.objects.values_list("slug", flat=True)) == {"org-a", "org-b"}
        assert _org_ids_of_visible_users() == {org_a.pk, org_b.pk}
    with tenant_context(org_a.pk):
        assert set(Organization.objects.values_list("slug", flat=True)) == {"org-a"}


# --- TenantMiddleware ---------------------------------------------------------------------------------------


@pytest.fixture
def signed_in_request(rf, client, login, admin_a):
    """A RequestFactory request carrying admin_a's real session cookie."""
    login(admin_a)
    request = rf.get("/probe/")
    request.COOKIES[settings.SESSION_COOKIE_NAME] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return request


def _through_middleware(view, request):
    return SessionMiddleware(AuthenticationMiddleware(TenantMiddleware(view)))(request)


def _writing_view(title: str, response_class):
    seen = {}

    def view(request):
        seen["user"] = request.user
        seen["organization_id"] = tenancy.current().organization_id
        services.notification_create(recipient=request.user, title=title)
        seen["visible_inside"] = Notification.objects.filter(title=title).exists()
        return response_class("done")

    return view, seen


def _notification_exists(title: str) -> bool:
    with system_context():
        return Notification.objects.filter(title=title).exists()


def test_tenant_middleware_rolls_back_writes_when_the_response_is_a_server_error(
    transactional_db, signed_in_request, admin_a, org_a
):
    view, seen = _writing_view("half-written", HttpResponseServerError)
    response = _through_middleware(view, signed_in_request)
    assert response.status_code == 500
    assert seen["user"] == admin_a
    assert seen["organization_id"] == org_a.pk
    assert seen["visible_inside"] is True
    assert tenancy.current() is None
    assert not _notification_exists("half-written")


def test_tenant_middleware_commits_writes_when_the_response_is_ok(
    transactional_db, signed_in_request, admin_a, org_a
):
    view, seen = _writing_view("kept", HttpResponse)
    response = _through_middleware(view, signed_in_request)
    assert response.status_code == 200
    assert seen["organization_id"] == org_a.pk
    assert tenancy.current() is None
    assert _notification_exists("kept")


def test_tenant_middleware_rolls_back_when_the_view_raises(transactional_db, signed_in_request):
    def view(request):
        services.notification_create(recipient=request.user, title="before the crash")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        _through_middleware(view, signed_in_request)
    assert tenancy.current() is None
    assert not _notification_exists("before the crash")
