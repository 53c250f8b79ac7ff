"""Management commands, /healthz, and the production settings' fail-fast and deploy checks."""

import datetime
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
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
from customers.models import Customer
from sales import demo as sales_demo
from sales.models import Opportunity, Order, OrderLine, Product, Quote, QuoteEvent, QuoteItem
from sales.selectors.orders import lifetime_value
from sales.services.opportunities import organization_today
from support.demo import EXTRA_AGENTS
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "demo-pass-2026"
DEMO_ORGS = {"acme": "Acme Corp", "globex": "Globex Inc"}
PRODUCTION_VARS = (
    "DJANGO_SECRET_KEY",
    "DATABASE_URL",
    "DATABASE_OWNER_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "CRM_ENCRYPTION_KEYS",
    "CRM_BLIND_INDEX_KEY",
)

# --- seed_demo ------------------------------------------------------------------------------------------------


def _seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def _made(output: str) -> dict[str, int]:
    """The counts of the "Demo data ready: 2 organizations, 19 users, ... created." line."""
    line = next(line for line in output.splitlines() if line.startswith("Demo data ready:"))
    return {kind: int(n) for n, kind in re.findall(r"(\d+) ([a-z ]+?)(?=,| created)", line)}


def _snapshot() -> dict:
    with system_context():
        return {
            "organizations": sorted(Organization.objects.values_list("slug", "name")),
            "users": sorted(User.objects.values_list("email", "role", "is_superuser", "organization__slug")),
            "notifications": Notification.objects.count(),
            "welcome notes": Notification.objects.filter(title__startswith="Welcome to ").count(),
            "products": Product.objects.count(),
            "quotes": sorted(Quote.objects.values_list("organization__slug", "number", "version", "status")),
            "quote events": QuoteEvent.objects.count(),
            "orders": sorted(Order.objects.values_list("organization__slug", "number", "total")),
        }


def _demo_logins() -> list[str]:
    return [f"{role}@{slug}.example" for slug in DEMO_ORGS for role in Role.values] + ["root@crm.example"]


def test_seed_demo_creates_both_organizations_one_user_per_role_and_the_operator(db, settings):
    settings.DEBUG = True
    output = _seed()
    snapshot = _snapshot()
    assert snapshot["organizations"] == sorted(DEMO_ORGS.items())
    extra_sellers = [
        (f"{first.lower()}.{last.lower()}@{slug}.example", role, False, slug)
        for slug, people in EXTRA_SELLERS.items()
        for role, first, last, _title in people
    ]
    extra_agents = [
        (f"{first.lower()}.{last.lower()}@{slug}.example", Role.SUPPORT_AGENT, False, slug)
        for slug, people in EXTRA_AGENTS.items()
        for first, last, _department, _title in people
    ]
    expected_users = (
        [(f"{role}@{slug}.example", role, False, slug) for slug in DEMO_ORGS for role in Role.values]
        + extra_sellers
        + extra_agents
        + [("root@crm.example", "", True, None)]
    )
    assert snapshot["users"] == sorted(expected_users)
    made = _made(output)
    assert {kind: made[kind] for kind in ("organizations", "users", "customers", "segments")} == {
        "organizations": 2,
        "users": len(expected_users),
        "customers": 400,
        "segments": 10,
    }
    # Sales: the catalogue, every quote flow (the revised one has two versions) and the orders.
    flows = len(sales_demo.QUOTE_FLOWS)
    accepted = sum(1 for status, *_rest in sales_demo.QUOTE_FLOWS if status == "accepted")
    assert made["products"] == 2 * len(sales_demo.CATALOGUE) == snapshot["products"]
    assert made["quotes"] == 2 * (flows + 1) == len(snapshot["quotes"])
    assert made["orders"] == len(snapshot["orders"])
    assert made["orders"] > 2 * accepted  # ERP orders too
    assert {status for _org, _n, _v, status in snapshot["quotes"]} == set(Quote.Status.values)
    assert snapshot["welcome notes"] == 12  # a welcome note for each user of a role's demo login


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
    assert _made(_seed("--force"))["organizations"] == 2


