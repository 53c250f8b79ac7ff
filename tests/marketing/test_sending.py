"""Sending a campaign's email (marketing/sending.py, marketing/services/sends.py, the send panel): recipients
materialized set-based and once, the A/B split, the throttle's arithmetic, the message each recipient gets,
the claim / deliver / mark path with its failures, the sweep, and the pages."""

from __future__ import annotations

import datetime
import smtplib
import uuid

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.tenancy import system_context, tenant_context
from customers.models import Customer
from marketing import sending, tracking
from marketing.models import Campaign, EmailSend, Suppression
from marketing.services import sends as services
from tests import factories
from tests.marketing import factories as mf


@pytest.fixture(autouse=True)
def fast_sending(settings):
    """A rate far above what the tests send, so the throttle never delays them (its arithmetic is tested
    on its own), and chunks of 10."""
    settings.MARKETING_SEND_RATE = 100_000
    settings.MARKETING_SEND_CHUNK = 10


@pytest.fixture
def marketer_a(org_a):
    return factories.user(org_a, role="marketing_manager")


def _customers(org, count: int, **fields) -> list[Customer]:
    prefix = uuid.uuid4().hex[:6]
    return [
        factories.customer(org, email=f"{prefix}-{n}@{org.slug}.example", email_opt_in=True, **fields)
        for n in range(count)
    ]


def _rows(org, campaign) -> list[EmailSend]:
    with tenant_context(org.pk):
        return list(EmailSend.objects.filter(campaign_id=campaign.pk).order_by("id"))


def _campaign(org, campaign) -> Campaign:
    with tenant_context(org.pk):
        return Campaign.objects.get(pk=campaign.pk)


def _materialized(org, campaign) -> Campaign:
    """Launch-now state, then the materialization the start task runs."""
    with tenant_context(org.pk):
        Campaign.objects.filter(pk=campaign.pk).update(send_state="materializing", send_at=timezone.now())
        started = sending.start_campaign_send(campaign_id=campaign.pk)
    assert started is not None
    return _campaign(org, campaign)


def _send_all(org, campaign) -> int:
    """Run the campaign's chunks the way the task does (claim in a transaction, deliver after it) until it
    stops; returns how many chunks claimed something."""
    chunks = 0
    while True:
        with tenant_context(org.pk):
            step = sending.campaign_chunk_step(campaign_id=campaign.pk)
        if step.claim is None:
            return chunks
        sending.deliver(step.claim)
        chunks += 1


# --- Materialization ----------------------------------------------------------------------------------------


def test_materialization_takes_mailable_members_of_every_segment_once(org_a, org_b):
    both = _customers(org_a, 3)
    only_first = _customers(org_a, 2)
    only_second = _customers(org_a, 1)
    opted_out = _customers(org_a, 1)[0]
    with tenant_context(org_a.pk):
        Customer.objects.filter(pk=opted_out.pk).update(email_opt_in=False)
    first = mf.segment(org_a, *both, *only_first, opted_out)
    second = mf.segment(org_a, *both, *only_second)
    campaign = mf.email_campaign(org_a, segments=[first, second])
    foreign = mf.email_campaign(org_b, segments=[mf.segment(org_b, *_customers(org_b, 2))])

    campaign = _materialized(org_a, campaign)

    rows = _rows(org_a, campaign)
    assert sorted(r.customer_id for r in rows) == sorted(c.pk for c in both + only_first + only_second)
    assert campaign.recipients_total == 6
    assert campaign.send_state == "sending"
    assert {(r.status, r.blast_at, r.scheduled_send_time, r.variant_id, r.in_test) for r in rows} == {
        ("queued", campaign.send_at, campaign.send_at, None, False)
    }
    assert all(r.queued_at is not None for r in rows)
    assert _rows(org_b, foreign) == []


def test_materialization_run_again_adds_nothing(org_a):
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 4))])
    campaign = _materialized(org_a, campaign)
    with tenant_context(org_a.pk):
        assert sending.materialize_recipients(campaign=campaign) == 0
        assert sending.start_campaign_send(campaign_id=campaign.pk) is None  # no longer materializing
    assert len(_rows(org_a, campaign)) == 4
    assert _campaign(org_a, campaign).recipients_total == 4


def _insert_row(org, campaign, customer, at):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "INSERT INTO email_sends (id, organization_id, campaign_id, customer_id, blast_at, scheduled_send_time,"
            " email, status) VALUES (%s, %s, %s, %s, %s, %s, 'x@example.com', 'queued')",
            [uuid.uuid4(), org.pk, campaign.pk, customer.pk, at, at],
        )


