"""A second database connection, for what must be seen while the import transaction is still open."""

from __future__ import annotations

import uuid

from django.db import DEFAULT_DB_ALIAS, connections


class SideConnection:
    """A second database connection, as the same (app) role, for short transactions of their own.

    The import runs in one long transaction, so what it writes stays invisible until it commits. The
    progress bar must move meanwhile, so progress goes through this connection and is committed at once;
    monthly partitions are created here too, so their brief ACCESS EXCLUSIVE lock on `interaction_logs` is
    not held until the import commits. It is built by `connections.create_connection()` from the default
    alias's settings, so it reaches the same database (the test database under pytest) with the same
    options, without being registered as an alias that Django's request machinery would share. Each
    transaction sets the tenant transaction-locally, as `tenant_context()` does, so row-level security
    applies exactly as on the main connection.

    Never write here a row the main transaction has written or locked: this connection would wait for
    the main one, which waits for this one, and PostgreSQL cannot see that deadlock (it spans a client).
    """

    def __init__(self, organization_id: uuid.UUID) -> None:
        self.organization_id = str(organization_id)
        self._wrapper = None

    def __enter__(self) -> SideConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _raw(self):
        if self._wrapper is None:
            self._wrapper = connections.create_connection(DEFAULT_DB_ALIAS)
            self._wrapper.ensure_connection()
        return self._wrapper.connection

    def execute(self, sql: str, params=(), *, lock_timeout_ms: int | None = None) -> list[tuple]:
        raw = self._raw()
        with raw.transaction():
            raw.execute(
                "SELECT set_config('app.organization_id', %s, true), set_config('app.user_role', '', true)",
                [self.organization_id],
            )
            if lock_timeout_ms is not None:
                raw.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(lock_timeout_ms)}ms"])
            cursor = raw.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def close(self) -> None:
        if self._wrapper is not None:
            self._wrapper.close()
            self._wrapper = None
