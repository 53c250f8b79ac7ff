"""The stored duplicate pairs: refreshing an organization's pairs set-based, asking for a refresh, and when
they were last computed.

The rules (customers.duplicates.finding) compare every pair of an organization's customers through hash
joins: 2.2 s at 10,000 customers, too slow for every page load. So a refresh computes them into
`customer_duplicate_pairs` (hourly by beat, and on demand from the page's "Refresh now"), and the page reads
that table (customers.duplicates.pages). `customer_duplicate_runs` holds, per organization, when the pairs
were last computed and when someone last asked for a refresh: the page shows "as of" the one, and
"refreshing…" while the other is newer.

Between refreshes the table stays right enough: deleting a customer (a merge deletes its source) deletes
its pairs through the foreign keys, and the page leaves out "not a duplicate" pairs and erased or anonymized
customers as it reads. New customers and edits show at the next refresh.
"""

from __future__ import annotations

import datetime
import time
import uuid
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction

from crm.models import User
from crm.permissions import Capability, has_capability
from customers.duplicates.finding import CONFIDENCE_SQL, RULE_PARAMS, SIGNALS_SQL, hash_joins_only

# A refresh asked for this long ago that has still not run is shown as stuck (is a worker running?), and
# "Refresh now" may enqueue another task. Below it, asking again adds no task: one is already queued.
REFRESH_STALE_AFTER = datetime.timedelta(minutes=10)

# One statement: the rules' pairs (every one, "not a duplicate" ones too, see the migration), then the
# changes against what is stored: new pairs inserted, changed ones updated, vanished ones deleted, unchanged
# ones not touched (no write, no lock, no dead row). The data-modifying CTEs all see the same snapshot and
# touch disjoint rows; the aggregate in `found` consumes every signal before the first write, so row locks
# are only held for the writing and the commit.
REFRESH_SQL = f"""{SIGNALS_SQL},
grouped AS (
    SELECT a_id, b_id, bool_or(email) AS email, bool_or(phone) AS phone,
           max(name_sim) AS name_sim, max(company_sim) AS company_sim
    FROM signals
    GROUP BY a_id, b_id
),
found AS MATERIALIZED (
    SELECT a_id, b_id, email, phone, name_sim, company_sim, {CONFIDENCE_SQL} AS confidence
    FROM grouped
),
inserted AS (
    INSERT INTO customer_duplicate_pairs (organization_id, customer_a_id, customer_b_id, same_email,
        same_phone, name_similarity, company_similarity, confidence, computed_at)
    SELECT %(org)s, f.a_id, f.b_id, f.email, f.phone, f.name_sim, f.company_sim, f.confidence, %(at)s
    FROM found f
    WHERE NOT EXISTS (
        SELECT 1 FROM customer_duplicate_pairs p
        WHERE p.organization_id = %(org)s AND p.customer_a_id = f.a_id AND p.customer_b_id = f.b_id
    )
    RETURNING 1
),
updated AS (
    UPDATE customer_duplicate_pairs p
    SET same_email = f.email, same_phone = f.phone, name_similarity = f.name_sim,
        company_similarity = f.company_sim, confidence = f.confidence, computed_at = %(at)s
    FROM found f
    WHERE p.organization_id = %(org)s AND p.customer_a_id = f.a_id AND p.customer_b_id = f.b_id
      AND (p.same_email, p.same_phone, p.name_similarity, p.company_similarity, p.confidence)
          IS DISTINCT FROM (f.email, f.phone, f.name_sim, f.company_sim, f.confidence)
    RETURNING 1
),
removed AS (
    DELETE FROM customer_duplicate_pairs p
    WHERE p.organization_id = %(org)s
      AND NOT EXISTS (SELECT 1 FROM found f WHERE f.a_id = p.customer_a_id AND f.b_id = p.customer_b_id)
    RETURNING 1
)
SELECT (SELECT count(*) FROM found), (SELECT count(*) FROM inserted), (SELECT count(*) FROM updated),
       (SELECT count(*) FROM removed)
"""

_FOREIGN_KEYS = (
    "customer_duplicate_pairs_customer_a_id_tenant_fk, customer_duplicate_pairs_customer_b_id_tenant_fk"
)

_RECORD_RUN_SQL = """
INSERT INTO customer_duplicate_runs (organization_id, computed_at, pair_count, duration_ms)
VALUES (%(org)s, %(at)s, %(pairs)s, %(ms)s)
ON CONFLICT (organization_id) DO UPDATE
SET computed_at = EXCLUDED.computed_at, pair_count = EXCLUDED.pair_count, duration_ms = EXCLUDED.duration_ms
"""

# Ask for a refresh unless one is already waiting (asked after the last computation, and not stale). The
# row lock of the upsert makes two clicks at once enqueue one task: the second sees the first's request.
# Times are clock_timestamp(), like the refresh's computed_at, not now() (when the request's transaction
# began): a refresh that started after that but before this row was written must not pass for this one.
_REQUEST_SQL = """
INSERT INTO customer_duplicate_runs AS r (organization_id, requested_at) VALUES (%(org)s, clock_timestamp())
ON CONFLICT (organization_id) DO UPDATE SET requested_at = clock_timestamp()
WHERE r.requested_at IS NULL
   OR r.requested_at <= coalesce(r.computed_at, '-infinity')
   OR r.requested_at < clock_timestamp() - %(stale)s
RETURNING requested_at
"""