def test_the_database_refuses_a_second_row_for_the_same_campaign_and_customer(org_a):
    customer = _customers(org_a, 1)[0]
    campaign = _materialized(org_a, mf.email_campaign(org_a, segments=[mf.segment(org_a, customer)]))
    later = campaign.send_at + datetime.timedelta(days=40)  # another month: another partition
    with tenant_context(org_a.pk):
        for at in (campaign.send_at, later, campaign.send_at - datetime.timedelta(seconds=1)):
            with pytest.raises(IntegrityError), transaction.atomic():
                _insert_row(org_a, campaign, customer, at)
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            # Not even by moving the campaign's send time while it has rows.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("UPDATE campaigns SET send_at = %s WHERE id = %s", [later, campaign.pk])
    assert len(_rows(org_a, campaign)) == 1


def test_ab_split_samples_the_test_share_and_gives_variants_round_robin(org_a):
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 50))])
    test = mf.ab_test(org_a, campaign=campaign, labels=("A", "B", "C"), test_share=30)
    campaign = _materialized(org_a, campaign)

    rows = _rows(org_a, campaign)
    sample = [r for r in rows if r.in_test]
    rest = [r for r in rows if not r.in_test]
    assert len(sample) == 15  # round(50 x 30 / 100)
    assert {r.status for r in sample} == {"queued"} and {r.status for r in rest} == {"held"}
    assert {r.variant_id for r in rest} == {None}
    per_variant: dict = {}
    for r in sample:
        per_variant[r.variant_id] = per_variant.get(r.variant_id, 0) + 1
    assert sorted(per_variant.values()) == [5, 5, 5]
    assert campaign.send_state == "testing"
    with tenant_context(org_a.pk):
        test.refresh_from_db()
    assert test.status == "running" and test.decide_at == test.started_at + datetime.timedelta(hours=24)


def test_ab_sample_goes_out_then_the_send_waits_for_the_winner(org_a):
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 10))])
    mf.ab_test(org_a, campaign=campaign, test_share=40)
    campaign = _materialized(org_a, campaign)
    _send_all(org_a, campaign)
    assert len(mail.outbox) == 4
    assert sorted(m.subject for m in mail.outbox) == ["Subject A", "Subject A", "Subject B", "Subject B"]
    campaign = _campaign(org_a, campaign)
    assert (campaign.send_state, campaign.sent_count) == ("testing", 4)
    # The A/B test releases the held rows to the winner and enqueues the chunks: the send goes on.
    with tenant_context(org_a.pk):
        EmailSend.objects.filter(campaign_id=campaign.pk, status="held").update(status="queued")
        sending.enqueue_send_chunks(campaign.pk)
    _send_all(org_a, campaign)
    campaign = _campaign(org_a, campaign)
    assert (campaign.send_state, campaign.sent_count, len(mail.outbox)) == ("done", 10, 10)


def _sliced(org, campaign, settings, django_capture_on_commit_callbacks, slice_size: int):
    """Plan a launched campaign's materialization in slices of `slice_size` customers; returns the campaign
    and the slice indexes the planner enqueued (the tasks themselves are run by the test)."""
    settings.MARKETING_MATERIALIZE_SLICE = slice_size
    with tenant_context(org.pk):
        Campaign.objects.filter(pk=campaign.pk).update(send_state="materializing", send_at=timezone.now())
    with django_capture_on_commit_callbacks() as callbacks, tenant_context(org.pk):
        planned = sending.start_campaign_send(campaign_id=campaign.pk)
    assert planned is not None and planned.send_state == "materializing"
    return _campaign(org, campaign), _indexes(callbacks)


def _indexes(callbacks) -> list[int]:
    """The slice indexes of the materialize_campaign_slice tasks enqueued on commit (captured callbacks)."""
    indexes = []
    for callback in callbacks:
        # delay_on_commit registers a functools.partial of the task's delay with its keyword arguments
        assert callback.func.__self__.name == "marketing.tasks.materialize_campaign_slice"
        indexes.append(callback.keywords["index"])
    return indexes


