"""Sending marketing email: who gets a campaign (materialization), how fast (the throttle), and the path every
email takes out (claim, build, send, mark), campaign blasts and sequence emails alike.

At most once per recipient, by construction:

1. Materialization writes one `email_sends` row per recipient, set-based, one INSERT ... SELECT per slice of
   the customers (slices run in parallel tasks); the database refuses a second row for the same (campaign,
   customer) (see marketing/db.py), so a re-run adds nothing.
2. A sender *claims* rows in a transaction of its own, committed before anything goes out:
   `queued -> sending` with `FOR UPDATE SKIP LOCKED`, so two senders never hold the same row. Only after that
   commit does it talk to the mail server (the delivery runs in `transaction.on_commit`).
3. It marks what happened (sent with its Message-ID, or failed with the error) set-based, with the campaign's
   counters, in one transaction per few messages.
4. A row left in `sending` (a worker killed between 2 and 3) is never sent again: the sweep marks it failed
   ("interrupted; not resent to avoid a duplicate") once it is older than any live sender can be.

The throttle is a GCRA ("virtual scheduling") token bucket per organization kept in Redis, shared by every
worker: a chunk reserves its emails before claiming them, and a lane that has to wait is re-enqueued with
that wait as its countdown (never a sleep that holds a worker, and never hours of ETA tasks held in worker
memory, which the Redis broker would redeliver after its visibility timeout). See docs/marketing.md.
"""

from __future__ import annotations

import datetime
import html as html_lib
import logging
import re
import smtplib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formataddr, make_msgid, parseaddr
from functools import lru_cache

import redis
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection
from django.utils import timezone
from django.utils.html import escape, strip_tags

from crm.models import Organization
from crm.tenancy import tenant_context
from customers.models import Customer
from customers.segments.membership import UUID7_SQL
from marketing import merge, tracking
from marketing.models import ABTest, Campaign, EmailSend, EmailTemplate, SendStatus, StepRun, Variant
from marketing.selectors.audience import mailable_customers

logger = logging.getLogger(__name__)

# Chains of chunk tasks run per campaign at once: enough to keep up with the rate when the mail server is
# slower than it (each lane sends one chunk at a time), few enough that the throttle, not the queue, paces.
SEND_LANES = 4
# A row claimed longer ago than this is from a dead sender: no live chunk task outlives Celery's hard time
# limit, so waiting five minutes past it cannot catch a send that is still going on.
STALE_AFTER = datetime.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 300)
INTERRUPTED_ERROR = "interrupted; not resent to avoid a duplicate"
# Marks are written every this many messages, so a killed worker loses the record of at most this many.
MARK_EVERY = 20
# A chunk task (and, while recipients are chosen, the planner and each slice) refreshes the campaign's Redis
# key for this many seconds; the dispatcher restarts a campaign whose lanes all went quiet (a lane ended by an
# unexpected error) while rows are still queued, or re-plans a materialization whose slices went quiet.
HEARTBEAT_SECONDS = 300
# Backoff of a chunk whose mail server could not be reached before anything went out: 15 s, 30 s, ... 16 min.
MAX_CONNECTION_RETRIES = 7

ACTIVE_SEND_STATES = (Campaign.SendState.SENDING, Campaign.SendState.TESTING)


# --- Materialization -------------------------------------------------------------------------------------------

_MEMBERS_SQL = """
SELECT m.customer_id FROM customer_segment_members m
WHERE m.organization_id = %s AND m.segment_id IN (
    SELECT cs.segment_id FROM campaign_segments cs WHERE cs.organization_id = %s AND cs.campaign_id = %s)
"""

_INSERT_COLUMNS = """
INSERT INTO email_sends (id, organization_id, campaign_id, customer_id, variant_id, step_run_id, blast_at,
    scheduled_send_time, email, status, in_test, attempts, message_id, queued_at, open_count, click_count,
    error, created_at)
"""

# One slice of the audience: the mailable members of the campaign's segments whose customer id is in
# [lower, upper) (the range is repeated on the memberships and the existing rows: PostgreSQL does not carry it
# across the joins), and not yet recipients, queued, or held for an A/B test's split.
#
# Who is already a recipient is an anti-join, not ON CONFLICT DO NOTHING: a speculative insertion costs each
# row an extra index probe and a second heap write (its confirmation), 6 to 12 % of a slice's CPU measured
# (docs/benchmarks.md). One slice runs at a time (its advisory lock), so the unique key
# `email_sends_recipient_key` is a backstop that nothing reaches: a row it refused would fail the slice,
# which rolls back whole and is run again.
_MATERIALIZE_SQL = f"""
{_INSERT_COLUMNS}
SELECT {UUID7_SQL}, %s, %s, a.id, NULL, NULL, %s, %s, a.email, %s, false, 0, '',
    CASE WHEN %s = 'queued' THEN now() END, 0, 0, '', now()
FROM ({{mailable}}) a
WHERE a.id IN ({_MEMBERS_SQL} AND m.customer_id >= %s AND m.customer_id < %s) AND a.id >= %s AND a.id < %s
  AND NOT EXISTS (
    SELECT 1 FROM email_sends e
    WHERE e.organization_id = %s AND e.campaign_id = %s AND e.scheduled_send_time = %s AND e.step_run_id IS NULL
      AND e.customer_id = a.id AND e.customer_id >= %s AND e.customer_id < %s)
"""

