"""The sales dashboard: the materialized view's figures recomputed independently in Python on a hand-made
data set (with a customer who has several deals and orders, and a rep with several activities and quotas,
which a fan-out join would count twice), refresh CONCURRENTLY, isolation through the tenant-filtered view
(the app role cannot select the materialized view), the page, its JSON, its "Refresh" and its query count.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import ProgrammingError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.celery import app as celery_app
from crm.permissions import Role
from crm.tenancy import system_context, tenant_context
from sales import dashboard as sales_dashboard
from sales.dashboard import add_months, dashboard_refresh
from sales.models import Activity, Opportunity, OpportunityChange, Order, Quota, Stage
from sales.services.opportunities import organization_today
from tests import factories
from tests.owner_db import owner_connection

CENT = Decimal("0.01")
TENTH = Decimal("0.1")


# --- The hand-made data set (also used by tests/sales/test_analytics.py) ----------------------------------


@dataclass
class SalesData:
    org: object
    zone: zoneinfo.ZoneInfo
    today: datetime.date
    this_month: datetime.date
    reps: dict[str, object]
    customers: dict[str, object]
    deals: dict[str, Opportunity] = field(default_factory=dict)

    def month(self, n: int, day: int = 1) -> datetime.date:
        return add_months(self.this_month, n).replace(day=day)

    def local(self, day: datetime.date, hour: int = 12) -> datetime.datetime:
        return datetime.datetime.combine(day, datetime.time(hour), tzinfo=self.zone)


def build_sales_data(org, *, zone_name: str = "America/Los_Angeles") -> SalesData:
    """Deals open, won and lost across months and currencies; customer C1 with five deals and three
    orders; rep Alice with several deals, activities, quotas and close-date slips."""
    with system_context():
        org.time_zone = zone_name
        org.currency = "USD"
        org.save(update_fields=["time_zone", "currency"])
    zone = zoneinfo.ZoneInfo(zone_name)
    today = organization_today(org)
    reps = {
        "alice": factories.user(
            org, role=Role.SALES_REP, first_name="Alice", last_name="Able", department="sales"
        ),
        "bob": factories.user(
            org, role=Role.SALES_REP, first_name="Bob", last_name="Baker", department="sales"
        ),
        "carol": factories.user(
            org, role=Role.SALES_MANAGER, first_name="Carol", last_name="Cole", department="account"
        ),
    }
    customers = {name: factories.customer(org) for name in ("C1", "C2", "C3")}
    data = SalesData(org, zone, today, today.replace(day=1), reps, customers)
    m = data.month

    def deal(key, *, owner, customer, amount, stage, expected, currency="USD", probability=None, **closing):
        fields = {"probability": probability} if probability is not None else {}
        opportunity = factories.opportunity(
            org,
            name=key,
            assigned_to=reps[owner] if owner else None,
            customer=customers[customer],
            amount=Decimal(amount),
            currency=currency,
            stage=stage,
            expected_close_date=expected,
            lost_reason="Budget" if stage == "Closed lost" else "",
            **fields,
        )
        if closing:
            with system_context():
                Opportunity.objects.filter(pk=opportunity.pk).update(**closing)
                opportunity.refresh_from_db()
        if owner is None:
            with system_context():
                Opportunity.objects.filter(pk=opportunity.pk).update(assigned_to=None)
                opportunity.refresh_from_db()
        data.deals[key] = opportunity
        return opportunity

    def created(close: datetime.date, days: int) -> datetime.datetime:
        # 03:00 UTC is the evening before in Los Angeles: the cycle counts the organization's calendar days.
        return datetime.datetime.combine(
            close - datetime.timedelta(days=days), datetime.time(3), tzinfo=datetime.UTC
        )

    # Open deals.
    deal("o1", owner="alice", customer="C1", amount="1000.00", stage="Prospecting", expected=m(0, 20))
    deal(
        "o2",
        owner="alice",
        customer="C1",
        amount="2500.50",
        stage="Prospecting",
        expected=m(1, 5),
        probability=25,
    )
    deal("o3", owner="bob", customer="C2", amount="4000.00", stage="Proposal", expected=m(2, 28))
    deal("o4", owner="bob", customer="C1", amount="10000.00", stage="Negotiation", expected=m(3, 1))
    deal("o5", owner="carol", customer="C3", amount="3333.33", stage="Proposal", expected=m(-1, 15))
    deal(
        "o6",
        owner="carol",
        customer="C2",
        amount="700.00",
        stage="Proposal",
        expected=m(0, 2),
        currency="EUR",
    )
    deal(
        "o7",
        owner="alice",
        customer="C3",
        amount="1234.56",
        stage="Negotiation",
        expected=m(2, 1),
        probability=90,
    )
    # Won deals (close dates and creation times set by hand).
    won = "Closed won"
    deal("w1", owner="alice", customer="C1", amount="5000.00", stage=won, expected=m(0, 1),
         actual_close_date=m(0, 1), created_at=created(m(0, 1), 30))  # fmt: skip
    deal("w2", owner="bob", customer="C2", amount="1500.25", stage=won, expected=m(-2, 9),
         actual_close_date=m(-2, 9), created_at=created(m(-2, 9), 10))  # fmt: skip
    deal("w3", owner="alice", customer="C1", amount="800.00", stage=won, expected=m(-1, 3), currency="EUR",
         actual_close_date=m(-1, 3), created_at=created(m(-1, 3), 5))  # fmt: skip
    deal("w4", owner="carol", customer="C3", amount="9999.00", stage=won, expected=m(-13, 3),
         actual_close_date=m(-13, 3), created_at=created(m(-13, 3), 7))  # fmt: skip
    deal("w5", owner="alice", customer="C1", amount="2000.00", stage=won, expected=m(-1, 20),
         actual_close_date=m(-1, 20), created_at=created(m(-1, 20), 45))  # fmt: skip
    deal("w6", owner="carol", customer="C2", amount="7777.77", stage=won, expected=m(-11, 1),
         actual_close_date=m(-11, 1), created_at=created(m(-11, 1), 3))  # fmt: skip
    # Lost deals.
    lost = "Closed lost"
    deal(
        "l1",
        owner="alice",
        customer="C1",
        amount="300.00",
        stage=lost,
        expected=m(0, 1),
        actual_close_date=m(0, 1),
    )
    deal(
        "l2",
        owner="bob",
        customer="C2",
        amount="400.00",
        stage=lost,
        expected=m(-2, 9),
        actual_close_date=m(-2, 9),
    )
    deal("l3", owner="carol", customer="C3", amount="500.00", stage=lost, expected=m(-12, 9),
         actual_close_date=m(-12, 9))  # fmt: skip
    deal(
        "l4",
        owner=None,
        customer="C2",
        amount="600.00",
        stage=lost,
        expected=m(-1, 9),
        actual_close_date=m(-1, 9),
    )

    with system_context():
        # C1 has three orders, C2 one: a join of deals to orders would count C1's deals three times.
        for number, (customer, total) in enumerate(
            [("C1", "100.00"), ("C1", "200.00"), ("C1", "300.00"), ("C2", "50.00")], start=1
        ):
            Order.objects.create(
                organization=org, number=number, customer=customers[customer], total=Decimal(total)
            )
        # Activities: Alice completes three this month and one last month, and has one open; Bob two this
        # month; one unowned this month; Carol none.
        activities = [
            ("alice", "o1", m(0, 1)),
            ("alice", "o1", m(0, 1)),
            ("alice", "o2", m(0, 1)),
            ("alice", "o2", m(-1, 10)),
            ("alice", "o2", None),
            ("bob", "o3", m(0, 1)),
            ("bob", "o4", m(0, 1)),
            (None, "o3", m(0, 1)),
        ]
        for owner, key, done in activities:
            Activity.objects.create(
                organization=org,
                opportunity=data.deals[key],
                customer=data.deals[key].customer,
                owner=reps[owner] if owner else None,
                subject=f"Call about {key}",
                kind="call",
                completed_at=data.local(done, hour=0) + datetime.timedelta(minutes=30) if done else None,
            )
        # 23:30 on the last evening of last month in Los Angeles is already this month in UTC: last month's.
        Activity.objects.create(
            organization=org,
            opportunity=data.deals["o4"],
            customer=data.deals["o4"].customer,
            owner=reps["bob"],
            subject="Late call",
            kind="call",
            completed_at=data.local(m(0) - datetime.timedelta(days=1), hour=23)
            + datetime.timedelta(minutes=30),
        )
        # Quotas: Alice three months, Bob this month, Carol none.
        for owner, month, amount in [
            ("alice", m(0), "10000.00"),
            ("alice", m(-1), "8000.00"),
            ("alice", m(-2), "6000.00"),
            ("bob", m(0), "5000.00"),
        ]:
            Quota.objects.create(organization=org, user=reps[owner], month=month, amount=Decimal(amount))
        # Close-date changes: o1 slips twice this month, o3 moves later once and earlier once this month,
        # o5 slips last month; an amount change is not a slip.
        changes = [
            ("o1", "expected_close_date", m(0, 10), m(0, 15), m(0, 1)),
            ("o1", "expected_close_date", m(0, 15), m(0, 20), m(0, 1)),
            ("o3", "expected_close_date", m(1, 1), m(2, 28), m(0, 1)),
            ("o3", "expected_close_date", m(3, 1), m(1, 1), m(0, 1)),
            ("o5", "expected_close_date", m(-2, 1), m(-1, 15), m(-1, 2)),
        ]
        for key, name, old, new, when in changes:
            OpportunityChange.objects.create(
                organization=org,
                opportunity=data.deals[key],
                field=name,
                old_value=old.isoformat(),
                new_value=new.isoformat(),
                changed_at=data.local(when, hour=9),
            )
        OpportunityChange.objects.create(
            organization=org,
            opportunity=data.deals["o1"],
            field="amount",
            old_value="900.00",
            new_value="1000.00",
            changed_at=data.local(m(0, 1), hour=9),
        )
    return data


def refresh() -> datetime.datetime:
    with system_context():
        refreshed_at = dashboard_refresh()
    assert refreshed_at is not None
    return refreshed_at


# --- The independent computation --------------------------------------------------------------------------


def _half_up(value: Decimal, step: Decimal) -> Decimal:
    return value.quantize(step, rounding=ROUND_HALF_UP)


def expected_dashboard(org, refreshed_at: datetime.datetime, currency: str) -> dict:
    """The dashboard's figures straight from the rows, with plain Python loops."""
    zone = zoneinfo.ZoneInfo(org.time_zone)
    this_month = refreshed_at.astimezone(zone).date().replace(day=1)
    history_start = add_months(this_month, -11)
    next_month = add_months(this_month, 1)
    forecast_end = add_months(this_month, 3)
    with tenant_context(org.pk):
        deals = list(Opportunity.objects.filter(organization_id=org.pk).select_related("stage"))
    stages: dict[str, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    months: dict[str, list] = defaultdict(lambda: [0, 0])
    forecast: dict[str, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    won_amounts, cycles = [], []
    for d in deals:
        if d.status == "open" and d.currency == currency:
            s = stages[str(d.stage_id)]
            s[0] += 1
            s[1] += d.amount
            s[2] += d.amount * d.probability / 100
            if this_month <= d.expected_close_date < forecast_end:
                f = forecast[f"{d.expected_close_date:%Y-%m}"]
                f[0] += 1
                f[1] += d.amount
                f[2] += d.amount * d.probability / 100
        if d.status in ("won", "lost") and history_start <= d.actual_close_date < next_month:
            mm = months[f"{d.actual_close_date:%Y-%m}"]
            mm[0] += 1
            mm[1] += d.status == "won"
            if d.status == "won":
                cycles.append((d.actual_close_date - d.created_at.astimezone(zone).date()).days)
                if d.currency == currency:
                    won_amounts.append(d.amount)
    open_deals = sum(s[0] for s in stages.values())
    closed = sum(v[0] for v in months.values())
    won = sum(v[1] for v in months.values())
    return {
        "stages": {k: (v[0], v[1], _half_up(v[2], CENT)) for k, v in stages.items()},
        "months": {k: (v[0], v[1]) for k, v in months.items()},
        "forecast": {k: (v[0], v[1], _half_up(v[2], CENT)) for k, v in forecast.items()},
        "open_deals": open_deals,
        "open_amount": sum((s[1] for s in stages.values()), Decimal(0)),
        "open_weighted": sum((_half_up(s[2], CENT) for s in stages.values()), Decimal(0)),
        "win_rate": _half_up(Decimal(100) * won / closed, TENTH) if closed else None,
        "won_deals": len(won_amounts),
        "average_deal_size": _half_up(sum(won_amounts) / len(won_amounts), CENT) if won_amounts else None,
        "average_cycle_days": _half_up(Decimal(sum(cycles)) / len(cycles), TENTH) if cycles else None,
        "forecast_weighted": sum((_half_up(v[2], CENT) for v in forecast.values()), Decimal(0)),
    }


def _figures(board) -> dict:
    return {
        "stages": {
            str(s.stage.pk): (s.deals, s.amount, s.weighted)
            for f in board.funnels
            for s in f.stages
            if s.deals
        },
        "months": {f"{m.month:%Y-%m}": (m.closed, m.won) for m in board.months if m.closed},
        "forecast": {f"{m.month:%Y-%m}": (m.deals, m.amount, m.weighted) for m in board.forecast if m.deals},
        "open_deals": board.open_deals,
        "open_amount": board.open_amount,
        "open_weighted": board.open_weighted,
        "win_rate": board.win_rate,
        "won_deals": board.won_deals,
        "average_deal_size": board.average_deal_size,
        "average_cycle_days": board.average_cycle_days,
        "forecast_weighted": board.forecast_weighted,
    }


@pytest.fixture
def data(org_a):
    return build_sales_data(org_a)


@pytest.fixture
def manager_a(org_a):
    return factories.user(org_a, role=Role.SALES_MANAGER)


# --- Figures ----------------------------------------------------------------------------------------------


def test_every_figure_matches_an_independent_computation_in_each_currency(data, manager_a):
    refreshed_at = refresh()
    org = data.org
    for currency in ("USD", "EUR"):
        with tenant_context(org.pk, user=manager_a):
            board = sales_dashboard.sales_dashboard(actor=manager_a, currency=currency)
        assert board.currency == currency and board.currencies == ["EUR", "USD"]
        assert board.refreshed_at == refreshed_at
        assert _figures(board) == expected_dashboard(org, refreshed_at, currency), currency


def test_figures_by_hand_for_the_organizations_currency(data, manager_a):
    """The same figures written out, so a mistake shared by the view and the recomputation shows."""
    refresh()
    with tenant_context(data.org.pk, user=manager_a):
        board = sales_dashboard.sales_dashboard(actor=manager_a)
    stage = {
        name: str(factories.stage(data.org, name).pk) for name in ("Prospecting", "Proposal", "Negotiation")
    }
    figures = _figures(board)
    # Prospecting: o1 1000.00 at 10 % + o2 2500.50 at 25 % = 100 + 625.125.
    assert figures["stages"][stage["Prospecting"]] == (2, Decimal("3500.50"), Decimal("725.13"))
    # Proposal in USD: o3 4000 + o5 3333.33 at 50 % (o6 is in EUR).
    assert figures["stages"][stage["Proposal"]] == (2, Decimal("7333.33"), Decimal("3666.67"))
    # Negotiation: o4 10000 at 75 % + o7 1234.56 at 90 % = 7500 + 1111.104.
    assert figures["stages"][stage["Negotiation"]] == (2, Decimal("11234.56"), Decimal("8611.10"))
    assert (board.open_deals, board.open_amount) == (6, Decimal("22068.39"))
    # This month: won w1, lost l1; last month: won w3 (EUR), w5, lost l4; two months ago: w2, l2;
    # eleven months ago: w6. Outside the 12 months: w4 (13 months ago), l3 (12 months ago).
    assert figures["months"] == {
        f"{data.month(0):%Y-%m}": (2, 1),
        f"{data.month(-1):%Y-%m}": (3, 2),
        f"{data.month(-2):%Y-%m}": (2, 1),
        f"{data.month(-11):%Y-%m}": (1, 1),
    }
    assert board.win_rate == Decimal("62.5")  # 5 won of 8 closed
    # USD deals won in the 12 months: w1 5000, w2 1500.25, w5 2000, w6 7777.77.
    assert (board.won_deals, board.average_deal_size) == (4, Decimal("4069.51"))
    # Cycle (every currency): w1 31, w2 11, w3 6, w5 46, w6 4 days (created 03:00 UTC = the evening before
    # in Los Angeles) = 98 / 5.
    assert board.average_cycle_days == Decimal("19.6")
    # Forecast: this month o1 (100.00; o6 is EUR), next month o2 (625.13), the month after o3 and o7
    # (2000 + 1111.10); o4 closes in the fourth month, o5 is overdue.
    assert figures["forecast"] == {
        f"{data.month(0):%Y-%m}": (1, Decimal("1000.00"), Decimal("100.00")),
        f"{data.month(1):%Y-%m}": (1, Decimal("2500.50"), Decimal("625.13")),
        f"{data.month(2):%Y-%m}": (2, Decimal("5234.56"), Decimal("3111.10")),
    }
    assert board.forecast_weighted == Decimal("3836.23")


def test_the_matview_has_one_row_per_organization_kind_key_and_currency(data, org_b):
    factories.opportunity(org_b, amount=Decimal("10"))
    refresh()
    with system_context(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT (organization_id, kind, key, currency)) FROM sales_dashboard"
        )
        total, distinct = cursor.fetchone()
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'sales_dashboard_mv' AND indexname = 'sales_dashboard_mv_key'"
        )
        (definition,) = cursor.fetchone()
    assert total == distinct > 0
    assert "UNIQUE INDEX" in definition and "(organization_id, kind, key, currency)" in definition