def test_materialization_in_slices_writes_each_recipient_once_and_the_last_slice_starts_the_send(
    org_a, settings, django_capture_on_commit_callbacks
):
    members = _customers(org_a, 11)
    outsider = _customers(org_a, 2)  # customers of the organization, not in the segment
    opted_out = members[4]
    with tenant_context(org_a.pk):
        Customer.objects.filter(pk=opted_out.pk).update(email_opt_in=False)
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *members)])
    campaign, enqueued = _sliced(org_a, campaign, settings, django_capture_on_commit_callbacks, 4)

    # Slices of 4 customers by id: the 5th, 9th and 13th of the 13 ids in order start slices 1 to 3.
    ids = sorted(c.pk for c in members + outsider)
    assert campaign.materialize_bounds == [ids[4], ids[8], ids[12]]
    assert enqueued == [0, 1, 2, 3]
    assert _rows(org_a, campaign) == []  # nothing written by the planner itself

    for index in (2, 0, 3):  # any order
        with django_capture_on_commit_callbacks() as callbacks, tenant_context(org_a.pk):
            assert sending.materialize_slice(campaign_id=campaign.pk, index=index) is not None
        assert callbacks == []  # no chunk before the last slice
    assert _campaign(org_a, campaign).send_state == "materializing"
    assert _campaign(org_a, campaign).materialized_slices == [2, 0, 3]
    with tenant_context(org_a.pk):
        assert sending.materialize_slice(campaign_id=campaign.pk, index=2) is None  # done: left alone

    with django_capture_on_commit_callbacks() as callbacks, tenant_context(org_a.pk):
        sending.materialize_slice(campaign_id=campaign.pk, index=1)
    assert [c.func.__self__.name for c in callbacks] == ["marketing.tasks.send_campaign_chunk"]
    campaign = _campaign(org_a, campaign)
    expected = sorted(c.pk for c in members if c.pk != opted_out.pk)
    rows = _rows(org_a, campaign)
    assert sorted(r.customer_id for r in rows) == expected
    assert (campaign.send_state, campaign.recipients_total) == ("sending", 10)
    assert {(r.status, r.in_test, r.variant_id) for r in rows} == {("queued", False, None)}
    with tenant_context(org_a.pk):
        assert sending.materialize_slice(campaign_id=campaign.pk, index=1) is None  # no longer materializing


def test_a_replanned_materialization_enqueues_only_the_missing_slices(
    org_a, settings, django_capture_on_commit_callbacks
):
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 9))])
    campaign, enqueued = _sliced(org_a, campaign, settings, django_capture_on_commit_callbacks, 3)
    assert enqueued == [0, 1, 2]
    bounds = campaign.materialize_bounds
    with tenant_context(org_a.pk):
        sending.materialize_slice(campaign_id=campaign.pk, index=1)
    # A slice whose worker died mid-way leaves nothing: its transaction rolled back.
    with pytest.raises(RuntimeError), tenant_context(org_a.pk):
        sending.materialize_slice(campaign_id=campaign.pk, index=0)
        raise RuntimeError("worker lost")
    assert len(_rows(org_a, campaign)) == 3

    # The dispatcher plans again: the same bounds, the two slices not done.
    with django_capture_on_commit_callbacks() as callbacks, tenant_context(org_a.pk):
        assert sending.start_campaign_send(campaign_id=campaign.pk) is not None
    assert _indexes(callbacks) == [0, 2]
    assert _campaign(org_a, campaign).materialize_bounds == bounds
    for index in (0, 2):
        with tenant_context(org_a.pk):
            sending.materialize_slice(campaign_id=campaign.pk, index=index)
    campaign = _campaign(org_a, campaign)
    assert (campaign.send_state, campaign.recipients_total, len(_rows(org_a, campaign))) == ("sending", 9, 9)


def test_an_ab_test_materialized_in_slices_is_split_once_at_the_end(
    org_a, settings, django_capture_on_commit_callbacks
):
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 20))])
    mf.ab_test(org_a, campaign=campaign, labels=("A", "B", "C"), test_share=30)
    campaign, enqueued = _sliced(org_a, campaign, settings, django_capture_on_commit_callbacks, 6)
    assert enqueued == [0, 1, 2, 3]
    for index in enqueued[:-1]:
        with tenant_context(org_a.pk):
            sending.materialize_slice(campaign_id=campaign.pk, index=index)
    assert {r.status for r in _rows(org_a, campaign)} == {"held"}  # nobody sampled before the end
    with tenant_context(org_a.pk):
        sending.materialize_slice(campaign_id=campaign.pk, index=enqueued[-1])
    rows = _rows(org_a, campaign)
    sample = [r for r in rows if r.in_test]
    assert len(rows) == 20 and len(sample) == 6  # round(20 x 30 / 100)
    assert {r.status for r in sample} == {"queued"}
    assert {(r.status, r.variant_id) for r in rows if not r.in_test} == {("held", None)}
    per_variant: dict = {}
    for r in sample:
        per_variant[r.variant_id] = per_variant.get(r.variant_id, 0) + 1
    assert sorted(per_variant.values()) == [2, 2, 2]
    assert _campaign(org_a, campaign).send_state == "testing"


