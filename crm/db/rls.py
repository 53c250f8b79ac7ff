"""Row-level security for tenant tables: one helper, used by the migration that creates each table.

The policy fails closed: with no `app.organization_id` set, `NULLIF(...)::uuid` is NULL, the comparison is
NULL, and no row is visible or writable. `FORCE` makes the policy apply to the table owner as well.

The settings are read in scalar sub-selects, which PostgreSQL evaluates once per statement (an InitPlan)
rather than once per row: a bare `current_setting()` is a stable function call on every row a query scans
or writes. Same meaning (the context is transaction-local and cannot change during a statement); a bulk
INSERT ... SELECT of a million rows spent about 1 µs a row on it (docs/benchmarks.md).
"""

from django.db import migrations, models

TENANT_PREDICATE = (
    "{column} = (SELECT NULLIF(current_setting('app.organization_id', true), '')::uuid)"
    " OR (SELECT current_setting('app.user_role', true)) = 'system_admin'"
)
POLICY_NAME = "tenant_isolation"


def tenant_predicate(column: str = "organization_id", extra: str = "") -> str:
    predicate = TENANT_PREDICATE.format(column=column)
    return f"{predicate} OR {extra}" if extra else predicate


def enable_rls(table: str, *, column: str = "organization_id", extra: str = "") -> migrations.RunSQL:
    """Enable and force RLS on `table` with the tenant policy (reversible).

    `column` names the tenant column (`id` for `organizations` itself); `extra` adds one more visibility
    rule, e.g. that a user may see their own row before the organization is known.
    """
    predicate = tenant_predicate(column, extra)
    return migrations.RunSQL(
        sql=[
            f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
            f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
            f'CREATE POLICY {POLICY_NAME} ON "{table}" USING ({predicate}) WITH CHECK ({predicate})',
        ],
        reverse_sql=[
            f'DROP POLICY IF EXISTS {POLICY_NAME} ON "{table}"',
            f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY',
            f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY',
        ],
    )


def add_tenant_foreign_key(
    table: str, column: str, target: str, *, on_delete: str = "NO ACTION"
) -> migrations.RunSQL:
    """Back the plain foreign key `table.column -> target.id` with `(organization_id, column) REFERENCES
    target (organization_id, id)`, so a row can never point at another organization's row.

    The target needs a unique constraint on (organization_id, id). Deferred like Django's own foreign keys,
    so Python-side cascades inside one transaction still work. MATCH SIMPLE: a NULL column is not checked.
    """
    name = f"{table}_{column}_tenant_fk"[:63]
    return migrations.RunSQL(
        sql=(
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" FOREIGN KEY (organization_id, "{column}") '
            f'REFERENCES "{target}" (organization_id, id) ON DELETE {on_delete} DEFERRABLE INITIALLY DEFERRED'
        ),
        reverse_sql=f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS "{name}"',
    )


def org_id_key(table: str) -> models.UniqueConstraint:
    """The model constraint (organization_id, id): the target of composite tenant foreign keys."""
    return models.UniqueConstraint(fields=["organization", "id"], name=f"{table}_org_id_key")
