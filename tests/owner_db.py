"""The test database as the owner role, for what the app role may not do (ANALYZE, ALTER TABLE, TRUNCATE)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import connection


@contextmanager
def owner_connection() -> Iterator[psycopg.Connection]:
    """A separate connection to the test database as the owner role, in autocommit (what it changes is
    committed and seen at once by the app role's connection)."""
    owner = settings.DATABASE_OWNER
    with psycopg.connect(
        dbname=connection.settings_dict["NAME"],
        user=owner["USER"],
        password=owner.get("PASSWORD") or None,
        host=owner.get("HOST") or None,
        port=owner.get("PORT") or None,
        autocommit=True,
    ) as conn:
        # Never wait on a lock held by the test's own transaction: fail instead of hanging.
        conn.execute("SET lock_timeout = '5s'")
        yield conn


def analyze_as_owner(*tables: str) -> None:
    """Planner statistics, as autovacuum would gather them (only the owner may ANALYZE)."""
    with owner_connection() as conn:
        for table in tables:
            conn.execute(f'ANALYZE "{table}"')