def test_the_dispatcher_restarts_a_stale_materialization_only_when_its_slices_went_quiet(org_a):
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 2))])
    long_ago = timezone.now() - datetime.timedelta(minutes=11)
    with tenant_context(org_a.pk):
        Campaign.objects.filter(pk=campaign.pk).update(send_state="materializing", send_started_at=long_ago)
    sending._redis().delete(f"marketing:send-lane:{campaign.pk}")
    with system_context():
        assert (org_a.pk, campaign.pk) in sending.due_campaigns()
    sending.heartbeat(campaign.pk)  # a slice started (or the planner enqueued them) within five minutes
    try:
        with system_context():
            assert (org_a.pk, campaign.pk) not in sending.due_campaigns()
    finally:
        sending._redis().delete(f"marketing:send-lane:{campaign.pk}")


# --- The throttle -------------------------------------------------------------------------------------------


def test_gcra_lets_a_chunk_through_at_once_then_one_chunk_per_chunk_interval():
    # 50 emails a second, chunks of 100: one chunk every 2 s once the burst (one chunk) is used.
    interval, burst = 1 / 50, 100 / 50
    wait, tat = sending.gcra(tat=0.0, now=1000.0, cost=100, interval=interval, burst=burst)
    assert (wait, tat) == (0.0, 1002.0)
    wait, same = sending.gcra(tat=tat, now=1000.0, cost=100, interval=interval, burst=burst)
    assert wait == pytest.approx(2.0) and same == tat  # refused: nothing reserved
    wait, tat = sending.gcra(tat=tat, now=1002.0, cost=100, interval=interval, burst=burst)
    assert (wait, tat) == (0.0, pytest.approx(1004.0))
    # 1,000 emails from an idle start: the last chunk may go 18 s later -> 1,000 / 20 s = 50 a second.
    tat, now, starts = 0.0, 5000.0, []
    while len(starts) < 10:
        wait, tat_after = sending.gcra(tat=tat, now=now, cost=100, interval=interval, burst=burst)
        if wait:
            now += wait
            continue
        starts.append(now - 5000.0)
        tat = tat_after
    assert starts == pytest.approx([2.0 * n for n in range(10)])
    # A small send (a sequence email) after a quiet minute goes at once.
    assert sending.gcra(tat=tat, now=now + 60, cost=1, interval=interval, burst=burst)[0] == 0.0


def test_throttle_reserve_in_redis_spaces_chunks_per_organization(settings):
    settings.MARKETING_SEND_RATE = 10
    settings.MARKETING_SEND_CHUNK = 20
    org, other = uuid.uuid4(), uuid.uuid4()
    assert sending.throttle_reserve(org, 20) == 0.0
    wait = sending.throttle_reserve(org, 20)
    assert 1.9 < wait <= 2.0  # 20 emails at 10 a second
    assert sending.throttle_reserve(other, 20) == 0.0  # another organization has its own bucket
    sending.throttle_refund(org, 20)  # the chunk found nothing: the next one may go at once
    assert sending.throttle_reserve(org, 20) == 0.0


# --- The message --------------------------------------------------------------------------------------------


def test_build_message_merges_tracks_and_sets_the_unsubscribe_headers(org_a, settings):
    settings.DEFAULT_FROM_EMAIL = "CRM <news@crm.example>"
    owner = factories.user(org_a, first_name="Grace", last_name="Hopper", email="grace@org-a.example")
    customer = factories.customer(
        org_a,
        first_name="<script>x</script>",
        email="ada@org-a.example",
        email_opt_in=True,
        assigned_to=owner,
    )
    template = mf.email_template(
        org_a,
        name="Merge",
        subject="Hi {{ customer.first_name }} from {{ organization.name }}",
        html_body="<html><body><p>Hi {{ customer.first_name }}, {{ owner.name }}</p>"
        '<a href="https://example.com/offer">Offer</a> <a href="{{ unsubscribe_url }}">Stop</a></body></html>',
        text_body="",
    )
    campaign = mf.email_campaign(
        org_a,
        template=template,
        from_name="Acme News",
        reply_to="team@org-a.example",
        segments=[mf.segment(org_a, customer)],
    )
    _send_all(org_a, _materialized(org_a, campaign))
    [message] = mail.outbox
    [row] = _rows(org_a, campaign)
    html = message.alternatives[0][0]
    assert message.subject == "Hi <script>x</script> from Org A"  # a header: never HTML
    assert message.from_email == "Acme News <news@crm.example>"
    assert message.reply_to == ["team@org-a.example"] and message.to == ["ada@org-a.example"]
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    assert "Grace Hopper" in html
    assert (
        'href="https://example.com/offer"' not in html
        and tracking.click_url(row, "https://example.com/offer") in html
    )
    assert f'<img src="{tracking.open_pixel_url(row)}" width="1" height="1" alt=""></body>' in html
    assert message.extra_headers["List-Unsubscribe"] == f"<{tracking.unsubscribe_url(row)}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["Message-ID"] == row.message_id and row.message_id.endswith("@crm.example>")
    assert "Hi <script>x</script>, Grace Hopper" in message.body  # plain text made from the HTML
    assert (row.status, row.attempts) == ("sent", 1) and row.sent_at is not None


