"""Reads of the sends area: the progress panel of a campaign's email send and its recipients list.

Both stay cheap on a million-recipient campaign: the panel reads the campaign's counters (kept set-based by
the senders and tracking) plus one grouped count of the few in-flight statuses through the (organization,
campaign, status) index, and the recipients list is keyset-paginated without any COUNT(*).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from crm.models import User
from crm.pagination import KeysetPage, keyset_page
from marketing import sending
from marketing.models import Campaign, EmailSend, SendStatus

RECIPIENTS_PER_PAGE = 50
# The statuses the panel counts in the table; the others come from the campaign's counters.
_COUNTED = (SendStatus.QUEUED, SendStatus.HELD, SendStatus.SENDING, SendStatus.SKIPPED)


def campaign_for(*, actor: User, pk: uuid.UUID) -> Campaign:
    """The actor's organization's campaign, or 404 (a foreign id is not found, never forbidden)."""
    return get_object_or_404(Campaign.objects.filter(organization_id=actor.organization_id), pk=pk)


@dataclass
class SendProgress:
    campaign: Campaign
    queued: int
    held: int
    sending: int
    skipped: int

    @property
    def state(self) -> str:
        return self.campaign.send_state

    @property
    def total(self) -> int:
        return self.campaign.recipients_total

    @property
    def handled(self) -> int:
        """Recipients whose email is settled: sent (whatever happened after), failed, or skipped."""
        c = self.campaign
        return c.sent_count + c.failed_count + self.skipped

    @property
    def percent(self) -> int:
        if self.state == Campaign.SendState.DONE:
            return 100
        if not self.total:
            return 0
        return min(100, self.handled * 100 // self.total)

    @property
    def slices_total(self) -> int:
        """Slices of the recipients' materialization (0 until it is planned)."""
        bounds = self.campaign.materialize_bounds
        return 0 if bounds is None else len(bounds) + 1

    @property
    def slices_done(self) -> int:
        return len(self.campaign.materialized_slices)

    @property
    def materialize_percent(self) -> int:
        return self.slices_done * 100 // self.slices_total if self.slices_total else 0

    @property
    def is_scheduled(self) -> bool:
        return self.state == Campaign.SendState.SCHEDULED

    @property
    def is_running(self) -> bool:
        """Still moving: the panel polls itself while this is true."""
        return self.state in (Campaign.SendState.MATERIALIZING, *sending.ACTIVE_SEND_STATES)

    @property
    def launch_schedules(self) -> bool:
        """Launching now would schedule the send (its send time is in the future) rather than start it."""
        return self.campaign.send_at is not None and self.campaign.send_at > timezone.now()

    @property
    def can_launch(self) -> bool:
        return self.state == Campaign.SendState.NOT_STARTED

    @property
    def can_pause(self) -> bool:
        return self.is_scheduled or self.state in sending.ACTIVE_SEND_STATES

    @property
    def can_resume(self) -> bool:
        return self.state in (Campaign.SendState.PAUSED, Campaign.SendState.FAILED)


def send_progress(*, actor: User, pk: uuid.UUID) -> SendProgress:
    """The send panel's numbers in two queries: the campaign (with its counters) and the in-flight counts."""
    campaign = campaign_for(actor=actor, pk=pk)
    counts: dict[str, int] = {}
    if campaign.send_at is not None and campaign.send_state != Campaign.SendState.NOT_STARTED:
        counts = dict(
            _blast(campaign)
            .filter(status__in=_COUNTED)
            .order_by()
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
    return SendProgress(
        campaign=campaign,
        queued=counts.get(SendStatus.QUEUED, 0),
        held=counts.get(SendStatus.HELD, 0),
        sending=counts.get(SendStatus.SENDING, 0),
        skipped=counts.get(SendStatus.SKIPPED, 0),
    )


def _blast(campaign: Campaign) -> QuerySet[EmailSend]:
    """The campaign's blast rows (not its sequences' emails), in the one partition of its send time."""
    return EmailSend.objects.filter(
        organization_id=campaign.organization_id,
        campaign_id=campaign.pk,
        scheduled_send_time=campaign.send_at,
        step_run__isnull=True,
    )


def recipients_page(
    *, actor: User, campaign: Campaign, status: str = "", cursor: str | None = None
) -> KeysetPage:
    """One keyset page of the campaign's recipients (optionally of one status), in the order they were
    chosen, with their customers (one query)."""
    if campaign.send_at is None:
        return KeysetPage(items=[], next_cursor=None, previous_cursor=None)
    rows = _blast(campaign).select_related("customer", "variant")
    if status:
        rows = rows.filter(status=status)
    return keyset_page(rows, ordering=("id",), cursor=cursor, per_page=RECIPIENTS_PER_PAGE)
