"""Fixtures of the platform-app tests: audit-row helpers, the worker heartbeat key, the `worker` marker."""

from __future__ import annotations

import json

import pytest
import redis
from django.conf import settings
from django.db import connection

from crm.health import HEARTBEAT_KEY
from crm.models import AuditLog
from crm.tenancy import tenant_context


def pytest_configure(config):
    # Registered here (tests/crm is ours); these tests are part of the default run, CI included.
    config.addinivalue_line(
        "markers", "worker: starts a real Celery worker subprocess (part of the default run, ~5 s)"
    )


def audit_rows(org, **filters) -> list[AuditLog]:
    """The organization's audit rows, oldest first, read in its own tenant context."""
    with tenant_context(org.pk):
        return list(AuditLog.objects.filter(organization_id=org.pk, **filters).order_by("occurred_at", "id"))


def insert_audit_row(org, *, occurred_at, table_name="users", record_id="rec", operation="UPDATE", **extra):
    """Append one hand-made audit row as the app role (INSERT is the one write it may do) and return its id."""
    columns = {
        "occurred_at": occurred_at,
        "organization_id": org.pk,
        "table_name": table_name,
        "record_id": record_id,
        "operation": operation,
        **extra,
    }
    for name in ("old_values", "new_values", "changed_fields"):
        if name in columns:
            columns[name] = json.dumps(columns[name])
    names = ", ".join(columns)
    placeholders = ", ".join(
        "%s::jsonb" if name in {"old_values", "new_values", "changed_fields"} else "%s" for name in columns
    )
    with tenant_context(org.pk), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO crm_audit_log ({names}) VALUES ({placeholders}) RETURNING id",
            list(columns.values()),
        )
        return cursor.fetchone()[0]


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def heartbeat_key(redis_client):
    """The worker heartbeat key, put back as it was (value and expiry) after the test."""
    saved = redis_client.get(HEARTBEAT_KEY)
    ttl_ms = redis_client.pttl(HEARTBEAT_KEY)
    yield HEARTBEAT_KEY
    if saved is None:
        redis_client.delete(HEARTBEAT_KEY)
    elif ttl_ms and ttl_ms > 0:
        redis_client.set(HEARTBEAT_KEY, saved, px=ttl_ms)
    else:
        redis_client.set(HEARTBEAT_KEY, saved)
