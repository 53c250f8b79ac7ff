"""Routing throughput: 8 (and 16) concurrent router processes, support/routing.py against naive versions
that lock every agent of the organization (`SELECT ... FROM support_agents ... FOR UPDATE`) before choosing
(`make bench ARGS="-k routing -s"`).

One organization with 40 agents (billing, technical, product and no department; capacity 1,000 so that no
ticket has to wait), 400 active tickets already assigned (10 each), and for each run a fresh batch of
tickets (a third billing, a third technical, a third without category); after each run the batch is closed
and the counters reconciled, so every run starts from the same state. Each router is an OS process with its
own connection, routing its own share of the batch, one transaction per ticket, as Celery workers would.
All versions run the same code (ticket lock, decision, events) except for the claim:

- **naive**: the design document's query made safe the obvious way: lock every agent of the organization,
  count each agent's open tickets from `support_tickets`, take the best, assign;
- **lock-all**: the same lock, but the loads read from the agents' counters (what is left of the gap once
  the counting is gone: the lock itself);
- **ours**: the best agent no other router holds (`FOR UPDATE SKIP LOCKED`), its counter incremented under a
  capacity condition.

Runs alternate (naive, lock-all, ours, twice) to share the machine's ups and downs; each run is checked:
every ticket of the batch assigned exactly once (one ASSIGNED event each), no agent over capacity, every
counter equal to the count of the agent's active tickets. ROUTING_BENCH_TICKETS_PER_ROUTER sets each router's
share of a batch (default 150) for a smaller run while developing. The one customer is made by the factory
(the ORM), so its encrypted fields are written as the app writes them.

Run as a script, this file is the router process (it reads its job as JSON from the command line).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The design document's choice (loads counted from the tickets), under a lock on every agent.
_COUNTED_CLAIM_SQL = """
WITH load AS (
    SELECT t.assigned_to_id, count(*) AS n FROM support_tickets t
    WHERE t.organization_id = %(org)s AND t.assigned_to_id IS NOT NULL AND NOT (t.status IN ('resolved', 'closed'))
    GROUP BY t.assigned_to_id
), pick AS (
    SELECT p.id, u.department, coalesce(load.n, 0) AS n
    FROM support_agents p
    JOIN users u ON u.id = p.user_id AND u.organization_id = p.organization_id
    LEFT JOIN load ON load.assigned_to_id = p.user_id
    WHERE p.organization_id = %(org)s AND u.is_active AND u.role = ANY(%(roles)s) AND p.accepting
      AND coalesce(load.n, 0) < p.capacity
      AND (%(category)s = '' OR u.department = %(category)s OR u.department = '')
    ORDER BY CASE WHEN u.department = %(category)s THEN 0 ELSE 1 END, 3, p.last_assigned_at NULLS FIRST,
             p.user_id
    LIMIT 1
), claimed AS (
    UPDATE support_agents a SET open_tickets = pick.n + 1, last_assigned_at = %(now)s
    FROM pick WHERE a.id = pick.id
    RETURNING a.user_id, a.open_tickets, a.capacity, pick.department
), assigned AS (
    UPDATE support_tickets t
    SET assigned_to_id = claimed.user_id, assigned_at = %(now)s, queue_reason = '', updated_at = %(now)s
    FROM claimed
    WHERE t.id = %(ticket)s AND t.organization_id = %(org)s AND t.assigned_to_id IS NULL
    RETURNING t.id
)
SELECT user_id, open_tickets, capacity, department, (SELECT count(*) FROM assigned) FROM claimed
"""


def _lock_all_claim(*, counted: bool):
    def claim(*, organization_id, ticket_id, category, now, wait):
        from django.db import connection

        from support import routing

        params = {
            "org": organization_id,
            "ticket": ticket_id,
            "roles": list(routing.ROUTED_ROLES),
            "category": category or "",
            "now": now,
        }
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM support_agents WHERE organization_id = %s ORDER BY id FOR UPDATE",
                [organization_id],
            )
            cursor.execute(_COUNTED_CLAIM_SQL if counted else routing._CLAIM_SQL.format(skip=""), params)
            row = cursor.fetchone()
        return row[:4] if row else None

    return claim


def _router(job: dict) -> None:
    import django

    django.setup()
    from crm.tenancy import tenant_context
    from support import routing

    if job["variant"] != "ours":
        routing._claim = _lock_all_claim(counted=job["variant"] == "naive")
    print("ready", flush=True)
    go = Path(job["go"])
    while not go.exists():
        time.sleep(0.002)
    started = time.time()
    errors, queued = [], 0
    for ticket_id in job["tickets"]:
        try:
            with tenant_context(job["organization_id"]):
                queued += routing.route_ticket(
                    ticket_id=ticket_id, organization_id=job["organization_id"]
                ).queued
        except Exception as error:
            errors.append(repr(error))
    print(
        json.dumps({"started": started, "finished": time.time(), "errors": errors, "queued": queued}),
        flush=True,
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.test")
    _router(json.loads(sys.argv[1]))
    sys.exit(0)


import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from crm.tenancy import system_context  # noqa: E402
from support.models import AgentProfile, Ticket, TicketEvent  # noqa: E402
from tests import factories  # noqa: E402
from tests.celery_worker import database_url  # noqa: E402
from tests.owner_db import analyze_as_owner, owner_connection  # noqa: E402

pytestmark = pytest.mark.bench

AGENTS = 40
TICKETS_PER_ROUTER = int(os.environ.get("ROUTING_BENCH_TICKETS_PER_ROUTER", "150"))
ROUNDS = 2


@pytest.fixture
def committed_rows_removed():
    yield
    with owner_connection() as conn:
        conn.execute("TRUNCATE crm_audit_log")


def _batch(org, customer, count: int, first_number: int) -> list[str]:
    """`count` new unassigned tickets, written set-based."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO support_tickets (id, organization_id, number, subject, description, customer_id, channel,"
            " type, category, requested_priority, priority, status, queue_reason, reopened_count, tags,"
            " created_at, updated_at)"
            " SELECT gen_random_uuid(), %(org)s, %(first)s + n, 'Bench ' || n, '', %(customer)s, 'web_form',"
            " 'question', (ARRAY['billing', 'technical', ''])[1 + n %% 3], 'normal', 'normal', 'new', '', 0,"
            " '{}', now(), now()"
            " FROM generate_series(1, %(count)s) AS n RETURNING id",
            {"org": org.pk, "customer": customer.pk, "first": first_number, "count": count},
        )
        return [str(row[0]) for row in cursor.fetchall()]


