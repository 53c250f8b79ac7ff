"""The audit trail: `crm_audit_log`, its trigger function, and the helper that attaches it to a table.

PostgreSQL writes the audit rows, so no code path (ORM, raw SQL, bulk update, the shell) can skip them.
Who acted is read from the transaction-local settings the middleware and `tenant_context()` set.
"""

from django.db import migrations

from crm.db.rls import tenant_predicate

CREATE_TABLE_SQL = f"""
CREATE TABLE crm_audit_log (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    organization_id uuid NULL,
    table_name varchar(63) NOT NULL,
    record_id varchar(64) NOT NULL,
    operation varchar(6) NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    old_values jsonb NULL,
    new_values jsonb NULL,
    changed_fields jsonb NULL,
    user_id uuid NULL,
    request_id varchar(64) NOT NULL DEFAULT '',
    ip_address inet NULL,
    user_agent text NOT NULL DEFAULT '',
    sensitivity varchar(16) NOT NULL DEFAULT 'normal',
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX crm_audit_log_org_time_idx ON crm_audit_log (organization_id, occurred_at DESC, id DESC);
CREATE INDEX crm_audit_log_org_record_idx ON crm_audit_log (organization_id, table_name, record_id, occurred_at DESC);
CREATE INDEX crm_audit_log_org_user_idx ON crm_audit_log (organization_id, user_id, occurred_at DESC);
ALTER TABLE crm_audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON crm_audit_log FOR SELECT USING ({tenant_predicate()});
CREATE POLICY tenant_append ON crm_audit_log FOR INSERT WITH CHECK ({tenant_predicate()});
"""

# TG_ARGV: [0] sensitivity, [1] the column that holds the organization id, [2] comma-separated columns kept
# out of the trail (hashes, noise such as last_login). An UPDATE that changes only such columns leaves no row.
TRIGGER_FUNCTION_SQL = r"""
CREATE OR REPLACE FUNCTION crm_audit_trigger() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    sensitivity text := coalesce(TG_ARGV[0], 'normal');
    org_column text := coalesce(TG_ARGV[1], 'organization_id');
    excluded text[] := CASE WHEN coalesce(TG_ARGV[2], '') = '' THEN ARRAY[]::text[]
                            ELSE string_to_array(TG_ARGV[2], ',') END;
    old_row jsonb;
    new_row jsonb;
    changed text[];
    row_data jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD) - excluded; END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW) - excluded; END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT coalesce(array_agg(n.key ORDER BY n.key), ARRAY[]::text[]) INTO changed
        FROM jsonb_each(new_row) n
        WHERE n.value IS DISTINCT FROM old_row -> n.key;
        IF cardinality(changed) = 0 THEN
            RETURN NULL;
        END IF;
        -- Keep only what changed: the trail says what moved from what to what.
        SELECT jsonb_object_agg(key, value) INTO old_row FROM jsonb_each(old_row) WHERE key = ANY (changed);
        SELECT jsonb_object_agg(key, value) INTO new_row FROM jsonb_each(new_row) WHERE key = ANY (changed);
    END IF;
    row_data := coalesce(to_jsonb(NEW), to_jsonb(OLD));
    INSERT INTO crm_audit_log (organization_id, table_name, record_id, operation, old_values, new_values,
                               changed_fields, user_id, request_id, ip_address, user_agent, sensitivity)
    VALUES (
        NULLIF(row_data ->> org_column, '')::uuid,
        TG_TABLE_NAME,
        row_data ->> 'id',
        TG_OP,
        old_row,
        new_row,
        to_jsonb(changed),
        NULLIF(current_setting('app.user_id', true), '')::uuid,
        coalesce(current_setting('app.request_id', true), ''),
        NULLIF(current_setting('app.ip_address', true), '')::inet,
        coalesce(current_setting('app.user_agent', true), ''),
        sensitivity
    );
    RETURN NULL;
END;
$$;
"""


def create_audit_log() -> migrations.RunSQL:
    return migrations.RunSQL(
        [CREATE_TABLE_SQL, TRIGGER_FUNCTION_SQL],
        reverse_sql=[
            "DROP FUNCTION IF EXISTS crm_audit_trigger() CASCADE",
            "DROP TABLE IF EXISTS crm_audit_log",
        ],
    )


def attach_audit(
    table: str,
    *,
    sensitivity: str = "normal",
    org_column: str = "organization_id",
    exclude: tuple[str, ...] = (),
    audited_columns_only: bool = False,
) -> migrations.RunSQL:
    """Audit every INSERT, UPDATE and DELETE on `table` (for the migration that creates the table).

    With `audited_columns_only`, the trigger is attached as `AFTER INSERT OR DELETE OR UPDATE OF <every
    column of the table but those in exclude>`, the columns read from the catalogue when the migration runs.
    An UPDATE whose SET list names only excluded columns (a scoring run: scores and scored_at) then does not
    fire it at all, instead of firing it for every row to compute two to_jsonb() and write nothing. Nothing
    else changes: an UPDATE that sets any audited column fires it, whatever path it comes from (the ORM's
    save() sets every column, a raw `UPDATE ... SET first_name = ...` sets that one), and the function
    still writes a row only when an audited value changed.

    A column added to the table later is not in the list: the migration that adds it must attach the trigger
    again (drop it, then this helper), or UPDATEs of that column alone would go unaudited.
    tests/crm/test_audit_columns.py fails for any audited table whose trigger misses one of its columns.
    """
    reverse_sql = f'DROP TRIGGER IF EXISTS crm_audit ON "{table}"'
    if not audited_columns_only:
        args = ", ".join(f"'{arg}'" for arg in (sensitivity, org_column, ",".join(exclude)))
        return migrations.RunSQL(
            f'CREATE TRIGGER crm_audit AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
            f"FOR EACH ROW EXECUTE FUNCTION crm_audit_trigger({args})",
            reverse_sql=reverse_sql,
        )
    excluded, excluded_csv = ", ".join(f"'{column}'" for column in exclude), ",".join(exclude)
    return migrations.RunSQL(
        [
            f"""
DO $attach$
DECLARE
    columns text;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO STRICT columns
    FROM pg_attribute
    WHERE attrelid = '"{table}"'::regclass AND attnum > 0 AND NOT attisdropped
      AND attname <> ALL (ARRAY[{excluded}]::text[]);
    EXECUTE format(
        'CREATE TRIGGER crm_audit AFTER INSERT OR DELETE OR UPDATE OF %s ON %I '
        'FOR EACH ROW EXECUTE FUNCTION crm_audit_trigger(%L, %L, %L)',
        columns, '{table}', '{sensitivity}', '{org_column}', '{excluded_csv}'
    );
END
$attach$
"""
        ],
        reverse_sql=[reverse_sql],
    )
