"""Deadlines of privacy requests: 30 days (GDPR) and 45 (CCPA) from receipt, extensions, the countdown and
its SLA colour, and the reminders (7 days before, and overdue) sent exactly once per level however often
the sweep runs, to the handler or else the organization's admins."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from compliance.models import GdprRequest
from compliance.selectors.requests import deadline_facts
from compliance.services.requests import (
    privacy_deadlines_remind,
    request_assign,
    request_extend,
    request_reject,
)
from compliance.tasks import requests as tasks
from crm.models import Notification
from crm.tenancy import system_context, tenant_context
from tests import factories
from tests.compliance.requests_support import create

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def _notifications(org) -> list[tuple[str, str]]:
    with tenant_context(org.pk):
        return sorted(
            (n.recipient.email, n.title)
            for n in Notification.objects.filter(organization_id=org.pk).select_related("recipient")
        )


def _sweep(org, now) -> int:
    with tenant_context(org.pk):
        return privacy_deadlines_remind(now=now)


@pytest.mark.parametrize(("kind", "days"), [("gdpr", 30), ("ccpa", 45)])
def test_the_deadline_is_the_statutory_period_after_receipt(org_a, kind, days):
    privacy_request = create(org_a, kind=kind, resident_state="CA")
    assert privacy_request.due_at == privacy_request.received_at + days * DAY


def test_the_countdown_and_its_colour_follow_support_s_sla_palette():
    now = timezone.now()
    assert deadline_facts(status="received", due_at=now + 20 * DAY, now=now) == {
        "state": "ok",
        "overdue": False,
        "countdown": "due in 20 days",
    }
    assert deadline_facts(status="processing", due_at=now + 7 * DAY, now=now)["state"] == "at_risk"
    assert (
        deadline_facts(status="verifying", due_at=now + 5 * 3600 * datetime.timedelta(seconds=1), now=now)[
            "countdown"
        ]
        == "due in 5 h"
    )
    assert deadline_facts(status="received", due_at=now - 3 * DAY, now=now) == {
        "state": "breached",
        "overdue": True,
        "countdown": "overdue by 3 days",
    }
    assert deadline_facts(status="completed", due_at=now - 3 * DAY, now=now)["state"] == "met"
    assert deadline_facts(status="rejected", due_at=now - 3 * DAY, now=now)["state"] == "paused"


def test_reminders_go_once_per_level_to_the_admins_of_an_unassigned_request(org_a):
    admins = [factories.user(org_a, role="admin") for _ in range(2)]
    factories.user(org_a, role="sales_manager")  # not an admin: not reminded
    privacy_request = create(org_a)
    due = privacy_request.due_at
    assert _sweep(org_a, due - 10 * DAY) == 0
    assert _sweep(org_a, due - 7 * DAY) == 1
    assert _sweep(org_a, due - 6 * DAY) == 0
    assert _sweep(org_a, due - 1 * DAY) == 0
    soon = sorted((a.email, "GDPR-00001 is due in 7 days") for a in admins)
    assert _notifications(org_a) == soon
    assert _sweep(org_a, due + DAY) == 1
    assert _sweep(org_a, due + 2 * DAY) == 0
    assert _sweep(org_a, due + 30 * DAY) == 0
    assert _notifications(org_a) == sorted(soon + [(a.email, "GDPR-00001 is overdue") for a in admins])
    with tenant_context(org_a.pk):
        levels = dict(Notification.objects.values_list("title", "level").distinct())
    assert levels == {"GDPR-00001 is due in 7 days": "warning", "GDPR-00001 is overdue": "danger"}


def test_a_request_first_seen_overdue_gets_only_the_overdue_reminder(org_a, admin_a):
    privacy_request = create(org_a)
    assert _sweep(org_a, privacy_request.due_at + DAY) == 1
    assert _sweep(org_a, privacy_request.due_at + 2 * DAY) == 0
    assert _notifications(org_a) == [(admin_a.email, "GDPR-00001 is overdue")]


def test_the_handler_is_reminded_instead_of_the_admins(org_a, admin_a):
    handler = factories.user(org_a, role="admin")
    privacy_request = create(org_a)
    with tenant_context(org_a.pk):
        request_assign(privacy_request=privacy_request, actor=admin_a, assignee=handler)
    _sweep(org_a, privacy_request.due_at - 3 * DAY)
    assert _notifications(org_a) == [(handler.email, "GDPR-00001 is due in 3 days")]


def test_closed_requests_are_not_reminded(org_a, admin_a):
    privacy_request = create(org_a)
    with tenant_context(org_a.pk):
        request_reject(privacy_request=privacy_request, actor=admin_a, reason="Duplicate")
    assert _sweep(org_a, privacy_request.due_at + DAY) == 0
    create(org_a, kind="ccpa", resident_state="NV")  # not applicable: closed at once
    assert _sweep(org_a, timezone.now() + 60 * DAY) == 0


def test_an_extension_gives_the_new_deadline_its_own_reminders(org_a, admin_a):
    privacy_request = create(org_a)
    due = privacy_request.due_at
    assert _sweep(org_a, due - 5 * DAY) == 1
    with tenant_context(org_a.pk):
        request_extend(privacy_request=privacy_request, actor=admin_a, reason="Complex", days=14)
        new_due = GdprRequest.objects.get(pk=privacy_request.pk).due_at
    assert new_due == due + 14 * DAY
    assert _sweep(org_a, due + DAY) == 0  # the old deadline passed: no longer overdue
    assert _sweep(org_a, new_due - 2 * DAY) == 1
    assert _sweep(org_a, new_due + DAY) == 1
    assert _sweep(org_a, new_due + 2 * DAY) == 0


def test_the_beat_task_sweeps_every_organization_once(org_a, org_b, admin_a, admin_b):
    a = create(org_a)
    b = create(org_b, kind="ccpa", resident_state="CA")
    with system_context():
        GdprRequest.objects.filter(pk=a.pk).update(due_at=timezone.now() - DAY)
        type(b).objects.filter(pk=b.pk).update(due_at=timezone.now() + 2 * DAY)
    assert tasks.remind_privacy_deadlines.apply().get() == 2
    assert tasks.remind_privacy_deadlines.apply().get() == 0
    assert _notifications(org_a) == [(admin_a.email, "GDPR-00001 is overdue")]
    assert _notifications(org_b) == [(admin_b.email, "CCPA-00001 is due in 1 day")]
