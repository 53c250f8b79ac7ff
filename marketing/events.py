"""What happens to a sent email after it leaves: opens, clicks, unsubscribes (from the tracking URLs) and
deliveries, bounces, complaints and failures (from the provider's webhooks, marketing/webhooks.py).

Each event updates the one `email_sends` row, the campaign's counters and, where the customer did
something, their timeline (an interaction with the campaign, which feeds lead scores and segments).

Idempotence and races: a "first" event (first open, first click, unsubscribe, delivery, bounce) is claimed
by an UPDATE whose WHERE clause says the time is still empty (`opened_at IS NULL`, ...). Under READ
COMMITTED a second, concurrent request for the same row waits for the first one's row lock and then
re-checks that clause against the committed row, so exactly one of them updates it and only that one adds
to the campaign's counter. The campaign's counters therefore always equal a count of the rows whose time
is set (tests/marketing/test_tracking.py recounts them), however often a pixel is fetched or a webhook
retried.

Callers run these inside `tenant_context(send.organization_id)`.
"""

from __future__ import annotations

import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from compliance.models import ConsentPurpose, ConsentSource
from compliance.services.consent import consent_record
from customers.models import Channel, Customer, InteractionType
from customers.services.customers import interaction_log
from marketing import merge
from marketing.models import (
    Campaign,
    EmailSend,
    EmailTemplate,
    Enrollment,
    SendStatus,
    StepRun,
    Suppression,
    Variant,
)

# The outcome written on the customer's timeline when they unsubscribe. It is a `note` (the customer's own
# action, but not engagement: notes score nothing in customers/scoring), so an unsubscribe never raises a
# lead score the way an `email_opened` or `email_clicked` does.
UNSUBSCRIBE_OUTCOME = "Unsubscribed from marketing email"


def _row(send: EmailSend):
    """The send's row by its full key (id and partition key), so the UPDATE touches one partition."""
    return EmailSend.objects.filter(
        organization_id=send.organization_id, pk=send.pk, scheduled_send_time=send.scheduled_send_time
    )


def _claim(send: EmailSend, time_field: str, when: datetime.datetime, **also) -> bool:
    """Set `time_field` (and `also`) if it is still empty; True for the one caller that did."""
    return bool(_row(send).filter(**{f"{time_field}__isnull": True}).update(**{time_field: when}, **also))


def _count(send: EmailSend, counter: str) -> None:
    Campaign.objects.filter(organization_id=send.organization_id, pk=send.campaign_id).update(
        **{counter: F(counter) + 1}
    )


def _customer(send: EmailSend) -> Customer:
    return Customer.objects.get(organization_id=send.organization_id, pk=send.customer_id)


def _log(send: EmailSend, interaction_type: str, when: datetime.datetime, **fields) -> None:
    interaction_log(
        customer=_customer(send),
        actor=None,
        interaction_type=interaction_type,
        channel=Channel.EMAIL,
        interaction_date=when,
        campaign_id=send.campaign_id,
        **fields,
    )


def _suppress(send: EmailSend, reason: str, when: datetime.datetime) -> None:
    """Add the address to the organization's suppression list; an address already there keeps its first
    reason (ON CONFLICT DO NOTHING on (organization_id, email))."""
    email = (send.email or "").strip().lower()
    if not email:
        return
    Suppression.objects.bulk_create(
        [
            Suppression(
                organization_id=send.organization_id,
                email=email,
                reason=reason,
                campaign_id=send.campaign_id,
                created_at=when,
            )
        ],
        ignore_conflicts=True,
    )


def _opt_out(send: EmailSend, *, first: bool, proof: str) -> None:
    """Withdraw the customer's email marketing consent, as a consent record (compliance.services.consent)
    with the campaign as proof: the first time through this email, or whenever they are still opted in
    (a repeated click on an already-withdrawn consent adds nothing). An erased customer has none to withdraw."""
    customer = _customer(send)
    if customer.erased_at or customer.anonymized_at or not (first or customer.email_opt_in):
        return
    campaign = Campaign.objects.filter(organization_id=send.organization_id, pk=send.campaign_id).first()
    consent_record(
        customer=customer,
        purpose=ConsentPurpose.EMAIL_MARKETING,
        granted=False,
        source=ConsentSource.UNSUBSCRIBE,
        proof=(proof % {"campaign": campaign.name if campaign else "-"})[:500],
    )


def template_links(send: EmailSend) -> list[str]:
    """The literal links of the template this email was made from: the variant's template, else the
    campaign's; for a sequence email, its step's template. A click redirect may lead only to these."""
    template_id = None
    if send.step_run_id:
        template_id = (
            StepRun.objects.filter(organization_id=send.organization_id, pk=send.step_run_id)
            .values_list("step__template_id", flat=True)
            .first()
        )
    else:
        if send.variant_id:
            template_id = (
                Variant.objects.filter(organization_id=send.organization_id, pk=send.variant_id)
                .values_list("template_id", flat=True)
                .first()
            )
        if template_id is None:
            template_id = (
                Campaign.objects.filter(organization_id=send.organization_id, pk=send.campaign_id)
                .values_list("template_id", flat=True)
                .first()
            )
    if template_id is None:
        return []
    html = (
        EmailTemplate.objects.filter(organization_id=send.organization_id, pk=template_id)
        .values_list("html_body", flat=True)
        .first()
    )
    return merge.links_in(html or "")


