"""The support queue at 1,000,000 tickets (`make bench ARGS="-k queue -s"`; docs/benchmarks.md).

Two organizations: one with 950,000 tickets (50 agents, 20,000 customers), a second with 50,000 (5 agents),
so the row-level-security predicate and the organization filter have rows to skip. A realistic mix: 5 % of
the tickets unsolved (new, open, in progress, pending, on hold; created in the last 30 days), the rest
resolved or closed over about a year and a half; unsolved tickets assigned across the 50 agents with one in
six left in the team queue; SLA deadlines from the priority (3 % without a policy, so without deadlines),
first responses on most, the SLA clock paused on pending and on-hold tickets. Filled set-based with
generate_series in batches (audit trigger off during the fill, as for the dashboard benchmark), then
vacuumed and analyzed as autovacuum would.

Measured as the app role under forced row-level security, in the organization's tenant context:

- (a) an agent's "My tickets", first page, in SLA-urgency order: the selector + `keyset_page`, and the whole
  page through the test client (rendering, view counts and all), with their query counts;
- (b) the manager's "All unsolved" queue at a deep page (OFFSET 40,000), keyset vs OFFSET side by side,
  both the list's own query compiled by the ORM; median of RUNS.

EXPLAIN (ANALYZE, BUFFERS) of both page queries is printed: the urgency order is a computed expression
(Coalesce(Least(...)) with paused tickets last), which no index holds, so every unsolved ticket of the view
is read and sorted (a top-N sort); what the index gives is the set of unsolved tickets (the partial index
`tickets_active_queue_idx`), not their order. The figures are reported, not asserted against a target.

The customers are only what the tickets point at: no phone, date of birth, street or postal code (encrypted
at rest since migration customers 0009; blank stays blank). QUEUE_BENCH_TICKETS sets the size (default
1,000,000, shared 95/5 % by the two organizations; the deep page stays at 84 % of the unsolved tickets) for a
smaller run while developing.
"""

from __future__ import annotations

import os
import re
import statistics
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.pagination import _after, _encode, keyset_page
from crm.tenancy import system_context, tenant_context
from support.selectors import tickets as selectors
from tests import factories
from tests.owner_db import owner_connection

pytestmark = pytest.mark.bench

TICKETS = int(os.environ.get("QUEUE_BENCH_TICKETS", "1000000"))  # smaller while developing
BIG, SMALL = TICKETS * 19 // 20, TICKETS // 20  # 950,000 and 50,000 at the default
AGENTS, SMALL_AGENTS = 50, 5
CUSTOMERS, SMALL_CUSTOMERS = 20_000, 2_000
BATCH = 190_000
PAGE = 50
DEPTH = 800 * BIG // 950_000  # pages: OFFSET 40,000 of the ~47,500 unsolved tickets at the default
RUNS = 7

CUSTOMERS_SQL = """
INSERT INTO customers (id, organization_id, number, first_name, last_name, company_name, email, phone,
    job_title, customer_type, lifecycle_stage, lead_score, engagement_score, health_score, tags, vip_status,
    status, street, city, state, postal_code, country, source, email_opt_in, do_not_call,
    processing_restricted, restriction_reason, education_level, created_at, updated_at)
SELECT gen_random_uuid(), %(org)s, n, 'First' || n, 'Last' || n, 'Company ' || (n %% 700),
    'c' || n || '@queue.example', '', '', 'individual', 'customer', 0, 0, 0, '{}', n %% 50 = 0, 'active',
    '', '', '', '', '', '', false, false, false, '', '', now(), now()
FROM generate_series(1, %(count)s) AS n
"""

