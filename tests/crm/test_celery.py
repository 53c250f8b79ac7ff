"""Background work with a real Celery worker (a subprocess on its own queue, against the test database),
plus the in-process semantics of TenantTask and SystemTask."""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection

from crm import health, tenancy
from crm.celery import SystemTask, TenantTask
from crm.celery import app as celery_app
from crm.db.partitions import partitioned_tables
from crm.models import Notification, User
from crm.tasks import ensure_partitions, heartbeat
from crm.tenancy import TenantContextError, system_context, tenant_context
from tests.crm.worker_tasks import report_tenant

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


def _database_url(params: dict, name: str) -> str:
    user = quote(params["USER"] or "", safe="")
    password = quote(params.get("PASSWORD") or "", safe="")
    host = params.get("HOST") or "localhost"
    host = quote(host, safe="") if host.startswith("/") else host  # a socket directory, percent-encoded
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{user}:{password}@{host}{port}/{quote(name, safe='')}"


def _owner_connection() -> psycopg.Connection:
    owner, name = settings.DATABASE_OWNER, connection.settings_dict["NAME"]
    return psycopg.connect(
        dbname=name,
        user=owner["USER"],
        password=owner.get("PASSWORD") or None,
        host=owner.get("HOST") or None,
        port=owner.get("PORT") or None,
        autocommit=True,
    )


@pytest.fixture(scope="module")
def worker(django_db_setup):
    """`celery worker` on a queue of its own, against the test database; always stopped at the end."""
    queue = f"crm-test-{uuid.uuid4().hex[:12]}"
    test_db = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings.test",
        "DATABASE_URL": _database_url(connection.settings_dict, test_db),
        "DATABASE_OWNER_URL": _database_url(settings.DATABASE_OWNER, test_db),
        "REDIS_URL": settings.REDIS_URL,
        "CRM_PARTITION_MONTHS_AHEAD": str(WORKER_MONTHS_AHEAD),
    }
    log = tempfile.NamedTemporaryFile(prefix="crm-worker-", suffix=".log", delete=False)  # noqa: SIM115
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "crm",
        "worker",
        "-P",
        "solo",
        "-c",
        "1",
        "-Q",
        queue,
        "--without-heartbeat",
        "--without-mingle",
        "--without-gossip",
        "-I",
        "tests.crm.worker_tasks",
        "--loglevel",
        "INFO",
    ]
    # A fixed command line of our own (no shell, no outside input).
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        yield SimpleNamespace(queue=queue, process=process, log=Path(log.name))
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()
        client = redis.Redis.from_url(settings.REDIS_URL)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        client.close()
        Path(log.name).unlink(missing_ok=True)


def _wait_for(condition, worker, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}):\n{worker.log.read_text()[-4000:]}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{worker.log.read_text()[-4000:]}")


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
        with _owner_connection() as owner:
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
        assert {row[1:] for row in cursor.fetchall()} == {(True, True, 2)}


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
