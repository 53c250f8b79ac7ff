"""The sales dashboard's materialized view at 1,000,000 opportunities: refresh CONCURRENTLY (what beat, the
command and the button run) vs a plain REFRESH, side by side in one run (`make bench ARGS="-k dashboard -s"`).

Four organizations (400k, 300k, 200k and 100k deals, 1,000,000 in all), each with the default pipeline,
2,500 customers and 10 reps: 70 % of the deals open across the four open stages with close dates from two
months ago to ten months ahead, 30 % closed (55 % of them won) over the last 18 months, 1 in 25 in EUR.
Filled set-based with generate_series (the audit trigger is off for the fill only: it is not what is
measured), then vacuumed and analyzed as autovacuum would.

Measured (median of 3 each):
- refresh with no change since the last one: CONCURRENTLY (through crm_refresh_sales_dashboard(), as the
  app role) vs plain REFRESH (as the owner);
- the same after 1 % of the deals changed;
- what a reader of the dashboard waits while each kind of refresh runs: a plain REFRESH takes an ACCESS
  EXCLUSIVE lock, so the page would hang for the whole refresh; CONCURRENTLY lets it read the old rows;
- reading one organization's dashboard (the page's two queries).

The customers are only what the deals point at: names and e-mails, no phone, date of birth, street or postal
code (those are encrypted at rest, migration customers 0009; blank stays blank). DASHBOARD_BENCH_OPPORTUNITIES
sets the number of deals (default 1,000,000, shared 40/30/20/10 % by the four organizations).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from decimal import Decimal

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from crm.tenancy import system_context, tenant_context
from sales import dashboard as sales_dashboard
from tests import factories
from tests.owner_db import owner_connection

pytestmark = pytest.mark.bench

# 40 %, 30 %, 20 % and 10 % of DASHBOARD_BENCH_OPPORTUNITIES (default 1,000,000; smaller while developing).
OPPORTUNITIES = int(os.environ.get("DASHBOARD_BENCH_OPPORTUNITIES", "1000000"))
ORGANIZATIONS = tuple(OPPORTUNITIES * share // 10 for share in (4, 3, 2, 1))
CUSTOMERS = 2_500
REPS = 10
RUNS = 3

CUSTOMERS_SQL = """
INSERT INTO customers (id, organization_id, number, first_name, last_name, company_name, email, phone,
    job_title, customer_type, lifecycle_stage, lead_score, engagement_score, health_score, tags, vip_status,
    status, street, city, state, postal_code, country, source, email_opt_in, do_not_call,
    processing_restricted, restriction_reason, education_level, created_at, updated_at)
SELECT gen_random_uuid(), %(org)s, n, 'First' || n, 'Last' || n, 'Company ' || n, 'c' || n || '@bench.example',
    '', '', 'business', 'opportunity', 0, 0, 0, '{}', false, 'active', '', '', '', '', '', '', false, false,
    false, '', '', now(), now()
FROM generate_series(1, %(count)s) AS n
"""

# n %% 10 < 7: open in one of the four open stages; otherwise closed, won when n %% 20 < 11 of those.
DEALS_SQL = """
WITH stages AS (
    SELECT row_number() OVER (ORDER BY position) AS k, id, probability, forecast_category, outcome
    FROM sales_stages WHERE organization_id = %(org)s
), customers_n AS (
    SELECT row_number() OVER (ORDER BY number) AS k, id FROM customers WHERE organization_id = %(org)s
), reps AS (
    SELECT row_number() OVER (ORDER BY id) AS k, id FROM users WHERE id = ANY(%(reps)s)
), deals AS (
    SELECT n,
           CASE WHEN n %% 10 < 7 THEN 1 + n %% 4 WHEN n %% 20 < 11 THEN 5 ELSE 6 END AS stage_k,
           CASE WHEN n %% 10 < 7 THEN 'open' WHEN n %% 20 < 11 THEN 'won' ELSE 'lost' END AS status
    FROM generate_series(1, %(count)s) AS n
)
INSERT INTO opportunities (id, organization_id, name, customer_id, pipeline_id, stage_id, assigned_to_id,
    created_by_id, amount, currency, probability, probability_overridden, forecast_category,
    forecast_category_overridden, expected_close_date, actual_close_date, status, lost_reason,
    source_campaign_id, next_step, notes, stage_changed_at, last_activity_at, created_at, updated_at)
