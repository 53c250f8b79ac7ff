"""Tasks of the sends area (see marketing/tasks/__init__.py): starting a launched campaign, its chains of
chunk tasks, sequence emails, and the two beat jobs (the dispatcher every minute, the sweep every ten).

A chunk task claims its emails in the task's own transaction; they are delivered once that transaction has
committed (`transaction.on_commit`), and then the lane enqueues its next chunk. Every task is idempotent:
claims move rows out of 'queued', so a task run twice sends nothing twice.
"""

from __future__ import annotations

import datetime

from celery import shared_task
from django.db import transaction

from crm.celery import SystemTask, TenantTask

__all__ = [
    "dispatch_due_campaigns",
    "materialize_campaign_slice",
    "send_campaign_chunk",
    "send_sequence_email",
    "start_campaign_send",
    "sweep_interrupted_sends",
]


def _backoff(retry: int) -> int:
    """Seconds before retrying a chunk whose mail server was unreachable: 15 s doubling, at most 16 min."""
    return min(15 * 2**retry, 960)


@shared_task(name="marketing.tasks.start_campaign_send", base=TenantTask, ignore_result=True)
def start_campaign_send(campaign_id: str) -> int:
    """Plan a launched campaign's materialization: its slices are enqueued on commit (a single slice is
    written at once, and the chunks enqueued). Returns the recipients written so far (0 while slices run)."""
    from marketing import sending

    campaign = sending.start_campaign_send(campaign_id=campaign_id)
    return campaign.recipients_total if campaign else 0


@shared_task(name="marketing.tasks.materialize_campaign_slice", base=TenantTask, ignore_result=True)
def materialize_campaign_slice(campaign_id: str, index: int) -> bool:
    """Write one slice of a campaign's recipients; the last slice starts the send (chunks enqueued on
    commit). Returns whether this run wrote and marked the slice."""
    from marketing import sending

    return sending.materialize_slice(campaign_id=campaign_id, index=index) is not None


@shared_task(name="marketing.tasks.send_campaign_chunk", base=TenantTask, ignore_result=True)
def send_campaign_chunk(campaign_id: str, retry: int = 0) -> int:
    """One chunk of a campaign's lane: claim up to MARKETING_SEND_CHUNK emails (throttled), deliver them after
    commit, then enqueue the lane's next chunk. Ends the lane when the send is paused or nothing is left.
    Returns how many emails it claimed."""
    from crm.tenancy import current_organization_id
    from marketing import sending

    organization_id = str(current_organization_id())
    step = sending.campaign_chunk_step(campaign_id=campaign_id)

    def next_chunk(countdown: float, retry: int = 0) -> None:
        send_campaign_chunk.apply_async(
            kwargs={"campaign_id": campaign_id, "retry": retry, "organization_id": organization_id},
            countdown=countdown,
        )

    if step.wait:
        transaction.on_commit(lambda: next_chunk(step.wait, retry))
    elif step.claim is not None:
        claim = step.claim

        def deliver_and_continue() -> None:
            delivery = sending.deliver(claim)
            if not delivery.connection_error:
                next_chunk(0)
            elif retry < sending.MAX_CONNECTION_RETRIES:
                next_chunk(_backoff(retry), retry + 1)
            else:
                _give_up(campaign_id, organization_id, delivery.connection_error)

        transaction.on_commit(deliver_and_continue)
        return claim.claimed
    return 0


def _give_up(campaign_id: str, organization_id: str, error: str) -> None:
    """The mail server stayed unreachable through every retry: the send fails (queued emails stay queued, a
    person resumes it once the server is back)."""
    from crm.tenancy import tenant_context
    from marketing.models import Campaign

    with tenant_context(organization_id):
        Campaign.objects.filter(pk=campaign_id, send_state__in=("sending", "testing")).update(
            send_state=Campaign.SendState.FAILED, send_error=f"Mail server unreachable: {error}"[:500]
        )


@shared_task(name="marketing.tasks.send_sequence_email", base=TenantTask, ignore_result=True)
def send_sequence_email(send_id: str, scheduled_send_time: str, retry: int = 0) -> int:
    """Send one queued sequence email (throttled with the organization's campaigns); returns 1 if claimed."""
    from crm.tenancy import current_organization_id
    from marketing import sending

    organization_id = str(current_organization_id())
    step = sending.sequence_email_step(
        send_id=send_id, scheduled_send_time=datetime.datetime.fromisoformat(scheduled_send_time)
    )

    def again(countdown: float, retry: int) -> None:
        send_sequence_email.apply_async(
            kwargs={
                "send_id": send_id,
                "scheduled_send_time": scheduled_send_time,
                "retry": retry,
                "organization_id": organization_id,
            },
            countdown=countdown,
        )

    if step.wait:
        transaction.on_commit(lambda: again(step.wait, retry))
    elif step.claim is not None:
        claim = step.claim

        def deliver() -> None:
            delivery = sending.deliver(claim)
            if delivery.released and retry < sending.MAX_CONNECTION_RETRIES:
                again(_backoff(retry), retry + 1)

        transaction.on_commit(deliver)
        return claim.claimed
    return 0


@shared_task(name="marketing.tasks.dispatch_due_campaigns", base=SystemTask, ignore_result=True)
def dispatch_due_campaigns() -> int:
    """Every minute: start scheduled sends that are due (and materializations a dead worker left), and restart
    the lanes of sends that went quiet with emails still queued. Returns how many tasks it enqueued."""
    from marketing import sending

    enqueued = 0
    for organization_id, campaign_id in sending.due_campaigns():
        start_campaign_send.delay_on_commit(
            campaign_id=str(campaign_id), organization_id=str(organization_id)
        )
        enqueued += 1
    for organization_id, campaign_id in sending.stalled_campaigns():
        send_campaign_chunk.delay_on_commit(
            campaign_id=str(campaign_id), organization_id=str(organization_id)
        )
        enqueued += 1
    return enqueued


@shared_task(name="marketing.tasks.sweep_interrupted_sends", base=SystemTask, ignore_result=True)
def sweep_interrupted_sends() -> int:
    """Every ten minutes: emails a dead worker left in 'sending' are marked failed, never resent; campaigns
    with nothing left to send are finished. Returns how many emails it marked."""
    from marketing import sending

    swept = sending.sweep_interrupted()
    for organization_id, campaign_id, _count in swept:
        sending.finish_if_done(campaign_id=campaign_id, organization_id=organization_id)
    return sum(count for _org, _campaign, count in swept)
