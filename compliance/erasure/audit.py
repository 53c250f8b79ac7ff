"""Redaction of a subject's personal data in the audit trail, through `crm_audit_redact()` (compliance/db.py),
the one narrow SECURITY DEFINER function allowed to change audit rows: it replaces the values of named keys
in the old/new values of named records of one table, in the caller's organization only. The rows stay, so
the trail of what happened (who changed what, when) survives.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from compliance.registry import REDACTED

BATCH = 5000

# Values that hold nothing to redact: empty, null, or already redacted.
_NOTHING = ["null", '""', "[]", "{}", f'"{REDACTED}"']

_NEEDS_REDACTION = """
SELECT DISTINCT a.record_id FROM crm_audit_log a
WHERE a.organization_id = %(org)s AND a.table_name = %(table)s AND a.record_id = ANY(%(ids)s)
  AND EXISTS (
      SELECT 1 FROM jsonb_each(coalesce(a.old_values, '{}'::jsonb) || coalesce(a.new_values, '{}'::jsonb)) e
      WHERE e.key = ANY(%(keys)s) AND e.value::text <> ALL(%(nothing)s)
  )
"""

# Rows deleted before the erasure are no longer found through the registry, but their audit rows still name
# their customer: found by the customer_id key the trigger recorded.
_DELETED_ROWS = """
SELECT DISTINCT a.record_id FROM crm_audit_log a
WHERE a.organization_id = %(org)s AND a.table_name = %(table)s
  AND (a.old_values ->> %(key)s = ANY(%(customers)s) OR a.new_values ->> %(key)s = ANY(%(customers)s))
"""


def audited_tables() -> set[str]:
    """The tables that carry the audit trigger (read from the catalogue, once per erasure)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE t.tgname = 'crm_audit' AND NOT t.tgisinternal AND n.nspname = current_schema()"
        )
        return {name for (name,) in cursor.fetchall()}


def _batches(items: list, size: int = BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def records_of_deleted_rows(*, organization_id, table: str, key: str, customer_ids: list[str]) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            _DELETED_ROWS, {"org": organization_id, "table": table, "key": key, "customers": customer_ids}
        )
        return {record_id for (record_id,) in cursor.fetchall()}


def redact(*, organization_id, table: str, record_ids: Iterable[str], keys: list[str]) -> int:
    """Redact `keys` in the audit rows of `record_ids` of `table`; returns how many audit rows changed.
    Only records with a value left to redact are passed on, so a second erasure redacts nothing."""
    record_ids = sorted(set(record_ids))
    if not record_ids or not keys:
        return 0
    redacted = 0
    with connection.cursor() as cursor:
        for batch in _batches(record_ids):
            cursor.execute(
                _NEEDS_REDACTION,
                {"org": organization_id, "table": table, "ids": batch, "keys": keys, "nothing": _NOTHING},
            )
            pending = [record_id for (record_id,) in cursor.fetchall()]
            if not pending:
                continue
            cursor.execute(
                "SELECT crm_audit_redact(%s, %s::text[], %s::text[], to_jsonb(%s::text))",
                [table, pending, keys, REDACTED],
            )
            redacted += cursor.fetchone()[0]
    return redacted
