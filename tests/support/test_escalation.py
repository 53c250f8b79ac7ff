"""The escalation sweep: supervisors warned at half time, management at the deadline, each exactly once per
ticket, level and target, however often and however concurrently the sweep runs."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction

from crm.models import Notification
from crm.tenancy import system_context, tenant_context
from support import escalation, sla
from support.models import Escalation, TicketEvent
from support.tasks import escalate_organization, sweep_escalations
from tests import factories
from tests.owner_db import owner_connection
from tests.support.test_sla_apply import make_ticket, reload, status_change

UTC = dt.UTC


def at(hour, minute=0, day=2):
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def org(db):
    return factories.organization(time_zone="UTC")


@pytest.fixture
def people(org):
    """Who should hear what: two supervisors (support managers), an admin; and who should not."""
    return {
        "supervisor": factories.user(org, role="support_manager"),
        "supervisor2": factories.user(org, role="support_manager"),
        "admin": factories.user(org, role="admin"),
        "agent": factories.user(org, role="support_agent"),
        "gone": factories.user(org, role="support_manager", is_active=False),
        "sales": factories.user(org, role="sales_manager"),
    }


def sweep(org, now):
    with tenant_context(org.pk):
        return escalation.escalation_sweep(organization_id=org.pk, now=now)


def notifications_by_recipient(org) -> Counter:
    with system_context():
        return Counter(
            Notification.objects.filter(organization=org).values_list("recipient__email", flat=True)
        )


def escalations(org) -> list[tuple]:
    with system_context():
        return sorted(Escalation.objects.filter(organization=org).values_list("ticket_id", "level", "target"))


def test_a_sweep_run_again_and_again_notifies_once_per_ticket_and_level(org, people):
    # Billing ticket, Monday 09:00 on 09-17: first response due 10:00 (half: 09:30), resolution due 13:00
    # (half: 11:00).
    ticket = make_ticket(org, type="billing_issue")
    assert (reload(ticket).first_response_warn_at, reload(ticket).resolution_warn_at) == (at(9, 30), at(11))
    timeline = [
        (at(9, 29), (0, 0)),
        (at(9, 45), (1, 0)),  # first response at half time: warning
        (at(9, 50), (0, 0)),
        (at(10), (0, 1)),  # first response due: breach
        (at(10, 30), (0, 0)),
        (at(11, 15), (1, 0)),  # resolution at half time: warning
        (at(13), (0, 1)),  # resolution due: breach
        (at(15), (0, 0)),
    ]
    for now, (warnings, breaches) in timeline:
        for _attempt in range(3):
            result = sweep(org, now)
            assert (result.warnings, result.breaches) == (
                (warnings, breaches) if _attempt == 0 else (0, 0)
            ), now
    assert escalations(org) == sorted(
        (ticket.pk, level, target)
        for level in ("warning", "breach")
        for target in ("first_response", "resolution")
    )
    counts = notifications_by_recipient(org)
    # Supervisors: 2 warnings + 2 breaches each; the admin: the 2 breaches; nobody else anything.
    assert counts == {
        people["supervisor"].email: 4,
        people["supervisor2"].email: 4,
        people["admin"].email: 2,
    }
    with system_context():
        events = list(
            TicketEvent.objects.filter(ticket=ticket, kind="escalated").values_list("old_value", "new_value")
        )
        notified = set(Escalation.objects.get(ticket=ticket, level="breach", target="resolution").notified)
        titles = set(Notification.objects.filter(recipient=people["admin"]).values_list("title", "level"))
    assert sorted(events) == sorted(
        [
            ("first_response", "warning"),
            ("first_response", "breach"),
            ("resolution", "warning"),
            ("resolution", "breach"),
        ]
    )
    assert notified == {people["supervisor"].pk, people["supervisor2"].pk, people["admin"].pk}
    number = reload(ticket).ticket_number
    assert titles == {
        (f"SLA breached: {number}, first response was due 2026-03-02 10:00 UTC", "danger"),
        (f"SLA breached: {number}, resolution was due 2026-03-02 13:00 UTC", "danger"),
    }


def test_a_first_sweep_after_the_deadline_records_the_breach_only(org, people):
    ticket = make_ticket(org, type="billing_issue")
    result = sweep(org, at(16))
    assert (result.warnings, result.breaches) == (0, 2)
    assert [row[1] for row in escalations(org)] == ["breach", "breach"]
    assert sweep(org, at(17)).breaches == 0
    assert reload(ticket).pk == ticket.pk


def test_paused_resolved_and_answered_tickets_are_not_escalated(org, people):
    paused = make_ticket(org, type="billing_issue")
    status_change(paused, "pending", at(9, 10))
    resolved = make_ticket(org, type="billing_issue")
    status_change(resolved, "resolved", at(9, 20))
    answered = make_ticket(org, type="billing_issue")
    with system_context():
        TicketEvent.objects.create(organization=org, ticket=answered, kind="first_response", at=at(9, 15))
    for ticket, moment in ((paused, at(9, 10)), (resolved, at(9, 20)), (answered, at(9, 15))):
        with system_context():
            sla.ticket_apply_sla(ticket=reload(ticket), now=moment)
    with system_context():
        answered_row = reload(answered)
        answered_row.first_response_at = at(9, 15)
        answered_row.save(update_fields=["first_response_at"])
    result = sweep(org, at(12))
    # Only the answered ticket's resolution is past half time (11:00); nothing else.
    assert (result.warnings, result.breaches) == (1, 0)
    assert escalations(org) == [(answered.pk, "warning", "resolution")]


def test_a_ticket_of_another_organization_is_not_swept(org, people):
    other = factories.organization(time_zone="UTC")
    other_manager = factories.user(other, role="support_manager")
    make_ticket(other, type="billing_issue")
    assert sweep(org, at(16)) == escalation.SweepResult(0, 0)
    assert notifications_by_recipient(other) == Counter()
    with tenant_context(other.pk):
        assert escalation.escalation_sweep(organization_id=other.pk, now=at(16)).breaches == 2
    assert notifications_by_recipient(other) == {other_manager.email: 2}


def test_the_beat_task_enqueues_one_sweep_per_organization_with_work(org, people, monkeypatch):
    quiet = factories.organization()
    make_ticket(quiet, type="billing_issue", created=dt.datetime(2099, 1, 5, 9, tzinfo=UTC))  # far ahead
    make_ticket(org, type="billing_issue")
    enqueued = []
    monkeypatch.setattr(escalate_organization, "delay_on_commit", lambda **kwargs: enqueued.append(kwargs))
    assert sweep_escalations.apply().get() == 1
    assert enqueued == [{"organization_id": str(org.pk)}]
    # The task itself, eagerly, in the organization's context: both deadlines of Monday 2026 are past.
    assert escalate_organization.apply(kwargs={"organization_id": str(org.pk)}).get() == {
        "warnings": 0,
        "breaches": 2,
    }
    with system_context():
        assert escalation.organizations_with_due_escalations() == []
    from celery.schedules import crontab

    from crm.celery import app as celery_app

    entry = celery_app.conf.beat_schedule["sla-escalations"]
    assert (
        entry["task"] == "support.tasks.sweep_escalations" and entry["schedule"] == crontab()
    )  # every minute


# --- concurrency ---------------------------------------------------------------------------------------------


@pytest.fixture
def committed_audit_rows_removed():
    """Committed tests leave audit rows (the log is append-only for the app role): the owner removes them."""
    yield
    with owner_connection() as conn:
        conn.execute("TRUNCATE crm_audit_log")


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _run_sweeps(org, now, count, results, start=None):
    def run(n):
        try:
            if start is not None:
                start.wait(timeout=10)
            results[n] = sweep(org, now)
        except Exception as error:  # reported by the assertions, with the thread's own error
            results[n] = repr(error)
        finally:
            connection.close()  # this thread's own connection

    return [threading.Thread(target=run, args=(n,)) for n in range(count)]


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_escalate_once(committed_audit_rows_removed):
    org = factories.organization(time_zone="UTC")
    supervisor = factories.user(org, role="support_manager")
    admin = factories.user(org, role="admin")
    first = make_ticket(org, type="billing_issue")
    second = make_ticket(org, type="billing_issue")
    results: dict = {}
    threads = _run_sweeps(org, at(16), 2, results)
    # Hold the key one of the sweeps wants (an uncommitted breach of the first ticket), start both, let go
    # only once both wait for it, then roll back: one sweep inserts it, the other waits on that one's
    # uncommitted row and, once it commits, skips it.
    with pytest.raises(RuntimeError, match="roll back"):
        with transaction.atomic(), tenant_context(org.pk):
            Escalation.objects.create(
                organization=org, ticket=first, level="breach", target="first_response", due_at=at(10)
            )
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 10
            while _lock_waiters() < 2:
                assert time.monotonic() < deadline, f"both sweeps should wait for the held key: {results}"
                time.sleep(0.02)
            raise RuntimeError("roll back")
    for thread in threads:
        thread.join(timeout=20)
    assert all(isinstance(r, escalation.SweepResult) for r in results.values()), results
    assert sum(r.breaches for r in results.values()) == 4  # 2 tickets x 2 targets, once each
    assert len(escalations(org)) == 4
    assert notifications_by_recipient(org) == {supervisor.email: 4, admin.email: 4}
    with system_context():
        assert TicketEvent.objects.filter(organization=org, kind="escalated").count() == 4
    assert {row[0] for row in escalations(org)} == {first.pk, second.pk}


@pytest.mark.django_db(transaction=True)
def test_many_sweeps_racing_notify_once_per_ticket_and_level(committed_audit_rows_removed):
    org = factories.organization(time_zone="UTC")
    supervisor = factories.user(org, role="support_manager")
    tickets = [make_ticket(org, type="billing_issue") for _ in range(6)]
    results: dict = {}
    start = threading.Barrier(4)
    threads = _run_sweeps(org, at(9, 45), 4, results, start=start)  # first responses at half time
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(isinstance(r, escalation.SweepResult) for r in results.values()), results
    assert sum(r.warnings for r in results.values()) == len(tickets)
    assert notifications_by_recipient(org) == {supervisor.email: len(tickets)}