@transaction.atomic
def record_open(*, send: EmailSend, when: datetime.datetime | None = None) -> bool:
    """One fetch of the open pixel. The first open sets `opened_at`, adds one to the campaign's unique
    opens and logs an `email_opened` interaction; every open adds to the row's `open_count`.
    Returns True for the first open."""
    when = when or timezone.now()
    first = _claim(send, "opened_at", when, open_count=F("open_count") + 1)
    if first:
        _count(send, "opened_count")
        _log(send, InteractionType.EMAIL_OPENED, when)
    else:
        _row(send).update(open_count=F("open_count") + 1)
    return first


@transaction.atomic
def record_click(*, send: EmailSend, url: str, when: datetime.datetime | None = None) -> bool:
    """One click on a tracked link (the caller has checked that `url` is a link of the email's template).
    A click proves the email was opened, so it counts as the first open when the pixel was blocked. The
    first click per recipient adds to the campaign's unique clicks; every click adds to `click_count` and
    logs an `email_clicked` interaction with the URL in its notes. Returns True for the first click."""
    when = when or timezone.now()
    # Not record_open(): an open implied by a click adds no open_count (nobody fetched the pixel).
    if send.opened_at is None and _claim(send, "opened_at", when):
        _count(send, "opened_count")
        _log(send, InteractionType.EMAIL_OPENED, when)
    first = _claim(send, "clicked_at", when, click_count=F("click_count") + 1)
    if first:
        _count(send, "clicked_count")
    else:
        _row(send).update(click_count=F("click_count") + 1)
    _log(send, InteractionType.EMAIL_CLICKED, when, notes=url)
    return first


@transaction.atomic
def record_unsubscribe(*, send: EmailSend, when: datetime.datetime | None = None) -> bool:
    """The recipient unsubscribed through the email's link (or the mail client's one-click button).

    Respected everywhere at once: the address goes on the suppression list and the customer's email
    opt-in is cleared, which every audience (campaigns and sequences alike) checks; active enrollments in
    sequences that exit on unsubscribe end now. The first unsubscribe through this email adds to the
    campaign's count and logs a note on the customer's timeline; repeating it changes nothing.
    Returns True the first time."""
    when = when or timezone.now()
    _suppress(send, Suppression.Reason.UNSUBSCRIBED, when)
    first = _claim(send, "unsubscribed_at", when)
    _opt_out(send, first=first, proof=gettext("unsubscribe link in “%(campaign)s”"))
    Enrollment.objects.filter(
        organization_id=send.organization_id,
        customer_id=send.customer_id,
        status=Enrollment.Status.ACTIVE,
        sequence__exit_on_unsubscribe=True,
    ).update(
        status=Enrollment.Status.EXITED,
        exit_reason=Enrollment.ExitReason.UNSUBSCRIBED,
        finished_at=when,
        next_run_at=None,
    )
    if first:
        _count(send, "unsubscribed_count")
        _log(send, InteractionType.NOTE, when, outcome=gettext(UNSUBSCRIBE_OUTCOME))
    return first


# Statuses a delivery report may move forward from (a bounced or failed row stays as it is).
_BEFORE_DELIVERED = (SendStatus.QUEUED, SendStatus.SENDING, SendStatus.SENT)


@transaction.atomic
def record_delivered(*, send: EmailSend, when: datetime.datetime | None = None) -> bool:
    """The provider handed the email to the recipient's server."""
    when = when or timezone.now()
    first = _claim(send, "delivered_at", when)
    if first:
        _row(send).filter(status__in=_BEFORE_DELIVERED).update(status=SendStatus.DELIVERED)
        _count(send, "delivered_count")
    return first


@transaction.atomic
def record_bounce(*, send: EmailSend, description: str = "", when: datetime.datetime | None = None) -> bool:
    """A hard (permanent) bounce: the row is marked bounced and the address suppressed, so no campaign
    or sequence tries it again. Soft bounces (the provider's "deferred") are not recorded."""
    when = when or timezone.now()
    first = _claim(send, "bounced_at", when, status=SendStatus.BOUNCED, error=description[:500])
    if first:
        _count(send, "bounced_count")
    _suppress(send, Suppression.Reason.BOUNCED, when)
    return first


@transaction.atomic
def record_complaint(*, send: EmailSend, when: datetime.datetime | None = None) -> bool:
    """The recipient marked the email as spam: the address is suppressed and the customer's email opt-in
    cleared (a complaint withdraws consent as surely as an unsubscribe does)."""
    when = when or timezone.now()
    first = _claim(send, "complained_at", when)
    if first:
        _count(send, "complained_count")
    _suppress(send, Suppression.Reason.COMPLAINED, when)
    _opt_out(send, first=first, proof=gettext("spam complaint about “%(campaign)s”"))
    return first


@transaction.atomic
def record_failure(*, send: EmailSend, description: str = "", when: datetime.datetime | None = None) -> bool:
    """The provider refused or gave up on the email (anymail's "rejected" and "failed"). A row that was
    delivered or bounced keeps its status; `failed_at` is claimed once, so a send task that already
    marked the failure and counted it is not counted again."""
    when = when or timezone.now()
    first = _claim(send, "failed_at", when, error=description[:500])
    if first:
        _row(send).exclude(status__in=(SendStatus.DELIVERED, SendStatus.BOUNCED)).update(
            status=SendStatus.FAILED
        )
        _count(send, "failed_count")
    return first
