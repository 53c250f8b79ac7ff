"""Campaign materialization set-based vs row by row, and enqueueing the send, side by side in one run
(`make bench`).

1,000,000 mailable customers of one organization (plus 1 % opted out and 1 % suppressed, which every way
leaves out), in two segments that overlap by 10 %, generated set-based. Three ways to write the recipients:

- **row by row** (what an ORM implementation does: for each member, check they may be emailed, then
  `EmailSend.objects.create`), on a sample of 2,000 members inside a savepoint that is then rolled back, its
  per-recipient cost extrapolated linearly (each member costs the same indexed queries whatever the size);
- **the shipped path**: `start_campaign_send` plans slices of MARKETING_MATERIALIZE_SLICE customers and two
  real Celery workers (one process each, as on two cores; MARKETING_BENCH_WORKERS) write them in parallel, the last one starting the
  send; timed from the planner's call to the campaign leaving `materializing`;
- **one statement**: `materialize_recipients` for the whole audience in one transaction (with its commit),
  what each slice runs for its range, for comparison.

Then: starting the send (`enqueue_send_chunks`: a bounded count and a few lane messages, whatever the
size), claiming chunks at that size, and the send panel's in-flight count. Set MARKETING_BENCH_RECIPIENTS for
a smaller run while developing.
"""

import os
import re
import time
from contextlib import ExitStack, contextmanager

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from crm.tenancy import system_context, tenant_context
from customers.models import Customer
from customers.segments.membership import UUID7_SQL
from marketing import sending
from marketing.models import Campaign, CampaignSegment, EmailSend, EmailTemplate
from marketing.selectors import sends as send_selectors
from marketing.selectors.audience import mailable_customers
from tests import factories
from tests.celery_worker import running_worker, wait_for
from tests.owner_db import analyze_as_owner, owner_connection

pytestmark = pytest.mark.bench

RECIPIENTS = int(os.environ.get("MARKETING_BENCH_RECIPIENTS", "1000000"))
WORKERS = int(os.environ.get("MARKETING_BENCH_WORKERS", "2"))  # one per core of this machine
SAMPLE = 2_000
TARGET_RATIO = 50
TARGET_RATE = 50_000  # recipients per second
CLAIMS = 20
SLICE_TOOK = re.compile(r"materialize_campaign_slice\[[^\]]+\] succeeded in ([0-9.]+)s")

CUSTOMERS_SQL = f"""
INSERT INTO customers (id, organization_id, number, first_name, last_name, company_name, email, phone,
    education_level, job_title, customer_type, lifecycle_stage, lead_score, engagement_score, health_score,
    tags, vip_status, status, street, city, state, postal_code, country, source, email_opt_in, do_not_call,
    processing_restricted, restriction_reason, created_at, updated_at)
SELECT {UUID7_SQL}, %(org)s, n, 'First' || n, 'Last' || n, 'Company ' || (n %% 5000),
    'customer' || n || '@bench.example', '', '', '', 'individual', 'lead', 0, 0, 0, '{{}}', false, 'active',
    '', '', '', '', '', '', n %% 100 <> 7, false, false, '', now(), now()
FROM generate_series(1, %(count)s) AS n
"""

SUPPRESSIONS_SQL = """
INSERT INTO email_suppressions (id, organization_id, email, reason, created_at)
SELECT gen_random_uuid(), %(org)s, 'customer' || n || '@bench.example', 'unsubscribed', now()
FROM generate_series(1, %(count)s) AS n WHERE n %% 100 = 13
"""

# Segment A: the first 60 % of the customers; segment B: the last 50 % (10 % in both).
MEMBERS_SQL = """
INSERT INTO customer_segment_members (id, organization_id, segment_id, customer_id, added_at, matched_rule)
SELECT gen_random_uuid(), c.organization_id, s.id, c.id, now(), ''
FROM customers c JOIN customer_segments s ON s.organization_id = c.organization_id
WHERE c.organization_id = %(org)s
  AND ((s.name = 'A' AND c.number <= %(count)s * 0.6) OR (s.name = 'B' AND c.number > %(count)s * 0.5))
"""


# Not what is measured: each new customer's audit row and search terms (a statement trigger writing some 25
# trigram rows per customer) made generating a million customers take over 20 minutes of one core. They are
# switched off, as the owner, for the customers' INSERT only (committed before they are switched back on).
GENERATION_TRIGGERS = ("crm_audit", "customer_search_terms_insert")


@contextmanager
def _generation_triggers_off():
    with owner_connection() as owner:
        for trigger in GENERATION_TRIGGERS:
            owner.execute(f'ALTER TABLE customers DISABLE TRIGGER "{trigger}"')
    try:
        yield
    finally:
        with owner_connection() as owner:
            for trigger in GENERATION_TRIGGERS:
                owner.execute(f'ALTER TABLE customers ENABLE TRIGGER "{trigger}"')