# Open ends of the first and the last slice (every UUID sorts between them).
_LOWEST = uuid.UUID(int=0)
_HIGHEST = uuid.UUID(int=2**128 - 1)

# The A/B split, once every slice is written: a random sample of the test share among the held rows, the
# variants round-robin over that random order; the rest stay held for the winner.
_AB_SPLIT_SQL = """
WITH blast AS MATERIALIZED (
    SELECT id FROM email_sends
    WHERE organization_id = %(org)s AND campaign_id = %(campaign)s AND scheduled_send_time = %(at)s
      AND step_run_id IS NULL AND status = 'held'
), sample AS (
    SELECT id, row_number() OVER () AS rn
    FROM (SELECT id FROM blast ORDER BY random() LIMIT (SELECT round(count(*) * %(share)s / 100.0) FROM blast)) s
)
UPDATE email_sends e
SET in_test = true, status = 'queued', queued_at = now(), variant_id = (%(variants)s::uuid[])[1 + (sample.rn - 1) %% %(k)s]
FROM sample
WHERE e.organization_id = %(org)s AND e.scheduled_send_time = %(at)s AND e.id = sample.id
"""


def ab_variants(campaign: Campaign) -> tuple[ABTest | None, list[Variant]]:
    """The campaign's A/B test and its variants (by label), when it has a test with two or more."""
    test = ABTest.objects.filter(campaign_id=campaign.pk).first()
    if test is None:
        return None, []
    variants = list(Variant.objects.filter(campaign_id=campaign.pk).order_by("label"))
    return (test, variants) if len(variants) >= 2 else (None, [])


def _freeze_send_at(campaign: Campaign) -> None:
    """An empty send time becomes now, once (the conditional UPDATE): every row carries it."""
    if campaign.send_at is None:
        campaign.send_at = timezone.now()
        Campaign.objects.filter(pk=campaign.pk, send_at__isnull=True).update(send_at=campaign.send_at)


def materialize_recipients(
    *, campaign: Campaign, lower: uuid.UUID | None = None, upper: uuid.UUID | None = None
) -> int:
    """Write the campaign's recipients whose customer id is in [lower, upper) (everyone by default) into
    email_sends in one INSERT ... SELECT: the members of its segments who may be emailed
    (`mailable_customers`), once each, all scheduled at the campaign's frozen send_at (now, when empty).
    Queued, or held when the campaign has an A/B test (the split follows once every slice is written). A
    re-run adds nothing (the existing recipients are left out). Returns how many rows it added. Runs in the
    caller's tenant transaction (RLS applies)."""
    _freeze_send_at(campaign)  # the planner did already; a direct caller gets now
    org, cid, at = campaign.organization_id, campaign.pk, campaign.send_at
    audience = mailable_customers(org).values("id", "email").order_by()  # any order: the indexes cope
    mailable_sql, mailable_params = audience.query.sql_with_params()
    test, _variants = ab_variants(campaign)
    status = SendStatus.HELD if test is not None else SendStatus.QUEUED
    lower, upper = lower or _LOWEST, upper or _HIGHEST
    params = [org, cid, at, at, status, status, *mailable_params]
    params += [org, org, cid, lower, upper, lower, upper]  # the slice's members and customers
    params += [org, cid, at, lower, upper]  # its existing recipients
    with connection.cursor() as cursor:
        # Hash joins only. How many of an organization's customers fall in an id range is a guess for the
        # planner (the statistics are the whole table's, every organization's ids mixed); guessing "a
        # handful" once made it probe the suppressions per customer by organization alone, minutes for a
        # slice of 50,000. Hashing costs one pass over the slice's customers and members whatever the guess.
        cursor.execute(
            "SELECT current_setting('enable_nestloop'), set_config('enable_nestloop', 'off', true)"
        )
        previous = cursor.fetchone()[0]
        cursor.execute(_MATERIALIZE_SQL.format(mailable=mailable_sql), params)
        added = cursor.rowcount
        cursor.execute("SELECT set_config('enable_nestloop', %s, true)", [previous])
    return added


