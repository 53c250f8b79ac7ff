"""The sequence engine under concurrency: several threads, each with its own database connection and
transaction, run passes over the same due enrollments at the same moment (as two workers would when a beat
tick is delivered twice). Afterwards every enrollment ran each of its steps once and got one email."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection
from django.utils import timezone

from crm.tenancy import system_context, tenant_context
from marketing.models import EmailSend, Enrollment, StepRun
from marketing.sequences import advance_due
from marketing.services.sequences import enrollments_create
from tests import factories
from tests.marketing import factories as mf
from tests.owner_db import owner_connection

WORKERS = 4
ENROLLMENTS = 40


@pytest.fixture
def committed_audit_rows_removed():
    """The audit log is append-only for the app role and outside Django's flush: remove what this test
    committed (only the owner may, by TRUNCATE)."""
    yield
    with owner_connection() as conn:
        conn.execute("TRUNCATE crm_audit_log")


@pytest.fixture
def queued_deliveries(monkeypatch):
    """The delivery tasks the engine's emails enqueue on commit, recorded instead of sent to the broker."""
    from marketing.tasks import sends

    queued: list[str] = []
    lock = threading.Lock()

    def record(**kwargs):
        with lock:
            queued.append(kwargs["send_id"])

    monkeypatch.setattr(sends.send_sequence_email, "delay_on_commit", record)
    return queued


def _run_concurrently(org_id, now, rounds: int) -> list[BaseException]:
    barrier = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def work():
        try:
            for _ in range(rounds):
                barrier.wait()
                with tenant_context(org_id):
                    # A small batch, so the workers' batches interleave over the same due rows.
                    advance_due(organization_id=org_id, now=now, batch_size=7)
        except BaseException as error:  # reported to the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_concurrent_passes_run_each_step_once_and_send_each_email_once(
    transactional_db, committed_audit_rows_removed, queued_deliveries
):
    org = factories.organization()
    template = mf.email_template(org)
    sequence = mf.sequence(
        org,
        steps=[
            ("send_email", {"template": template}),
            ("update_field", {"update": {"field": "tags_add", "value": "nurtured"}}),
            ("wait", {"wait_days": 1}),
            ("send_email", {"template": template}),
        ],
    )
    customers = [factories.customer(org, email_opt_in=True) for _ in range(ENROLLMENTS)]
    start = timezone.now()
    with tenant_context(org.pk):
        created, _ = enrollments_create(
            sequence=sequence, actor=None, customer_ids=[c.pk for c in customers], now=start
        )
    assert created == ENROLLMENTS

    assert _run_concurrently(org.pk, start, rounds=3) == []
    assert _run_concurrently(org.pk, start + datetime.timedelta(days=1), rounds=3) == []

    with tenant_context(org.pk):
        runs = list(
            StepRun.objects.filter(enrollment__sequence=sequence).values_list("enrollment_id", "step_id")
        )
        emails = list(
            EmailSend.objects.filter(campaign_id=sequence.campaign_id).values_list(
                "customer_id", "step_run_id"
            )
        )
        statuses = set(Enrollment.objects.filter(sequence=sequence).values_list("status", flat=True))
    assert len(runs) == len(set(runs)) == ENROLLMENTS * 4
    assert len(emails) == len({e[1] for e in emails}) == ENROLLMENTS * 2
    assert sorted(queued_deliveries) == sorted({str(pk) for pk in queued_deliveries})
    assert len(queued_deliveries) == ENROLLMENTS * 2
    assert statuses == {"completed"}
    with system_context():
        from customers.models import Customer

        tags = list(Customer.objects.filter(pk__in=[c.pk for c in customers]).values_list("tags", flat=True))
    assert tags == [["nurtured"]] * ENROLLMENTS