# --- Claim, deliver, mark -----------------------------------------------------------------------------------


def test_chunks_send_each_recipient_once_and_keep_the_counters(org_a):
    customers = _customers(org_a, 25)
    campaign = _materialized(org_a, mf.email_campaign(org_a, segments=[mf.segment(org_a, *customers)]))
    assert _send_all(org_a, campaign) == 3  # chunks of 10
    assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in customers)
    rows = _rows(org_a, campaign)
    assert {r.status for r in rows} == {"sent"} and len({r.message_id for r in rows}) == 25
    campaign = _campaign(org_a, campaign)
    assert (campaign.sent_count, campaign.failed_count, campaign.send_state) == (25, 0, "done")
    assert campaign.send_finished_at is not None
    assert campaign.status == "draft"  # completing a campaign is a person's decision
    # Run again: nothing left to claim, nothing sent twice.
    assert _send_all(org_a, campaign) == 0 and len(mail.outbox) == 25


def test_an_unsubscribe_between_materialization_and_sending_skips_the_row(org_a):
    customers = _customers(org_a, 3)
    campaign = _materialized(org_a, mf.email_campaign(org_a, segments=[mf.segment(org_a, *customers)]))
    with tenant_context(org_a.pk):
        Suppression.objects.create(organization=org_a, email=customers[0].email, reason="unsubscribed")
        Customer.objects.filter(pk=customers[1].pk).update(processing_restricted=True)
    _send_all(org_a, campaign)
    assert [m.to[0] for m in mail.outbox] == [customers[2].email]
    statuses = {r.customer_id: (r.status, r.sent_at) for r in _rows(org_a, campaign)}
    assert statuses[customers[0].pk] == ("skipped", None) and statuses[customers[1].pk] == ("skipped", None)
    campaign = _campaign(org_a, campaign)
    assert (campaign.sent_count, campaign.send_state) == (1, "done")


class RefusingBackend:
    """A mail backend that refuses one address (as an SMTP server refuses a recipient)."""

    refused = "refuse-me"

    def __init__(self, *args, **kwargs):
        self.sent = []

    def open(self):
        return True

    def close(self):
        return None

    def send_messages(self, messages):
        for message in messages:
            if self.refused in message.to[0]:
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"no such user")})
            mail.outbox.append(message)
        return len(messages)


class DownBackend(RefusingBackend):
    def open(self):
        raise ConnectionRefusedError("connection refused")


def test_a_refused_recipient_fails_with_the_error_and_the_others_go_out(org_a, settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    customers = _customers(org_a, 3)
    with tenant_context(org_a.pk):
        Customer.objects.filter(pk=customers[1].pk).update(email="refuse-me@org-a.example")
    campaign = _materialized(org_a, mf.email_campaign(org_a, segments=[mf.segment(org_a, *customers)]))
    _send_all(org_a, campaign)
    rows = {r.customer_id: r for r in _rows(org_a, campaign)}
    assert rows[customers[1].pk].status == "failed" and "no such user" in rows[customers[1].pk].error
    assert rows[customers[1].pk].failed_at is not None
    assert {rows[c.pk].status for c in (customers[0], customers[2])} == {"sent"}
    campaign = _campaign(org_a, campaign)
    assert (campaign.sent_count, campaign.failed_count, campaign.send_state) == (2, 1, "done")
    assert campaign.send_percent == 100


def test_an_unreachable_mail_server_puts_the_chunk_back_in_the_queue(org_a, settings):
    settings.EMAIL_BACKEND = f"{__name__}.DownBackend"
    campaign = _materialized(
        org_a, mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 3))])
    )
    with tenant_context(org_a.pk):
        step = sending.campaign_chunk_step(campaign_id=campaign.pk)
    delivery = sending.deliver(step.claim)
    assert (delivery.sent, delivery.released) == (0, 3) and "refused" in delivery.connection_error
    assert {(r.status, r.attempts) for r in _rows(org_a, campaign)} == {("queued", 1)}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _send_all(org_a, campaign)  # the retry
    assert len(mail.outbox) == 3 and _campaign(org_a, campaign).sent_count == 3


