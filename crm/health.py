"""Liveness of the parts the app needs: PostgreSQL, Redis and at least one Celery worker.

The worker is judged by its heartbeat: the `crm.tasks.heartbeat` beat task writes a timestamp to Redis
every minute; a heartbeat older than `WORKER_STALE_AFTER` seconds means no worker is consuming.
"""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import connection

HEARTBEAT_KEY = "crm:worker:heartbeat"
WORKER_STALE_AFTER = 180


class Down(RuntimeError):
    """A part answered, but is not healthy; the message says how (safe to show publicly)."""


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except Down as error:
        detail, ok = str(error), False
    except Exception as error:
        # Any failure means "down"; only the type is shown, never the message, which may hold host names.
        detail, ok = type(error).__name__, False
    return {"ok": ok, "ms": round((time.perf_counter() - started) * 1000, 1), "detail": detail}


def _postgres() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "up"


def _redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)


def _redis() -> str:
    _redis_client().ping()
    return "up"


def _worker() -> str:
    raw = _redis_client().get(HEARTBEAT_KEY)
    if raw is None:
        raise Down("no worker heartbeat")
    age = time.time() - float(raw)
    if age > WORKER_STALE_AFTER:
        raise Down(f"last worker heartbeat {int(age)} s ago")
    return f"heartbeat {int(age)} s ago"


def record_heartbeat() -> None:
    _redis_client().set(HEARTBEAT_KEY, str(time.time()), ex=WORKER_STALE_AFTER * 10)


def check_all() -> dict:
    checks = {"postgres": _timed(_postgres), "redis": _timed(_redis), "worker": _timed(_worker)}
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}
