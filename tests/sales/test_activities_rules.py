"""What beat does with activities: reminders fire once at their time (also when two runs overlap), and an
idle deal gets one follow-up task per idle spell, however often the rule runs."""

from __future__ import annotations

import datetime
import threading
import time

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from crm.celery import app as celery_app
from crm.models import Notification
from crm.tenancy import system_context, tenant_context
from sales import tasks
from sales.models import Activity, Opportunity, SalesSettings
from sales.services.activities import (
    activity_complete,
    activity_reminders_deliver,
    no_activity_followups_create,
)
from tests import factories
from tests.owner_db import owner_connection

# --- reminders ------------------------------------------------------------------------------------------------


@pytest.fixture
def rep(org_a):
    return factories.user(org_a, role="sales_rep", email="rita@org-a.test")


def _deliver(org, now, callbacks):
    with callbacks(execute=True), tenant_context(org.pk):
        return activity_reminders_deliver(organization_id=org.pk, now=now)


def _notifications(user) -> list[Notification]:
    with system_context():
        return list(Notification.objects.filter(recipient=user))


def test_a_reminder_fires_once_at_its_time_and_not_before(
    org_a, rep, mailoutbox, django_capture_on_commit_callbacks
):
    at = timezone.now().replace(microsecond=0) + datetime.timedelta(minutes=10)
    deal = factories.opportunity(org_a, name="Acme renewal")
    call = factories.activity(
        org_a, opportunity=deal, kind="call", subject="Call Acme", owner=rep, reminder_at=at
    )

    assert _deliver(org_a, at - datetime.timedelta(seconds=1), django_capture_on_commit_callbacks) == 0
    assert _notifications(rep) == [] and mailoutbox == []

    assert _deliver(org_a, at, django_capture_on_commit_callbacks) == 1
    assert _deliver(org_a, at + datetime.timedelta(minutes=1), django_capture_on_commit_callbacks) == 0
    (notification,) = _notifications(rep)
    assert notification.title == "Reminder: Call Acme" and "Acme renewal" in notification.body
    assert notification.url == f"/sales/opportunities/{deal.pk}/#activities-heading"
    assert [(m.subject, m.to) for m in mailoutbox] == [("Reminder: Call Acme", ["rita@org-a.test"])]
    with system_context():
        assert Activity.objects.get(pk=call.pk).reminded_at == at


def test_no_reminder_for_done_activities_nor_other_organizations(
    org_a, org_b, rep, mailoutbox, django_capture_on_commit_callbacks
):
    past = timezone.now() - datetime.timedelta(minutes=5)
    factories.activity(org_a, owner=rep, reminder_at=past, completed_at=past)
    other_rep = factories.user(org_b)
    theirs = factories.activity(org_b, owner=other_rep, reminder_at=past)
    assert _deliver(org_a, timezone.now(), django_capture_on_commit_callbacks) == 0
    assert _notifications(rep) == [] and _notifications(other_rep) == [] and mailoutbox == []
    with system_context():
        assert Activity.objects.get(pk=theirs.pk).reminded_at is None


def test_the_beat_task_enqueues_one_delivery_per_organization_with_due_reminders(
    org_a, org_b, rep, monkeypatch, django_capture_on_commit_callbacks
):
    past = timezone.now() - datetime.timedelta(minutes=1)
    factories.activity(org_a, owner=rep, reminder_at=past)
    factories.activity(org_a, owner=rep, reminder_at=past)
    factories.activity(org_b, reminder_at=timezone.now() + datetime.timedelta(hours=1))  # not due yet
    enqueued = []
    monkeypatch.setattr(tasks.deliver_activity_reminders, "delay_on_commit", lambda **kw: enqueued.append(kw))
    assert tasks.send_due_reminders() == 1
    assert enqueued == [{"organization_id": str(org_a.pk)}]
    entry = celery_app.conf.beat_schedule["activity-reminders"]
    assert entry["task"] == "sales.tasks.send_due_reminders" and entry["schedule"] == 60.0
    # The delivery task itself, run for the organization, delivers both.
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.deliver_activity_reminders(organization_id=str(org_a.pk)) == 2
    assert len(_notifications(rep)) == 2


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def committed_audit_rows_removed():
    yield
    with owner_connection() as conn:
        conn.execute("TRUNCATE crm_audit_log")


