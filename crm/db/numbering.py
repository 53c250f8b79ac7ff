"""Human-readable numbers per organization (C-000042, Q-00007, SO-000012, T-000042).

Every numbered table (`customers`, `quotes`, `orders`, `support_tickets`) has a `number` column unique per
organization. A transaction-scoped advisory lock per (table, organization) serializes the allocation, so two
writers at once never take the same number; it is held only until the allocating transaction commits.
"""

from __future__ import annotations

import uuid

from django.db import connection
from psycopg import sql


def allocate_numbers(table: str, organization_id: uuid.UUID, count: int = 1) -> int:
    """Reserve `count` consecutive numbers of `table` for an organization; returns the first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{table}.number:{organization_id}"]
        )
        cursor.execute(
            sql.SQL("SELECT COALESCE(MAX(number), 0) + 1 FROM {} WHERE organization_id = %s").format(
                sql.Identifier(table)
            ),
            [organization_id],
        )
        return cursor.fetchone()[0]
