"""The forecast of an organization with 100,000 open opportunities: set-based SQL vs a per-deal Python loop,
side by side in one run (`make bench ARGS="-k forecast -s"`).

One organization, 20 reps, the default pipeline; 100,000 open deals with close dates from two months ago to
a year ahead (some overridden probabilities and categories, some idle), 20,000 deals closed over the last
year with their stage history (3 stage changes each), 1 to 3 close-date changes on a third of the open deals,
and a quota per rep per month; filled set-based with generate_series, then vacuumed and analyzed as
autovacuum would. The forecast (12 months) is timed three ways: the figures alone (the index-only monthly
aggregates, stage-to-win counts from the cache), which must take under 100 ms (asserted when the machine is
not busy with other work: load average below its core count); and the whole forecast with its risk factors
(one more pass over the deals), with the stage-to-win counts computed and cached. Its per-month aggregate must be an Index
Only Scan of `opportunities_forecast_idx` without heap fetches, and the per-deal loop (what an ORM
implementation does: load the deals, their history and the quotas, add up in Python; `reference_forecast` of
the tests) must give the same figures, at least 10x slower.

The customers are only what the deals point at: no phone, date of birth, street or postal code (encrypted at
rest since migration customers 0009; blank stays blank). FORECAST_BENCH_OPEN_DEALS sets the size (default
100,000 open deals, a fifth as many closed ones) for a smaller run while developing.
"""

from __future__ import annotations

import datetime
import os
import statistics
import time

import pytest
from django.db import connection

from crm.tenancy import system_context, tenant_context
from sales import forecasting
from sales.models import Quota, Stage
from tests import factories
from tests.owner_db import owner_connection
from tests.sales.test_forecast import _figures, reference_forecast

pytestmark = pytest.mark.bench

OPEN_DEALS = int(os.environ.get("FORECAST_BENCH_OPEN_DEALS", "100000"))  # smaller while developing
CLOSED_DEALS = OPEN_DEALS // 5
CUSTOMERS = 5_000
REPS = 20
MONTHS = 12
TARGET_MS = 100
RUNS = 9
RATIO_FLOOR = 10

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

# Open deals: stage, probability and category from the stage (1 in 10 probabilities and 1 in 20 categories
# overridden), close dates from 60 days before as_of to 365 after, idle or recently touched.
OPEN_SQL = """
WITH stages AS (
    SELECT row_number() OVER (ORDER BY position) AS k, id, probability, forecast_category
    FROM sales_stages WHERE organization_id = %(org)s AND outcome = 'open'
), customers_n AS (
    SELECT row_number() OVER (ORDER BY number) AS k, id FROM customers WHERE organization_id = %(org)s
), reps AS (
    SELECT row_number() OVER (ORDER BY id) AS k, id FROM users WHERE id = ANY(%(reps)s)
)
INSERT INTO opportunities (id, organization_id, name, customer_id, pipeline_id, stage_id, assigned_to_id,
    created_by_id, amount, currency, probability, probability_overridden, forecast_category,
    forecast_category_overridden, expected_close_date, actual_close_date, status, lost_reason,
    source_campaign_id, next_step, notes, stage_changed_at, last_activity_at, created_at, updated_at)
SELECT gen_random_uuid(), %(org)s, 'Deal ' || n, c.id, %(pipeline)s, s.id, r.id, NULL,
    1000 + (n * 7919 %% 99000), 'USD',
    CASE WHEN n %% 10 = 0 THEN (n * 13 %% 90) + 5 ELSE s.probability END, n %% 10 = 0,
    CASE WHEN n %% 20 = 0 THEN (ARRAY['commit', 'best_case', 'omitted', 'pipeline'])[1 + n / 20 %% 4]
         ELSE s.forecast_category END, n %% 20 = 0,
    %(as_of)s::date - 60 + (n * 31 %% 425), NULL, 'open', '', NULL, '', '', now(),
    CASE WHEN n %% 7 = 0 THEN NULL ELSE now() - make_interval(days => n * 17 %% 60) END,
    now() - make_interval(days => 5 + n * 11 %% 200), now()
FROM generate_series(1, %(count)s) AS n
JOIN stages s ON s.k = 1 + n %% 4
JOIN customers_n c ON c.k = 1 + n %% %(customers)s
JOIN reps r ON r.k = 1 + n %% %(rep_count)s
"""