# --- Refresh ----------------------------------------------------------------------------------------------


def test_refresh_runs_concurrently_and_picks_up_changes(org_a, manager_a):
    deal = factories.opportunity(org_a, stage="Proposal", amount=Decimal("100.00"))
    first = refresh()
    with owner_connection() as conn:
        populated = conn.execute(
            "SELECT relispopulated FROM pg_class WHERE relname = 'sales_dashboard_mv'"
        ).fetchone()[0]
    assert populated  # so the function takes the CONCURRENTLY path
    with system_context():
        Opportunity.objects.filter(pk=deal.pk).update(amount=Decimal("250.00"))
    second = refresh()
    assert second > first
    with tenant_context(org_a.pk, user=manager_a):
        board = sales_dashboard.sales_dashboard(actor=manager_a)
    assert (board.open_deals, board.open_amount, board.refreshed_at) == (1, Decimal("250.00"), second)


def test_the_refresh_function_uses_concurrently_once_populated():
    with owner_connection() as conn:
        source = conn.execute(
            "SELECT prosrc FROM pg_proc WHERE proname = 'crm_refresh_sales_dashboard'"
        ).fetchone()[0]
        secdef, owner = conn.execute(
            "SELECT prosecdef, pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'crm_refresh_sales_dashboard'"
        ).fetchone()
    assert "REFRESH MATERIALIZED VIEW CONCURRENTLY sales_dashboard_mv" in source
    assert secdef is True and owner != connection.settings_dict["USER"]


