"""The sales dashboard: the design document's `sales_dashboard`, done right, as a materialized view.

- `sales_dashboard_mv` holds one row per (organization_id, kind, key, currency), every metric aggregated
  in its own branch straight from `opportunities` (no side-by-side joins of fact tables, so nothing is
  counted twice; the only join is to one `bounds` row per organization, which cannot multiply rows).
  Kinds: `stage` (open deals per stage), `month` (won and closed per close month, last 12 months), `won`
  (deals won in the last 12 months, per currency: average deal size), `cycle` (their average sales cycle
  in days), `forecast` (open deals per expected close month, this month and the next two, per currency:
  Σ amount × probability) and `refreshed` (one row per organization, so an organization without deals
  still has a "refreshed at"). Months are calendar months of the organization's time zone.
- The unique index (leading with organization_id) is what REFRESH ... CONCURRENTLY needs.
- Materialized views carry no row-level security: the app role gets no privilege on it (crm/db/grants.py
  revokes every materialized view after migrate) and reads `sales_dashboard`, a security_barrier view
  owned by the owner role that filters on the same setting as the tenant policy.
- `crm_refresh_sales_dashboard()` is SECURITY DEFINER (owned by the migration role, like
  crm_ensure_month_partitions): the app role may call it (beat, the command, the page's "Refresh"), not
  own or select the matview. It widens `app.user_role` to the platform only for its own duration (the
  owner is under FORCEd RLS too, so the aggregate must see every organization), skips when another refresh
  is running, and refreshes CONCURRENTLY (readers are never blocked) once the view has been populated.
"""

from django.db import migrations

from crm.db.rls import tenant_predicate

MATVIEW_SQL = """
CREATE MATERIALIZED VIEW sales_dashboard_mv AS
WITH bounds AS (
    SELECT o.id AS organization_id,
           o.time_zone,
           date_trunc('month', statement_timestamp() AT TIME ZONE o.time_zone)::date AS this_month
    FROM organizations o
),
periods AS (
    SELECT organization_id, time_zone, this_month,
           (this_month - interval '11 months')::date AS history_start,
           (this_month + interval '1 month')::date AS next_month,
           (this_month + interval '3 months')::date AS forecast_end
    FROM bounds
)
-- Open deals per stage (and currency): count, value, weighted value.
SELECT op.organization_id, 'stage'::text AS kind, op.stage_id::text AS key, op.currency::text AS currency,
       count(*) AS deals, 0::bigint AS won, sum(op.amount) AS amount,
       round(sum(op.amount * op.probability) / 100, 2) AS weighted, NULL::numeric AS value,
       statement_timestamp() AS refreshed_at
FROM opportunities op
WHERE op.status = 'open'
GROUP BY op.organization_id, op.stage_id, op.currency
UNION ALL
-- Closed deals per close month, last 12 months: won ÷ closed (won + lost).
SELECT op.organization_id, 'month', to_char(op.actual_close_date::timestamp, 'YYYY-MM'), '',
       count(*), count(*) FILTER (WHERE op.status = 'won'), NULL, NULL,
       round(100.0 * count(*) FILTER (WHERE op.status = 'won') / count(*), 1),
       statement_timestamp()
FROM opportunities op
JOIN periods p ON p.organization_id = op.organization_id
WHERE op.status IN ('won', 'lost')
  AND op.actual_close_date >= p.history_start AND op.actual_close_date < p.next_month
GROUP BY op.organization_id, to_char(op.actual_close_date::timestamp, 'YYYY-MM')
UNION ALL
-- Deals won in the last 12 months, per currency: average deal size.
SELECT op.organization_id, 'won', '', op.currency::text,
       count(*), count(*), sum(op.amount), NULL, round(avg(op.amount), 2),
       statement_timestamp()
FROM opportunities op
JOIN periods p ON p.organization_id = op.organization_id
WHERE op.status = 'won'
  AND op.actual_close_date >= p.history_start AND op.actual_close_date < p.next_month
GROUP BY op.organization_id, op.currency
UNION ALL
-- Their average sales cycle: close date minus the creation day, both in the organization's calendar.
SELECT op.organization_id, 'cycle', '', '',
       count(*), count(*), NULL, NULL,
       round(avg(op.actual_close_date - (op.created_at AT TIME ZONE p.time_zone)::date), 1),
       statement_timestamp()
FROM opportunities op
JOIN periods p ON p.organization_id = op.organization_id
WHERE op.status = 'won'
  AND op.actual_close_date >= p.history_start AND op.actual_close_date < p.next_month
GROUP BY op.organization_id
UNION ALL
-- Weighted forecast: open deals expected to close this month or in the next two, per currency.
SELECT op.organization_id, 'forecast', to_char(op.expected_close_date::timestamp, 'YYYY-MM'), op.currency::text,
       count(*), 0, sum(op.amount), round(sum(op.amount * op.probability) / 100, 2), NULL,
       statement_timestamp()
FROM opportunities op
JOIN periods p ON p.organization_id = op.organization_id
WHERE op.status = 'open'
  AND op.expected_close_date >= p.this_month AND op.expected_close_date < p.forecast_end
GROUP BY op.organization_id, to_char(op.expected_close_date::timestamp, 'YYYY-MM'), op.currency
UNION ALL
SELECT p.organization_id, 'refreshed', '', '', 0, 0, NULL, NULL, NULL, statement_timestamp()
FROM periods p
WITH NO DATA
"""