# Closed deals of the last year: 55 %% won; each went through two open stages before closing.
CLOSED_SQL = """
WITH stages AS (
    SELECT outcome, position, id FROM sales_stages WHERE organization_id = %(org)s
), customers_n AS (
    SELECT row_number() OVER (ORDER BY number) AS k, id FROM customers WHERE organization_id = %(org)s
)
INSERT INTO opportunities (id, organization_id, name, customer_id, pipeline_id, stage_id, assigned_to_id,
    created_by_id, amount, currency, probability, probability_overridden, forecast_category,
    forecast_category_overridden, expected_close_date, actual_close_date, status, lost_reason,
    source_campaign_id, next_step, notes, stage_changed_at, last_activity_at, created_at, updated_at)
SELECT gen_random_uuid(), %(org)s, 'Closed ' || n, c.id, %(pipeline)s,
    (SELECT id FROM stages WHERE outcome = CASE WHEN n %% 20 < 11 THEN 'won' ELSE 'lost' END),
    NULL, NULL, 1000 + (n * 7919 %% 99000), 'USD', CASE WHEN n %% 20 < 11 THEN 100 ELSE 0 END, false,
    CASE WHEN n %% 20 < 11 THEN 'closed' ELSE 'omitted' END, false,
    %(as_of)s::date - (n %% 360), %(as_of)s::date - (n %% 360),
    CASE WHEN n %% 20 < 11 THEN 'won' ELSE 'lost' END, CASE WHEN n %% 20 < 11 THEN '' ELSE 'Budget' END,
    NULL, '', '', now(), NULL, now() - interval '400 days', now()
FROM generate_series(1, %(count)s) AS n
JOIN customers_n c ON c.k = 1 + n %% %(customers)s
"""

# Stage history of the closed deals: first stage -> a middle stage -> another -> the closing stage.
CLOSED_CHANGES_SQL = """
WITH open_stages AS (
    SELECT row_number() OVER (ORDER BY position) AS k, id FROM sales_stages
    WHERE organization_id = %(org)s AND outcome = 'open'
), deals AS (
    SELECT o.id, o.stage_id, o.actual_close_date, (hashtext(o.id::text) & 1) + 2 AS mid
    FROM opportunities o WHERE o.organization_id = %(org)s AND o.status <> 'open'
)
INSERT INTO opportunity_changes (id, organization_id, opportunity_id, field, old_value, new_value, changed_at,
    note)
SELECT gen_random_uuid(), %(org)s, d.id, 'stage', step.old_value, step.new_value,
    d.actual_close_date - step.days_before, ''
FROM deals d
JOIN open_stages s1 ON s1.k = 1
JOIN open_stages sm ON sm.k = d.mid
JOIN open_stages s4 ON s4.k = 4
CROSS JOIN LATERAL (VALUES (s1.id::text, sm.id::text, 30), (sm.id::text, s4.id::text, 15),
                           (s4.id::text, d.stage_id::text, 0)) AS step(old_value, new_value, days_before)
"""

# 1 to 3 close-date changes on a third of the open deals.
MOVES_SQL = """
INSERT INTO opportunity_changes (id, organization_id, opportunity_id, field, old_value, new_value, changed_at,
    note)
SELECT gen_random_uuid(), %(org)s, o.id, 'expected_close_date', '', o.expected_close_date::text,
    now() - make_interval(days => g), ''
FROM opportunities o
CROSS JOIN LATERAL generate_series(1, 1 + abs(hashtext(o.id::text)) / 3 %% 3) AS g
WHERE o.organization_id = %(org)s AND o.status = 'open' AND abs(hashtext(o.id::text)) %% 3 = 0
"""


def _vacuum_analyze(*tables: str) -> None:
    """What autovacuum does after a bulk load: statistics and the visibility map (index-only scans skip the
    heap only for all-visible pages). Only the owner may vacuum."""
    with owner_connection() as conn:
        for table in tables:
            conn.execute(f'VACUUM (ANALYZE) "{table}"')


def _fill(org, reps, as_of) -> dict:
    pipeline = factories.pipeline(org)
    started = time.perf_counter()
    params = {
        "org": org.pk,
        "pipeline": pipeline.pk,
        "as_of": as_of,
        "reps": [r.pk for r in reps],
        "rep_count": len(reps),
        "customers": CUSTOMERS,
    }
    with system_context(), connection.cursor() as cursor:
        cursor.execute(CUSTOMERS_SQL, {"org": org.pk, "count": CUSTOMERS})
        cursor.execute(OPEN_SQL, {**params, "count": OPEN_DEALS})
        cursor.execute(CLOSED_SQL, {**params, "count": CLOSED_DEALS})
        cursor.execute(CLOSED_CHANGES_SQL, params)
        stage_changes = cursor.rowcount
        cursor.execute(MOVES_SQL, params)
        moves = cursor.rowcount
        first = as_of.replace(day=1)
        Quota.objects.bulk_create(
            Quota(organization=org, user=rep, month=forecasting.add_months(first, n), amount=250_000)
            for rep in reps
            for n in range(MONTHS)
        )
    _vacuum_analyze("opportunities", "opportunity_changes", "sales_quotas", "customers")
    return {"seconds": time.perf_counter() - started, "stage_changes": stage_changes, "moves": moves}