def test_rows_left_sending_by_a_dead_worker_are_failed_never_resent(org_a):
    campaign = _materialized(
        org_a, mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 12))])
    )
    with tenant_context(org_a.pk):
        step = sending.campaign_chunk_step(campaign_id=campaign.pk)  # claimed, then the worker "dies"
    assert len(step.claim.outgoing) == 10
    _send_all(org_a, campaign)  # another worker sends the 2 still queued, never the 10 claimed
    assert len(mail.outbox) == 2
    assert _campaign(org_a, campaign).send_state == "sending"  # 10 still in 'sending'
    with system_context():
        assert sending.sweep_interrupted() == []  # too recent: a live sender may still hold them
        swept = sending.sweep_interrupted(
            now=timezone.now() + sending.STALE_AFTER + datetime.timedelta(seconds=1)
        )
    assert swept == [(org_a.pk, campaign.pk, 10)]
    with tenant_context(org_a.pk):
        sending.finish_if_done(campaign_id=campaign.pk, organization_id=org_a.pk)
    rows = _rows(org_a, campaign)
    assert sorted(r.status for r in rows) == ["failed"] * 10 + ["sent"] * 2
    assert {r.error for r in rows if r.status == "failed"} == {sending.INTERRUPTED_ERROR}
    campaign = _campaign(org_a, campaign)
    assert (campaign.sent_count, campaign.failed_count, campaign.send_state) == (2, 10, "done")
    _send_all(org_a, campaign)
    assert len(mail.outbox) == 2


# --- Launch, pause, resume ----------------------------------------------------------------------------------


def test_launch_refuses_a_campaign_that_cannot_be_sent(org_a, marketer_a):
    social = mf.campaign(org_a, name="Social only", channels=["social"])
    bad = mf.email_template(org_a, name="Bad", subject="Hi {{ customer.password }}")
    broken = mf.email_campaign(org_a, name="Broken", template=bad)
    with tenant_context(org_a.pk), pytest.raises(ValidationError) as error:
        services.campaign_send_launch(campaign=social, actor=marketer_a)
    assert "email channel" in " ".join(error.value.messages)
    assert "Choose an email template." in error.value.messages
    with tenant_context(org_a.pk), pytest.raises(ValidationError) as error:
        services.campaign_send_launch(campaign=broken, actor=marketer_a)
    joined = " ".join(error.value.messages)
    assert "customer.password" in joined and "segment" in joined


def test_only_roles_that_may_send_launch(org_a):
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 1))])
    for role in ("sales_manager", "sales_rep", "support_agent"):
        with tenant_context(org_a.pk), pytest.raises(PermissionDenied):
            services.campaign_send_launch(campaign=campaign, actor=factories.user(org_a, role=role))


def test_launch_now_freezes_send_at_and_starts_materializing_after_commit(
    org_a, marketer_a, django_capture_on_commit_callbacks
):
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 2))])
    with django_capture_on_commit_callbacks() as callbacks, tenant_context(org_a.pk):
        launched = services.campaign_send_launch(campaign=campaign, actor=marketer_a)
    assert len(callbacks) == 1  # start_campaign_send, enqueued once the launch committed
    assert (launched.send_state, launched.status) == ("materializing", "active")
    assert launched.send_at is not None and launched.send_started_at == launched.send_at
    with tenant_context(org_a.pk), pytest.raises(ValidationError):
        services.campaign_send_launch(campaign=launched, actor=marketer_a)  # never twice
    # Nor a campaign that has recipient rows whatever its state says (they carry its send time).
    with tenant_context(org_a.pk):
        Campaign.objects.filter(pk=campaign.pk).update(send_state="not_started")
    _materialized(org_a, campaign)
    with tenant_context(org_a.pk):
        Campaign.objects.filter(pk=campaign.pk).update(send_state="not_started")
        with pytest.raises(ValidationError):
            services.campaign_send_launch(campaign=campaign, actor=marketer_a)


def test_a_future_send_is_scheduled_and_dispatched_when_due(
    org_a, marketer_a, django_capture_on_commit_callbacks
):
    at = timezone.now() + datetime.timedelta(hours=2)
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 2))], send_at=at)
    with django_capture_on_commit_callbacks() as callbacks, tenant_context(org_a.pk):
        launched = services.campaign_send_launch(campaign=campaign, actor=marketer_a)
    assert callbacks == []
    assert (launched.send_state, launched.status, launched.send_at) == ("scheduled", "scheduled", at)
    with system_context():
        assert sending.due_campaigns() == []
        due = sending.due_campaigns(now=at + datetime.timedelta(seconds=1))
        assert due == [(org_a.pk, campaign.pk)]
        assert sending.due_campaigns(now=at + datetime.timedelta(seconds=2)) == []  # claimed once
    campaign = _campaign(org_a, campaign)
    assert (campaign.send_state, campaign.status, campaign.send_at) == ("materializing", "active", at)
    with tenant_context(org_a.pk):
        sending.start_campaign_send(campaign_id=campaign.pk)
    assert {r.scheduled_send_time for r in _rows(org_a, campaign)} == {at}