def test_refreshing_leaves_the_callers_role_as_it_was(org_a):
    with tenant_context(org_a.pk, role="sales_rep"), connection.cursor() as cursor:
        assert dashboard_refresh() is not None
        cursor.execute(
            "SELECT current_setting('app.user_role', true), current_setting('app.organization_id', true)"
        )
        assert cursor.fetchone() == ("sales_rep", str(org_a.pk))


def test_a_second_refresh_while_one_runs_returns_at_once(db):
    """The advisory lock: another session holding it makes the function return NULL, not wait."""
    with owner_connection() as conn:
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('crm_refresh_sales_dashboard'))")
        try:
            with system_context():
                assert dashboard_refresh() is None
        finally:
            conn.execute("ROLLBACK")


def test_beat_refreshes_every_30_minutes_and_the_task_refreshes(org_a, manager_a):
    entry = celery_app.conf.beat_schedule["refresh-sales-dashboard"]
    assert entry["task"] == "sales.tasks.refresh_sales_dashboard"
    assert set(entry["schedule"].minute) == {0, 30}
    factories.opportunity(org_a, amount=Decimal("42.00"))
    from sales.tasks import refresh_sales_dashboard

    assert refresh_sales_dashboard.apply().get() is not None
    with tenant_context(org_a.pk, user=manager_a):
        assert sales_dashboard.sales_dashboard(actor=manager_a).open_amount == Decimal("42.00")


