"""Test fixtures shared by the whole suite.

The suite runs on PostgreSQL as the unprivileged app role, so row-level security is exercised, never
bypassed: the test database is created and migrated as the owner role (as `migrate` is in production),
then every test connects as the app role.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import setup_databases, teardown_databases

from crm.db.owner import as_owner
from crm.tenancy import system_context, tenant_context
from tests import factories


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    with django_db_blocker.unblock(), as_owner():
        config = setup_databases(verbosity=0, interactive=False, keepdb=False)
    yield
    with django_db_blocker.unblock():
        _end_leftover_sessions()
        with as_owner():
            teardown_databases(config, verbosity=0)


def _end_leftover_sessions() -> None:
    """End app-role sessions still open on the test database (a live-server request thread whose browser
    went away keeps its connection), so the owner can drop it. A role may end its own sessions."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND usename = current_user AND pid <> pg_backend_pid()"
        )
    connection.close()


@pytest.fixture
def org_a(db):
    return factories.organization(slug="org-a", name="Org A")


@pytest.fixture
def org_b(db):
    return factories.organization(slug="org-b", name="Org B")


@pytest.fixture
def admin_a(org_a):
    return factories.user(org_a, role="admin")


@pytest.fixture
def admin_b(org_b):
    return factories.user(org_b, role="admin")


@pytest.fixture
def superuser(db):
    return factories.superuser()


@pytest.fixture
def as_tenant():
    """`with as_tenant(org): ...` runs the block in that organization's context."""
    return lambda org, user=None: tenant_context(org.pk, user=user)


@pytest.fixture
def as_system():
    return system_context


@pytest.fixture
def login(client):
    """Sign `user` in on the test client (inside a context, since the users policy guards the row)."""

    def _login(user, on=None):
        target = on or client
        with system_context():
            target.force_login(user, backend="crm.auth.EmailBackend")
        return target

    return _login
