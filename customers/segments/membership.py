"""Segment membership, set-based: a refresh or a manual change is one SQL statement, whatever its size.

A dynamic refresh takes the compiled query of the segment's rules (`matching_customers`) and, in one
statement of data-modifying CTEs, computes the difference with the current members (a FULL JOIN),
inserts the customers who newly match (with the rules they satisfy), deletes the members who no longer
match, brings the "why" of staying members up to date, and writes one `customer_segment_events` row per
arrival and departure. A second run over unchanged data changes nothing and writes no events. Callers
hold the segment's row lock (see services.segments), so two refreshes of one segment never interleave.
"""

from __future__ import annotations

import datetime
import uuid

from django.db import connection
from django.db.models import QuerySet

from compliance.selectors.consent import eligible_sql

# A time-ordered UUIDv7 in plain SQL (PostgreSQL 15 has no uuidv7()): the 48-bit Unix time in
# milliseconds over the first six bytes of a random UUID, with the version nibble set to 7.
UUID7_SQL = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
    "substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3) "
    "from 1 for 6), 52, 1), 53, 1), 'hex')::uuid"
)

REFRESH_WORK_MEM = "64MB"

_REFRESH_SQL = f"""
WITH matching (customer_id, why) AS MATERIALIZED ({{matching}}),
current_members AS MATERIALIZED (
    SELECT ctid AS row_id, customer_id, matched_rule FROM customer_segment_members
    WHERE organization_id = %s AND segment_id = %s
),
-- Only what changes: newcomers, leavers, and staying members whose reason changed. A FULL JOIN is
-- always a hash or merge join (never a nested loop), so the cost stays linear whatever the estimates.
diff AS MATERIALIZED (
    SELECT coalesce(m.customer_id, c.customer_id) AS customer_id, coalesce(m.why, '') AS why,
           m.customer_id IS NOT NULL AS matches, c.row_id
    FROM matching m FULL JOIN current_members c ON c.customer_id = m.customer_id
    WHERE m.customer_id IS NULL OR c.customer_id IS NULL OR c.matched_rule IS DISTINCT FROM coalesce(m.why, '')
),
-- Newcomers are inserted; staying members get their new reason (one probe of the unique key each).
-- A newcomer's added_at is this refresh's time; a staying member keeps its own, which tells them apart.
upserted AS (
    INSERT INTO customer_segment_members AS s
        (id, organization_id, segment_id, customer_id, added_at, matched_rule, added_by_id)
    SELECT {UUID7_SQL}, %s, %s, d.customer_id, %s, d.why, NULL FROM diff d WHERE d.matches
    ON CONFLICT (organization_id, segment_id, customer_id) DO UPDATE SET matched_rule = EXCLUDED.matched_rule
    RETURNING s.customer_id, s.matched_rule, s.added_at = %s AS joined
),
-- Leavers are deleted by the row addresses read above, in this statement's snapshot, from this segment's
-- rows only: a TID scan, one heap fetch each, whatever the table statistics say (a filter on the
-- organization would tempt the planner into scanning its whole index instead). Under the segment's row
-- lock nothing else moves these rows; one that moved anyway is skipped and goes at the next refresh.
removed AS (
    DELETE FROM customer_segment_members
    WHERE ctid = ANY (ARRAY(SELECT row_id FROM diff WHERE NOT matches))
    RETURNING customer_id, matched_rule
),
events AS (
    INSERT INTO customer_segment_events (organization_id, segment_id, customer_id, kind, at, rule)
    SELECT %s, %s, customer_id, 'added', %s, matched_rule FROM upserted WHERE joined
    UNION ALL
    SELECT %s, %s, customer_id, 'removed', %s, matched_rule FROM removed
    RETURNING kind
)
SELECT count(*) FILTER (WHERE kind = 'added'), count(*) FILTER (WHERE kind = 'removed') FROM events
"""

