"""Routing under concurrency: several OS processes, each with its own database connection, route, release
and re-route the same tickets at the same moment. Afterwards: no ticket was assigned twice, no agent is over
capacity, and every agent's counter equals an independent count of their active tickets.

Run as a script (`python tests/support/test_routing_concurrency.py '<json job>'`) this file is the worker
that the tests start: it connects to the test database named in DATABASE_URL, says "ready", waits for the
go signal (a file appearing), does its job and prints what happened as JSON.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _worker(job: dict) -> None:
    """One router process (see the module docstring)."""
    import django

    django.setup()
    from django.utils import timezone

    from crm.tenancy import tenant_context
    from support import routing
    from support.models import Status, Ticket

    org_id = job["organization_id"]
    print("ready", flush=True)
    go = Path(job["go"])
    while not go.exists():
        time.sleep(0.005)
    done, errors = [], []
    started = time.monotonic()
    for step in job["steps"]:
        kind, ticket_id = step
        try:
            with tenant_context(org_id):
                if kind == "route":
                    decision = routing.route_ticket(ticket_id=ticket_id, organization_id=org_id)
                    done.append([ticket_id, str(decision.agent_id) if decision.agent_id else None])
                elif kind == "resolve":
                    # What ticket_set_status does: the status change, then the release, in one transaction.
                    Ticket.objects.filter(pk=ticket_id).update(
                        status=Status.RESOLVED, resolved_at=timezone.now()
                    )
                    routing.ticket_release(ticket=Ticket.objects.get(pk=ticket_id))
                    done.append([ticket_id, "released"])
                elif kind == "waiting":
                    done.append([None, routing.route_waiting(organization_id=org_id)])
        except Exception as error:  # reported to the test, which fails on any
            errors.append(f"{kind} {ticket_id}: {error!r}")
    elapsed = time.monotonic() - started
    print(json.dumps({"done": done, "errors": errors, "seconds": elapsed}), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.test")
    _worker(json.loads(sys.argv[1]))
    sys.exit(0)


# --- the tests ---------------------------------------------------------------------------------------------------

import pytest  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from crm.tenancy import system_context, tenant_context  # noqa: E402
from support import routing  # noqa: E402
from support.models import AgentProfile, Ticket, TicketEvent  # noqa: E402
from tests import factories  # noqa: E402
from tests.celery_worker import database_url  # noqa: E402
from tests.owner_db import owner_connection  # noqa: E402
from tests.support.test_routing import agent, profile, route, ticket, true_counts  # noqa: E402

PROCESSES = 6


@pytest.fixture
def committed_audit_rows_removed():
    yield
    with owner_connection() as conn:
        conn.execute("TRUNCATE crm_audit_log")


def run_processes(jobs: list[dict], *, timeout: float = 120) -> list[dict]:
    """Start one worker per job, let them all go at once, and collect their reports."""
    test_db = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings.test",
        "DATABASE_URL": database_url(connection.settings_dict, test_db),
        "DATABASE_OWNER_URL": database_url(settings.DATABASE_OWNER, test_db),
        "REDIS_URL": settings.REDIS_URL,
    }
    go = Path(tempfile.mkdtemp(prefix="routing-race-")) / "go"
    processes = []
    try:
        for job in jobs:
            argument = json.dumps({**job, "go": str(go)})
            # A fixed command line of our own (no shell, no outside input).
            processes.append(
                subprocess.Popen(  # noqa: S603
                    [sys.executable, __file__, argument],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for process in processes:
            line = process.stdout.readline().strip()
            assert line == "ready", f"a worker did not start: {line} {process.stderr.read()[-3000:]}"
        go.touch()
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            assert process.returncode == 0, err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        go.unlink(missing_ok=True)
        go.parent.rmdir()


def _assert_consistent(org, capacities: dict) -> dict:
    """No ticket assigned twice, nobody over capacity, counters equal the true counts; returns the counts."""
    counts = true_counts(org)
    with system_context():
        assigned_events: dict = {}
        for ticket_id, new in TicketEvent.objects.filter(organization=org, kind="assigned").values_list(
            "ticket_id", "new_value"
        ):
            assigned_events.setdefault(ticket_id, []).append(new)
        stored = dict(AgentProfile.objects.filter(organization=org).values_list("user_id", "open_tickets"))
        assignees = dict(Ticket.objects.filter(organization=org).values_list("pk", "assigned_to_id"))
    doubles = {t: events for t, events in assigned_events.items() if len(events) > 1}
    assert not doubles, f"tickets assigned more than once: {doubles}"
    for ticket_id, events in assigned_events.items():
        assert events == [str(assignees[ticket_id])]
    for user_id, capacity in capacities.items():
        assert counts.get(user_id, 0) <= capacity, f"agent {user_id} over capacity"
        assert stored.get(user_id, 0) == counts.get(user_id, 0), f"counter of {user_id} is wrong"
    return counts


def _team(org):
    """Five agents, 20 slots: billing 3, technical 4 and 6 (an admin), two without a department 5 and 2."""
    people = [
        (agent(org, department="billing"), 3),
        (agent(org, department="technical"), 4),
        (agent(org, role="admin", department="technical"), 6),
        (agent(org), 5),
        (agent(org), 2),
    ]
    for user, capacity in people:
        profile(org, user, capacity=capacity)
    return {user.pk: capacity for user, capacity in people}


def test_many_processes_routing_the_same_tickets_assign_each_once_and_fill_capacity_exactly(
    transactional_db, committed_audit_rows_removed
):
    org = factories.organization(slug="race-route", name="Race Route")
    capacities = _team(org)
    customer = factories.customer(org)
    tickets = [ticket(org, customer=customer, category=c) for c in ["billing", "technical", ""] * 20]
    ids = [str(t.pk) for t in tickets]
    jobs = []
    for n in range(PROCESSES):
        order = ids[:]
        random.Random(n).shuffle(order)  # every process tries every ticket, each in its own order
        jobs.append({"organization_id": str(org.pk), "steps": [["route", i] for i in order]})
    reports = run_processes(jobs)
    assert [r["errors"] for r in reports] == [[]] * PROCESSES
    counts = _assert_consistent(org, capacities)
    # Every slot is open to the uncategorised tickets, so all 20 are filled, and nothing beyond.
    assert counts == capacities
    with system_context():
        assert Ticket.objects.filter(organization=org, assigned_to__isnull=False).count() == 20
        waiting = list(Ticket.objects.filter(organization=org, assigned_to__isnull=True))
    assert len(waiting) == 40 and all(t.queue_reason for t in waiting)
    # What each process was told agrees with the outcome.
    with system_context():
        final = {
            str(k): str(v) if v else None
            for k, v in Ticket.objects.filter(organization=org).values_list("pk", "assigned_to_id")
        }
    for report in reports:
        for ticket_id, agent_id in report["done"]:
            assert agent_id is None or agent_id == final[ticket_id]


def test_releases_and_queue_rounds_racing_keep_every_counter_exact(
    transactional_db, committed_audit_rows_removed
):
    org = factories.organization(slug="race-churn", name="Race Churn")
    capacities = _team(org)
    customer = factories.customer(org)
    first = [ticket(org, customer=customer) for _ in range(20)]
    for t in first:
        route(org, t)
    queued = [ticket(org, customer=customer, category=c) for c in ["billing", "technical", ""] * 8]
    for t in queued:
        assert route(org, t).queued
    # Three processes resolve the first wave (each a third, and one slice twice over: a retried resolve),
    # three others run queue rounds, all at once.
    ids = [str(t.pk) for t in first]
    slices = [ids[0:7], ids[7:14], ids[14:20] + ids[0:3]]
    jobs = [{"organization_id": str(org.pk), "steps": [["resolve", i] for i in part]} for part in slices]
    jobs += [{"organization_id": str(org.pk), "steps": [["waiting", None]] * 5} for _ in range(3)]
    reports = run_processes(jobs)
    assert [r["errors"] for r in reports] == [[]] * len(jobs)
    with tenant_context(org.pk):
        routing.route_waiting(organization_id=org.pk)  # whatever a skipped lock left for the next round
    counts = _assert_consistent(org, capacities)
    with system_context():
        assert not Ticket.objects.filter(pk__in=[t.pk for t in first], status="new").exists()
        waiting = list(Ticket.objects.filter(organization=org, assigned_to__isnull=True))
        departments = dict(
            AgentProfile.objects.filter(organization=org).values_list("user_id", "user__department")
        )
    # 20 slots for 24 queued tickets: at least four wait, and none of them fits a free slot.
    assert len(waiting) >= 4
    for t in waiting:
        eligible = [u for u, d in departments.items() if not t.category or d in (t.category, "")]
        assert all(counts.get(u, 0) == capacities[u] for u in eligible), t.category