# --- seed_demo: sales (the sales part alone, on a small organization: fast) ----------------------------------


def _cents(value) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture
def demo_sales_org(db):
    """A small organization as seed_demo leaves it before sales: a sales team and business customers
    (with emails), then the lead's demo deals."""
    org = factories.organization(slug="demo-sales", currency="USD", time_zone="America/New_York")
    factories.user(org, role=Role.ADMIN)
    factories.user(org, role=Role.SALES_MANAGER)
    factories.user(org, role=Role.SALES_REP)
    factories.user(org, role=Role.SALES_REP)
    for n in range(30):
        factories.customer(org, customer_type="business", company_name=f"Company {n}")
    with system_context():
        assert sales_demo.seed_opportunities(organization=org, count=70) == 70
    return org


def _seed_sales(org) -> tuple[int, int, int, int]:
    with system_context():
        products = sales_demo.seed_products(organization=org)
        imported = sales_demo.seed_imported_orders(organization=org)
        quotes, orders = sales_demo.seed_quotes(organization=org)
    return products, imported, quotes, orders


def test_demo_catalogue_has_priced_products_with_the_currency_tax_rates(demo_sales_org):
    org = demo_sales_org
    assert _seed_sales(org)[0] == len(sales_demo.CATALOGUE)
    with system_context():
        products = {p.sku: p for p in Product.objects.filter(organization=org)}
    assert len(products) == 11
    assert {p.currency for p in products.values()} == {"USD"}
    assert (products["LIC-PRO"].unit_price, products["LIC-PRO"].tax_rate) == (Decimal("480"), Decimal("6.25"))
    assert (products["HW-GW"].tax_rate, products["SVC-ONB"].tax_rate) == (Decimal("8.25"), Decimal("0"))
    assert [sku for sku, p in products.items() if not p.active] == ["LIC-STD"]


def test_demo_quotes_cover_every_status_through_the_approval_flow(demo_sales_org):
    org = demo_sales_org
    _products, _imported, made, orders_made = _seed_sales(org)
    today = organization_today(org)
    with system_context():
        quotes = list(Quote.objects.filter(organization=org).order_by("number", "version"))
        users = {u.pk: u for u in User.objects.filter(organization=org)}
        items = list(QuoteItem.objects.filter(organization=org))
        events = list(QuoteEvent.objects.filter(organization=org).order_by("at", "id"))
        orders = list(Order.objects.filter(organization=org, quote__isnull=False))
        deals = {d.pk: d for d in Opportunity.objects.filter(organization=org)}
    assert made == len(quotes) == len(sales_demo.QUOTE_FLOWS) + 1
    assert {q.status for q in quotes} == set(Quote.Status.values)
    # The revised quote: two versions of one number, the first read-only, the lines copied.
    versions = Counter(q.number for q in quotes)
    assert sorted(versions.values())[-2:] == [1, 2]
    [revised_number] = [n for n, c in versions.items() if c == 2]
    first, second = [q for q in quotes if q.number == revised_number]
    assert (first.version, first.is_current, first.status) == (1, False, Quote.Status.SENT)
    assert (second.version, second.is_current) == (2, True)
    assert [i.description for i in items if i.quote_id == first.pk] == [
        i.description for i in items if i.quote_id == second.pk
    ]
    for quote in quotes:
        lines = [i for i in items if i.quote_id == quote.pk]
        assert lines, quote
        # The stored totals are the lines' (recomputed here: each amount rounded to cents, half up).
        expected = Decimal(0)
        for line in lines:
            subtotal = _cents(line.quantity * line.unit_price)
            discount = _cents(subtotal * line.discount_pct / 100)
            expected += subtotal - discount + _cents((subtotal - discount) * line.tax_rate / 100)
        assert quote.total == expected, quote
        assert quote.created_by_id == deals[quote.opportunity_id].assigned_to_id
        # A manager decided, never the quote's own maker; only quotes over a limit went to one.
        if quote.decided_by_id:
            decider = users[quote.decided_by_id]
            assert decider.role in (Role.SALES_MANAGER, Role.ADMIN)
            assert decider.pk not in (quote.created_by_id, quote.submitted_by_id)
            assert quote.approval_reasons
        if quote.status in (Quote.Status.PENDING_APPROVAL, Quote.Status.REJECTED):
            assert quote.approval_reasons
        if quote.status == Quote.Status.REJECTED:
            assert quote.decision_comment
    # Every step happened in the past, in order; the expired quote's date passed before it expired.
    assert all(e.at <= datetime.datetime.now(datetime.UTC) for e in events)
    [expired] = [q for q in quotes if q.status == Quote.Status.EXPIRED]
    assert expired.valid_until < today
    assert [e.action for e in events if e.quote_id == expired.pk][-1] == "expired"
    for quote in quotes:
        if quote.is_current and quote.status not in (Quote.Status.EXPIRED, Quote.Status.ACCEPTED):
            assert quote.valid_until >= today, quote
    # Accepted: the deal is won and has exactly the quote's one order, dated the day it was accepted.
    accepted = [q for q in quotes if q.status == Quote.Status.ACCEPTED]
    assert len(accepted) == len(orders) == orders_made == 4
    for quote in accepted:
        [order] = [o for o in orders if o.quote_id == quote.pk]
        assert (order.total, order.customer_id) == (quote.total, deals[quote.opportunity_id].customer_id)
        assert deals[quote.opportunity_id].status == Opportunity.Status.WON
        assert order.order_date == deals[quote.opportunity_id].actual_close_date
        assert order.order_date <= today


