"""Retention: old monthly partitions of the append-only logs are dropped, never rows deleted one by one.

Each organization says how long it keeps interaction logs (`interaction_retention_months`) and audit rows
(`audit_retention_months`, which also covers the data access log). The partitions are by time and shared by
every organization, so a month's partition can go only when EVERY organization with rows in it is past its
retention for that month; an organization without rows there does not hold it back. The consequence, by
design: an organization with a shorter retention waits for the longest one among the organizations that
have rows in the same month. Deleting its rows instead would mean row-by-row DELETEs in tables the app role
may never delete from (the audit trail is append-only) and the bloat partitioning exists to avoid.

A month M kept for N months may go once M has ended and N more months have passed: on the first day of
month M + N + 1. Rows without an organization (platform changes in the audit log) follow the default
retention. An empty partition is kept until it is past the longest retention of any organization, so a
back-dated write (an interaction logged for last year) still finds its month.

The drop itself is `crm_drop_month_partition(parent, month)` (compliance/db.py), a SECURITY DEFINER
function that refuses any other table and any month that is not over; the app role owns no table.
`crm_ensure_month_partitions` (the partition beat) only creates months from last month onwards (its
`months_back` is 1), so a dropped month is never re-created by it; an import of older interactions may
create one again, for its rows, which the next retention run treats like any other.
"""

from __future__ import annotations

import datetime
import logging
import re
from dataclasses import dataclass, field

from django.db import OperationalError, connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from compliance.models import PrivacySettings
from crm.models import Organization
from crm.tenancy import system_context

logger = logging.getLogger(__name__)

# parent table -> (its partition key, the PrivacySettings field that says how long its rows are kept)
RETAINED_TABLES: dict[str, tuple[str, str]] = {
    "interaction_logs": ("interaction_date", "interaction_retention_months"),
    "crm_audit_log": ("occurred_at", "audit_retention_months"),
    "data_access_log": ("occurred_at", "audit_retention_months"),
}
_SETTINGS = sorted({setting for _key, setting in RETAINED_TABLES.values()})
_PARTITION_NAME = re.compile(r"_y(\d{4})m(\d{2})$")
# A drop takes an ACCESS EXCLUSIVE lock on the parent: never queue behind a long query (and make every
# reader queue behind us); give up and try again on the next run instead.
DROP_LOCK_TIMEOUT = "3s"


def add_months(month: datetime.date, months: int) -> datetime.date:
    index = month.year * 12 + month.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, 1)


def kept_until(month: datetime.date, retention_months: int) -> datetime.date:
    """The first day a month's rows may be dropped: the month's end plus the retention period."""
    return add_months(month, retention_months + 1)


@dataclass(frozen=True)
class Blocker:
    """An organization (None: rows without one) whose retention still keeps a partition."""

    organization_id: object
    name: str
    kept_until: datetime.date


@dataclass(frozen=True)
class PartitionPlan:
    table: str
    month: datetime.date
    partition: str
    rows_estimate: int | None  # pg_class.reltuples: None until the partition was first analyzed
    # The organizations with rows in it; None when not inspected (the month is within every retention).
    organization_ids: tuple | None
    blocking: tuple[Blocker, ...] = field(default=())
    droppable: bool = False
    # Kept until at least this day: the longest retention among those that keep it (None: droppable).
    kept_until: datetime.date | None = None

    @property
    def organizations_with_rows(self) -> int | None:
        return None if self.organization_ids is None else len(self.organization_ids)


@dataclass
class _Retention:
    """Every organization's retention for one setting, with the defaults for those that never saved any."""

    months: dict
    names: dict
    default: int

    def of(self, organization_id) -> int:
        return self.months.get(organization_id, self.default)

    @property
    def shortest(self) -> int:
        """The shortest retention of any organization, or of rows without one (the default)."""
        return min([*(self.of(org) for org in self.names), self.default])

    @property
    def longest(self) -> int:
        """The longest retention of any organization (the default for those that never saved settings)."""
        return max((self.of(org) for org in self.names), default=self.default)


