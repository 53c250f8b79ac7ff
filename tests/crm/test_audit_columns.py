"""The audit trigger attached to the audited columns only (`attach_audit(..., audited_columns_only=True)`):
an UPDATE that sets only excluded columns (scoring) never fires it, every UPDATE that sets an audited
column still does, whatever path it comes from, and no audited column is ever left out of the list."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from crm.tenancy import tenant_context
from customers import scoring
from customers.models import Customer
from tests import factories
from tests.crm.conftest import audit_rows

# Every audit trigger, with the columns of its UPDATE OF list (empty: every UPDATE), the table's own columns
# and the columns the trigger keeps out of the trail (its third argument).
AUDIT_TRIGGERS_SQL = """
SELECT c.relname,
       ARRAY(SELECT a.attname::text FROM unnest(t.tgattr::int2[]) AS k(attnum)
             JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = k.attnum ORDER BY 1),
       ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = t.tgrelid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1),
       t.tgargs
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgname = 'crm_audit' AND NOT t.tgisinternal
ORDER BY 1
"""
SCORE_COLUMNS = {"lead_score", "engagement_score", "health_score", "scored_at", "updated_at"}


def _audit_triggers() -> dict[str, tuple[set[str], set[str], set[str]]]:
    with connection.cursor() as cursor:
        cursor.execute(AUDIT_TRIGGERS_SQL)
        rows = cursor.fetchall()
    triggers = {}
    for table, listed, columns, tgargs in rows:
        args = bytes(tgargs).decode().split("\x00")  # each argument ends with a NUL byte
        excluded = {name for name in (args[2] if len(args) > 2 else "").split(",") if name}
        triggers[table] = (set(listed), set(columns), excluded)
    return triggers


def test_every_audit_trigger_with_a_column_list_lists_every_audited_column(db):
    """A column added to an audited table after its trigger was attached with a column list would go
    unaudited when updated alone: the migration that adds it must attach the trigger again."""
    triggers = _audit_triggers()
    assert "customers" in triggers
    with_lists = {table: t for table, t in triggers.items() if t[0]}
    assert "customers" in with_lists  # customers 0007
    problems = [
        f"{table}: UPDATE OF misses {sorted(columns - excluded - listed)}, lists excluded {sorted(listed & excluded)}"
        for table, (listed, columns, excluded) in with_lists.items()
        if listed != columns - excluded
    ]
    assert not problems, "\n".join(problems)
    listed, _columns, excluded = triggers["customers"]
    assert excluded == SCORE_COLUMNS
    assert {"first_name", "email", "assigned_to_id", "tags", "erased_at"} <= listed


def test_a_raw_update_of_an_audited_column_is_still_audited(org_a, admin_a):
    customer = factories.customer(org_a, first_name="Ann", last_name="Lee")
    with tenant_context(org_a.pk, user=admin_a), connection.cursor() as cursor:
        cursor.execute("UPDATE customers SET first_name = 'Anne' WHERE id = %s", [customer.pk])
        # Scores and an audited column in one statement: the trigger fires, the trail has the audited change.
        cursor.execute(
            "UPDATE customers SET lead_score = 77, scored_at = now(), job_title = 'CTO' WHERE id = %s",
            [customer.pk],
        )
    rows = audit_rows(org_a, table_name="customers", record_id=str(customer.pk))
    updates = [row for row in rows if row.operation == "UPDATE"]
    assert [row.changed_fields for row in updates] == [["first_name"], ["job_title"]]
    assert updates[0].old_values == {"first_name": "Ann"} and updates[0].new_values == {"first_name": "Anne"}
    assert updates[0].user_id == admin_a.pk


def test_the_orms_save_sets_every_column_so_it_fires_and_writes_only_real_changes(org_a, admin_a):
    customer = factories.customer(org_a, first_name="Bo", company_name="Acme")
    before = len(audit_rows(org_a, table_name="customers", record_id=str(customer.pk)))
    with tenant_context(org_a.pk, user=admin_a):
        customer.lead_score = (
            55  # excluded only: the trigger fires (save() sets every column), writes nothing
        )
        customer.save()
        customer.company_name = "Acme Corp"
        customer.save()
    rows = audit_rows(org_a, table_name="customers", record_id=str(customer.pk))[before:]
    assert [(row.operation, row.changed_fields) for row in rows] == [("UPDATE", ["company_name"])]


def test_a_scoring_run_writes_scores_and_no_audit_row(org_a):
    customers = [factories.customer(org_a, job_title="Director of IT") for _ in range(3)]
    factories.interaction(customers[0])
    before = {c.pk: len(audit_rows(org_a, table_name="customers", record_id=str(c.pk))) for c in customers}
    with tenant_context(org_a.pk):
        assert scoring.score_organization(org_a.pk, now=timezone.now()) == 3
        scored = list(
            Customer.objects.filter(pk__in=[c.pk for c in customers]).values_list("scored_at", flat=True)
        )
    assert all(scored)
    after = {c.pk: len(audit_rows(org_a, table_name="customers", record_id=str(c.pk))) for c in customers}
    assert after == before