def _generate(org, count: int) -> dict:
    with _generation_triggers_off(), system_context(), connection.cursor() as cursor:
        cursor.execute(CUSTOMERS_SQL, {"org": org.pk, "count": count})
    with system_context(), connection.cursor() as cursor:
        cursor.execute(SUPPRESSIONS_SQL, {"org": org.pk, "count": count})
        cursor.execute(
            "INSERT INTO customer_segments (id, organization_id, name, description, kind, criteria, member_count,"
            " created_at, updated_at) SELECT gen_random_uuid(), %s, name, '', 'static', '{}', 0, now(), now()"
            " FROM unnest(ARRAY['A', 'B']) AS name RETURNING id",
            [org.pk],
        )
        segments = [row[0] for row in cursor.fetchall()]
        cursor.execute(MEMBERS_SQL, {"org": org.pk, "count": count})
    # The steady state autovacuum keeps a table in (statistics, hint bits, the visibility map), rather than
    # the first reader paying for a bulk load's hint bits.
    with owner_connection() as owner:
        for table in ("customers", "customer_segment_members", "email_suppressions"):
            owner.execute(f'VACUUM (ANALYZE) "{table}"')
    with tenant_context(org.pk):
        template = EmailTemplate.objects.create(
            organization=org, name="Bench", subject="Hi {{ customer.first_name }}", html_body="<p>Hi</p>"
        )
        campaigns = {}
        for way in ("parallel", "one statement"):
            campaigns[way] = Campaign.objects.create(
                organization=org,
                name=f"Bench {way}",
                channels=["email"],
                template=template,
                send_at=timezone.now(),
            )
            for segment_id in segments:
                CampaignSegment.objects.create(
                    organization=org, campaign=campaigns[way], segment_id=segment_id
                )
        expected = (
            mailable_customers(org.pk).filter(segment_memberships__segment_id__in=segments).distinct().count()
        )
    return {"campaigns": campaigns, "segments": segments, "expected": expected}


def _row_by_row(org, campaign, segments) -> tuple[int, float]:
    """What an ORM loop does for each member of the campaign's segments: is this customer mailable and not
    yet a recipient? then create the row. On a sample, rolled back; returns (rows, seconds)."""
    with tenant_context(org.pk):
        member_ids = list(
            Customer.objects.filter(organization_id=org.pk, segment_memberships__segment_id__in=segments)
            .order_by("number")
            .values_list("pk", flat=True)[:SAMPLE]
        )
        savepoint = transaction.savepoint()
        started = time.perf_counter()
        created = 0
        for customer_id in member_ids:
            customer = mailable_customers(org.pk).filter(pk=customer_id).first()
            if customer is None:
                continue
            if EmailSend.objects.filter(campaign_id=campaign.pk, customer_id=customer_id).exists():
                continue
            EmailSend.objects.create(
                organization_id=org.pk,
                campaign_id=campaign.pk,
                customer_id=customer_id,
                blast_at=campaign.send_at,
                scheduled_send_time=campaign.send_at,
                email=customer.email,
                status="queued",
                queued_at=timezone.now(),
            )
            created += 1
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred key checks count too
        seconds = time.perf_counter() - started
        transaction.savepoint_rollback(savepoint)
    return created, seconds


def _worker_ready(worker) -> None:
    wait_for(lambda: "ready." in worker.log.read_text(), worker, "the worker to start", seconds=60)


def _parallel(org, campaign) -> tuple[float, int, list[list[float]]]:
    """The shipped path: plan, then WORKERS worker processes write the slices; (seconds, slices, each
    worker's slice times)."""
    queue = settings.CELERY_TASK_DEFAULT_QUEUE  # where the planner enqueues the slices
    with ExitStack() as stack:
        workers = [stack.enter_context(running_worker(queue=queue)) for _ in range(WORKERS)]
        for worker in workers:
            _worker_ready(worker)
        first = workers[0]
        with tenant_context(org.pk):
            Campaign.objects.filter(pk=campaign.pk).update(send_state="materializing")
        started = time.perf_counter()
        with tenant_context(org.pk):
            sending.start_campaign_send(campaign_id=campaign.pk)  # the slices are enqueued on commit

        def materialized() -> bool:
            with tenant_context(org.pk):
                return Campaign.objects.get(pk=campaign.pk).send_state != "materializing"

        wait_for(materialized, first, "the slices", seconds=1800)
        seconds = time.perf_counter() - started
        # Each worker's slices, as its log times them ("... succeeded in 1.52s").
        took = [[float(s) for s in SLICE_TOOK.findall(worker.log.read_text())] for worker in workers]
    with tenant_context(org.pk):
        campaign = Campaign.objects.get(pk=campaign.pk)
    return seconds, len(campaign.materialize_bounds) + 1, took