def slice_bounds(organization_id) -> list[uuid.UUID]:
    """The first customer id of every slice but the first, cutting the organization's customers (in id order)
    into slices of MARKETING_MATERIALIZE_SLICE: no bounds, one slice, for up to that many customers. Later
    customers (larger UUIDv7 ids) fall in the last slice, which has no upper end."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM customers"
            " WHERE organization_id = %s) c WHERE n %% %s = 1 AND n > 1 ORDER BY id",
            [organization_id, settings.MARKETING_MATERIALIZE_SLICE],
        )
        bounds = [row[0] for row in cursor.fetchall()]
    return bounds


def _finish_materialization(campaign: Campaign) -> None:
    """Once every slice is written (in the transaction that writes the last one; `recipients_total` is the sum
    the slices added): the A/B test's split and start, the state, and the first chunks (enqueued on
    commit)."""
    org, cid, at = campaign.organization_id, campaign.pk, campaign.send_at
    test, variants = ab_variants(campaign)
    if test is not None:
        with connection.cursor() as cursor:
            cursor.execute(
                _AB_SPLIT_SQL,
                {
                    "org": org,
                    "campaign": cid,
                    "at": at,
                    "share": test.test_share,
                    "variants": [v.pk for v in variants],
                    "k": len(variants),
                },
            )
        from marketing.services.abtests import abtest_start

        abtest_start(campaign=campaign)  # the test runs from now for its duration (decide_at)
    campaign.send_state = Campaign.SendState.TESTING if test is not None else Campaign.SendState.SENDING
    Campaign.objects.filter(pk=cid, send_state=Campaign.SendState.MATERIALIZING).update(
        send_state=campaign.send_state
    )
    start_lanes(campaign)  # enqueued when this transaction commits


def start_campaign_send(*, campaign_id: uuid.UUID | str) -> Campaign | None:
    """Plan a launched campaign's materialization and start it: its send time is frozen (now, when empty), the
    customers are cut into slices (`slice_bounds`, once per send) and a task per slice not yet written is
    enqueued on commit; with one slice, it is written right here. Returns the campaign, or None when it is
    not waiting to be materialized (already done, paused) or another worker is planning it right now. Run
    again (the dispatcher, for a materialization a dead worker left), it enqueues only the missing slices.
    Runs in the caller's tenant transaction."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.send_state != Campaign.SendState.MATERIALIZING:
        return None
    with connection.cursor() as cursor:
        # One planner per campaign at a time (a redelivered task, the dispatcher's restart); the lock ends
        # with this transaction.
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext('marketing.send:' || %s))", [str(campaign.pk)]
        )
        if not cursor.fetchone()[0]:
            return None
    # Re-read under the lock (no row lock: the slices mark themselves done on this row, and the campaign
    # page must stay editable meanwhile; the state moves on only through conditional UPDATEs).
    campaign = Campaign.objects.get(pk=campaign.pk)
    if campaign.send_state != Campaign.SendState.MATERIALIZING:
        return None
    _freeze_send_at(campaign)  # before the slices: each writes it as its rows' partition key
    if campaign.materialize_bounds is None:
        campaign.materialize_bounds = slice_bounds(campaign.organization_id)
        campaign.materialized_slices = []
        Campaign.objects.filter(pk=campaign.pk, materialize_bounds__isnull=True).update(
            materialize_bounds=campaign.materialize_bounds, materialized_slices=[], recipients_total=0
        )
    if not campaign.materialize_bounds:  # one slice: written here
        return materialize_slice(campaign_id=campaign.pk, index=0) or campaign
    from marketing.tasks.sends import materialize_campaign_slice

    heartbeat(campaign.pk)  # the dispatcher leaves the slices this long to start before it plans again
    for index in range(len(campaign.materialize_bounds) + 1):
        if index in campaign.materialized_slices:
            continue
        materialize_campaign_slice.delay_on_commit(
            campaign_id=str(campaign.pk), index=index, organization_id=str(campaign.organization_id)
        )
    return campaign