def test_refresh_dashboards_command_refreshes_and_reports(org_a, manager_a):
    factories.opportunity(org_a, amount=Decimal("7.00"))
    out = StringIO()
    call_command("refresh_dashboards", stdout=out)
    assert "Sales dashboard refreshed in" in out.getvalue()
    assert "for 1 organization(s) with deals" in out.getvalue()
    with tenant_context(org_a.pk, user=manager_a):
        assert sales_dashboard.sales_dashboard(actor=manager_a).open_deals == 1


# --- Isolation --------------------------------------------------------------------------------------------


def test_the_app_role_cannot_select_the_matview_but_sees_its_own_rows_through_the_view(org_a, org_b):
    factories.opportunity(org_a, amount=Decimal("1.00"))
    factories.opportunity(org_b, amount=Decimal("2.00"))
    refresh()
    with pytest.raises(ProgrammingError, match="permission denied"):
        with system_context(), connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sales_dashboard_mv")

    def orgs_seen() -> set:
        with connection.cursor() as cursor:
            cursor.execute("SELECT DISTINCT organization_id FROM sales_dashboard")
            return {row[0] for row in cursor.fetchall()}

    with transaction.atomic():
        assert orgs_seen() == set()  # no context: nothing (fails closed)
    with tenant_context(org_a.pk):
        assert orgs_seen() == {org_a.pk}
    with tenant_context(org_b.pk):
        assert orgs_seen() == {org_b.pk}
    with system_context():
        assert orgs_seen() >= {org_a.pk, org_b.pk}