def test_two_runs_at_once_deliver_a_reminder_once(transactional_db, committed_audit_rows_removed):
    org = factories.organization(slug="race", name="Race Co")
    owner = factories.user(org, role="sales_rep", email="owner@race.test")
    reminder = factories.activity(
        org, owner=owner, reminder_at=timezone.now() - datetime.timedelta(minutes=1)
    )
    mail.outbox = []
    results: dict[int, object] = {}

    def run(n: int) -> None:
        try:
            with tenant_context(org.pk):
                results[n] = activity_reminders_deliver(organization_id=org.pk)
        except Exception as error:  # reported by the assertion below
            results[n] = repr(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    # Hold the activity's row and let go only once both runs wait for it: they claim at the same moment.
    with tenant_context(org.pk):
        Activity.objects.select_for_update().get(pk=reminder.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _lock_waiters() < 2:
            assert time.monotonic() < deadline, f"both runs should wait for the row: {results}"
            time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(results.values()) == [0, 1]
    assert len(_notifications(owner)) == 1
    assert [m.to for m in mail.outbox] == [["owner@race.test"]]


# --- the no-activity rule ---------------------------------------------------------------------------------------


def _age(deal, *, days: float, now=None) -> datetime.datetime:
    """Make the deal as old as `days` with no activity; returns when it was created."""
    created = (now or timezone.now()) - datetime.timedelta(days=days)
    with system_context():
        Opportunity.objects.filter(pk=deal.pk).update(created_at=created, last_activity_at=None)
    return created


def _rule(org, now=None) -> int:
    with tenant_context(org.pk):
        return no_activity_followups_create(organization_id=org.pk, now=now)


def _tasks(deal) -> list[Activity]:
    with system_context():
        return list(Activity.objects.filter(opportunity=deal).order_by("created_at", "id"))


def test_an_idle_deal_gets_one_follow_up_task_not_one_per_run(org_a, rep):
    deal = factories.opportunity(org_a, assigned_to=rep, name="Quiet deal")
    created = _age(deal, days=15)  # the default rule: 14 days
    assert [_rule(org_a) for _ in range(3)] == [1, 0, 0]
    (task,) = _tasks(deal)
    assert (task.kind, task.owner_id, task.customer_id) == ("task", rep.pk, deal.customer_id)
    assert task.subject == "Follow up: Quiet deal" and task.completed_at is None
    assert task.rule_key == f"no_activity:{deal.pk}:{created.astimezone(datetime.UTC).date().isoformat()}"


def test_the_rule_uses_the_organizations_number_of_days(org_a, rep):
    recent = factories.opportunity(org_a, assigned_to=rep)
    older = factories.opportunity(org_a, assigned_to=rep)
    _age(recent, days=4)
    _age(older, days=6)
    with system_context():
        SalesSettings.objects.update_or_create(organization=org_a, defaults={"no_activity_days": 5})
    assert _rule(org_a) == 1
    assert _tasks(recent) == [] and len(_tasks(older)) == 1


def test_closed_deals_and_other_organizations_get_no_follow_up(org_a, org_b, rep):
    won = factories.opportunity(org_a, assigned_to=rep, stage="Closed won")
    theirs = factories.opportunity(org_b)
    for deal in (won, theirs):
        _age(deal, days=30)
    assert _rule(org_a) == 0
    assert _tasks(won) == [] and _tasks(theirs) == []


def test_activity_after_the_follow_up_starts_a_new_idle_spell_with_its_own_task(org_a, rep):
    deal = factories.opportunity(org_a, assigned_to=rep)
    _age(deal, days=20)
    assert _rule(org_a) == 1
    (first,) = _tasks(deal)
    with tenant_context(org_a.pk, user=rep):
        activity_complete(activity=first, actor=rep, outcome="Called, no answer")
    assert _rule(org_a) == 0  # the deal just had activity
    later = timezone.now() + datetime.timedelta(days=15)
    assert _rule(org_a, now=later) == 1
    assert _rule(org_a, now=later + datetime.timedelta(hours=1)) == 0
    first, second = _tasks(deal)
    assert first.rule_key != second.rule_key and second.completed_at is None


def test_the_hourly_task_enqueues_organizations_with_open_deals(org_a, org_b, monkeypatch):
    factories.opportunity(org_a)
    factories.organization(slug="empty", name="Empty")
    enqueued = []
    monkeypatch.setattr(
        tasks.create_no_activity_followups, "delay_on_commit", lambda **kw: enqueued.append(kw)
    )
    assert tasks.no_activity_followups_all() == 1
    assert enqueued == [{"organization_id": str(org_a.pk)}]
    entry = celery_app.conf.beat_schedule["no-activity-followups"]
    assert entry["task"] == "sales.tasks.no_activity_followups_all" and entry["schedule"].minute == {5}