SELECT gen_random_uuid(), %(org)s, 'Deal ' || d.n, c.id, %(pipeline)s, s.id, r.id, NULL,
    1000 + (d.n::bigint * 7919 %% 99000), CASE WHEN d.n %% 25 = 0 THEN 'EUR' ELSE 'USD' END,
    s.probability, false, s.forecast_category, false,
    CASE WHEN d.status = 'open' THEN current_date - 60 + (d.n * 31 %% 365) ELSE current_date - (d.n %% 540) END,
    CASE WHEN d.status = 'open' THEN NULL ELSE current_date - (d.n %% 540) END,
    d.status, CASE WHEN d.status = 'lost' THEN 'Budget' ELSE '' END, NULL, '', '', now(), NULL,
    CASE WHEN d.status = 'open' THEN now() - make_interval(days => d.n %% 200)
         ELSE (current_date - (d.n %% 540) - (5 + d.n %% 90))::timestamptz END,
    now()
FROM deals d
JOIN stages s ON s.k = d.stage_k
JOIN customers_n c ON c.k = 1 + d.n %% %(customers)s
JOIN reps r ON r.k = 1 + d.n %% %(rep_count)s
"""

# 1 %% of the deals change: a new amount and a later close date for open ones.
CHANGE_SQL = """
UPDATE opportunities SET amount = amount + 1,
    expected_close_date = CASE WHEN status = 'open' THEN expected_close_date + 30 ELSE expected_close_date END
WHERE abs(hashtext(id::text)) %% 100 = %(bucket)s
"""


def _fill() -> tuple[list, float]:
    started = time.perf_counter()
    organizations = []
    with owner_connection() as conn:
        conn.execute("ALTER TABLE opportunities DISABLE TRIGGER crm_audit")
    try:
        for count in ORGANIZATIONS:
            org = factories.organization()
            reps = [factories.user(org, role="sales_rep") for _ in range(REPS)]
            pipeline = factories.pipeline(org)
            with system_context(), connection.cursor() as cursor:
                cursor.execute(CUSTOMERS_SQL, {"org": org.pk, "count": CUSTOMERS})
                cursor.execute(
                    DEALS_SQL,
                    {
                        "org": org.pk,
                        "pipeline": pipeline.pk,
                        "reps": [r.pk for r in reps],
                        "rep_count": REPS,
                        "customers": CUSTOMERS,
                        "count": count,
                    },
                )
            organizations.append((org, reps))
    finally:
        with owner_connection() as conn:
            conn.execute("ALTER TABLE opportunities ENABLE TRIGGER crm_audit")
    with owner_connection() as conn:
        for table in ("opportunities", "customers", "sales_stages", "organizations"):
            conn.execute(f'VACUUM (ANALYZE) "{table}"')
    return organizations, time.perf_counter() - started


def _timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _concurrently() -> None:
    with system_context():
        assert sales_dashboard.dashboard_refresh() is not None


def _plain() -> None:
    with owner_connection() as conn:
        conn.execute("SELECT set_config('app.user_role', 'system_admin', false)")
        conn.execute("REFRESH MATERIALIZED VIEW sales_dashboard_mv")


def _median(run) -> float:
    return statistics.median(_timed(run) for _ in range(RUNS))


def _app_connection() -> psycopg.Connection:
    app = connection.settings_dict
    return psycopg.connect(
        dbname=app["NAME"],
        user=app["USER"],
        password=app.get("PASSWORD") or None,
        host=app.get("HOST") or None,
        port=app.get("PORT") or None,
        autocommit=True,
    )


def _reader_wait(refresh, organization_id) -> tuple[float, float]:
    """(refresh seconds, seconds a dashboard read started 0.2 s into the refresh had to wait)."""
    done = {}

    def run():
        try:
            done["refresh"] = _timed(refresh)
        finally:
            connection.close()  # this thread's own connection (Django's are per thread)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.2)
    with _app_connection() as conn:
        conn.execute("SELECT set_config('app.organization_id', %s, false)", [str(organization_id)])
        started = time.perf_counter()
        conn.execute("SELECT count(*) FROM sales_dashboard").fetchone()
        waited = time.perf_counter() - started
    thread.join()
    return done["refresh"], waited


def _plan() -> str:
    """EXPLAIN ANALYZE of the view's defining query, as the owner sees it during a refresh."""
    with owner_connection() as conn:
        conn.execute("SELECT set_config('app.user_role', 'system_admin', false)")
        (definition,) = conn.execute("SELECT pg_get_viewdef('sales_dashboard_mv'::regclass)").fetchone()
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + definition.rstrip().rstrip(";")).fetchall()
    return "\n".join(row[0] for row in rows)