def test_the_view_is_a_security_barrier_owned_by_the_owner_and_the_matview_is_revoked(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relkind, c.reloptions, pg_get_userbyid(c.relowner), has_table_privilege(c.oid, 'SELECT') "
            "FROM pg_class c WHERE c.relname = %s",
            ["sales_dashboard"],
        )
        kind, options, owner, readable = cursor.fetchone()
        cursor.execute("SELECT has_table_privilege('sales_dashboard_mv', 'SELECT')")
        (matview_readable,) = cursor.fetchone()
    assert (kind, readable, matview_readable) == ("v", True, False)
    assert "security_barrier=true" in options
    assert owner != connection.settings_dict["USER"]


def test_check_rls_passes_and_fails_when_the_app_role_may_read_the_matview(db):
    from django.core.management import CommandError

    call_command("check_rls", stdout=StringIO(), stderr=StringIO())
    app_role = connection.settings_dict["USER"]
    with owner_connection() as conn:
        conn.execute(f'GRANT SELECT ON sales_dashboard_mv TO "{app_role}"')
        try:
            err = StringIO()
            with pytest.raises(CommandError):
                call_command("check_rls", stdout=StringIO(), stderr=err)
            assert "can read the materialized view sales_dashboard_mv" in err.getvalue()
        finally:
            conn.execute(f'REVOKE ALL ON sales_dashboard_mv FROM "{app_role}"')
    call_command("check_rls", stdout=StringIO(), stderr=StringIO())