def test_pause_stops_further_chunks_and_resume_goes_on(org_a, marketer_a):
    campaign = _materialized(
        org_a, mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 15))])
    )
    with tenant_context(org_a.pk):
        step = sending.campaign_chunk_step(campaign_id=campaign.pk)
        services.campaign_send_pause(campaign=campaign, actor=marketer_a)
    sending.deliver(step.claim)  # the chunk in flight finishes
    assert _send_all(org_a, campaign) == 0  # but no other starts
    assert len(mail.outbox) == 10 and _campaign(org_a, campaign).send_state == "paused"
    with tenant_context(org_a.pk):
        resumed = services.campaign_send_resume(campaign=campaign, actor=marketer_a)
        with pytest.raises(ValidationError):
            services.campaign_send_resume(campaign=resumed, actor=marketer_a)
    assert resumed.send_state == "sending"
    _send_all(org_a, campaign)
    assert len(mail.outbox) == 15 and _campaign(org_a, campaign).send_state == "done"


# --- Sequence emails ----------------------------------------------------------------------------------------


def test_queue_sequence_email_queues_once_per_step_run_and_only_when_mailable(
    org_a, django_capture_on_commit_callbacks
):
    from marketing.models import Enrollment, Step, StepRun

    template = mf.email_template(org_a, name="Welcome", subject="Welcome {{ customer.first_name }}")
    sequence = mf.sequence(org_a, steps=[("send_email", {"template": template})])
    ok, opted_out = _customers(org_a, 2)
    with tenant_context(org_a.pk):
        Customer.objects.filter(pk=opted_out.pk).update(email_opt_in=False)
        step = Step.objects.get(sequence=sequence)
        runs = []
        for customer in (ok, opted_out):
            enrollment = Enrollment.objects.create(organization=org_a, sequence=sequence, customer=customer)
            runs.append(
                StepRun.objects.create(
                    organization=org_a,
                    enrollment=enrollment,
                    step=step,
                    due_at=timezone.now(),
                    outcome="sent",
                )
            )
    with django_capture_on_commit_callbacks(execute=False) as callbacks, tenant_context(org_a.pk):
        queued = sending.queue_sequence_email(step_run=runs[0], customer=ok, template=template)
        again = sending.queue_sequence_email(step_run=runs[0], customer=ok, template=template)
        assert sending.queue_sequence_email(step_run=runs[1], customer=opted_out, template=template) is None
    assert len(callbacks) == 1 and again.pk == queued.pk
    assert (queued.status, queued.campaign_id, queued.blast_at) == ("queued", sequence.campaign_id, None)
    with tenant_context(org_a.pk):
        step_ = sending.sequence_email_step(send_id=queued.pk, scheduled_send_time=queued.scheduled_send_time)
    sending.deliver(step_.claim)
    assert [m.subject for m in mail.outbox] == [f"Welcome {ok.first_name}"]
    with tenant_context(org_a.pk):
        assert EmailSend.objects.get(pk=queued.pk).status == "sent"


# --- Pages --------------------------------------------------------------------------------------------------


def test_send_panel_recomputes_the_progress_in_a_fixed_number_of_queries(client, login, org_a, marketer_a):
    customers = _customers(org_a, 12)
    campaign = _materialized(org_a, mf.email_campaign(org_a, segments=[mf.segment(org_a, *customers)]))
    with tenant_context(org_a.pk):
        step = sending.campaign_chunk_step(campaign_id=campaign.pk)  # 10 claimed
        sending.deliver(step.claim)
        still_queued = EmailSend.objects.filter(campaign_id=campaign.pk, status="queued").first()
        Suppression.objects.create(organization=org_a, email=still_queued.email, reason="bounced")
        first = EmailSend.objects.filter(campaign_id=campaign.pk, status="sent").order_by("id").first()
        EmailSend.objects.filter(pk=first.pk).update(status="delivered")
        Campaign.objects.filter(pk=campaign.pk).update(delivered_count=1)
    login(marketer_a)
    url = reverse("marketing:campaign_send_panel", args=[campaign.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    baseline = len(queries)
    html = response.content.decode()
    # 12 recipients: 10 sent (1 of them since delivered), 2 queued; 10 of 12 handled = 83 %.
    assert 'data-testid="count-queued">2<' in html and 'data-testid="count-sent">10<' in html
    assert 'data-testid="count-delivered">1<' in html and 'data-testid="count-skipped">0<' in html
    assert 'aria-valuenow="83"' in html and "10 of 12 recipients handled (83%)" in html
    assert 'hx-trigger="every 2s"' in html
    _send_all(org_a, campaign)  # one sent, one skipped (the bounced address)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(url).content.decode()
    assert len(queries) == baseline
    assert 'data-testid="count-skipped">1<' in html and 'data-testid="count-sent">11<' in html
    assert 'aria-valuenow="100"' in html and "every 2s" not in html  # done: it stops polling


def test_send_panel_shows_the_materialization_slices_done(
    client, login, org_a, marketer_a, settings, django_capture_on_commit_callbacks
):
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 8))])
    campaign, enqueued = _sliced(org_a, campaign, settings, django_capture_on_commit_callbacks, 3)
    assert enqueued == [0, 1, 2]
    with tenant_context(org_a.pk):
        sending.materialize_slice(campaign_id=campaign.pk, index=1)
    login(marketer_a)
    html = client.get(reverse("marketing:campaign_send_panel", args=[campaign.pk])).content.decode()
    assert "Choosing the recipients from the segments: 1 of 3 parts done" in html
    assert 'aria-valuenow="33"' in html and 'hx-trigger="every 2s"' in html


