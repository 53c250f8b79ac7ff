"""Row-level security, tested in the database itself: every tenant table (found in the catalog, so a new
table is covered the day it lands) hides every row without a context and every other organization's row
within one; writes cannot cross; the context never outlives its request; composite foreign keys stop a row
from pointing into another organization."""

from __future__ import annotations

import psycopg
import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import DatabaseError, ProgrammingError, connection, transaction
from django.db.utils import IntegrityError
from django.test import override_settings
from django.urls import reverse

from crm import tenancy
from crm.models import Notification, User
from crm.tenancy import TenantMiddleware, system_context, tenant_context
from tests.security.conftest import no_tenant_on_connection, scalar, settings_on_connection, tenant_tables

CORE_TENANT_TABLES = {"users", "notifications", "crm_audit_log"}


def _count(table: str, where: str = "", params=()) -> int:
    quoted = connection.ops.quote_name(table)
    return scalar(f"SELECT count(*) FROM {quoted} {where}", params)


def _refused(sql: str, params=()) -> DatabaseError | None:
    """Run `sql` in a savepoint; return the database error it raised (None if it ran)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    except DatabaseError as error:
        return error
    return None


def test_app_connects_as_a_role_that_is_not_superuser_not_bypassrls_and_owns_no_table(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        name, is_superuser, bypasses_rls = cursor.fetchone()
    assert name == connection.settings_dict["USER"]
    assert (is_superuser, bypasses_rls) == (False, False)
    owned = scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND pg_has_role(current_user, c.relowner, 'USAGE')"
    )
    assert owned == 0


def test_every_tenant_table_hides_all_rows_without_context_and_other_orgs_rows_within_one(tenants):
    tables = tenant_tables()
    readable = [t for t in tables if t.readable]
    assert {t.name for t in readable} >= CORE_TENANT_TABLES
    orgs = {"A": tenants.a.org.pk, "B": tenants.b.org.pk}

    # The truth, as the platform sees it.
    with system_context():
        truth = {
            t.name: {
                side: _count(t.name, "WHERE organization_id = %s", [org_id]) for side, org_id in orgs.items()
            }
            for t in readable
        }
        rows_without_org = {t.name: _count(t.name, "WHERE organization_id IS NULL") for t in readable}
    for name in CORE_TENANT_TABLES:
        assert truth[name]["A"] > 0 and truth[name]["B"] > 0, f"{name}: the data set has no rows to hide"
    # The platform operator (no organization) left rows that no tenant may see either.
    assert rows_without_org["users"] >= 1 and rows_without_org["crm_audit_log"] >= 1

    assert tenancy.current() is None
    assert no_tenant_on_connection()
    problems = []
    for t in readable:
        if (seen := _count(t.name)) != 0:
            problems.append(f"{t.name}: {seen} rows visible without a tenant context")
    for side, org_id in orgs.items():
        with tenant_context(org_id):
            for t in readable:
                foreign = _count(t.name, "WHERE organization_id IS DISTINCT FROM %s", [org_id])
                own = _count(t.name, "WHERE organization_id = %s", [org_id])
                if foreign:
                    problems.append(f"{t.name}: org {side} sees {foreign} rows of other organizations")
                if own != truth[t.name][side]:
                    problems.append(f"{t.name}: org {side} sees {own} of its {truth[t.name][side]} rows")
    assert not problems, "\n".join(problems)

    # Partitions the app role cannot read at all: reached only through their parent, whose policies apply.
    for t in tables:
        if not t.readable:
            assert t.partition, f"{t.name}: not readable by the app role, yet not a partition"
            error = _refused(f"SELECT count(*) FROM {connection.ops.quote_name(t.name)}")
            assert isinstance(getattr(error, "__cause__", None), psycopg.errors.InsufficientPrivilege), t.name


def test_a_tenant_sees_only_its_own_organizations_row(tenants):
    a, b = tenants.a.org.pk, tenants.b.org.pk
    assert scalar("SELECT count(*) FROM organizations") == 0
    with tenant_context(a):
        assert scalar("SELECT array_agg(id) FROM organizations") == [a]
    with tenant_context(b):
        assert scalar("SELECT array_agg(id) FROM organizations") == [b]
    with system_context():
        assert {a, b} <= set(scalar("SELECT array_agg(id) FROM organizations"))


def test_writing_a_row_for_another_organization_is_refused_by_the_policy(tenants):
    a, b = tenants.a, tenants.b
    with tenant_context(a.org.pk, user=a.admin):
        with pytest.raises(ProgrammingError, match="row-level security") as refused, transaction.atomic():
            Notification.objects.create(organization_id=b.org.pk, recipient_id=b.member.pk, title="planted")
        assert isinstance(refused.value.__cause__, psycopg.errors.InsufficientPrivilege)

        # Moving one of its own rows into another organization: refused by WITH CHECK as well.
        error = _refused(
            "UPDATE notifications SET organization_id = %s WHERE id = %s", [b.org.pk, a.admin_notification.pk]
        )
        assert isinstance(error, ProgrammingError) and "row-level security" in str(error)

        # Updating or deleting the other organization's rows by id touches nothing (USING hides them).
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE notifications SET title = 'defaced' WHERE organization_id = %s", [b.org.pk]
            )
            assert cursor.rowcount == 0
            cursor.execute("DELETE FROM users WHERE id = %s", [b.member.pk])
            assert cursor.rowcount == 0
    with system_context():
        assert Notification.objects.filter(organization_id=b.org.pk, title="planted").count() == 0
        assert Notification.objects.filter(organization_id=b.org.pk, title="defaced").count() == 0
        assert User.objects.filter(pk=b.member.pk).exists()


# --- The context does not leak ------------------------------------------------------------------------


def _request_as(rf, user):
    request = rf.get("/")
    request.session = SessionStore()
    request.session["_auth_user_id"] = str(user.pk)
    request.user = user
    request.request_id = "leak-probe-0001"
    return request


def _assert_connection_is_clean():
    assert tenancy.current() is None
    assert no_tenant_on_connection(), settings_on_connection()
    visible = {t.name: _count(t.name) for t in tenant_tables() if t.readable}
    assert visible == dict.fromkeys(visible, 0)


def test_a_request_that_raised_leaves_no_tenant_context_on_the_connection(tenants, rf):
    seen = {}

    def view_that_raises(request):
        seen["settings"] = settings_on_connection()
        seen["users"] = _count("users")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        TenantMiddleware(view_that_raises)(_request_as(rf, tenants.a.admin))

    # The context really was active during the request ...
    assert seen["settings"]["organization_id"] == str(tenants.a.org.pk)
    assert seen["settings"]["user_role"] == "admin"
    assert seen["users"] == len(tenants.a.emails)
    # ... and nothing of it is left for whatever runs next on this connection.
    _assert_connection_is_clean()


def test_a_request_that_broke_its_transaction_reraises_the_real_error_and_leaves_no_context(tenants, rf):
    def view_with_a_database_error(request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")

    with pytest.raises(DatabaseError) as raised:
        TenantMiddleware(view_with_a_database_error)(_request_as(rf, tenants.a.admin))
    assert isinstance(raised.value.__cause__, psycopg.errors.DivisionByZero)
    _assert_connection_is_clean()


@override_settings(ROOT_URLCONF="tests.security.probe_urls")
def test_a_request_answered_500_is_rolled_back_and_the_next_request_sees_only_its_own_tenant(
    tenants, signed_in
):
    client_a = signed_in(tenants.a.admin, raise_request_exception=False)
    client_b = signed_in(tenants.b.admin)

    response = client_a.post("/__fail__/", {"first_name": "Half-written"})
    assert response.status_code == 500
    _assert_connection_is_clean()
    with system_context():
        assert User.objects.get(pk=tenants.a.admin.pk).first_name == tenants.a.admin.first_name

    response = client_b.get(reverse("users:list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert all(email in body for email in tenants.b.emails)
    assert not any(email in body for email in tenants.a.emails)
    _assert_connection_is_clean()


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF="tests.security.probe_urls")
def test_interleaved_requests_of_two_organizations_on_one_connection_never_see_each_other(
    org_a, org_b, admin_a, admin_b, signed_in, committed_audit_rows_removed
):
    """With real transactions (as in production): each request commits, and between requests the
    connection carries no tenant at all. Each request is checked twice: the rendered users list (both
    walls) and what raw SQL sees inside the request (row-level security alone)."""
    from tests import factories

    staff = {
        org_a.pk: {admin_a.email, factories.user(org_a, role="sales_rep").email},
        org_b.pk: {admin_b.email, factories.user(org_b, role="support_agent").email},
    }
    clients = {org_a.pk: signed_in(admin_a), org_b.pk: signed_in(admin_b)}
    backend = scalar("SELECT pg_backend_pid()")
    order = [org_a.pk, org_b.pk, org_a.pk, org_a.pk, org_b.pk, org_b.pk, org_a.pk, org_b.pk]
    for step, org_id in enumerate(order):
        other = org_b.pk if org_id == org_a.pk else org_a.pk
        response = clients[org_id].get(reverse("users:list"))
        assert response.status_code == 200, step
        body = response.content.decode()
        assert all(email in body for email in staff[org_id]), step
        assert not any(email in body for email in staff[other]), step
        seen = clients[org_id].get("/__rls__/").json()
        assert seen["organization_id"] == str(org_id), step
        assert seen["role"] == "admin", step
        assert set(seen["emails"]) == staff[org_id], step
        assert seen["audit_orgs"] == [str(org_id)], step
        for _ in range(2):  # after each request: same connection, no transaction, no tenant
            assert scalar("SELECT pg_backend_pid()") == backend
            assert not connection.in_atomic_block
            assert no_tenant_on_connection(), (step, settings_on_connection())
            assert _count("users") == 0


# --- Composite tenant foreign keys --------------------------------------------------------------------

TENANT_FOREIGN_KEYS_SQL = """
SELECT con.conname, src.relname, tgt.relname, con.convalidated,
       array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i),
       array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.i)