@pytest.mark.django_db(transaction=True)
def test_set_based_materialization_beats_row_by_row_and_starting_the_send_is_cheap(capsys):
    org = factories.organization()
    started = time.perf_counter()
    data = _generate(org, RECIPIENTS)
    generated_s = time.perf_counter() - started
    expected = data["expected"]
    parallel, single = data["campaigns"]["parallel"], data["campaigns"]["one statement"]

    naive_rows, naive_s = _row_by_row(org, single, data["segments"])

    parallel_s, slices, took = _parallel(org, parallel)
    with tenant_context(org.pk):
        parallel = Campaign.objects.get(pk=parallel.pk)
        written = EmailSend.objects.filter(campaign_id=parallel.pk)
        assert written.count() == written.values("customer_id").distinct().count() == expected
        assert parallel.recipients_total == expected
    with owner_connection() as owner:
        owner.execute("TRUNCATE email_sends")  # the one-statement run starts from the same empty table

    started = time.perf_counter()
    with tenant_context(org.pk):
        added = sending.materialize_recipients(campaign=single)
        statement_s = time.perf_counter() - started
    single_s = time.perf_counter() - started  # with the commit, where the deferred key checks run
    with tenant_context(org.pk):
        Campaign.objects.filter(pk=single.pk).update(send_state="sending")
    analyze_as_owner("email_sends")
    assert added == expected
    with tenant_context(org.pk):
        assert sending.materialize_recipients(campaign=single) == 0  # a re-run adds nothing

    naive_per, parallel_per = naive_s / naive_rows, parallel_s / expected
    every = [seconds for worker in took for seconds in worker]
    ratio, rate, single_rate = naive_per / parallel_per, expected / parallel_s, added / single_s

    # Starting the send: the lanes' messages (published on commit to the test queue, dropped after).
    client = redis.Redis.from_url(settings.REDIS_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    client.delete(queue)
    with tenant_context(org.pk):
        started = time.perf_counter()
        lanes = sending.enqueue_send_chunks(single.pk)
    enqueue_s = time.perf_counter() - started
    client.delete(queue)
    client.close()

    # Claiming chunks of MARKETING_SEND_CHUNK at this size (rolled back: the rows stay queued).
    chunk = settings.MARKETING_SEND_CHUNK
    with tenant_context(org.pk):
        savepoint = transaction.savepoint()
        started = time.perf_counter()
        claimed = sum(
            len(sending.claim_campaign_chunk(campaign=single, limit=chunk).outgoing) for _ in range(CLAIMS)
        )
        claim_s = time.perf_counter() - started
        transaction.savepoint_rollback(savepoint)
    assert claimed == CLAIMS * chunk

    # The send panel's in-flight count (queued / held / sending / skipped) at this size.
    admin = factories.user(org, role="admin")
    with tenant_context(org.pk):
        started = time.perf_counter()
        progress = send_selectors.send_progress(actor=admin, pk=single.pk)
        panel_s = time.perf_counter() - started
    assert progress.queued == added

    with capsys.disabled():
        print(
            f"\n[bench] campaign materialization, {expected:,} recipients of {RECIPIENTS:,} customers in two "
            f"overlapping segments (generated and vacuumed in {generated_s:.0f} s, load {os.getloadavg()[0]:.1f})\n"
            f"  row by row (mailable check + exists + create): {naive_rows:,} rows in {naive_s:.2f} s = "
            f"{naive_per * 1000:.3f} ms/recipient (extrapolated to {expected:,}: {naive_per * expected:.0f} s)\n"
            f"  shipped path, {slices} slices on {WORKERS} workers: {expected:,} rows in {parallel_s:.2f} s = "
            f"{parallel_per * 1000:.4f} ms/recipient = {rate:,.0f} recipients/s\n"
            f"    slices per worker: {', '.join(f'{len(t)} ({sum(t):.2f} s busy)' for t in took)}; "
            f"a slice {min(every):.2f}-{max(every):.2f} s\n"
            f"  one statement: {added:,} rows in {single_s:.2f} s = {single_rate:,.0f} recipients/s (the INSERT "
            f"... SELECT {statement_s:.2f} s, the commit's deferred key checks the rest); slices "
            f"{single_s / parallel_s:.2f}x faster\n"
            f"  ratio per recipient: {ratio:.0f}x (target >= {TARGET_RATIO}x, >= {TARGET_RATE:,}/s)\n"
            f"  enqueue_send_chunks: {lanes} lane(s) in {enqueue_s * 1000:.1f} ms\n"
            f"  claim a chunk of {chunk}: {claim_s / CLAIMS * 1000:.1f} ms ({CLAIMS} chunks)\n"
            f"  send panel progress (in-flight counts): {panel_s * 1000:.0f} ms\n"
        )
    assert ratio >= TARGET_RATIO
    if RECIPIENTS >= 1_000_000:
        assert rate >= TARGET_RATE