@pytest.mark.django_db(transaction=True)
def test_dashboard_refresh_at_a_million_opportunities(capsys):
    assert settings.DATABASES["default"]["NAME"].startswith("test_")
    organizations, fill_seconds = _fill()
    first = _timed(_concurrently)  # after the fill: every organization's rows are new

    unchanged_concurrent = _median(_concurrently)
    unchanged_plain = _median(_plain)

    changed = {}
    for name, refresh in (("concurrent", _concurrently), ("plain", _plain)):
        times = []
        for bucket in range(RUNS):
            with system_context(), connection.cursor() as cursor:
                cursor.execute(CHANGE_SQL, {"bucket": bucket if name == "concurrent" else 50 + bucket})
                touched = cursor.rowcount
            times.append(_timed(refresh))
        changed[name] = (statistics.median(times), touched)

    largest, _reps = organizations[0]
    plain_refresh, plain_wait = _reader_wait(_plain, largest.pk)
    concurrent_refresh, concurrent_wait = _reader_wait(_concurrently, largest.pk)

    manager = factories.user(largest, role="sales_manager")
    with tenant_context(largest.pk, user=manager):
        read_ms = statistics.median(
            _timed(lambda: sales_dashboard.sales_dashboard(actor=manager)) * 1000 for _ in range(9)
        )
        board = sales_dashboard.sales_dashboard(actor=manager)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), sum(amount) FROM opportunities WHERE organization_id = %s AND status = 'open' "
                "AND currency = 'USD'",
                [largest.pk],
            )
            open_deals, open_amount = cursor.fetchone()
    assert (board.open_deals, board.open_amount) == (open_deals, Decimal(open_amount))

    with system_context(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sales_dashboard")
        (rows,) = cursor.fetchone()
    plan = _plan()
    total = sum(ORGANIZATIONS)
    with capsys.disabled():
        print(
            f"\n[bench] sales dashboard, {total:,} opportunities in {len(ORGANIZATIONS)} organizations "
            f"(generated, vacuumed and analyzed in {fill_seconds:.0f} s); the materialized view: {rows:,} rows\n"
            f"  first refresh (CONCURRENTLY, every row new):  {first:.2f} s\n"
            f"  nothing changed:  CONCURRENTLY {unchanged_concurrent:.2f} s | plain {unchanged_plain:.2f} s | "
            f"ratio {unchanged_concurrent / unchanged_plain:.2f}\n"
            f"  1 % changed ({changed['concurrent'][1]:,} deals):  CONCURRENTLY {changed['concurrent'][0]:.2f} s | "
            f"plain {changed['plain'][0]:.2f} s | ratio {changed['concurrent'][0] / changed['plain'][0]:.2f}\n"
            f"  a dashboard read during the refresh waited:  plain {plain_wait:.2f} s (of {plain_refresh:.2f} s) | "
            f"CONCURRENTLY {concurrent_wait * 1000:.1f} ms (of {concurrent_refresh:.2f} s)\n"
            f"  reading one organization's dashboard (the page's 2 queries): {read_ms:.1f} ms (median of 9)\n"
            f"\n--- the view's query (EXPLAIN ANALYZE, BUFFERS) ---\n{plan}\n"
        )
    assert concurrent_wait < plain_wait