def _explain(sql: str, params: dict) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _median_ms(run, runs: int = RUNS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def _loaded() -> tuple[bool, float]:
    """Whether the machine is busy with other work (1-minute load above its core count): absolute times are
    then not this code's, and the time target is reported but not asserted."""
    load = os.getloadavg()[0]
    return load > (os.cpu_count() or 1), load


@pytest.mark.django_db(transaction=True)
def test_forecast_of_100k_open_deals_is_index_only_and_under_100_ms(capsys):
    org = factories.organization()
    reps = [factories.user(org, role="sales_rep") for _ in range(REPS)]
    as_of = datetime.date.today()
    filled = _fill(org, reps, as_of)

    def forecast(owner_id=None, cold=False, include_risks=True):
        if cold:  # the stage-to-win counts computed, not taken from the cache
            forecasting.forget_stage_win_rates(organization_id=org.pk, as_of=as_of)
        return forecasting.forecast_for_organization(
            organization_id=org.pk, months=MONTHS, as_of=as_of, owner_id=owner_id, include_risks=include_risks
        )

    with tenant_context(org.pk):
        assert Stage.objects.filter(organization=org).count() == 6
        cold_ms, _ = _median_ms(lambda: forecast(cold=True))
        warm_ms, result = _median_ms(forecast)
        figures_ms, figures = _median_ms(lambda: forecast(include_risks=False))
        owner_ms, _ = _median_ms(lambda: forecast(owner_id=reps[0].pk))
        params = {"org": org.pk, "start": result.start, "end": result.end, "as_of": as_of, "owner": None}
        plans = {
            "open deals by month": _explain(forecasting.OPEN_SQL.format(owner=""), params),
            "closed won by month": _explain(forecasting.WON_SQL.format(owner=""), params),
            "stage-to-win counts (cached)": _explain(
                forecasting.RATES_SQL,
                {**params, "history_start": as_of - datetime.timedelta(days=forecasting.HISTORY_DAYS)},
            ),
            "risk factors": _explain(
                forecasting.RISKS_SQL.format(owner="", columns=forecasting.RISK_COLUMNS),
                {
                    **params,
                    "idle_before": forecasting._idle_before(result),
                    "low_months": [
                        m.month for m in result.months if m.coverage is not None and m.coverage < 3
                    ],
                    "limit": forecasting.RISK_DEAL_LIMIT,
                    "currency": result.currency,
                },
            ),
        }
        started = time.perf_counter()
        naive = reference_forecast(org.pk, as_of=as_of, months=MONTHS)
        naive_ms = (time.perf_counter() - started) * 1000

    assert _figures(result) == naive["months"] == _figures(figures)  # the same numbers every way
    assert {r.code: (r.count, r.amount) for r in result.risks} == {
        code: (count, amount) for code, (count, amount, _ids) in naive["risks"].items()
    }
    open_deals = sum(row.open_deals for row in result.months)
    loaded, load = _loaded()
    with capsys.disabled():
        print(
            f"\n[bench] forecast, {OPEN_DEALS:,} open + {CLOSED_DEALS:,} closed deals, "
            f"{filled['stage_changes']:,} stage changes, {filled['moves']:,} close-date changes "
            f"(generated, vacuumed and analyzed in {filled['seconds']:.0f} s); {MONTHS} months, "
            f"{open_deals:,} open deals in them; load average {load:.1f} on {os.cpu_count()} cores\n"
            f"  the figures (index-only aggregates, win rates cached):        {figures_ms:.1f} ms (median of {RUNS})\n"
            f"  the whole forecast with risks, win rates computed:           {cold_ms:.1f} ms\n"
            f"  the whole forecast with risks, win rates cached (the page):  {warm_ms:.1f} ms\n"
            f"  the whole forecast with risks, one owner, win rates cached: {owner_ms:.1f} ms\n"
            f"  per-deal Python loop (reference_forecast): {naive_ms:.0f} ms\n"
            f"  ratio against the whole forecast: {naive_ms / cold_ms:.0f}x (rates computed), "
            f"{naive_ms / warm_ms:.0f}x (cached); against the figures: {naive_ms / figures_ms:.0f}x\n"
            f"  target: the figures < {TARGET_MS} ms, Index Only Scan on opportunities_forecast_idx"
            + (" (not asserted: the machine is loaded)" if loaded else "")
            + "\n"
            + "".join(
                f"\n--- {name} (EXPLAIN ANALYZE, BUFFERS) ---\n{plan}\n" for name, plan in plans.items()
            )
        )
    assert "Index Only Scan using opportunities_forecast_idx" in plans["open deals by month"]
    assert "Heap Fetches: 0" in plans["open deals by month"]
    assert "Index Only Scan using opportunities_closed_idx" in plans["closed won by month"]
    assert naive_ms / cold_ms >= RATIO_FLOOR
    if not loaded:
        assert figures_ms < TARGET_MS
