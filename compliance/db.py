"""The compliance tables and functions PostgreSQL needs beyond what Django's models declare.

- `data_access_log`: partitioned by month, append-only for the app role (like `crm_audit_log`).
- `crm_audit_redact()`: the one way audit rows change. Erasure must take a subject's personal data out of the
  old/new values of the audit trail while keeping the rows (the trail of *what happened* stays). The app
  role has no UPDATE on `crm_audit_log`; this SECURITY DEFINER function, owned by the migration role, can
  only replace the values of named keys, only in rows of the caller's own organization (read from the same
  transaction-local setting RLS uses), and only for named records of a named table.
- `crm_drop_month_partition()`: retention drops whole monthly partitions of the three append-only logs,
  never rows; the app role owns no table, so it asks this function, which refuses any other table and any
  month that is not over.
"""

from crm.db.rls import tenant_predicate

CREATE_ACCESS_LOG = f"""
CREATE TABLE data_access_log (
    id uuid NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    organization_id uuid NOT NULL,
    user_id uuid NULL,
    action varchar(20) NOT NULL,
    customer_id uuid NULL,
    description varchar(500) NOT NULL DEFAULT '',
    row_count integer NULL CHECK (row_count >= 0),
    request_id varchar(64) NOT NULL DEFAULT '',
    ip_address inet NULL,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX data_access_log_org_time_idx ON data_access_log (organization_id, occurred_at DESC, id DESC);
CREATE INDEX data_access_log_org_customer_idx ON data_access_log (organization_id, customer_id, occurred_at DESC);
CREATE INDEX data_access_log_org_user_idx ON data_access_log (organization_id, user_id, occurred_at DESC);
ALTER TABLE data_access_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE data_access_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON data_access_log FOR SELECT USING ({tenant_predicate()});
CREATE POLICY tenant_append ON data_access_log FOR INSERT WITH CHECK ({tenant_predicate()});
"""
DROP_ACCESS_LOG = "DROP TABLE IF EXISTS data_access_log"

# The owner runs the function's UPDATE under FORCE RLS, so it needs a policy that lets it update rows of the
# caller's organization. The app role still cannot use it: it holds no UPDATE privilege on the table.
# Queries through the parent apply the parent's policies; existing partitions get it too for symmetry with
# crm_ensure_month_partitions, which copies the parent's policies to every new partition.
AUDIT_REDACT_POLICY = f"""
CREATE POLICY tenant_redact ON crm_audit_log FOR UPDATE
    USING ({tenant_predicate()}) WITH CHECK ({tenant_predicate()});
DO $policies$
DECLARE part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'crm_audit_log'::regclass LOOP
        EXECUTE format('CREATE POLICY tenant_redact ON %s FOR UPDATE USING (%s) WITH CHECK (%s)',
                       part, $p${tenant_predicate()}$p$, $p${tenant_predicate()}$p$);
    END LOOP;
END
$policies$;
"""
DROP_AUDIT_REDACT_POLICY = r"""
DO $policies$
DECLARE part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'crm_audit_log'::regclass LOOP
        EXECUTE format('DROP POLICY IF EXISTS tenant_redact ON %s', part);
    END LOOP;
END
$policies$;
DROP POLICY IF EXISTS tenant_redact ON crm_audit_log;
"""

AUDIT_REDACT_FUNCTION = r"""
CREATE FUNCTION crm_audit_redact(p_table text, p_record_ids text[], p_keys text[],
                                 p_replacement jsonb DEFAULT '"[erased]"'::jsonb)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    org uuid := NULLIF(current_setting('app.organization_id', true), '')::uuid;
    redacted integer;
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'crm_audit_redact needs an organization context';
    END IF;
    IF cardinality(p_keys) = 0 OR cardinality(p_record_ids) = 0 THEN
        RETURN 0;
    END IF;
    IF jsonb_typeof(p_replacement) NOT IN ('string', 'null') THEN
        RAISE EXCEPTION 'the replacement must be a JSON string or null';
    END IF;
    UPDATE crm_audit_log a SET
        old_values = (SELECT jsonb_object_agg(e.key, CASE WHEN e.key = ANY (p_keys) AND e.value <> 'null'::jsonb
                                                         THEN p_replacement ELSE e.value END)
                      FROM jsonb_each(a.old_values) e),
        new_values = (SELECT jsonb_object_agg(e.key, CASE WHEN e.key = ANY (p_keys) AND e.value <> 'null'::jsonb
                                                         THEN p_replacement ELSE e.value END)
                      FROM jsonb_each(a.new_values) e)
    WHERE a.organization_id = org
      AND a.table_name = p_table
      AND a.record_id = ANY (p_record_ids)
      AND (coalesce(a.old_values, '{}'::jsonb) ?| p_keys OR coalesce(a.new_values, '{}'::jsonb) ?| p_keys);
    GET DIAGNOSTICS redacted = ROW_COUNT;
    RETURN redacted;
END;
$$;
REVOKE ALL ON FUNCTION crm_audit_redact(text, text[], text[], jsonb) FROM PUBLIC;
"""
DROP_AUDIT_REDACT_FUNCTION = "DROP FUNCTION IF EXISTS crm_audit_redact(text, text[], text[], jsonb)"

# Only the append-only logs, only a month that ended before `keep_after` and at least a month ago.
DROP_PARTITION_FUNCTION = r"""
CREATE FUNCTION crm_drop_month_partition(parent regclass, month_start date)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    part_name text := format('%s_y%sm%s', parent::text, to_char(month_start, 'YYYY'), to_char(month_start, 'MM'));
BEGIN
    IF parent::text NOT IN ('interaction_logs', 'crm_audit_log', 'data_access_log') THEN
        RAISE EXCEPTION 'retention does not drop partitions of %', parent;
    END IF;
    IF month_start <> date_trunc('month', month_start)::date THEN
        RAISE EXCEPTION '% is not the first day of a month', month_start;
    END IF;
    IF month_start + interval '2 months' > (now() AT TIME ZONE 'UTC') THEN
        RAISE EXCEPTION 'the month of % is not over long enough to drop', month_start;
    END IF;
    IF to_regclass(part_name) IS NULL THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(part_name) AND inhparent = parent) THEN
        RAISE EXCEPTION '% is not a partition of %', part_name, parent;
    END IF;
    EXECUTE format('DROP TABLE %I', part_name);
    RETURN true;
END;
$$;
REVOKE ALL ON FUNCTION crm_drop_month_partition(regclass, date) FROM PUBLIC;
"""
DROP_DROP_PARTITION_FUNCTION = "DROP FUNCTION IF EXISTS crm_drop_month_partition(regclass, date)"
