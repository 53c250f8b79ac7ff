"""A real Celery worker for tests about background work: a subprocess on a queue of its own, against the
test database (committed data: use it with `transactional_db` or a live server), always stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
WAIT_SECONDS = 30


def database_url(params: dict, name: str) -> str:
    user = quote(params["USER"] or "", safe="")
    password = quote(params.get("PASSWORD") or "", safe="")
    host = params.get("HOST") or "localhost"
    host = quote(host, safe="") if host.startswith("/") else host  # a socket directory, percent-encoded
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{user}:{password}@{host}{port}/{quote(name, safe='')}"


@contextmanager
def running_worker(
    *, includes: tuple[str, ...] = (), env: dict | None = None, queue: str | None = None
) -> Iterator[SimpleNamespace]:
    """Start `celery worker` (solo pool) consuming `queue` (default: a fresh one; with the app's default
    queue it serves what the app itself enqueues, after stale messages are dropped); yields (queue,
    process, log)."""
    if queue is None:
        queue = f"crm-test-{uuid.uuid4().hex[:12]}"
    else:
        client = redis.Redis.from_url(settings.REDIS_URL)
        client.delete(queue)
        client.close()
    test_db = connection.settings_dict["NAME"]
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings.test",
        "DATABASE_URL": database_url(connection.settings_dict, test_db),
        "DATABASE_OWNER_URL": database_url(settings.DATABASE_OWNER, test_db),
        "REDIS_URL": settings.REDIS_URL,
        **(env or {}),
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
        "--loglevel",
        "INFO",
    ]
    for module in includes:
        command += ["-I", module]
    # A fixed command line of our own (no shell, no outside input).
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
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


def wait_for(condition, worker, what: str, seconds: float = WAIT_SECONDS) -> None:
    """Poll `condition` until true; fail with the worker's log if it exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}):\n{worker.log.read_text()[-4000:]}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{worker.log.read_text()[-4000:]}")