# k = n % 200 sets the status: 0-9 unsolved (5 %), the rest resolved or closed; (n / 200) % 60 the agent
# (>= 50: unassigned while unsolved); (n / 7) % 20 the priority; every 33rd ticket has no SLA policy.
TICKETS_SQL = """
WITH customers_n AS (
    SELECT row_number() OVER (ORDER BY number) AS k, id FROM customers WHERE organization_id = %(org)s
), agents AS (
    SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM users WHERE id = ANY(%(agents)s)
), rows AS (
    SELECT n, n %% 200 AS k, (n / 200) %% 60 AS a,
        CASE WHEN (n / 7) %% 20 = 0 THEN 'urgent' WHEN (n / 7) %% 20 < 5 THEN 'high'
             WHEN (n / 7) %% 20 < 17 THEN 'normal' ELSE 'low' END AS priority
    FROM generate_series(%(start)s, %(stop)s) AS n
), shaped AS (
    SELECT r.*,
        CASE WHEN k < 2 THEN 'new' WHEN k < 5 THEN 'open' WHEN k < 7 THEN 'in_progress'
             WHEN k < 9 THEN 'pending' WHEN k < 10 THEN 'on_hold'
             WHEN k %% 4 = 0 THEN 'closed' ELSE 'resolved' END AS status,
        CASE WHEN k < 10 THEN %(now)s - make_interval(mins => (n * 37) %% 43200)
             ELSE %(now)s - make_interval(days => 31, mins => (n * 53) %% 800000) END AS created,
        CASE priority WHEN 'urgent' THEN 1 WHEN 'high' THEN 4 WHEN 'normal' THEN 8 ELSE 24 END AS fr_hours,
        n %% 33 = 0 AS no_policy
    FROM rows r
)
INSERT INTO support_tickets (id, organization_id, number, subject, description, customer_id, channel, type,
    category, requested_priority, priority, status, assigned_to_id, assigned_at, queue_reason, sla_policy_id,
    first_response_due_at, resolution_due_at, sla_paused_since, first_response_warn_at, resolution_warn_at,
    first_response_at, resolved_at, closed_at, reopened_count, satisfaction_rating, tags, created_by_id,
    created_at, updated_at)
SELECT gen_random_uuid(), %(org)s, s.n, 'Ticket ' || s.n, '', c.id,
    (ARRAY['email', 'web_form', 'phone', 'chat'])[1 + s.n %% 4],
    (ARRAY['question', 'incident', 'problem', 'billing_issue'])[1 + (s.n / 3) %% 4],
    (ARRAY['support', 'billing', 'technical', 'product', ''])[1 + (s.n / 5) %% 5],
    s.priority, s.priority, s.status,
    CASE WHEN s.k < 10 AND s.a >= 50 THEN NULL ELSE ag.id END,
    CASE WHEN s.k < 10 AND s.a >= 50 THEN NULL ELSE s.created + interval '5 minutes' END,
    '', NULL,
    CASE WHEN s.no_policy THEN NULL ELSE s.created + make_interval(hours => s.fr_hours) END,
    CASE WHEN s.no_policy THEN NULL ELSE s.created + make_interval(hours => s.fr_hours * 6) END,
    CASE WHEN s.status IN ('pending', 'on_hold') THEN s.created + interval '2 hours' END,
    CASE WHEN s.no_policy THEN NULL ELSE s.created + make_interval(mins => s.fr_hours * 30) END,
    CASE WHEN s.no_policy THEN NULL ELSE s.created + make_interval(hours => s.fr_hours * 3) END,
    CASE WHEN s.k >= 5 OR s.k = 3 THEN s.created + make_interval(mins => 10 + s.n %% 300) END,
    CASE WHEN s.k >= 10 THEN s.created + make_interval(hours => 1 + s.n %% 90) END,
    CASE WHEN s.status = 'closed' THEN s.created + make_interval(hours => 100 + s.n %% 90) END,
    0, NULL, '{}', NULL, s.created, s.created
FROM shaped s
JOIN customers_n c ON c.k = 1 + s.n %% %(customers)s
JOIN agents ag ON ag.k = s.a %% %(agent_count)s
"""


