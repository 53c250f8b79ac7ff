"""Background work with a real Celery worker (a subprocess on its own queue, against the test database),
plus the in-process semantics of TenantTask and SystemTask."""

import datetime
import json
import uuid
from pathlib import Path

import pytest
from django.db import connection

from crm import health, tenancy
from crm.celery import SystemTask, TenantTask
from crm.celery import app as celery_app
from crm.db.partitions import partitioned_tables
from crm.models import Notification, User
from crm.tasks import ensure_partitions, heartbeat
from crm.tenancy import TenantContextError, system_context, tenant_context
from tests.celery_worker import running_worker, wait_for
from tests.crm.worker_tasks import report_tenant
from tests.owner_db import owner_connection

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 30
# The worker creates audit partitions this far ahead (the app default is 3; migrations made those already).
WORKER_MONTHS_AHEAD = 5


# --- In-process: what TenantTask and SystemTask promise -----------------------------------------------------------


@celery_app.task(base=TenantTask, name="tests.crm.tenant_probe")
def tenant_probe(note: str = "") -> dict:
    state = tenancy.current()
    return {
        "organization_id": state.organization_id,
        "request_id": state.request_id,
        "visible": set(User.objects.values_list("organization_id", flat=True)),
        "note": note,
    }


def test_tenant_task_runs_its_body_inside_the_given_organizations_context(org_a, org_b, admin_a, admin_b):
    result = tenant_probe.apply(kwargs={"organization_id": str(org_a.pk), "note": "hi"}, throw=True).get()
    assert result["organization_id"] == org_a.pk
    assert result["visible"] == {org_a.pk}
    assert result["note"] == "hi"
    assert result["request_id"].startswith("task-")
    direct = tenant_probe(organization_id=org_b.pk)
    assert (direct["organization_id"], direct["visible"]) == (org_b.pk, {org_b.pk})
    assert tenancy.current() is None


def test_tenant_task_without_an_organization_raises(db):
    with pytest.raises(TenantContextError):
        tenant_probe.apply(throw=True)
    with pytest.raises(TenantContextError):
        tenant_probe()


def test_tenant_task_is_enqueued_on_commit_with_its_organization_and_checks_the_body_arguments(
    org_a, admin_a, django_capture_on_commit_callbacks
):
    kwargs = {"organization_id": str(org_a.pk), "recipient_id": str(admin_a.pk), "marker": "m"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report_tenant.delay_on_commit(**kwargs)
    assert len(callbacks) == 1  # sent only once the transaction commits (not executed here)
    # organization_id is accepted next to the body's arguments; a wrong body argument is refused at once.
    with pytest.raises(TypeError):
        report_tenant.apply_async(kwargs={**kwargs, "unexpected": 1}, queue="never-consumed")
    with pytest.raises(TypeError):
        report_tenant.apply_async(kwargs={"organization_id": str(org_a.pk)}, queue="never-consumed")


def test_system_task_runs_in_the_system_context(org_a, org_b):
    assert isinstance(celery_app.tasks["crm.tasks.ensure_partitions"], SystemTask)
    created = ensure_partitions.apply(throw=True).get()
    assert set(created) == set(partitioned_tables())
    assert "crm_audit_log" in created

    @celery_app.task(base=SystemTask, name="tests.crm.system_probe")
    def system_probe():
        from crm.models import Organization

        return tenancy.current().is_system, set(Organization.objects.values_list("slug", flat=True))

    assert system_probe.apply(throw=True).get() == (True, {"org-a", "org-b"})


# --- A real worker --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker(django_db_setup):
    """`celery worker` on a queue of its own, against the test database; always stopped at the end."""
    with running_worker(
        includes=("tests.crm.worker_tasks",), env={"CRM_PARTITION_MONTHS_AHEAD": str(WORKER_MONTHS_AHEAD)}
    ) as started:
        yield started


def _wait_for(condition, worker, what: str) -> None:
    wait_for(condition, worker, what)


@pytest.mark.worker
def test_heartbeat_run_by_a_real_worker_makes_the_worker_check_pass(
    worker, transactional_db, heartbeat_key, redis_client
):
    redis_client.delete(heartbeat_key)
    assert health.check_all()["checks"]["worker"]["ok"] is False
    heartbeat.apply_async(queue=worker.queue)
    _wait_for(lambda: health.check_all()["checks"]["worker"]["ok"], worker, "the heartbeat")
    report = health.check_all()
    assert report["ok"] is True


def _month_partition(offset: int) -> str:
    today = datetime.datetime.now(datetime.UTC).date()
    index = today.year * 12 + today.month - 1 + offset
    return f"crm_audit_log_y{index // 12:04d}m{index % 12 + 1:02d}"


def _existing(names) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s)", [list(names)])
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.worker
def test_ensure_partitions_run_by_a_real_worker_creates_the_coming_months(worker, transactional_db):
    targets = {_month_partition(offset) for offset in (WORKER_MONTHS_AHEAD - 1, WORKER_MONTHS_AHEAD)}
    if _existing(targets):  # left by an earlier run on this database: start from their absence
        with owner_connection() as owner:
            for name in _existing(targets):
                owner.execute(f'DROP TABLE "{name}"')
    assert _existing(targets) == set()

    ensure_partitions.apply_async(queue=worker.queue)
    _wait_for(lambda: _existing(targets) == targets, worker, f"partitions {sorted(targets)}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity, "
            "(SELECT count(*) FROM pg_policy WHERE polrelid = c.oid) FROM pg_class c WHERE relname = ANY(%s)",
            [list(targets)],
        )
        # The parent's three policies: tenant_read, tenant_append and tenant_redact (compliance erasure).
        assert {row[1:] for row in cursor.fetchall()} == {(True, True, 3)}


@pytest.mark.worker
def test_tenant_task_run_by_a_real_worker_acts_inside_its_organization(
    worker, transactional_db, org_a, org_b, admin_a, admin_b
):
    marker = f"worker-probe-{uuid.uuid4().hex}"
    # Enqueued the way the app does it: inside a transaction, sent when it commits.
    with tenant_context(org_a.pk, user=admin_a):
        report_tenant.apply_async_on_commit(
            kwargs={"organization_id": str(org_a.pk), "recipient_id": str(admin_a.pk), "marker": marker},
            queue=worker.queue,
        )

    def reported():
        with system_context():
            return Notification.objects.filter(title=marker).first()

    _wait_for(lambda: reported() is not None, worker, "the tenant task's report")
    notification = reported()
    assert notification.organization_id == org_a.pk
    assert notification.recipient_id == admin_a.pk
    assert json.loads(notification.body) == {"organization_id": str(org_a.pk), "visible": [str(org_a.pk)]}