def materialize_slice(*, campaign_id, index: int) -> Campaign | None:
    """Write one slice of a campaign's recipients and mark it done; the slice that completes the set finishes
    the materialization (`_finish_materialization`) in the same transaction. Idempotent: a slice already
    marked, or being written by another worker right now, is left alone (None). Runs in the caller's tenant
    transaction."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if (
        campaign is None
        or campaign.send_state != Campaign.SendState.MATERIALIZING
        or campaign.materialize_bounds is None
        or index in campaign.materialized_slices
        or index > len(campaign.materialize_bounds)
    ):
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext('marketing.slice:' || %s || ':' || %s))",
            [str(campaign.pk), index],
        )
        if not cursor.fetchone()[0]:
            return None
        heartbeat(campaign.pk)
        # The composite keys are checked at the end of the INSERT rather than at commit, so that the campaign
        # row below is locked only for the moment it takes to mark the slice (and, in the last one, finish);
        # then back to the default (every deferrable key of the schema is INITIALLY DEFERRED).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        bounds = campaign.materialize_bounds
        added = materialize_recipients(
            campaign=campaign,
            lower=bounds[index - 1] if index > 0 else None,
            upper=bounds[index] if index < len(bounds) else None,
        )
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        # Concurrent slices queue on the campaign's row here, so exactly one of them sees the set complete.
        # A slice's rows and its mark commit together, so adding its rows to the total counts each once.
        cursor.execute(
            "UPDATE campaigns SET materialized_slices = array_append(materialized_slices, %s),"
            " recipients_total = recipients_total + %s"
            " WHERE organization_id = %s AND id = %s AND send_state = %s AND NOT (%s = ANY(materialized_slices))"
            " RETURNING cardinality(materialized_slices), cardinality(materialize_bounds), recipients_total,"
            " materialized_slices",
            [index, added, campaign.organization_id, campaign.pk, Campaign.SendState.MATERIALIZING, index],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    done, cuts, campaign.recipients_total, campaign.materialized_slices = row
    if done == (cuts or 0) + 1:
        _finish_materialization(campaign)
    return campaign


# --- The throttle ----------------------------------------------------------------------------------------------


def gcra(*, tat: float, now: float, cost: int, interval: float, burst: float) -> tuple[float, float]:
    """One step of the generic cell rate algorithm: `tat` is the theoretical arrival time after every email
    reserved so far (seconds); `cost` emails are allowed now when the new arrival time is at most `burst`
    seconds ahead of `now`. Returns (wait, new_tat): wait 0 and the new arrival time when allowed, else the
    seconds to wait before asking again and `tat` unchanged. With burst = one chunk's worth (chunk x interval),
    an idle organization sends a chunk at once and then one chunk every chunk x interval seconds."""
    tat = max(tat, now)
    new_tat = tat + cost * interval
    if new_tat - now <= burst + 1e-9:
        return 0.0, new_tat
    return new_tat - burst - now, tat


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _throttle_key(organization_id) -> str:
    return f"marketing:send-rate:{organization_id}"


def throttle_reserve(organization_id, cost: int) -> float:
    """Reserve `cost` emails of the organization's MARKETING_SEND_RATE; returns 0 when they may go now, else
    the seconds to wait (nothing reserved then). Atomic across workers (WATCH/MULTI on one Redis key, the clock
    from the Redis server so every worker reads the same time)."""
    rate = float(settings.MARKETING_SEND_RATE)
    interval = 1.0 / rate
    burst = max(cost, settings.MARKETING_SEND_CHUNK) * interval
    key = _throttle_key(organization_id)

    def reserve(pipe: redis.client.Pipeline) -> float:
        seconds, micros = pipe.time()
        now = seconds + micros / 1_000_000
        stored = pipe.get(key)
        wait, new_tat = gcra(
            tat=float(stored) if stored else now, now=now, cost=cost, interval=interval, burst=burst
        )
        pipe.multi()
        if wait == 0:
            pipe.set(key, repr(new_tat), px=int((new_tat - now + burst) * 1000) + 1000)
        return wait

    return _redis().transaction(reserve, key, value_from_callable=True)


def throttle_refund(organization_id, unused: int) -> None:
    """Give back what a reservation did not use (a chunk that found fewer rows than it reserved)."""
    if unused <= 0:
        return
    interval = 1.0 / float(settings.MARKETING_SEND_RATE)
    key = _throttle_key(organization_id)

    def refund(pipe: redis.client.Pipeline) -> None:
        seconds, micros = pipe.time()
        stored = pipe.get(key)
        pipe.multi()
        if stored:
            now = seconds + micros / 1_000_000
            pipe.set(key, repr(max(now, float(stored) - unused * interval)), keepttl=True)

    _redis().transaction(refund, key)


def heartbeat(campaign_id) -> None:
    _redis().set(f"marketing:send-lane:{campaign_id}", "1", ex=HEARTBEAT_SECONDS)


def has_heartbeat(campaign_id) -> bool:
    return bool(_redis().exists(f"marketing:send-lane:{campaign_id}"))


# --- Claiming --------------------------------------------------------------------------------------------------

_CLAIM_CAMPAIGN_SQL = """
UPDATE email_sends s SET status = 'sending', attempts = s.attempts + 1, sent_at = now()
FROM (
    SELECT id, scheduled_send_time FROM email_sends
    WHERE organization_id = %s AND campaign_id = %s AND scheduled_send_time = %s AND step_run_id IS NULL
      AND status = 'queued'
    LIMIT %s FOR UPDATE SKIP LOCKED
) picked
WHERE s.id = picked.id AND s.scheduled_send_time = picked.scheduled_send_time AND s.status = 'queued'
RETURNING s.id, s.scheduled_send_time, s.customer_id, s.variant_id, s.step_run_id, s.campaign_id, s.email
"""

_CLAIM_ONE_SQL = """
UPDATE email_sends SET status = 'sending', attempts = attempts + 1, sent_at = now()
WHERE organization_id = %s AND id = %s AND scheduled_send_time = %s AND status = 'queued'
RETURNING id, scheduled_send_time, customer_id, variant_id, step_run_id, campaign_id, email
"""

_SKIP_SQL = """
UPDATE email_sends SET status = 'skipped', sent_at = NULL, error = %s
WHERE organization_id = %s AND (id, scheduled_send_time) IN (SELECT * FROM unnest(%s::uuid[], %s::timestamptz[]))
  AND status = 'sending'
"""


@dataclass
class Outgoing:
    """One claimed email, ready to build: the row's key and everything its message is made of."""

    send: EmailSend
    customer: Customer
    campaign: Campaign
    template: EmailTemplate
    subject: str


@dataclass
class Claim:
    organization_id: uuid.UUID
    organization: Organization | None = None
    outgoing: list[Outgoing] = field(default_factory=list)
    skipped: int = 0

    @property
    def claimed(self) -> int:
        return len(self.outgoing) + self.skipped


