"""Management commands, /healthz, and the production settings' fail-fast and deploy checks."""

import json
import os
import secrets
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from crm.health import record_heartbeat
from crm.management.commands.seed_demo import EXTRA_SELLERS
from crm.models import Notification, Organization, User
from crm.permissions import Role
from crm.tenancy import system_context

ROOT = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "demo-pass-2026"
DEMO_ORGS = {"acme": "Acme Corp", "globex": "Globex Inc"}
PRODUCTION_VARS = ("DJANGO_SECRET_KEY", "DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "ALLOWED_HOSTS")

# --- seed_demo ------------------------------------------------------------------------------------------------


def _seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def _snapshot() -> dict:
    with system_context():
        return {
            "organizations": sorted(Organization.objects.values_list("slug", "name")),
            "users": sorted(User.objects.values_list("email", "role", "is_superuser", "organization__slug")),
            "notifications": Notification.objects.count(),
        }


def _demo_logins() -> list[str]:
    return [f"{role}@{slug}.example" for slug in DEMO_ORGS for role in Role.values] + ["root@crm.example"]


def test_seed_demo_creates_both_organizations_one_user_per_role_and_the_operator(db, settings):
    settings.DEBUG = True
    output = _seed()
    assert "Demo data ready: 2 organizations, 16 users, 400 customers, 10 segments," in output
    snapshot = _snapshot()
    assert snapshot["organizations"] == sorted(DEMO_ORGS.items())
    extra_sellers = [
        (f"{first.lower()}.{last.lower()}@{slug}.example", role, False, slug)
        for slug, people in EXTRA_SELLERS.items()
        for role, first, last, _title in people
    ]
    expected_users = (
        [(f"{role}@{slug}.example", role, False, slug) for slug in DEMO_ORGS for role in Role.values]
        + extra_sellers
        + [("root@crm.example", "", True, None)]
    )
    assert snapshot["users"] == sorted(expected_users)
    assert snapshot["notifications"] == 12  # a welcome note for each user of a role's demo login


def test_seed_demo_twice_creates_nothing_new(db, settings):
    settings.DEBUG = True
    _seed()
    first = _snapshot()
    assert "Demo data ready: nothing new created." in _seed()
    assert _snapshot() == first


def test_every_demo_login_works_with_the_demo_password(db, settings):
    settings.DEBUG = True
    _seed()
    for email in _demo_logins():
        client = Client()
        response = client.post("/accounts/login/", {"username": email, "password": DEMO_PASSWORD})
        assert (email, response.status_code, response.get("Location")) == (email, 302, "/")
        home = client.get("/")
        assert home.status_code == 200
        assert home.context["user"].email == email
    wrong = Client().post(
        "/accounts/login/", {"username": "admin@acme.example", "password": "not-the-password"}
    )
    assert wrong.status_code == 200
    assert "do not match an active account" in wrong.content.decode()


def test_seed_demo_refuses_with_debug_off_unless_forced(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        _seed()
    assert _snapshot()["organizations"] == []
    assert "2 organizations, 16 users" in _seed("--force")


# --- health -----------------------------------------------------------------------------------------------------


def _health(*args) -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("health", *args, stdout=out)
    except CommandError as error:
        return out.getvalue(), error
    return out.getvalue(), None


def _line(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if f" {name} " in line)


def test_health_command_reports_everything_up_with_a_fresh_heartbeat(db, heartbeat_key):
    record_heartbeat()
    output, error = _health()
    assert error is None
    for name in ("postgres", "redis", "worker"):
        assert _line(output, name).startswith("up")
    report = json.loads(_health("--json")[0])
    assert report["ok"] is True
    assert {name: check["ok"] for name, check in report["checks"].items()} == {
        "postgres": True,
        "redis": True,
        "worker": True,
    }


def test_health_command_fails_and_names_the_worker_without_a_heartbeat(db, heartbeat_key, redis_client):
    redis_client.delete(heartbeat_key)
    output, error = _health()
    assert isinstance(error, CommandError)
    assert _line(output, "worker").startswith("DOWN")
    assert _line(output, "postgres").startswith("up")
    assert _line(output, "redis").startswith("up")


def test_health_command_calls_a_stale_heartbeat_down(db, heartbeat_key, redis_client):
    redis_client.set(heartbeat_key, str(time.time() - 1000))
    output, error = _health()
    assert isinstance(error, CommandError)
    assert _line(output, "worker").startswith("DOWN")
    # Fresh again (well inside the 180 s window): up.
    redis_client.set(heartbeat_key, str(time.time() - 100))
    output, error = _health()
    assert error is None
    assert _line(output, "worker").startswith("up")


def _manage(*args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603  (our own manage.py, no shell)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_health_command_exit_code_follows_the_worker_heartbeat(db, heartbeat_key, redis_client):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings.test"}
    record_heartbeat()
    up = _manage("health", env=env)
    assert up.returncode == 0, up.stderr
    redis_client.delete(heartbeat_key)
    down = _manage("health", env=env)
    assert down.returncode == 1
    assert "Something is down." in down.stderr
    assert "DOWN" in _line(down.stdout, "worker")


def test_healthz_is_200_json_when_everything_is_up(client, db, heartbeat_key):
    record_heartbeat()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["ok"] is True
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "postgres": True,
        "redis": True,
        "worker": True,
    }


def test_healthz_is_503_naming_the_missing_worker(client, db, heartbeat_key, redis_client):
    redis_client.delete(heartbeat_key)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert [name for name, check in body["checks"].items() if not check["ok"]] == ["worker"]


# --- Production settings ------------------------------------------------------------------------------------------


def _production_env(**values) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_VARS}
    return {**env, "DJANGO_SETTINGS_MODULE": "crm.settings.production", **values}


def _production_values() -> dict:
    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DATABASE_URL": "postgres://crm_app:app-secret@db.invalid:5432/crm",
        "DATABASE_OWNER_URL": "postgres://crm_owner:owner-secret@db.invalid:5432/crm",
        "REDIS_URL": "redis://redis.invalid:6379/0",
        "ALLOWED_HOSTS": "crm.example.com",
    }


needs_no_dotenv = pytest.mark.skipif(
    (ROOT / ".env").is_file(), reason=".env in the checkout would supply the missing variables"
)


def _setup_django(env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_no_dotenv
def test_production_settings_fail_fast_naming_every_missing_variable():
    result = _setup_django(_production_env())
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured:")
    for name in ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"):
        assert name in last_line


@needs_no_dotenv
def test_production_settings_name_only_the_variable_that_is_missing():
    values = _production_values()
    del values["DJANGO_SECRET_KEY"]
    result = _setup_django(_production_env(**values))
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured:")
    assert "DJANGO_SECRET_KEY" in last_line
    for name in ("DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"):
        assert name not in last_line


def test_deploy_check_passes_with_production_settings_and_no_database():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", env=_production_env(**_production_values())
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_deploy_check_warns_when_the_app_and_owner_roles_are_the_same():
    values = _production_values()
    values["DATABASE_OWNER_URL"] = values["DATABASE_URL"]
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env(**values))
    assert result.returncode != 0
    assert "crm.W001" in result.stdout + result.stderr