def _retentions() -> dict[str, _Retention]:
    """{setting: every organization's retention for it}: two queries, whatever the number of partitions."""
    settings = list(PrivacySettings.objects.values("organization_id", *_SETTINGS))
    names = dict(Organization.objects.values_list("pk", "name"))
    return {
        setting: _Retention(
            months={row["organization_id"]: row[setting] for row in settings},
            names=names,
            default=PrivacySettings._meta.get_field(setting).default,
        )
        for setting in _SETTINGS
    }


def _partitions(today: datetime.date) -> list[tuple[str, str, datetime.date, int | None]]:
    """(parent, partition, month, rows estimate) for every partition of the retained tables whose month is
    over long enough for crm_drop_month_partition (it ended at least a month ago), oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT parent.relname, child.relname, child.reltuples::bigint FROM pg_inherits i "
            "JOIN pg_class parent ON parent.oid = i.inhparent JOIN pg_class child ON child.oid = i.inhrelid "
            "JOIN pg_namespace n ON n.oid = child.relnamespace "
            "WHERE n.nspname = 'public' AND parent.relname = ANY(%s) ORDER BY child.relname",
            [list(RETAINED_TABLES)],
        )
        rows = cursor.fetchall()
    last_droppable = add_months(today.replace(day=1), -2)
    found = []
    for parent, partition, reltuples in rows:
        match = _PARTITION_NAME.search(partition)
        if not match or partition != f"{parent}{match.group(0)}":
            continue
        month = datetime.date(int(match.group(1)), int(match.group(2)), 1)
        if month <= last_droppable:
            found.append((parent, partition, month, reltuples if reltuples >= 0 else None))
    found.sort(key=lambda row: (row[0], row[2]))
    return found


def _month_bounds(month: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    start = datetime.datetime.combine(month, datetime.time(), tzinfo=datetime.UTC)
    end = datetime.datetime.combine(add_months(month, 1), datetime.time(), tzinfo=datetime.UTC)
    return start, end


def organizations_with_rows(table: str, month: datetime.date) -> tuple:
    """The distinct organization ids (None for rows without one) with rows in `table` in `month`.

    A loose index scan: one index probe per organization (the indexes lead with organization_id), instead
    of reading every row of the month. Through the parent with the month's range, so the partition's own
    privileges are not needed; in the system context, which sees every organization.
    """
    column = RETAINED_TABLES[table][0]
    start, end = _month_bounds(month)
    in_month = f"{column} >= %(start)s AND {column} < %(end)s"
    sql = f"""
        WITH RECURSIVE orgs(organization_id) AS (
            (SELECT organization_id FROM {table} WHERE {in_month} AND organization_id IS NOT NULL
             ORDER BY organization_id LIMIT 1)
            UNION ALL
            SELECT (SELECT t.organization_id FROM {table} t
                    WHERE t.{column} >= %(start)s AND t.{column} < %(end)s
                      AND t.organization_id > orgs.organization_id
                    ORDER BY t.organization_id LIMIT 1)
            FROM orgs WHERE orgs.organization_id IS NOT NULL
        )
        SELECT organization_id FROM orgs WHERE organization_id IS NOT NULL
        UNION ALL
        (SELECT NULL FROM {table} WHERE {in_month} AND organization_id IS NULL LIMIT 1)
    """  # table and column come from RETAINED_TABLES, never from input
    with connection.cursor() as cursor:
        cursor.execute(sql, {"start": start, "end": end})
        return tuple(row[0] for row in cursor.fetchall())


def _plan_one(
    parent: str, partition: str, month: datetime.date, estimate, retention: _Retention, today: datetime.date
) -> PartitionPlan:
    if today < kept_until(month, retention.shortest):
        # Within every organization's retention: nothing to inspect, whoever has rows there keeps it.
        return PartitionPlan(
            parent, month, partition, estimate, None, kept_until=kept_until(month, retention.shortest)
        )
    organization_ids = organizations_with_rows(parent, month)
    if organization_ids:
        keep = {org: kept_until(month, retention.of(org)) for org in organization_ids}
    else:
        keep = {"*": kept_until(month, retention.longest)}
    blocking = tuple(
        Blocker(org if org != "*" else None, _blocker_name(org, retention), until)
        for org, until in sorted(keep.items(), key=lambda item: (item[1], str(item[0])), reverse=True)
        if today < until
    )
    return PartitionPlan(
        parent,
        month,
        partition,
        estimate,
        organization_ids,
        blocking=blocking,
        droppable=not blocking,
        kept_until=blocking[0].kept_until if blocking else None,
    )


def _blocker_name(org, retention: _Retention) -> str:
    if org == "*":
        return "(empty partition: the longest retention of any organization)"
    if org is None:
        return "(rows without an organization: the default retention)"
    return retention.names.get(org, str(org))


def plan_retention(*, today: datetime.date | None = None) -> list[PartitionPlan]:
    """What retention would drop now and what keeps the rest (reads only; in the system context, which
    sees every organization's settings and rows: partitions are shared)."""
    today = today or timezone.now().astimezone(datetime.UTC).date()
    with system_context():
        by_setting = _retentions()
        return [
            _plan_one(parent, partition, month, estimate, by_setting[RETAINED_TABLES[parent][1]], today)
            for parent, partition, month, estimate in _partitions(today)
        ]


@dataclass
class RetentionResult:
    plan: list[PartitionPlan]
    dropped: list[PartitionPlan] = field(default_factory=list)
    skipped: list[tuple[PartitionPlan, str]] = field(default_factory=list)  # (plan, why)
    dry_run: bool = False


def apply_retention(*, dry_run: bool = False, today: datetime.date | None = None) -> RetentionResult:
    """Drop every droppable partition (each in its own transaction); with `dry_run`, only report.

    A platform job (beat, `manage.py apply_retention`): no actor, it acts for every organization at once.
    Idempotent: a dropped partition is gone from the next plan. Each drop re-checks, in its own transaction,
    that no other organization wrote rows into the month since the plan was made.
    """
    today = today or timezone.now().astimezone(datetime.UTC).date()
    plan = plan_retention(today=today)
    result = RetentionResult(plan=plan, dry_run=dry_run)
    if dry_run:
        return result
    for entry in plan:
        if not entry.droppable:
            continue
        try:
            with system_context():
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
                    # Checked again right before the drop, in its transaction: a row written into a month
                    # that ended two or more months ago since the plan (a back-dated interaction) keeps it.
                    retention = _retentions()[RETAINED_TABLES[entry.table][1]]
                    fresh = _plan_one(entry.table, entry.partition, entry.month, None, retention, today)
                    if not fresh.droppable:
                        result.skipped.append((entry, "rows of another organization arrived"))
                        continue
                    cursor.execute(
                        "SELECT crm_drop_month_partition(%s::regclass, %s)", [entry.table, entry.month]
                    )
                    (dropped,) = cursor.fetchone()
        except OperationalError as error:
            logger.warning("Retention could not drop %s now: %s", entry.partition, error)
            result.skipped.append(
                (entry, f"not now ({type(error.__cause__ or error).__name__}); the next run retries")
            )
            continue
        if dropped:
            logger.info("Retention dropped %s (%s rows estimated)", entry.partition, entry.rows_estimate)
            result.dropped.append(entry)
    return result


TABLE_LABELS = {
    "interaction_logs": _("Interaction logs"),
    "crm_audit_log": _("Audit trail"),
    "data_access_log": _("Data access log"),
}


@dataclass(frozen=True)
class ReportRow:
    """One line of the settings page's retention report, as one organization may see it: other
    organizations are counted, never named, and their retention periods are not shown."""

    table: str
    label: str
    month: datetime.date
    droppable: bool
    kept_by_you_until: datetime.date | None
    kept_by_others: int
    within_every_retention: bool


def retention_report(*, organization_id, plan: list[PartitionPlan]) -> list[ReportRow]:
    """Per table, the partitions the next run would drop and the oldest one it keeps (with what keeps it)."""
    rows: list[ReportRow] = []
    for table, label in TABLE_LABELS.items():
        entries = [entry for entry in plan if entry.table == table]
        shown = [entry for entry in entries if entry.droppable]
        kept = [entry for entry in entries if not entry.droppable]
        shown += kept[:1]
        for entry in shown:
            mine = next((b for b in entry.blocking if b.organization_id == organization_id), None)
            rows.append(
                ReportRow(
                    table=table,
                    label=str(label),
                    month=entry.month,
                    droppable=entry.droppable,
                    kept_by_you_until=mine.kept_until if mine else None,
                    kept_by_others=len(entry.blocking) - (1 if mine else 0),
                    within_every_retention=entry.organization_ids is None,
                )
            )
    return rows