def _claim(organization_id, sql: str, params: list) -> Claim:
    """Claim rows with `sql`, skip those whose customer may no longer be emailed, and load what their messages
    need in a fixed number of queries (customers with owners, campaigns, variants, step templates)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    claim = Claim(organization_id=uuid.UUID(str(organization_id)))
    if not rows:
        return claim
    sends = [
        EmailSend(
            id=r[0],
            organization_id=organization_id,
            scheduled_send_time=r[1],
            customer_id=r[2],
            variant_id=r[3],
            step_run_id=r[4],
            campaign_id=r[5],
            email=r[6],
            status=SendStatus.SENDING,
        )
        for r in rows
    ]
    # The re-check at send time: unsubscribed, restricted, erased, opted out since materialization.
    customers = {
        c.pk: c
        for c in mailable_customers(organization_id)
        .filter(pk__in={s.customer_id for s in sends})
        .select_related("assigned_to")
    }
    gone = [s for s in sends if s.customer_id not in customers]
    if gone:
        with connection.cursor() as cursor:
            cursor.execute(
                _SKIP_SQL,
                [
                    "not mailable at send time (unsubscribed, suppressed, opted out or restricted)",
                    organization_id,
                    [s.pk for s in gone],
                    [s.scheduled_send_time for s in gone],
                ],
            )
        claim.skipped = len(gone)
    sends = [s for s in sends if s.customer_id in customers]
    if not sends:
        return claim
    claim.organization = Organization.objects.get(pk=organization_id)
    campaigns = {
        c.pk: c
        for c in Campaign.objects.filter(pk__in={s.campaign_id for s in sends}).select_related("template")
    }
    variants = {
        v.pk: v
        for v in Variant.objects.filter(pk__in={s.variant_id for s in sends if s.variant_id}).select_related(
            "template"
        )
    }
    step_templates = {
        run.pk: run.step.template
        for run in StepRun.objects.filter(
            pk__in={s.step_run_id for s in sends if s.step_run_id}
        ).select_related("step__template")
    }
    for send in sends:
        campaign = campaigns[send.campaign_id]
        variant = variants.get(send.variant_id)
        if send.step_run_id:
            template = step_templates.get(send.step_run_id)
            subject = template.subject if template else ""
        else:
            template = (variant.template if variant and variant.template_id else None) or campaign.template
            subject = (variant.subject if variant and variant.subject else "") or (
                template.subject if template else ""
            )
        customer = customers[send.customer_id]
        send.email = customer.email  # the address as it is now (it is what the mailable check looked at)
        claim.outgoing.append(
            Outgoing(send=send, customer=customer, campaign=campaign, template=template, subject=subject)
        )
    return claim


def claim_campaign_chunk(*, campaign: Campaign, limit: int) -> Claim:
    """Claim up to `limit` queued emails of a campaign's blast (in the caller's transaction, which must commit
    before they are delivered)."""
    org = campaign.organization_id
    return _claim(org, _CLAIM_CAMPAIGN_SQL, [org, campaign.pk, campaign.send_at, limit])


def claim_one(*, organization_id, send_id, scheduled_send_time) -> Claim:
    """Claim one queued email (a sequence email) by its key."""
    return _claim(organization_id, _CLAIM_ONE_SQL, [organization_id, send_id, scheduled_send_time])


def release_unsent(organization_id, sends: Iterable[EmailSend]) -> int:
    """Put claimed emails that certainly did not go out back in the queue (the mail server was unreachable
    before they were handed over)."""
    sends = list(sends)
    if not sends:
        return 0
    with tenant_context(organization_id), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE email_sends SET status = 'queued', sent_at = NULL WHERE organization_id = %s"
            " AND (id, scheduled_send_time) IN (SELECT * FROM unnest(%s::uuid[], %s::timestamptz[]))"
            " AND status = 'sending'",
            [organization_id, [s.pk for s in sends], [s.scheduled_send_time for s in sends]],
        )
        return cursor.rowcount


# --- Building a message ----------------------------------------------------------------------------------------

_BODY_END_RE = re.compile(r"</body\s*>", re.IGNORECASE)


def _from_address(campaign: Campaign, organization: Organization) -> str:
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL
    return formataddr((campaign.from_name or organization.name, address))


def build_message(
    send: EmailSend,
    *,
    customer: Customer,
    organization: Organization,
    campaign: Campaign,
    template: EmailTemplate,
    subject: str = "",
    connection=None,
) -> EmailMultiAlternatives:
    """The email of one send: the template (the variant's, the step's or the campaign's) merged for the
    customer in the sandbox, literal links turned into click redirects, an open pixel appended, the one-click
    unsubscribe headers (RFC 8058), From "<from name> <DEFAULT_FROM_EMAIL's address>", Reply-To, and a
    Message-ID stored on the row for webhooks (anymail backends also get the send's id as metadata)."""
    unsubscribe = tracking.unsubscribe_url(send)
    values = merge.values_for(customer=customer, organization=organization, unsubscribe_url=unsubscribe)
    rendered = merge.render(
        subject=subject or template.subject,
        html_body=template.html_body,
        text_body=template.text_body,
        values=values,
    )
    pixel = f'<img src="{escape(tracking.open_pixel_url(send))}" width="1" height="1" alt="">'
    body_html = tracking.rewrite_links(rendered.html, send)
    end = list(_BODY_END_RE.finditer(body_html))
    body_html = (
        f"{body_html[: end[-1].start()]}{pixel}{body_html[end[-1].start() :]}"
        if end
        else f"{body_html}\n{pixel}"
    )
    text = rendered.text or html_lib.unescape(strip_tags(rendered.html)).strip()
    from_email = _from_address(campaign, organization)
    message_id = make_msgid(domain=parseaddr(from_email)[1].rpartition("@")[2] or None)
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=text,
        from_email=from_email,
        to=[send.email],
        reply_to=[campaign.reply_to] if campaign.reply_to else None,
        headers={
            "Message-ID": message_id,
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        connection=connection,
    )
    message.attach_alternative(body_html, "text/html")
    if type(connection).__module__.startswith("anymail"):
        message.metadata = {
            "email_send_id": str(send.pk),
            "scheduled_send_time": send.scheduled_send_time.isoformat(),
        }
        message.tags = ["campaign" if send.step_run_id is None else "sequence"]
    return message


# --- Delivering and marking ------------------------------------------------------------------------------------

_MARK_SENT_SQL = """
WITH marked AS (
    UPDATE email_sends s SET status = 'sent', sent_at = v.sent_at, message_id = v.message_id, email = v.email
    FROM unnest(%s::uuid[], %s::timestamptz[], %s::timestamptz[], %s::text[], %s::text[])
        AS v (id, scheduled_send_time, sent_at, message_id, email)
    WHERE s.organization_id = %s AND s.id = v.id AND s.scheduled_send_time = v.scheduled_send_time
      AND s.status = 'sending'
    RETURNING s.campaign_id
)
UPDATE campaigns c SET sent_count = c.sent_count + n.count
FROM (SELECT campaign_id, count(*) FROM marked GROUP BY campaign_id) n
WHERE c.organization_id = %s AND c.id = n.campaign_id
"""

_MARK_FAILED_SQL = """
WITH marked AS (
    UPDATE email_sends s SET status = 'failed', failed_at = now(), sent_at = NULL, error = left(v.error, 500)
    FROM unnest(%s::uuid[], %s::timestamptz[], %s::text[]) AS v (id, scheduled_send_time, error)
    WHERE s.organization_id = %s AND s.id = v.id AND s.scheduled_send_time = v.scheduled_send_time
      AND s.status = 'sending'
    RETURNING s.campaign_id
)
UPDATE campaigns c SET failed_count = c.failed_count + n.count
FROM (SELECT campaign_id, count(*) FROM marked GROUP BY campaign_id) n
WHERE c.organization_id = %s AND c.id = n.campaign_id
"""


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    released: int = 0
    connection_error: str = ""  # the mail server could not be reached: the rest went back to the queue


def _mark(organization_id, sent: list[tuple], failed: list[tuple]) -> None:
    """Record sent and failed emails with their campaign counters, in one transaction."""
    with tenant_context(organization_id), connection.cursor() as cursor:
        if sent:
            ids, times, at, message_ids, emails = (list(column) for column in zip(*sent, strict=True))
            cursor.execute(
                _MARK_SENT_SQL, [ids, times, at, message_ids, emails, organization_id, organization_id]
            )
        if failed:
            ids, times, errors = (list(column) for column in zip(*failed, strict=True))
            cursor.execute(_MARK_FAILED_SQL, [ids, times, errors, organization_id, organization_id])


def _connection_lost(error: BaseException) -> bool:
    return isinstance(
        error, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError | ConnectionError | TimeoutError
    )


def deliver(claim: Claim) -> Delivery:
    """Send the claimed emails through Django's email backend (one connection for the chunk) and mark each.
    Runs after the claim committed, outside any transaction. A recipient the server refuses is failed with
    the error and never retried blindly; if the server cannot be reached before anything went out, every
    email goes back to the queue (the caller retries later); if the connection drops mid-chunk, the email
    being handed over is failed (it may have gone out) and the ones not yet tried go back to the queue."""
    result = Delivery()
    if not claim.outgoing:
        return result
    org = claim.organization_id
    mail = get_connection()
    try:
        mail.open()
    except Exception as error:  # any backend's failure to connect: nothing went out
        result.released = release_unsent(org, (o.send for o in claim.outgoing))
        result.connection_error = str(error) or type(error).__name__
        return result
    sent: list[tuple] = []
    failed: list[tuple] = []
    try:
        for position, item in enumerate(claim.outgoing):
            send = item.send
            try:
                message = build_message(
                    send,
                    customer=item.customer,
                    organization=claim.organization,
                    campaign=item.campaign,
                    template=item.template,
                    subject=item.subject,
                    connection=mail,
                )
                delivered = mail.send_messages([message])
            except Exception as error:
                failed.append((send.pk, send.scheduled_send_time, f"{type(error).__name__}: {error}"))
                if _connection_lost(error):
                    rest = [o.send for o in claim.outgoing[position + 1 :]]
                    result.released = release_unsent(org, rest)
                    result.connection_error = str(error) or type(error).__name__
                    break
                continue
            if delivered:
                status = getattr(message, "anymail_status", None)
                provider_id = getattr(status, "message_id", None) if status is not None else None
                message_id = str(provider_id or message.extra_headers["Message-ID"])[:255]
                sent.append((send.pk, send.scheduled_send_time, timezone.now(), message_id, send.email))
            else:
                failed.append((send.pk, send.scheduled_send_time, "refused by the mail backend"))
            if len(sent) + len(failed) >= MARK_EVERY:
                _mark(org, sent, failed)
                result.sent, result.failed = result.sent + len(sent), result.failed + len(failed)
                sent, failed = [], []
    finally:
        _mark(org, sent, failed)
        result.sent, result.failed = result.sent + len(sent), result.failed + len(failed)
        mail.close()
    return result


# --- Progress of a campaign ------------------------------------------------------------------------------------


def finish_if_done(*, campaign_id, organization_id) -> str:
    """When a campaign's blast has nothing queued or sending: 'done' (with send_finished_at), or 'testing' if
    rows wait for the A/B winner. Returns the send state. The campaign's status is not changed: a campaign
    spans channels, and completing it is a person's decision."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns c SET
                send_state = CASE WHEN EXISTS (
                    SELECT 1 FROM email_sends s WHERE s.organization_id = c.organization_id AND s.campaign_id = c.id
                      AND s.scheduled_send_time = c.send_at AND s.step_run_id IS NULL AND s.status = 'held')
                    THEN 'testing' ELSE 'done' END,
                send_finished_at = now()
            WHERE c.organization_id = %s AND c.id = %s AND c.send_state IN ('sending', 'testing')
              AND NOT EXISTS (
                SELECT 1 FROM email_sends s WHERE s.organization_id = c.organization_id AND s.campaign_id = c.id
                  AND s.scheduled_send_time = c.send_at AND s.step_run_id IS NULL
                  AND s.status IN ('queued', 'sending'))
            RETURNING send_state
            """,
            [organization_id, campaign_id],
        )
        row = cursor.fetchone()
    if row is None:
        return Campaign.objects.filter(pk=campaign_id).values_list("send_state", flat=True).first() or ""
    if row[0] == Campaign.SendState.TESTING:
        Campaign.objects.filter(pk=campaign_id).update(send_finished_at=None)
    return row[0]


def enqueue_send_chunks(campaign_id, *, organization_id=None) -> int:
    """Start sending a campaign's queued emails (in the caller's tenant transaction; the tasks are enqueued
    when it commits). A campaign waiting for its A/B winner goes back to sending. Returns how many lanes it
    started. Public: the A/B test calls it after releasing the held rows to the winner."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.send_at is None:
        return 0
    Campaign.objects.filter(pk=campaign.pk, send_state=Campaign.SendState.TESTING).update(
        send_state=Campaign.SendState.SENDING, send_finished_at=None
    )
    return start_lanes(campaign, organization_id=organization_id)


def start_lanes(campaign: Campaign, *, organization_id=None) -> int:
    """Enqueue (on commit) up to SEND_LANES chains of chunk tasks for the campaign's queued emails: each sends
    a chunk, then enqueues the next one. Returns how many."""
    from marketing.tasks.sends import send_campaign_chunk

    organization_id = organization_id or campaign.organization_id
    chunk = settings.MARKETING_SEND_CHUNK
    with connection.cursor() as cursor:
        # Bounded: enough to know how many lanes are worth starting, never a count of a million rows.
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM email_sends WHERE organization_id = %s AND campaign_id = %s"
            " AND scheduled_send_time = %s AND step_run_id IS NULL AND status = 'queued' LIMIT %s) q",
            [organization_id, campaign.pk, campaign.send_at, SEND_LANES * chunk],
        )
        queued = cursor.fetchone()[0]
    lanes = max(1, min(SEND_LANES, -(-queued // chunk)))
    for _lane in range(lanes):
        send_campaign_chunk.delay_on_commit(
            campaign_id=str(campaign.pk), organization_id=str(organization_id)
        )
    return lanes


@dataclass
class ChunkStep:
    """What one run of a campaign's chunk task decided."""

    claim: Claim | None = None
    wait: float = 0.0  # throttled: ask again in this many seconds (nothing claimed)
    stopped: str = ""  # why the lane ends: paused, done, not sending


def campaign_chunk_step(*, campaign_id) -> ChunkStep:
    """The transactional half of a chunk (in the task's tenant transaction): check the send is still on, take
    the throttle's permission, claim up to MARKETING_SEND_CHUNK emails. Delivery follows after commit."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.send_state not in ACTIVE_SEND_STATES:
        return ChunkStep(stopped=campaign.send_state if campaign else "missing")
    heartbeat(campaign.pk)
    chunk = settings.MARKETING_SEND_CHUNK
    wait = throttle_reserve(campaign.organization_id, chunk)
    if wait > 0:
        return ChunkStep(wait=wait)
    claim = claim_campaign_chunk(campaign=campaign, limit=chunk)
    throttle_refund(campaign.organization_id, chunk - len(claim.outgoing))
    if claim.claimed == 0:
        return ChunkStep(
            stopped=finish_if_done(campaign_id=campaign.pk, organization_id=campaign.organization_id)
        )
    return ChunkStep(claim=claim)


def sequence_email_step(*, send_id, scheduled_send_time) -> ChunkStep:
    """The transactional half of sending one sequence email: the throttle, then the claim."""
    send = (
        EmailSend.objects.filter(pk=send_id, scheduled_send_time=scheduled_send_time)
        .values_list("organization_id", "status")
        .first()
    )
    if send is None or send[1] != SendStatus.QUEUED:
        return ChunkStep(stopped="not queued")
    wait = throttle_reserve(send[0], 1)
    if wait > 0:
        return ChunkStep(wait=wait)
    return ChunkStep(
        claim=claim_one(organization_id=send[0], send_id=send_id, scheduled_send_time=scheduled_send_time)
    )


# --- Sequence emails -------------------------------------------------------------------------------------------


def queue_sequence_email(
    *, step_run: StepRun, customer: Customer, template: EmailTemplate
) -> EmailSend | None:
    """Queue a sequence step's email to `customer` when they may be emailed (else None): one row per step run
    (the database refuses a second, ON CONFLICT DO NOTHING returns the existing one), scheduled at the step
    run's due time, counted towards the sequence's campaign; its delivery is enqueued on commit and takes
    the same claim / send / mark path as a campaign. `template` must be the step's template."""
    from marketing.tasks.sends import send_sequence_email

    org = step_run.organization_id
    mailable = mailable_customers(org).filter(pk=customer.pk).values_list("email", flat=True).first()
    if mailable is None:
        return None
    campaign_id = step_run.enrollment.sequence.campaign_id
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            {_INSERT_COLUMNS}
            VALUES ({UUID7_SQL}, %s, %s, %s, NULL, %s, NULL, %s, %s, 'queued', false, 0, '', now(), 0, 0, '', now())
            ON CONFLICT DO NOTHING
            RETURNING id
            """,
            [org, campaign_id, customer.pk, step_run.pk, step_run.due_at, mailable],
        )
        inserted = cursor.fetchone()
    send = EmailSend.objects.get(step_run_id=step_run.pk, scheduled_send_time=step_run.due_at)
    if inserted is not None:
        send_sequence_email.delay_on_commit(
            send_id=str(send.pk),
            scheduled_send_time=send.scheduled_send_time.isoformat(),
            organization_id=str(org),
        )
    return send


# --- The sweep and the dispatcher ------------------------------------------------------------------------------


def sweep_interrupted(*, now: datetime.datetime | None = None) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
    """Mark emails stuck in 'sending' (claimed by a sender that died before recording the outcome) failed,
    never resending them: whether they went out is unknown, and a duplicate is worse than a miss. Looks only
    at campaigns that are sending, testing or paused, or have sequences, through the (organization, campaign,
    status) index. Runs in the system context; returns (organization id, campaign id, emails marked)."""
    cutoff = (now or timezone.now()) - STALE_AFTER
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH candidates AS (
                SELECT organization_id, id FROM campaigns WHERE send_state IN ('sending', 'testing', 'paused')
                UNION
                SELECT organization_id, campaign_id FROM marketing_sequences
            ),
            marked AS (
                UPDATE email_sends s SET status = 'failed', failed_at = now(), error = %s
                FROM candidates c
                WHERE s.organization_id = c.organization_id AND s.campaign_id = c.id AND s.status = 'sending'
                  AND s.sent_at < %s
                RETURNING s.organization_id, s.campaign_id
            )
            UPDATE campaigns c SET failed_count = c.failed_count + n.count
            FROM (SELECT organization_id, campaign_id, count(*) FROM marked GROUP BY 1, 2) n
            WHERE c.organization_id = n.organization_id AND c.id = n.campaign_id
            RETURNING c.organization_id, c.id, n.count
            """,
            [INTERRUPTED_ERROR, cutoff],
        )
        return [(org, pk, int(count)) for org, pk, count in cursor.fetchall()]


