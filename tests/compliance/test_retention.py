"""Retention (compliance/retention.py): a monthly partition of the append-only logs is dropped only when
every organization with rows in it is past its retention for that month; nothing else is deleted."""

from __future__ import annotations

import datetime
import io

from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from compliance import retention
from compliance.models import PrivacySettings
from crm import services as crm_services
from crm.db.partitions import ensure_month_partitions
from crm.tenancy import system_context, tenant_context
from tests import factories


def _month(ago: int) -> datetime.date:
    today = timezone.now().astimezone(datetime.UTC).date().replace(day=1)
    index = today.year * 12 + today.month - 1 - ago
    return datetime.date(index // 12, index % 12 + 1, 1)


def _in_month(ago: int) -> datetime.datetime:
    return datetime.datetime.combine(
        _month(ago), datetime.time(12), tzinfo=datetime.UTC
    ) + datetime.timedelta(days=3)


def _settings(org, **fields):
    with tenant_context(org.pk):
        PrivacySettings.objects.create(organization=org, **fields)


def _audit_row(organization_id, ago: int) -> None:
    with system_context(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO crm_audit_log (organization_id, table_name, record_id, operation, occurred_at) "
            "VALUES (%s, 'customers', 'x', 'UPDATE', %s)",
            [organization_id, _in_month(ago)],
        )


def _count(table: str, column: str, ago: int) -> int:
    start = datetime.datetime.combine(_month(ago), datetime.time(), tzinfo=datetime.UTC)
    end = datetime.datetime.combine(_month(ago - 1), datetime.time(), tzinfo=datetime.UTC)
    with system_context(), connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE {column} >= %s AND {column} < %s", [start, end])
        return cursor.fetchone()[0]


def _exists(partition: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition])
        return cursor.fetchone()[0]


def _name(table: str, ago: int) -> str:
    return f"{table}_y{_month(ago):%Y}m{_month(ago):%m}"


def _two_organizations(org_a, org_b):
    """A keeps interactions 3 months and audit rows 12; B keeps them 6 and 24."""
    _settings(org_a, interaction_retention_months=3, audit_retention_months=12)
    _settings(org_b, interaction_retention_months=6, audit_retention_months=24)
    with system_context():
        for table in ("interaction_logs", "crm_audit_log", "data_access_log"):
            ensure_month_partitions(table, months_ahead=1, months_back=20)
    a, b = factories.customer(org_a), factories.customer(org_b)
    # Interactions: month 3: A (kept by A); 4 and 5: A only (A is done); 6: A and B (B keeps it);
    # 8: A and B (both done). Months 7 and 9..20 are empty.
    for ago, customers in {3: [a], 4: [a], 5: [a, a], 6: [a, b], 8: [a, b]}.items():
        for customer in customers:
            factories.interaction(customer, interaction_date=_in_month(ago))
    # Audit rows: 14: A only (done); 15: A and B (B keeps it); 16: no organization (the default, 84 months).
    _audit_row(org_a.pk, 14)
    _audit_row(org_a.pk, 15)
    _audit_row(org_b.pk, 15)
    _audit_row(None, 16)
    # The rows' deferred foreign-key checks would otherwise still be pending in the test's transaction, and
    # PostgreSQL refuses to drop a table with pending trigger events (in production they commit first).
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _expected_interaction_plan(a_months: int, b_months: int, today: datetime.date) -> dict[int, bool]:
    """Recomputed by hand: a month may go when, for every org with rows, month end + retention <= today."""
    rows = {3: ["a"], 4: ["a"], 5: ["a"], 6: ["a", "b"], 8: ["a", "b"]}
    keep = {"a": a_months, "b": b_months}
    longest = max(keep.values())
    expected = {}
    for ago in range(2, 21):
        month = _month(ago)
        retained = [keep[org] for org in rows.get(ago, [])] or [longest]
        expected[ago] = all(retention.add_months(month, months + 1) <= today for months in retained)
    return expected


