"""`manage.py check_rls` and the third wall: the command passes on the migrated database and fails, naming
the table, when row-level security is switched off or no longer forced; the app role cannot rewrite the
audit trail or switch row-level security off itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import ProgrammingError, connection, transaction
from psycopg import sql

from crm.models import AuditLog
from crm.tenancy import system_context, tenant_context
from customers.models import Customer
from tests import factories
from tests.security.conftest import owner_connection, tenant_tables


@contextmanager
def table_altered(table: str, change: str, undo: str) -> Iterator[None]:
    with owner_connection() as conn:
        conn.execute(sql.SQL(f"ALTER TABLE {{}} {change}").format(sql.Identifier(table)))
        try:
            yield
        finally:
            conn.execute(sql.SQL(f"ALTER TABLE {{}} {undo}").format(sql.Identifier(table)))


def _check_rls() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("check_rls", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _victim_table() -> str:
    """A tenant table (not a partition, not the audit log) to switch RLS off on, chosen from the catalog."""
    names = [t.name for t in tenant_tables() if not t.partition and not t.partitioned]
    assert "notifications" in names
    return "notifications"


def test_check_rls_passes_on_the_migrated_database(db):
    out, err = _check_rls()
    checked = len(tenant_tables())
    assert f"{checked} tenant tables have forced RLS with a policy" in out
    assert err == ""


def test_check_rls_fails_naming_the_table_when_row_level_security_is_disabled(db):
    table = _victim_table()
    err = StringIO()
    with table_altered(table, "DISABLE ROW LEVEL SECURITY", "ENABLE ROW LEVEL SECURITY"):
        with pytest.raises(CommandError, match="Tenant isolation check failed: 1 problem"):
            call_command("check_rls", stdout=StringIO(), stderr=err)
    assert f"{table}: row-level security is not enabled" in err.getvalue()
    _check_rls()  # restored


def test_check_rls_fails_naming_the_table_when_row_level_security_is_not_forced(db):
    table = _victim_table()
    err = StringIO()
    with table_altered(table, "NO FORCE ROW LEVEL SECURITY", "FORCE ROW LEVEL SECURITY"):
        with pytest.raises(CommandError, match="Tenant isolation check failed: 1 problem"):
            call_command("check_rls", stdout=StringIO(), stderr=err)
    assert f"{table}: row-level security is not forced" in err.getvalue()
    _check_rls()  # restored


def test_check_rls_fails_when_a_tenant_table_has_no_policy(db):
    table = _victim_table()
    with owner_connection() as conn:
        policies = conn.execute(
            "SELECT polname, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid), polcmd "
            "FROM pg_policy WHERE polrelid = %s::regclass",
            [table],
        ).fetchall()
        assert len(policies) == 1 and policies[0][3] == "*"
        name, using, check, _ = policies[0]
        conn.execute(sql.SQL("DROP POLICY {} ON {}").format(sql.Identifier(name), sql.Identifier(table)))
        try:
            err = StringIO()
            with pytest.raises(CommandError):
                call_command("check_rls", stdout=StringIO(), stderr=err)
            assert f"{table}: no policy" in err.getvalue()
        finally:
            conn.execute(
                sql.SQL("CREATE POLICY {} ON {} USING ({}) WITH CHECK ({})").format(
                    sql.Identifier(name), sql.Identifier(table), sql.SQL(using), sql.SQL(check)
                )
            )
    _check_rls()  # restored


# --- What the app role may not do -----------------------------------------------------------------------


def _permission_error(statement: str, params=()) -> ProgrammingError:
    with pytest.raises(ProgrammingError) as raised, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
    assert isinstance(raised.value.__cause__, psycopg.errors.InsufficientPrivilege), raised.value
    return raised.value


def test_the_app_role_cannot_update_or_delete_audit_rows_even_as_the_platform(tenants):
    with system_context():
        entry = AuditLog.objects.filter(organization_id=tenants.a.org.pk).order_by("occurred_at").first()
        assert entry is not None
        _permission_error("UPDATE crm_audit_log SET request_id = 'rewritten' WHERE id = %s", [entry.pk])
        _permission_error("DELETE FROM crm_audit_log WHERE id = %s", [entry.pk])
        _permission_error("TRUNCATE crm_audit_log")
        assert AuditLog.objects.get(pk=entry.pk).request_id == entry.request_id
    assert "permission denied" in str(_permission_error("DELETE FROM crm_audit_log"))


def test_the_app_role_cannot_switch_row_level_security_off(db):
    error = _permission_error("ALTER TABLE users DISABLE ROW LEVEL SECURITY")
    assert "must be owner" in str(error)
    _permission_error("ALTER TABLE users NO FORCE ROW LEVEL SECURITY")
    _permission_error("DROP POLICY tenant_isolation ON users")


def test_every_policy_reads_the_tenant_settings_once_per_statement(db):
    """The policies read `app.organization_id` and `app.user_role` in scalar sub-selects (crm/db/rls.py), which
    PostgreSQL evaluates once per statement, never as a call on each row: every policy of the schema,
    partitions included, after all migrations (those written before the helper changed are rewritten)."""
    with owner_connection() as conn:
        policies = conn.execute(
            "SELECT tablename, policyname, coalesce(qual, '') || ' ' || coalesce(with_check, '')"
            " FROM pg_policies WHERE schemaname = 'public'"
        ).fetchall()
    assert len(policies) > 100
    tenant_org = "current_setting('app.organization_id'::text, true)"
    role = "current_setting('app.user_role'::text, true)"
    for table, name, text in policies:
        assert text.count(tenant_org) == text.count(f"( SELECT (NULLIF({tenant_org}"), (table, name, text)
        assert text.count(role) == text.count(f"( SELECT {role}"), (table, name, text)
    assert sum(tenant_org in text for _table, _name, text in policies) == len(policies)


def test_a_tenant_query_evaluates_the_setting_in_an_init_plan(db, org_a):
    """What the sub-select buys: the plan reads the setting once (an InitPlan) and compares a parameter on
    each row, and the policy still fails closed and still isolates."""
    with tenant_context(org_a.pk):
        factories.customer(org_a)
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (COSTS OFF) SELECT count(*) FROM customers")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        filters = [line for line in plan.splitlines() if "Filter:" in line]
        assert "InitPlan" in plan and filters, plan
        assert not any("current_setting" in line for line in filters), plan
        assert Customer.objects.count() == 1
    with connection.cursor() as cursor:  # no context: nothing visible
        cursor.execute("SELECT count(*) FROM customers")
        assert cursor.fetchone()[0] == 0