def due_campaigns(*, now: datetime.datetime | None = None) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Scheduled sends whose time has come, moved to 'materializing' (once: the UPDATE is the claim), plus
    materializations that a dead worker left unfinished; (organization id, campaign id) pairs to start.
    Runs in the system context."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns SET send_state = 'materializing', send_started_at = %s,
                materialize_bounds = NULL, materialized_slices = '{}',
                status = CASE WHEN status IN ('draft', 'scheduled') THEN 'active' ELSE status END
            WHERE send_state = %s AND send_at <= %s
            RETURNING organization_id, id
            """,
            [now, Campaign.SendState.SCHEDULED, now],
        )
        due = cursor.fetchall()
        cursor.execute(
            "SELECT organization_id, id FROM campaigns WHERE send_state = 'materializing' AND send_started_at < %s",
            [now - datetime.timedelta(minutes=10)],
        )
        # Slices still waiting in the queue or running keep the heartbeat fresh: not restarted.
        return due + [(org, pk) for org, pk in cursor.fetchall() if not has_heartbeat(pk)]


def stalled_campaigns() -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Campaigns that are sending (or sending their A/B sample) but whose lanes all went quiet (no chunk ran for
    HEARTBEAT_SECONDS): the dispatcher starts them again. Runs in the system context."""
    rows = Campaign.objects.filter(send_state__in=ACTIVE_SEND_STATES).values_list("organization_id", "id")
    return [(org, pk) for org, pk in rows if not has_heartbeat(pk)]