INDEX_SQL = (
    "CREATE UNIQUE INDEX sales_dashboard_mv_key ON sales_dashboard_mv (organization_id, kind, key, currency)"
)

VIEW_SQL = f"""
CREATE VIEW sales_dashboard WITH (security_barrier = true) AS
SELECT organization_id, kind, key, currency, deals, won, amount, weighted, value, refreshed_at
FROM sales_dashboard_mv
WHERE {tenant_predicate()}
"""

REFRESH_FUNCTION_SQL = r"""
CREATE OR REPLACE FUNCTION crm_refresh_sales_dashboard() RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    previous_role text := coalesce(current_setting('app.user_role', true), '');
BEGIN
    -- One refresh at a time: a second caller returns at once (NULL) instead of queueing behind the first.
    IF NOT pg_try_advisory_xact_lock(hashtext('crm_refresh_sales_dashboard')) THEN
        RETURN NULL;
    END IF;
    -- The owner is under FORCEd row-level security like everyone: the aggregate must see every
    -- organization, so widen the role for this refresh only and put the caller's back (an error aborts the
    -- transaction or savepoint, which undoes the set_config as well).
    PERFORM set_config('app.user_role', 'system_admin', true);
    IF (SELECT relispopulated FROM pg_class WHERE oid = 'sales_dashboard_mv'::regclass) THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY sales_dashboard_mv;
    ELSE
        REFRESH MATERIALIZED VIEW sales_dashboard_mv;  -- CONCURRENTLY needs a populated view
    END IF;
    PERFORM set_config('app.user_role', previous_role, true);
    RETURN statement_timestamp();
END;
$$;
REVOKE ALL ON FUNCTION crm_refresh_sales_dashboard() FROM PUBLIC;
"""


class Migration(migrations.Migration):
    dependencies = [("sales", "0001_initial")]

    operations = [
        migrations.RunSQL(MATVIEW_SQL, reverse_sql="DROP MATERIALIZED VIEW IF EXISTS sales_dashboard_mv"),
        migrations.RunSQL(INDEX_SQL, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL("REVOKE ALL ON sales_dashboard_mv FROM PUBLIC", reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(VIEW_SQL, reverse_sql="DROP VIEW IF EXISTS sales_dashboard"),
        migrations.RunSQL(
            REFRESH_FUNCTION_SQL, reverse_sql="DROP FUNCTION IF EXISTS crm_refresh_sales_dashboard()"
        ),
        # Populated at once (empty on a new database), so the view never answers "has not been populated".
        migrations.RunSQL("SELECT crm_refresh_sales_dashboard()", reverse_sql=migrations.RunSQL.noop),
    ]
