"""The send tasks with a real Celery worker (a subprocess on the test queue, against the test database): a
worker killed in the middle of a chunk and a retried task send nobody twice. The killed chunk's emails stay
'sending' until the sweep marks them failed; they are never resent."""

from __future__ import annotations

import datetime
import email
import tempfile
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from crm.tenancy import system_context, tenant_context
from marketing import sending
from marketing.models import Campaign, EmailSend
from marketing.tasks.sends import send_campaign_chunk, start_campaign_send
from tests import factories
from tests.celery_worker import running_worker, wait_for
from tests.marketing import factories as mf

RECIPIENTS = 30  # three chunks of 10 in the worker's settings


def _outbox(directory: Path) -> list[str]:
    """The recipients of the messages that really went out."""
    return [email.message_from_bytes(path.read_bytes())["To"] for path in directory.glob("*.eml")]


def _statuses(org, campaign) -> dict[str, int]:
    with tenant_context(org.pk):
        rows = EmailSend.objects.filter(campaign_id=campaign.pk).values_list("status", flat=True)
        counts: dict[str, int] = {}
        for status in rows:
            counts[status] = counts.get(status, 0) + 1
        return counts


def test_a_worker_killed_mid_chunk_and_a_retried_task_send_nobody_twice(transactional_db):
    org = factories.organization(slug="send-kill", name="Send kill")
    customers = [
        factories.customer(org, email=f"kill{n}@send-kill.example", email_opt_in=True)
        for n in range(RECIPIENTS)
    ]
    campaign = mf.email_campaign(org, segments=[mf.segment(org, *customers)])
    with tenant_context(org.pk):
        Campaign.objects.filter(pk=campaign.pk).update(send_state="materializing", send_at=timezone.now())
        sending.start_campaign_send(campaign_id=campaign.pk)
    outbox = Path(tempfile.mkdtemp(prefix="crm-outbox-"))
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.marketing.send_worker_settings",
        "CRM_TEST_OUTBOX": str(outbox),
        "CRM_TEST_MAIL_DELAY": "0.4",
    }
    queue = settings.CELERY_TASK_DEFAULT_QUEUE  # the chunk tasks enqueue their successors there
    kwargs = {"campaign_id": str(campaign.pk), "organization_id": str(org.pk)}

    with running_worker(env=env, queue=queue) as worker:
        send_campaign_chunk.apply_async(kwargs=kwargs, queue=queue)
        wait_for(lambda: len(_outbox(outbox)) >= 3, worker, "the first messages of the chunk")
        worker.process.kill()  # SIGKILL in the middle of the chunk: no chance to record anything
        worker.process.wait(timeout=10)
    delivered_before_kill = _outbox(outbox)
    assert 3 <= len(delivered_before_kill) < 10
    assert _statuses(org, campaign) == {"sending": 10, "queued": 20}

    with running_worker(env=env, queue=queue) as worker:
        send_campaign_chunk.apply_async(kwargs=kwargs, queue=queue)  # the retry
        send_campaign_chunk.apply_async(kwargs=kwargs, queue=queue)  # and a duplicate of it, for good measure
        wait_for(
            lambda: _statuses(org, campaign).get("sent", 0) == 20, worker, "the rest of the send", seconds=60
        )

    with system_context():
        swept = sending.sweep_interrupted(
            now=timezone.now() + sending.STALE_AFTER + datetime.timedelta(seconds=1)
        )
    with tenant_context(org.pk):
        sending.finish_if_done(campaign_id=campaign.pk, organization_id=org.pk)
        campaign = Campaign.objects.get(pk=campaign.pk)
        failed = set(
            EmailSend.objects.filter(campaign_id=campaign.pk, status="failed").values_list("email", flat=True)
        )
        sent = set(
            EmailSend.objects.filter(campaign_id=campaign.pk, status="sent").values_list("email", flat=True)
        )
    went_out = _outbox(outbox)
    assert len(went_out) == len(set(went_out))  # nobody got the email twice
    assert set(delivered_before_kill) <= failed  # sent before the kill, unrecorded: failed, never resent
    assert set(went_out) == sent | set(delivered_before_kill)
    assert swept == [(org.pk, campaign.pk, 10)]
    assert (campaign.sent_count, campaign.failed_count, campaign.send_state) == (20, 10, "done")
    for path in outbox.glob("*.eml"):
        path.unlink()
    outbox.rmdir()


def test_two_workers_write_the_slices_in_parallel_and_every_recipient_gets_one_email(transactional_db):
    """The launch path end to end on real workers: the planner's slices (4 customers each, so 8 of them)
    are taken by two worker processes at once; the one that writes the last slice starts the send."""
    org = factories.organization(slug="send-slices", name="Send slices")
    customers = [
        factories.customer(org, email=f"slice{n}@send-slices.example", email_opt_in=True)
        for n in range(RECIPIENTS)
    ]
    campaign = mf.email_campaign(org, segments=[mf.segment(org, *customers)])
    outbox = Path(tempfile.mkdtemp(prefix="crm-outbox-"))
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.marketing.send_worker_settings",
        "CRM_TEST_OUTBOX": str(outbox),
        "CRM_TEST_MAIL_DELAY": "0",
        "MARKETING_MATERIALIZE_SLICE": "4",
    }
    queue = settings.CELERY_TASK_DEFAULT_QUEUE  # where the planner enqueues the slices
    with tenant_context(org.pk):
        Campaign.objects.filter(pk=campaign.pk).update(send_state="materializing", send_at=timezone.now())
    with running_worker(env=env, queue=queue) as first, running_worker(env=env, queue=queue) as second:
        for worker in (first, second):
            wait_for(lambda w=worker: "ready." in w.log.read_text(), worker, "the worker to start")
        start_campaign_send.apply_async(
            kwargs={"campaign_id": str(campaign.pk), "organization_id": str(org.pk)}, queue=queue
        )
        wait_for(lambda: _statuses(org, campaign) == {"sent": RECIPIENTS}, first, "the send", seconds=60)
        logs = [worker.log.read_text() for worker in (first, second)]
    with tenant_context(org.pk):
        campaign = Campaign.objects.get(pk=campaign.pk)
    assert len(campaign.materialize_bounds) == 7 and sorted(campaign.materialized_slices) == list(range(8))
    assert campaign.recipients_total == RECIPIENTS
    went_out = _outbox(outbox)
    assert sorted(went_out) == sorted(c.email for c in customers)  # everyone, once
    # Eight slice tasks, one per slice, received between the two workers.
    received = [
        line
        for log in logs
        for line in log.splitlines()
        if "marketing.tasks.materialize_campaign_slice[" in line and "received" in line
    ]
    assert len(received) == 8
    for path in outbox.glob("*.eml"):
        path.unlink()
    outbox.rmdir()