def test_the_plan_drops_a_month_only_when_every_organization_with_rows_is_past_its_retention(org_a, org_b):
    _two_organizations(org_a, org_b)
    today = timezone.now().astimezone(datetime.UTC).date()

    plan = {(p.table, p.month): p for p in retention.plan_retention(today=today)}

    expected = _expected_interaction_plan(3, 6, today)
    for ago, droppable in expected.items():
        assert plan[("interaction_logs", _month(ago))].droppable is droppable, ago
    assert [b.organization_id for b in plan[("interaction_logs", _month(6))].blocking] == [org_b.pk]
    # Month 3 is within even the shortest retention (A's 3 months): kept without looking at its rows.
    assert plan[("interaction_logs", _month(3))].organization_ids is None
    assert set(plan[("interaction_logs", _month(8))].organization_ids) == {org_a.pk, org_b.pk}
    assert plan[("interaction_logs", _month(6))].kept_until == retention.add_months(_month(6), 7)
    # Not yet ended a month ago: not in the plan at all (crm_drop_month_partition would refuse it).
    assert ("interaction_logs", _month(1)) not in plan

    assert plan[("crm_audit_log", _month(14))].droppable
    assert not plan[("crm_audit_log", _month(15))].droppable
    assert [b.organization_id for b in plan[("crm_audit_log", _month(15))].blocking] == [org_b.pk]
    no_org = plan[("crm_audit_log", _month(16))]
    assert not no_org.droppable and no_org.organization_ids == (None,)
    assert no_org.kept_until == retention.add_months(_month(16), 85)
    # Within every retention (the shortest audit retention is 12 months): not even inspected.
    assert plan[("crm_audit_log", _month(5))].organization_ids is None
    assert not plan[("crm_audit_log", _month(5))].droppable


def test_apply_drops_only_the_allowed_partitions_and_deletes_no_other_row(org_a, org_b):
    _two_organizations(org_a, org_b)
    today = timezone.now().astimezone(datetime.UTC).date()
    expected = _expected_interaction_plan(3, 6, today)
    kept_counts = {
        ago: _count("interaction_logs", "interaction_date", ago) for ago, drop in expected.items() if not drop
    }
    audit_kept = {ago: _count("crm_audit_log", "occurred_at", ago) for ago in (15, 16)}
    assert kept_counts[6] == 2 and kept_counts[3] == 1

    result = retention.apply_retention(today=today)

    dropped = {(p.table, p.month) for p in result.dropped}
    assert {month for table, month in dropped if table == "interaction_logs"} == {
        _month(ago) for ago, drop in expected.items() if drop
    }
    assert ("crm_audit_log", _month(14)) in dropped and ("crm_audit_log", _month(15)) not in dropped
    assert all(not _exists(p.partition) for p in result.dropped)
    for ago, count in kept_counts.items():
        assert _exists(_name("interaction_logs", ago))
        assert _count("interaction_logs", "interaction_date", ago) == count
    for ago, count in audit_kept.items():
        assert _count("crm_audit_log", "occurred_at", ago) == count
    # Idempotent: nothing more to drop.
    assert retention.apply_retention(today=today).dropped == []

    # The partition beat creates last month onwards only: it never brings a dropped month back.
    with system_context():
        crm_services.partitions_ensure()
    assert all(not _exists(p.partition) for p in result.dropped)


def test_a_dry_run_drops_nothing(org_a, org_b):
    _two_organizations(org_a, org_b)
    result = retention.apply_retention(dry_run=True)
    assert result.dropped == [] and any(p.droppable for p in result.plan)
    assert all(_exists(p.partition) for p in result.plan)


def test_the_command_prints_the_report(org_a, org_b):
    _two_organizations(org_a, org_b)
    out = io.StringIO()
    call_command("apply_retention", "--dry-run", stdout=out)
    text = out.getvalue()
    assert f"{_name('interaction_logs', 5)}" in text and "would drop" in text
    assert f"kept by {org_b.name}" in text
    assert "Dry run:" in text
    assert _exists(_name("interaction_logs", 5))

    out = io.StringIO()
    call_command("apply_retention", stdout=out)
    assert "DROPPED" in out.getvalue()
    assert not _exists(_name("interaction_logs", 5))


def test_the_report_an_organization_sees_counts_others_without_naming_them(org_a, org_b):
    _two_organizations(org_a, org_b)
    plan = retention.plan_retention()
    rows = retention.retention_report(organization_id=org_a.pk, plan=plan)
    interaction_rows = [r for r in rows if r.table == "interaction_logs"]
    # The droppable months first, then the oldest one kept: month 6, kept by B alone.
    kept = [r for r in interaction_rows if not r.droppable]
    assert len(kept) == 1 and kept[0].month == _month(6)
    assert kept[0].kept_by_you_until is None and kept[0].kept_by_others == 1
    own = retention.retention_report(organization_id=org_b.pk, plan=plan)
    kept_b = next(r for r in own if r.table == "interaction_logs" and not r.droppable)
    assert kept_b.kept_by_you_until == retention.add_months(_month(6), 7) and kept_b.kept_by_others == 0