_ADD_SQL = f"""
WITH added AS (
    INSERT INTO customer_segment_members
        (id, organization_id, segment_id, customer_id, added_at, matched_rule, added_by_id)
    SELECT {UUID7_SQL}, c.organization_id, %s, c.id, %s, %s, %s
    FROM customers c
    WHERE c.organization_id = %s AND c.id = ANY(%s::uuid[])
      AND {eligible_sql("c")}
    ON CONFLICT (organization_id, segment_id, customer_id) DO NOTHING
    RETURNING customer_id, matched_rule
),
events AS (
    INSERT INTO customer_segment_events (organization_id, segment_id, customer_id, kind, at, rule)
    SELECT %s, %s, customer_id, 'added', %s, matched_rule FROM added
    RETURNING 1
)
SELECT count(*) FROM events
"""

_REMOVE_SQL = """
WITH removed AS (
    DELETE FROM customer_segment_members
    WHERE organization_id = %s AND segment_id = %s AND customer_id = ANY(%s::uuid[])
    RETURNING customer_id
),
events AS (
    INSERT INTO customer_segment_events (organization_id, segment_id, customer_id, kind, at, rule)
    SELECT %s, %s, customer_id, 'removed', %s, %s FROM removed
    RETURNING 1
)
SELECT count(*) FROM events
"""

_COUNT_SQL = """
UPDATE customer_segments SET member_count = (
    SELECT count(*) FROM customer_segment_members WHERE organization_id = %s AND segment_id = %s
){refreshed}
WHERE organization_id = %s AND id = %s
RETURNING member_count
"""


def refresh_members(
    *, organization_id: uuid.UUID, segment_id: uuid.UUID, matching: QuerySet, now: datetime.datetime
) -> tuple[int, int]:
    """Make the members of a dynamic segment exactly `matching` (a Customer queryset annotated with
    `why`); returns (added, removed)."""
    matching_sql, matching_params = matching.values_list("id", "why").query.sql_with_params()
    org, seg = organization_id, segment_id
    params = [
        *matching_params,
        *(org, seg),  # current_members
        *(org, seg, now, now),  # upserted
        *(org, seg, now, org, seg, now),  # events
    ]
    with connection.cursor() as cursor:
        # Behaviour rules inside OR groups stay subplans; enough memory keeps them hashed (computed once)
        # for large organizations. Transaction-local, and put back right after.
        cursor.execute(
            "SELECT current_setting('work_mem'), set_config('work_mem', %s, true)", [REFRESH_WORK_MEM]
        )
        previous_work_mem = cursor.fetchone()[0]
        cursor.execute(_REFRESH_SQL.format(matching=matching_sql), params)
        added, removed = cursor.fetchone()
        cursor.execute("SELECT set_config('work_mem', %s, true)", [previous_work_mem])
    return added, removed


def add_members(
    *,
    organization_id: uuid.UUID,
    segment_id: uuid.UUID,
    customer_ids: list[uuid.UUID],
    actor_id: uuid.UUID | None,
    rule: str,
    now: datetime.datetime,
) -> int:
    """Add the organization's customers among `customer_ids` (others, and restricted, erased or anonymized
    ones, are ignored: a hand-picked list is not profiling, so an objection to profiling does not keep a
    customer off it; each use of the list checks its own purpose);
    returns how many joined."""
    params = [
        segment_id,
        now,
        rule,
        actor_id,
        organization_id,
        customer_ids,
        organization_id,
        segment_id,
        now,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_ADD_SQL, params)
        return cursor.fetchone()[0]


def remove_members(
    *,
    organization_id: uuid.UUID,
    segment_id: uuid.UUID,
    customer_ids: list[uuid.UUID],
    rule: str,
    now: datetime.datetime,
) -> int:
    """Remove `customer_ids` from the segment; returns how many left."""
    params = [organization_id, segment_id, customer_ids, organization_id, segment_id, now, rule]
    with connection.cursor() as cursor:
        cursor.execute(_REMOVE_SQL, params)
        return cursor.fetchone()[0]


def recount(*, organization_id: uuid.UUID, segment_id: uuid.UUID, refreshed_at=None) -> int:
    """Store the segment's member count (and the refresh time, for a refresh); returns the count."""
    refreshed = ", refreshed_at = %s" if refreshed_at else ""
    params = [
        organization_id,
        segment_id,
        *([refreshed_at] if refreshed_at else []),
        organization_id,
        segment_id,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SQL.format(refreshed=refreshed), params)
        return cursor.fetchone()[0]
