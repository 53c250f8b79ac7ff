"""Monthly range partitions, created ahead of time.

`crm_ensure_month_partitions(parent, months_ahead, months_back)` is a SECURITY DEFINER function owned by
the migration (owner) role: the beat task, running as the unprivileged app role, calls it to create the
coming months' partitions without owning any table itself. Each new partition gets the parent's RLS
policies (so addressing a partition directly is as safe as going through the parent) and no grants (the
app role reaches the rows only through the parent).
"""

from django.db import connection, migrations

ENSURE_FUNCTION_SQL = r"""
CREATE OR REPLACE FUNCTION crm_ensure_month_partitions(parent regclass, months_ahead integer,
                                                       months_back integer DEFAULT 1)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    first_month date := (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => months_back))::date;
    month_start date;
    part_name text;
    pol record;
    created integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = parent) THEN
        RAISE EXCEPTION '% is not a partitioned table', parent;
    END IF;
    IF months_ahead < 0 OR months_ahead > 36 OR months_back < 0 OR months_back > 36 THEN
        RAISE EXCEPTION 'months out of range';
    END IF;
    FOR i IN 0 .. months_back + months_ahead LOOP
        month_start := first_month + make_interval(months => i);
        part_name := format('%s_y%sm%s', parent::text, to_char(month_start, 'YYYY'), to_char(month_start, 'MM'));
        CONTINUE WHEN to_regclass(part_name) IS NOT NULL;
        -- Bounds are UTC midnights, whatever the session's TimeZone.
        EXECUTE format('CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                       part_name, parent,
                       month_start::timestamp AT TIME ZONE 'UTC',
                       (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC');
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', part_name);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', part_name);
        FOR pol IN SELECT policyname, permissive, cmd, qual, with_check
                   FROM pg_policies WHERE schemaname = 'public' AND tablename = parent::text LOOP
            EXECUTE format('CREATE POLICY %I ON %I AS %s FOR %s%s%s',
                           pol.policyname, part_name, pol.permissive, pol.cmd,
                           CASE WHEN pol.qual IS NULL THEN '' ELSE format(' USING (%s)', pol.qual) END,
                           CASE WHEN pol.with_check IS NULL THEN ''
                                ELSE format(' WITH CHECK (%s)', pol.with_check) END);
        END LOOP;
        created := created + 1;
    END LOOP;
    RETURN created;
END;
$$;
REVOKE ALL ON FUNCTION crm_ensure_month_partitions(regclass, integer, integer) FROM PUBLIC;
"""


def create_partition_function() -> migrations.RunSQL:
    return migrations.RunSQL(
        ENSURE_FUNCTION_SQL,
        reverse_sql="DROP FUNCTION IF EXISTS crm_ensure_month_partitions(regclass, integer, integer)",
    )


def ensure_partitions_operation(table: str, months_ahead: int = 3, months_back: int = 1) -> migrations.RunSQL:
    """For the migration that creates a partitioned table: its first partitions."""
    return migrations.RunSQL(
        f"SELECT crm_ensure_month_partitions('{table}'::regclass, {int(months_ahead)}, {int(months_back)})",
        reverse_sql=migrations.RunSQL.noop,
    )


def ensure_month_partitions(table: str, *, months_ahead: int, months_back: int = 1) -> int:
    """Create any missing monthly partitions of `table` around now; returns how many were created."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT crm_ensure_month_partitions(%s::regclass, %s, %s)", [table, months_ahead, months_back]
        )
        return cursor.fetchone()[0]


def partitioned_tables() -> list[str]:
    """Every partitioned table in the public schema (from the catalog, so new ones are covered)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]