FROM pg_constraint con
JOIN pg_class src ON src.oid = con.conrelid
JOIN pg_class tgt ON tgt.oid = con.confrelid
JOIN pg_namespace n ON n.oid = src.relnamespace
WHERE con.contype = 'f' AND n.nspname = 'public' AND NOT src.relispartition AND NOT tgt.relispartition
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = src.oid AND a.attname = 'organization_id'
              AND NOT a.attisdropped)
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tgt.oid AND a.attname = 'organization_id'
              AND NOT a.attisdropped)
ORDER BY 2, 1
"""


def test_every_foreign_key_between_tenant_tables_has_a_composite_organization_twin(db):
    with connection.cursor() as cursor:
        cursor.execute(TENANT_FOREIGN_KEYS_SQL)
        keys = cursor.fetchall()
    composite = {
        (src, tgt, tuple(cols), tuple(ref))
        for _, src, tgt, valid, cols, ref in keys
        if valid and len(cols) > 1
    }
    problems = []
    checked = 0
    for name, src, tgt, _, cols, ref in keys:
        if len(cols) == 1:
            checked += 1
            twin = (src, tgt, ("organization_id", cols[0]), ("organization_id", ref[0]))
            if twin not in composite:
                problems.append(
                    f"{src}.{cols[0]} -> {tgt}.{ref[0]} ({name}): no validated composite twin {twin}"
                )
        elif "organization_id" not in cols or ref[cols.index("organization_id")] != "organization_id":
            problems.append(f"{name}: multi-column key {cols} -> {ref} does not pair organization_id")
    assert not problems, "\n".join(problems)
    assert checked >= 1  # notifications.recipient_id -> users.id at least


def test_a_notification_of_one_organization_cannot_point_at_a_user_of_another_even_as_the_platform(tenants):
    a, b = tenants.a, tenants.b
    with system_context():
        with pytest.raises(IntegrityError) as refused, transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO notifications (id, organization_id, recipient_id, title, body, url, level,"
                    " created_at) VALUES (gen_random_uuid(), %s, %s, 'cross', '', '', 'info', now())",
                    [a.org.pk, b.member.pk],
                )
            # The composite key is deferred (like Django's own): check it now rather than at commit.
            connection.check_constraints()
        assert refused.value.__cause__.diag.constraint_name == "notifications_recipient_id_tenant_fk"
        assert Notification.objects.filter(title="cross").count() == 0