_STATUS_SQL = """
SELECT r.computed_at, r.requested_at, coalesce(r.pair_count, 0), coalesce(r.duration_ms, 0), clock_timestamp()
FROM (SELECT 1) one LEFT JOIN customer_duplicate_runs r ON r.organization_id = %s
"""


@dataclass(frozen=True)
class RefreshResult:
    computed_at: datetime.datetime
    pairs: int  # every pair the rules found, "not a duplicate" ones included
    inserted: int
    updated: int
    deleted: int
    seconds: float


@dataclass(frozen=True)
class DuplicatesStatus:
    """When the organization's pairs were last computed and last asked for, as the page shows it."""

    computed_at: datetime.datetime | None
    requested_at: datetime.datetime | None
    pair_count: int
    duration_ms: int
    now: datetime.datetime

    @property
    def pending(self) -> bool:
        """A refresh was asked for after the last computation: it is queued or running."""
        return self.requested_at is not None and (
            self.computed_at is None or self.requested_at > self.computed_at
        )

    @property
    def stale(self) -> bool:
        """The refresh asked for has not run for REFRESH_STALE_AFTER: no worker took it (yet)."""
        return self.pending and self.now - self.requested_at > REFRESH_STALE_AFTER

    @property
    def waiting(self) -> bool:
        """Pending and not stale: the page polls until the new pairs are in."""
        return self.pending and not self.stale


@transaction.atomic
def duplicate_pairs_refresh(*, organization_id: uuid.UUID) -> RefreshResult:
    """Recompute the organization's likely duplicate pairs into `customer_duplicate_pairs` in one
    statement and one transaction (pairs found since are inserted, changed ones updated, vanished ones
    deleted), and record when: the time the computation started, after the lock, so every change committed
    before it is in. Idempotent: a second run with nothing changed writes no pair.

    Refreshes of one organization take turns (a transaction-scoped advisory lock): the beat's and a "Refresh
    now" that overlap both compute, one after the other, and the later one's time is the page's "as of".
    """
    started = time.perf_counter()
    with connection.cursor() as db:
        db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"customers.duplicates:{organization_id}"],
        )
        db.execute("SELECT clock_timestamp()")
        (computed_at,) = db.fetchone()
        params = {**RULE_PARAMS, "org": organization_id, "at": computed_at}
        with hash_joins_only(db):
            db.execute(REFRESH_SQL, params)
            pairs, inserted, updated, deleted = db.fetchone()
        # Check the new rows' foreign keys now rather than at the (outer) commit: a customer deleted since
        # the statement's snapshot fails here, inside the task, which retries; once checked, the customers
        # are key-share locked until the commit, so a delete waits and then cascades to the new rows.
        db.execute(f"SET CONSTRAINTS {_FOREIGN_KEYS} IMMEDIATE")
        db.execute(f"SET CONSTRAINTS {_FOREIGN_KEYS} DEFERRED")
        seconds = time.perf_counter() - started
        db.execute(
            _RECORD_RUN_SQL,
            {"org": organization_id, "at": computed_at, "pairs": pairs, "ms": round(seconds * 1000)},
        )
    return RefreshResult(
        computed_at=computed_at,
        pairs=pairs,
        inserted=inserted,
        updated=updated,
        deleted=deleted,
        seconds=seconds,
    )


@transaction.atomic
def duplicate_pairs_refresh_request(*, actor: User) -> bool:
    """Ask for a refresh of the actor's organization's pairs ("Refresh now"): record the time and enqueue
    the task once the transaction commits. Returns whether a task was enqueued: not when one asked for
    earlier is still waiting (clicking again adds nothing), unless that one is stale."""
    if (
        actor is None
        or actor.organization_id is None
        or not has_capability(actor, Capability.MERGE_CUSTOMERS)
    ):
        raise PermissionDenied
    with connection.cursor() as db:
        db.execute(_REQUEST_SQL, {"org": actor.organization_id, "stale": REFRESH_STALE_AFTER})
        requested = db.fetchone() is not None
    if requested:
        from customers.tasks import refresh_duplicate_pairs

        refresh_duplicate_pairs.delay_on_commit(organization_id=str(actor.organization_id))
    return requested


def duplicates_status(*, organization_id: uuid.UUID) -> DuplicatesStatus:
    """When the organization's pairs were last computed and asked for (never: both None)."""
    with connection.cursor() as db:
        db.execute(_STATUS_SQL, [organization_id])
        return DuplicatesStatus(*db.fetchone())


def organizations_to_refresh() -> list[uuid.UUID]:
    """Every trial or active organization (for the hourly beat task; run as the platform)."""
    from crm.models import Organization

    return list(
        Organization.objects.filter(status__in=[Organization.Status.TRIAL, Organization.Status.ACTIVE])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