def _run(org, tickets: list[str], routers: int, *, variant: str) -> dict:
    test_db = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings.test",
        "DATABASE_URL": database_url(connection.settings_dict, test_db),
        "DATABASE_OWNER_URL": database_url(settings.DATABASE_OWNER, test_db),
        "REDIS_URL": settings.REDIS_URL,
    }
    go = Path(tempfile.mkdtemp(prefix="routing-bench-")) / "go"
    shares = [tickets[i::routers] for i in range(routers)]
    processes = []
    try:
        for share in shares:
            job = {"organization_id": str(org.pk), "tickets": share, "variant": variant, "go": str(go)}
            processes.append(
                subprocess.Popen(  # noqa: S603  (our own fixed command line)
                    [sys.executable, __file__, json.dumps(job)],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for process in processes:
            assert process.stdout.readline().strip() == "ready", process.stderr.read()[-3000:]
        go.touch()
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=900)
            assert process.returncode == 0, err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        go.unlink(missing_ok=True)
        go.parent.rmdir()
    assert [r["errors"] for r in reports] == [[]] * routers
    assert sum(r["queued"] for r in reports) == 0
    seconds = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    return {"seconds": seconds, "per_second": len(tickets) / seconds}


def _check(org, tickets: list[str]) -> None:
    """Each ticket of the batch assigned once; counters exact and within capacity."""
    with system_context():
        assigned = Ticket.objects.filter(pk__in=tickets, assigned_to__isnull=False).count()
        events = TicketEvent.objects.filter(ticket_id__in=tickets, kind="assigned").count()
        distinct = (
            TicketEvent.objects.filter(ticket_id__in=tickets, kind="assigned")
            .values("ticket_id")
            .distinct()
            .count()
        )
        profiles = list(AgentProfile.objects.filter(organization=org))
        counts = {}
        for user_id in (
            Ticket.objects.filter(organization=org, assigned_to__isnull=False)
            .exclude(status__in=["resolved", "closed"])
            .values_list("assigned_to_id", flat=True)
        ):
            counts[user_id] = counts.get(user_id, 0) + 1
    assert assigned == events == distinct == len(tickets)
    for p in profiles:
        assert p.open_tickets == counts.get(p.user_id, 0) <= p.capacity


VARIANTS = ("naive", "lock-all", "ours")


def _baseline(org, customer, agents: list) -> int:
    """10 active tickets already assigned to each agent; returns how many tickets were written."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO support_tickets (id, organization_id, number, subject, description, customer_id, channel,"
            " type, category, requested_priority, priority, status, queue_reason, reopened_count, tags,"
            " assigned_to_id, assigned_at, created_at, updated_at)"
            " SELECT gen_random_uuid(), %(org)s, 1000000 + n, 'Baseline ' || n, '', %(customer)s, 'web_form',"
            " 'question', '', 'normal', 'normal', 'open', '', 0, '{}', (%(agents)s::uuid[])[1 + n %% %(k)s],"
            " now(), now(), now()"
            " FROM generate_series(0, %(count)s - 1) AS n",
            {
                "org": org.pk,
                "customer": customer.pk,
                "agents": [str(a.pk) for a in agents],
                "k": len(agents),
                "count": 10 * len(agents),
            },
        )
        return cursor.rowcount


@pytest.mark.parametrize("routers", [8, 16])
def test_routing_throughput_skip_locked_vs_lock_all_agents(transactional_db, committed_rows_removed, routers):
    from support.routing import agents_reconcile

    org = factories.organization(slug=f"bench-routing-{routers}", name="Bench routing")
    departments = ["billing", "technical", "product", ""]
    agents = [factories.user(org, role="support_agent", department=departments[n % 4]) for n in range(AGENTS)]
    customer = factories.customer(org)
    with system_context():
        from support.services.agents import agents_reconcile

        _baseline(org, customer, agents)
        agents_reconcile(organization_id=org.pk)  # the baseline's tickets were written around the counters
        AgentProfile.objects.filter(organization=org).update(capacity=1000)
    analyze_as_owner("support_agents", "users", "support_tickets")
    results: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    number = 0
    for _ in range(ROUNDS):
        for variant in VARIANTS:
            with system_context():
                tickets = _batch(org, customer, routers * TICKETS_PER_ROUTER, number)
            number += len(tickets)
            results[variant].append(_run(org, tickets, routers, variant=variant))
            _check(org, tickets)
            # Back to the same starting point: the batch closed, the counters recounted (400 open tickets).
            with system_context():
                Ticket.objects.filter(pk__in=tickets).update(status="closed")
            with system_context():
                agents_reconcile(organization_id=org.pk)
                assert (
                    sum(AgentProfile.objects.filter(organization=org).values_list("open_tickets", flat=True))
                    == 400
                )
    median = {v: statistics.median(r["per_second"] for r in results[v]) for v in VARIANTS}
    load = os.getloadavg()[0]
    print(
        f"\nrouting, {routers} routers x {TICKETS_PER_ROUTER} tickets, {AGENTS} agents, 400 open tickets"
        f" (load {load:.1f}): naive {median['naive']:.0f}/s, lock-all {median['lock-all']:.0f}/s,"
        f" ours {median['ours']:.0f}/s; ours vs naive {median['ours'] / median['naive']:.1f}x,"
        f" vs lock-all {median['ours'] / median['lock-all']:.1f}x"
        f"\n  runs: " + ", ".join(f"{v} {[round(r['per_second']) for r in results[v]]}" for v in VARIANTS)
    )
    assert median["ours"] > median["lock-all"]