def test_demo_erp_orders_give_several_customers_a_lifetime_value(demo_sales_org):
    org = demo_sales_org
    _products, imported, _quotes, _orders = _seed_sales(org)
    with system_context():
        orders = list(Order.objects.filter(organization=org))
        lines = list(OrderLine.objects.filter(organization=org))
        erp = [o for o in orders if o.external_reference]
        assert imported == len(erp) >= 10
        assert len({o.external_reference for o in erp}) == len(erp)
        for order in erp:
            assert order.total == sum(line.line_total for line in lines if line.order_id == order.pk)
        # Numbered in date order, as the ERP did.
        by_number = sorted(erp, key=lambda o: o.number)
        assert [o.order_date for o in by_number] == sorted(o.order_date for o in erp)
        per_customer = Counter(o.customer_id for o in orders)
        repeat = [customer_id for customer_id, n in per_customer.items() if n >= 2]
        assert len(repeat) >= 3
        for customer_id in repeat:
            mine = [o for o in orders if o.customer_id == customer_id]
            value = lifetime_value(customer=Customer.objects.get(pk=customer_id))
            assert value["total_orders"] == len(mine)
            assert Decimal(value["total_revenue"]) == sum(o.total for o in mine)
            assert value["customer_since"] == min(o.order_date for o in mine).isoformat()


def test_demo_sales_seeding_twice_creates_nothing_new(demo_sales_org):
    org = demo_sales_org
    first = _seed_sales(org)
    assert all(first)
    with system_context():
        counts = (
            Product.objects.filter(organization=org).count(),
            Quote.objects.filter(organization=org).count(),
            QuoteEvent.objects.filter(organization=org).count(),
            Order.objects.filter(organization=org).count(),
        )
    assert _seed_sales(org) == (0, 0, 0, 0)
    with system_context():
        assert counts == (
            Product.objects.filter(organization=org).count(),
            Quote.objects.filter(organization=org).count(),
            QuoteEvent.objects.filter(organization=org).count(),
            Order.objects.filter(organization=org).count(),
        )


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
        "CRM_ENCRYPTION_KEYS": "i7f4H1s0WJ8Yl3V6mQz2pK9cR5tB0nD4aE7gX1uL3oM=",
        "CRM_BLIND_INDEX_KEY": secrets.token_urlsafe(32),
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
    for name in ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "CRM_ENCRYPTION_KEYS"):
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