def test_the_page_of_another_organization_shows_none_of_these_figures(data, client, login, org_b):
    refresh()
    manager_b = factories.user(org_b, role=Role.SALES_MANAGER)
    login(manager_b)
    body = client.get(reverse("sales:dashboard") + "?format=json").json()
    assert body["organization"] == org_b.slug
    assert body["kpis"]["open_deals"] == 0 and body["conversion"][-1]["closed"] == 0
    assert {s["deals"] for f in body["funnel"] for s in f["stages"]} <= {0}


# --- The page ---------------------------------------------------------------------------------------------


def test_page_shows_kpis_charts_refreshed_at_and_drill_down_links(data, client, login, manager_a):
    refresh()
    login(manager_a)
    response = client.get(reverse("sales:dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    board = response.context["dashboard"]
    assert 'data-testid="refreshed-at"' in html and "As of" in html and board.refreshed_at is not None
    assert 'id="sales-dashboard-data"' in html and "js/sales-charts.js" in html and "chart.umd.js" in html
    assert (
        'data-chart="funnel"' in html
        and 'data-chart="conversion"' in html
        and 'data-chart="forecast"' in html
    )
    assert 'data-testid="refresh-now"' in html  # a manager may refresh
    prospecting = factories.stage(data.org, "Prospecting")
    list_url = reverse("sales:opportunity_list")
    # Multi-currency organization: links narrow to the currency shown.
    assert f"{list_url}?stage={prospecting.pk}&amp;status=open&amp;currency=USD" in html
    month = data.month(0)
    assert f"{list_url}?status=won&amp;close_after={month.isoformat()}" in html
    assert f"{list_url}?status=open&amp;close_after={month.isoformat()}" in html
    # The KPI values as rendered.
    assert 'data-value="22068.39"' in html and 'data-value="62.5"' in html and 'data-value="19.6"' in html


def test_every_number_on_the_page_links_to_the_deals_behind_it(data, client, login, manager_a):
    refresh()
    login(manager_a)
    board = client.get(reverse("sales:dashboard")).context["dashboard"]
    urls = [s.url for f in board.funnels for s in f.stages]
    urls += [m.won_url for m in board.months] + [m.lost_url for m in board.months]
    urls += [m.url for m in board.forecast] + list(board.links.values())
    list_url = reverse("sales:opportunity_list")
    assert urls and all(url.startswith(list_url + "?") for url in urls)
    # The drill-down lists open (the filters are the list's own).
    assert client.get(urls[0]).status_code == 200


def test_page_query_count_is_fixed(data, client, login, manager_a):
    refresh()
    login(manager_a)
    url = reverse("sales:dashboard")
    client.get(url)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    few = count()
    for n in range(5):
        factories.opportunity(data.org, stage="Qualification", amount=Decimal(n + 1))
    refresh()
    assert count() == few
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    own = [
        q["sql"]
        for q in queries.captured_queries
        if "sales_dashboard" in q["sql"] or "sales_stages" in q["sql"]
    ]
    assert len(own) == 2, own


def test_json_variant_has_the_same_figures(data, client, login, manager_a):
    refreshed_at = refresh()
    login(manager_a)
    body = client.get(reverse("sales:dashboard") + "?format=json").json()
    expected = expected_dashboard(data.org, refreshed_at, "USD")
    assert body["currency"] == "USD" and body["refreshed_at"] == refreshed_at.isoformat()
    assert body["kpis"]["open_amount"] == f"{expected['open_amount']:.2f}"
    assert body["kpis"]["open_weighted"] == f"{expected['open_weighted']:.2f}"
    assert body["kpis"]["win_rate_12m"] == f"{expected['win_rate']:.1f}"
    assert body["kpis"]["average_deal_size"] == f"{expected['average_deal_size']:.2f}"
    assert body["kpis"]["average_sales_cycle_days"] == f"{expected['average_cycle_days']:.1f}"
    assert body["kpis"]["forecast_3m_weighted"] == f"{expected['forecast_weighted']:.2f}"
    assert len(body["conversion"]) == 12 and len(body["forecast"]) == 3
    stages = {
        s["stage_id"]: (s["deals"], s["amount"], s["weighted"]) for f in body["funnel"] for s in f["stages"]
    }
    for stage_id, (deals, amount, weighted) in expected["stages"].items():
        assert stages[stage_id] == (deals, f"{amount:.2f}", f"{weighted:.2f}")
    eur = client.get(reverse("sales:dashboard") + "?format=json&currency=EUR").json()
    assert eur["currency"] == "EUR" and eur["kpis"]["open_amount"] == "700.00"
    # An unknown currency falls back to the organization's.
    assert client.get(reverse("sales:dashboard") + "?format=json&currency=XXX").json()["currency"] == "USD"


def test_empty_state_before_the_first_refresh_offers_the_refresh_to_managers(client, login, org_a, manager_a):
    refresh()
    newcomer = factories.organization(slug="newcomer")  # created after the last refresh: no rows yet
    manager = factories.user(newcomer, role=Role.SALES_MANAGER)
    rep = factories.user(newcomer, role=Role.SALES_REP)
    login(manager)
    html = client.get(reverse("sales:dashboard")).content.decode()
    assert 'data-testid="dashboard-empty"' in html and 'data-testid="refresh-empty"' in html
    assert "Not computed yet" in html
    assert client.get(reverse("sales:dashboard") + "?format=json").json()["refreshed_at"] is None
    login(rep)
    html = client.get(reverse("sales:dashboard")).content.decode()
    assert (
        'data-testid="dashboard-empty"' in html and "refresh-empty" not in html and "refresh-now" not in html
    )


def test_an_organization_without_deals_shows_zeros_once_refreshed(client, login, org_a, manager_a):
    refresh()
    login(manager_a)
    response = client.get(reverse("sales:dashboard"))
    board = response.context["dashboard"]
    assert not board.is_empty and board.open_deals == 0 and board.win_rate is None
    assert board.funnels == []  # no pipeline yet: nothing to list
    factories.pipeline(org_a)
    board = client.get(reverse("sales:dashboard")).context["dashboard"]
    assert [s.deals for s in board.funnels[0].stages] == [0, 0, 0, 0]


@pytest.fixture
def enqueued(monkeypatch):
    cache.delete(sales_dashboard.REFRESH_REQUESTED_KEY)
    calls = []
    from sales import tasks

    monkeypatch.setattr(tasks.refresh_sales_dashboard, "delay", lambda *a, **kw: calls.append(kw))
    yield calls
    cache.delete(sales_dashboard.REFRESH_REQUESTED_KEY)


def test_refresh_button_enqueues_once_for_managers_only(
    client, login, org_a, manager_a, enqueued, django_capture_on_commit_callbacks
):
    refresh()
    login(manager_a)
    url = reverse("sales:dashboard")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 302 and len(enqueued) == 1
    # Pressed again before it ran: nothing more is enqueued, and the page says it is on its way.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url)
    assert len(enqueued) == 1
    html = client.get(url).content.decode()
    assert 'data-testid="refreshing"' in html
    # The refresh runs: the request is done.
    refresh()
    assert sales_dashboard.refresh_requested_at() is None
    rep = factories.user(org_a, role=Role.SALES_REP)
    login(rep)
    assert client.post(url).status_code == 403
    assert len(enqueued) == 1


def test_htmx_refresh_shows_the_status_and_polls_until_new_figures_are_in(
    client, login, org_a, manager_a, enqueued, django_capture_on_commit_callbacks
):
    first = refresh()
    login(manager_a)
    url = reverse("sales:dashboard")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'data-testid="refreshing"' in html and "part=status" in html and len(enqueued) == 1
    since = first.isoformat()
    poll = client.get(url, {"part": "status", "since": since}, HTTP_HX_REQUEST="true")
    assert poll.status_code == 200 and 'data-testid="refreshing"' in poll.content.decode()
    refresh()
    done = client.get(url, {"part": "status", "since": since}, HTTP_HX_REQUEST="true")
    assert done.status_code == 204 and done["HX-Refresh"] == "true"


def test_roles_and_platform_operators(client, login, org_a, superuser):
    url = reverse("sales:dashboard")
    for role, status in [
        (Role.SALES_REP, 200),
        (Role.MARKETING_MANAGER, 200),
        (Role.SUPPORT_AGENT, 403),
        (Role.SUPPORT_MANAGER, 403),
    ]:
        login(factories.user(org_a, role=role))
        assert client.get(url).status_code == status, role
    login(superuser)
    assert client.get(url).status_code == 404  # no organization: nothing to show
    assert Client().get(url).status_code == 302


def test_nav_lists_the_dashboard_for_sellers(client, login, org_a):
    login(factories.user(org_a, role=Role.SALES_REP))
    html = client.get(reverse("sales:dashboard")).content.decode()
    assert "Sales dashboard" in html and reverse("sales:analytics") not in html


def test_stage_rows_are_per_stage_id_so_a_renamed_stage_keeps_its_figures(data, manager_a):
    refresh()
    proposal = factories.stage(data.org, "Proposal")
    with system_context():
        Stage.objects.filter(pk=proposal.pk).update(name="Offer")
    with tenant_context(data.org.pk, user=manager_a):
        board = sales_dashboard.sales_dashboard(actor=manager_a)
    offer = next(s for f in board.funnels for s in f.stages if s.stage.pk == proposal.pk)
    assert (offer.stage.name, offer.deals) == ("Offer", 2)


def test_each_drill_down_list_holds_as_many_deals_as_its_figure(data, client, login, manager_a):
    # One currency only, so the list (which does not filter by currency) holds exactly the figure's deals.
    with system_context():
        Opportunity.objects.filter(currency="EUR").delete()
    refresh()
    login(manager_a)
    board = client.get(reverse("sales:dashboard")).context["dashboard"]
    assert board.currencies == ["USD"]
    figures = [(s.url, s.deals) for f in board.funnels for s in f.stages]
    figures += [(m.won_url, m.won) for m in board.months] + [(m.lost_url, m.lost) for m in board.months]
    figures += [(m.url, m.deals) for m in board.forecast]
    figures += [(board.links["open"], board.open_deals), (board.links["won"], board.won_deals)]
    figures += [(board.links["forecast"], sum(m.deals for m in board.forecast))]
    for url, expected in figures:
        assert client.get(url).context["count"] == expected, url