def _fill(org, agents, *, count: int, customers: int) -> float:
    started = time.perf_counter()
    with system_context(), connection.cursor() as cursor:
        cursor.execute(CUSTOMERS_SQL, {"org": org.pk, "count": customers})
    now = timezone.now()
    for start in range(1, count + 1, BATCH):
        with system_context(), connection.cursor() as cursor:
            cursor.execute(
                TICKETS_SQL,
                {
                    "org": org.pk,
                    "agents": [a.pk for a in agents],
                    "agent_count": len(agents),
                    "customers": customers,
                    "start": start,
                    "stop": min(start + BATCH - 1, count),
                    "now": now,
                },
            )
    return time.perf_counter() - started


def _median_ms(run, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _execution_ms(sql: str, params, runs: int = RUNS) -> float:
    times = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            times.append(cursor.fetchone()[0][0]["Execution Time"])
    return statistics.median(times)


def _explain(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _rows(sql: str, params) -> list:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _index_used(plan: str) -> str:
    """The support_tickets indexes the plan reads (or its sequential scan)."""
    names = re.findall(r"(?:Index Scan|Index Only Scan) (?:using|on) (\w+) on support_tickets", plan)
    names += re.findall(r"Bitmap Index Scan on (tickets_\w+)", plan)
    if "Seq Scan on support_tickets" in plan:
        names.append("sequential scan")
    return ", ".join(dict.fromkeys(names)) or "?"


@pytest.mark.django_db(transaction=True)
def test_queue_page_at_a_million_tickets(client, login, capsys):
    big, small = factories.organization(), factories.organization()
    agents = [factories.user(big, role="support_agent") for _ in range(AGENTS)]
    manager = factories.user(big, role="support_manager")
    small_agents = [factories.user(small, role="support_agent") for _ in range(SMALL_AGENTS)]

    with owner_connection() as conn:
        conn.execute("ALTER TABLE support_tickets DISABLE TRIGGER crm_audit")
    try:
        fill_s = _fill(big, agents, count=BIG, customers=CUSTOMERS)
        fill_s += _fill(small, small_agents, count=SMALL, customers=SMALL_CUSTOMERS)
    finally:
        with owner_connection() as conn:
            conn.execute("ALTER TABLE support_tickets ENABLE TRIGGER crm_audit")
    started = time.perf_counter()
    with owner_connection() as conn:
        for table in ("support_tickets", "customers", "users"):
            conn.execute(f'VACUUM (ANALYZE) "{table}"')
    vacuum_s = time.perf_counter() - started

    agent = agents[7]
    _, ordering = selectors.ordering_for(None)
    with tenant_context(big.pk, user=agent):
        mine_view = selectors.queue_view(actor=agent, key="mine")

        def mine_page():
            _, queryset = selectors.queue(actor=agent, view=mine_view, params={})
            return keyset_page(queryset, ordering=ordering, cursor=None, per_page=PAGE)

        with CaptureQueriesContext(connection) as mine_queries:
            first = mine_page()
        assert first.items and all(t.assigned_to_id == agent.pk for t in first.items)
        mine_ms = _median_ms(mine_page)
        _, mine_qs = selectors.queue(actor=agent, view=mine_view, params={})
        mine_sql, mine_params = mine_qs.order_by(*ordering)[: PAGE + 1].query.sql_with_params()
        mine_db = _execution_ms(mine_sql, mine_params)
        mine_plan = _explain(mine_sql, mine_params)
        mine_active = selectors.capped_count(mine_qs, cap=100_000)[0]

    login(agent)
    url = reverse("support:queue")
    page_queries = []

    def count(execute, sql, params, many, context):
        page_queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):  # survives the reconnect at the request's start
        assert client.get(url).status_code == 200
    page_ms = _median_ms(lambda: client.get(url))

    with tenant_context(big.pk, user=manager):
        all_view = selectors.queue_view(actor=manager, key="all")
        assert all_view.key == "all"
        _, listed = selectors.queue(actor=manager, view=all_view, params={})
        all_active = selectors.capped_count(listed, cap=10_000_000)[0]
        boundary = list(listed.order_by(*ordering).values_list(*ordering)[DEPTH * PAGE - 1])
        cursor = _encode(boundary, "next")
        offset_sql, offset_params = listed.order_by(*ordering)[
            DEPTH * PAGE : DEPTH * PAGE + PAGE + 1
        ].query.sql_with_params()
        keyset_sql, keyset_params = (
            listed.filter(_after(ordering, boundary, reverse=False))
            .order_by(*ordering)[: PAGE + 1]
            .query.sql_with_params()
        )
        assert _rows(offset_sql, offset_params) == _rows(keyset_sql, keyset_params)

        def deep_keyset():
            _, queryset = selectors.queue(actor=manager, view=all_view, params={})
            return keyset_page(queryset, ordering=ordering, cursor=cursor, per_page=PAGE)

        with CaptureQueriesContext(connection) as deep_queries:
            deep = deep_keyset()
        assert [t.pk for t in deep.items] == _rows(offset_sql, offset_params)[:PAGE]
        keyset_ms = _median_ms(deep_keyset)
        offset_ms = _median_ms(lambda: _rows(offset_sql, offset_params))
        keyset_db = _execution_ms(keyset_sql, keyset_params)
        offset_db = _execution_ms(offset_sql, offset_params)
        keyset_plan = _explain(keyset_sql, keyset_params)
        offset_plan = _explain(offset_sql, offset_params)
        first_all_sql, first_all_params = listed.order_by(*ordering)[: PAGE + 1].query.sql_with_params()
        first_all_db = _execution_ms(first_all_sql, first_all_params)
        first_all_plan = _explain(first_all_sql, first_all_params)
        counts_ms = _median_ms(
            lambda: selectors.view_counts(actor=manager, views=selectors.queue_views(actor=manager))
        )

    load = os.getloadavg()[0]
    with capsys.disabled():
        print(
            f"\n[bench] support queue, {BIG + SMALL:,} tickets ({BIG:,} + {SMALL:,}), load {load:.1f}:"
            f" fill {fill_s:.0f} s, vacuum analyze {vacuum_s:.0f} s"
            f"\n  (a) My tickets ({mine_active:,} unsolved), first page: selector + keyset_page {mine_ms:.1f} ms"
            f" ({len(mine_queries.captured_queries)} query), page query in the database {mine_db:.2f} ms;"
            f" whole page GET {page_ms:.0f} ms ({len(page_queries)} queries)"
            f"\n  (b) All unsolved ({all_active:,} tickets), page {DEPTH + 1} (OFFSET {DEPTH * PAGE:,}):"
            f" in the database OFFSET {offset_db:.1f} ms vs keyset {keyset_db:.1f} ms"
            f" ({offset_db / keyset_db:.1f}x); round trip OFFSET {offset_ms:.1f} ms vs keyset (selector +"
            f" keyset_page, {len(deep_queries.captured_queries)} query) {keyset_ms:.1f} ms;"
            f" first page in the database {first_all_db:.1f} ms; view counts {counts_ms:.1f} ms"
            f"\n  index: My tickets -> {_index_used(mine_plan)}; All unsolved keyset -> {_index_used(keyset_plan)},"
            f" OFFSET -> {_index_used(offset_plan)}"
            f"\n--- EXPLAIN My tickets, first page\n{mine_plan}"
            f"\n--- EXPLAIN All unsolved, keyset page {DEPTH + 1}\n{keyset_plan}"
            f"\n--- EXPLAIN All unsolved, OFFSET page {DEPTH + 1}\n{offset_plan}"
            f"\n--- EXPLAIN All unsolved, first page\n{first_all_plan}\n"
        )
    assert len(mine_queries.captured_queries) == 1
    assert len(deep_queries.captured_queries) == 1