def test_panel_buttons_follow_the_capability(client, login, org_a, marketer_a):
    campaign = mf.email_campaign(org_a, segments=[mf.segment(org_a, *_customers(org_a, 1))])
    url = reverse("marketing:campaign_send_panel", args=[campaign.pk])
    login(marketer_a)
    assert 'data-testid="send-launch"' in client.get(url).content.decode()
    login(factories.user(org_a, role="sales_rep"))
    html = client.get(url).content.decode()
    assert client.get(url).status_code == 200 and 'data-testid="send-launch"' not in html
    launch = reverse("marketing:campaign_send_launch", args=[campaign.pk])
    assert client.post(launch).status_code == 403


def test_launch_view_shows_the_problems_in_the_panel(client, login, org_a, marketer_a):
    campaign = mf.email_campaign(org_a)  # no segment
    login(marketer_a)
    response = client.post(
        reverse("marketing:campaign_send_launch", args=[campaign.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "Choose at least one segment to send to." in response.content.decode()
    assert _campaign(org_a, campaign).send_state == "not_started"


def test_send_urls_of_another_organization_are_not_found(client, login, org_a, org_b, marketer_a):
    foreign = mf.email_campaign(org_b, segments=[mf.segment(org_b, *_customers(org_b, 1))])
    login(marketer_a)
    for name in ("campaign_send_panel", "campaign_recipients"):
        assert client.get(reverse(f"marketing:{name}", args=[foreign.pk])).status_code == 404
    for name in ("campaign_send_launch", "campaign_send_pause", "campaign_send_resume"):
        assert client.post(reverse(f"marketing:{name}", args=[foreign.pk])).status_code == 404
    assert _campaign(org_b, foreign).send_state == "not_started"


def test_recipients_list_is_keyset_paginated_and_filters_by_status(
    client, login, org_a, marketer_a, settings
):
    from marketing.selectors import sends as selectors

    customers = _customers(org_a, 7)
    campaign = _materialized(org_a, mf.email_campaign(org_a, segments=[mf.segment(org_a, *customers)]))
    with tenant_context(org_a.pk):
        sending.deliver(sending.campaign_chunk_step(campaign_id=campaign.pk).claim)  # 7 sent
        EmailSend.objects.filter(customer_id=customers[0].pk).update(status="failed", error="boom")
    selectors.RECIPIENTS_PER_PAGE, original = 3, selectors.RECIPIENTS_PER_PAGE
    try:
        login(marketer_a)
        url = reverse("marketing:campaign_recipients", args=[campaign.pk])
        client.get(url)
        with CaptureQueriesContext(connection) as first_queries:
            first = client.get(url)
        seen = first.content.decode().count('data-testid="recipient-row"')
        cursor = first.context["page"].next_cursor
        with CaptureQueriesContext(connection) as next_queries:
            second = client.get(url, {"cursor": cursor})
        assert len(next_queries) == len(first_queries)
        assert "count(" not in " ".join(
            q["sql"].lower() for q in next_queries.captured_queries if "email_sends" in q["sql"]
        )
        rows = [*first.context["page"].items, *second.context["page"].items]
        third = client.get(url, {"cursor": second.context["page"].next_cursor})
        rows += third.context["page"].items
        assert seen == 3 and len({r.pk for r in rows}) == 7
        failed = client.get(url, {"status": "failed"})
        assert [r.customer_id for r in failed.context["page"].items] == [customers[0].pk]
        assert "boom" in failed.content.decode()
        assert "No recipient has this status" in client.get(url, {"status": "held"}).content.decode()
    finally:
        selectors.RECIPIENTS_PER_PAGE = original
