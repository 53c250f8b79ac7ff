"""Team performance: every figure per rep, per team and in total recomputed independently in Python on the
hand-made data set of test_dashboard (Alice has several deals, activities and quotas, so a fan-out join
would multiply them), written out by hand for two periods, the page, its JSON, periods and query count."""

from __future__ import annotations

import datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.permissions import Role
from crm.tenancy import tenant_context
from sales import analytics
from sales.dashboard import add_months, month_end
from sales.models import Activity, Opportunity, OpportunityChange, Quota
from sales.views.dashboard import preset_period
from tests import factories
from tests.sales.test_dashboard import build_sales_data

TENTH, CENT = Decimal("0.1"), Decimal("0.01")


def _ratio(part, whole, step=TENTH, scale=1):
    if not whole:
        return None
    return (Decimal(scale) * Decimal(part) / Decimal(whole)).quantize(step, rounding=ROUND_HALF_UP)


def expected_performance(data, period: analytics.Period, *, also=()) -> dict:
    """Per user id (None: unassigned): the figures, from the rows with plain loops. Every rep of the data
    set (and `also`: other active sales users) has a row."""
    org, zone = data.org, data.zone
    with tenant_context(org.pk):
        deals = list(Opportunity.objects.filter(organization_id=org.pk))
        activities = list(Activity.objects.filter(organization_id=org.pk))
        quotas = list(Quota.objects.filter(organization_id=org.pk))
        changes = list(OpportunityChange.objects.filter(organization_id=org.pk).select_related("opportunity"))
    people = {r.pk for r in data.reps.values()} | set(also)
    figures: dict = {}

    def row(user_id):
        return figures.setdefault(
            user_id,
            {
                "won": 0,
                "lost": 0,
                "revenue": Decimal(0),
                "won_usd": 0,
                "cycle": 0,
                "activities": 0,
                "quota": None,
                "slipped": set(),
                "slips": 0,
            },
        )

    for user_id in people:
        row(user_id)
    for d in deals:
        if d.status in ("won", "lost") and period.start <= d.actual_close_date <= period.end:
            r = row(d.assigned_to_id)
            r[d.status] += 1
            if d.status == "won":
                r["cycle"] += (d.actual_close_date - d.created_at.astimezone(zone).date()).days
                if d.currency == "USD":
                    r["revenue"] += d.amount
                    r["won_usd"] += 1
    for a in activities:
        if a.completed_at and period.start <= a.completed_at.astimezone(zone).date() <= period.end:
            row(a.owner_id)["activities"] += 1
    for q in quotas:
        if period.start.replace(day=1) <= q.month <= period.end:
            r = row(q.user_id)
            r["quota"] = (r["quota"] or Decimal(0)) + q.amount
    for c in changes:
        if (
            c.field == "expected_close_date"
            and period.start <= c.changed_at.astimezone(zone).date() <= period.end
            and datetime.date.fromisoformat(c.new_value) > datetime.date.fromisoformat(c.old_value)
        ):
            r = row(c.opportunity.assigned_to_id)
            r["slipped"].add(c.opportunity_id)
            r["slips"] += 1
    return {
        user_id: {
            "won": r["won"],
            "lost": r["lost"],
            "win_rate": _ratio(r["won"], r["won"] + r["lost"], scale=100),
            "revenue": r["revenue"],
            "average_deal_size": _ratio(r["revenue"], r["won_usd"], step=CENT),
            "average_cycle_days": _ratio(r["cycle"], r["won"]),
            "activities": r["activities"],
            "quota": r["quota"],
            "attainment": _ratio(r["revenue"], r["quota"], scale=100) if r["quota"] else None,
            "slipped_deals": len(r["slipped"]),
            "slips": r["slips"],
        }
        for user_id, r in figures.items()
    }


def _shown(row: analytics.Performance) -> dict:
    return {
        "won": row.won,
        "lost": row.lost,
        "win_rate": row.win_rate,
        "revenue": row.revenue,
        "average_deal_size": row.average_deal_size,
        "average_cycle_days": row.average_cycle_days,
        "activities": row.activities,
        "quota": row.quota,
        "attainment": row.attainment,
        "slipped_deals": row.slipped_deals,
        "slips": row.slips,
    }


@pytest.fixture
def data(org_a):
    return build_sales_data(org_a)


@pytest.fixture
def manager_a(org_a):
    return factories.user(
        org_a, role=Role.SALES_MANAGER, department="sales", first_name="Zed", last_name="Boss"
    )


def _performance(data, actor, period):
    with tenant_context(data.org.pk, user=actor):
        return analytics.team_performance(actor=actor, period=period)


def _periods(data):
    this_month = analytics.Period(data.month(0), month_end(data.month(0)))
    three_months = analytics.Period(data.month(-2), month_end(data.month(0)))
    return {"this month": this_month, "three months": three_months}


def test_every_rep_figure_matches_an_independent_computation(data, manager_a):
    for name, period in _periods(data).items():
        result = _performance(data, manager_a, period)
        expected = expected_performance(data, period, also=[manager_a.pk])
        shown = {rep.user_id: _shown(rep) for rep in result.reps}
        assert shown == expected, name


def test_teams_and_total_are_sums_of_raw_figures_not_averages_of_ratios(data, manager_a):
    period = _periods(data)["three months"]
    result = _performance(data, manager_a, period)
    expected = expected_performance(data, period)
    reps = data.reps
    sales = [expected[reps["alice"].pk], expected[reps["bob"].pk]]
    team = next(t for t in result.teams if t.department == "sales")
    won, lost = sum(r["won"] for r in sales), sum(r["lost"] for r in sales)
    assert (team.won, team.lost, team.win_rate) == (won, lost, _ratio(won, won + lost, scale=100))
    assert team.revenue == sum(r["revenue"] for r in sales)
    assert team.quota == sum(r["quota"] for r in sales)
    assert team.attainment == _ratio(team.revenue, team.quota, scale=100)
    assert team.activities == sum(r["activities"] for r in sales)
    # Everyone includes the unassigned deals and activities.
    assert result.total.won == sum(r["won"] for r in expected.values())
    assert result.total.lost == sum(r["lost"] for r in expected.values())
    assert result.total.activities == sum(r["activities"] for r in expected.values())
    assert result.other_currency_wins == 1  # w3, in EUR


def test_this_month_by_hand(data, manager_a):
    result = _performance(data, manager_a, _periods(data)["this month"])
    rows = {rep.label: rep for rep in result.reps}
    alice, bob, carol = rows["Alice Able"], rows["Bob Baker"], rows["Carol Cole"]
    # Alice: won w1 (5000, 31 days), lost l1; 3 activities (not her 5 deals times 3 quotas); quota 10000; o1 slipped
    # twice.
    assert (alice.won, alice.lost, alice.win_rate, alice.revenue) == (
        1,
        1,
        Decimal("50.0"),
        Decimal("5000.00"),
    )
    assert (alice.average_deal_size, alice.average_cycle_days, alice.activities) == (
        Decimal("5000.00"),
        Decimal("31.0"),
        3,
    )
    assert (alice.quota, alice.attainment, alice.slipped_deals, alice.slips) == (
        Decimal("10000.00"),
        Decimal("50.0"),
        1,
        2,
    )
    # Bob: nothing closed, 2 activities, quota 5000 (0 % attained), o3 moved later once (and earlier once).
    assert (bob.won, bob.win_rate, bob.activities, bob.attainment, bob.slipped_deals, bob.slips) == (
        0,
        None,
        2,
        Decimal("0.0"),
        1,
        1,
    )
    assert (carol.won, carol.activities, carol.quota, carol.slipped_deals) == (0, 0, None, 0)
    assert rows["Unassigned"].activities == 1 and rows["Unassigned"].rank is None
    assert [(r.rank, r.label) for r in result.leaderboard][:2] == [(1, "Alice Able"), (2, "Bob Baker")]
    sales = next(t for t in result.teams if t.department == "sales")
    assert (sales.revenue, sales.quota, sales.attainment, sales.activities) == (
        Decimal("5000.00"),
        Decimal("15000.00"),
        Decimal("33.3"),
        5,
    )


def test_three_months_by_hand(data, manager_a):
    result = _performance(data, manager_a, _periods(data)["three months"])
    rows = {rep.label: rep for rep in result.reps}
    alice, bob = rows["Alice Able"], rows["Bob Baker"]
    # Alice: won w1 5000, w5 2000 (USD) and w3 (EUR), lost l1; cycles 31 + 46 + 6; quotas 10000 + 8000 + 6000.
    assert (alice.won, alice.lost, alice.win_rate) == (3, 1, Decimal("75.0"))
    assert (alice.revenue, alice.average_deal_size, alice.average_cycle_days) == (
        Decimal("7000.00"),
        Decimal("3500.00"),
        Decimal("27.7"),
    )
    assert (alice.activities, alice.quota, alice.attainment) == (4, Decimal("24000.00"), Decimal("29.2"))
    assert (bob.revenue, bob.attainment, bob.average_cycle_days) == (
        Decimal("1500.25"),
        Decimal("30.0"),
        Decimal("11.0"),
    )
    assert bob.activities == 3  # two this month and the late call on last month's last evening
    assert rows["Carol Cole"].slipped_deals == 1  # o5, moved later last month
    assert (rows["Unassigned"].lost, rows["Unassigned"].win_rate) == (1, Decimal("0.0"))


def test_presets_are_calendar_ranges():
    today = datetime.date(2026, 11, 26)
    assert preset_period("this_month", today) == analytics.Period(
        datetime.date(2026, 11, 1), datetime.date(2026, 11, 30)
    )
    assert preset_period("last_month", today) == analytics.Period(
        datetime.date(2026, 10, 1), datetime.date(2026, 10, 31)
    )
    assert preset_period("this_quarter", today) == analytics.Period(
        datetime.date(2026, 10, 1), datetime.date(2026, 12, 31)
    )
    assert preset_period("last_quarter", today) == analytics.Period(
        datetime.date(2026, 7, 1), datetime.date(2026, 9, 30)
    )
    assert preset_period("this_year", today) == analytics.Period(
        datetime.date(2026, 1, 1), datetime.date(2026, 12, 31)
    )
    assert preset_period("last_year", datetime.date(2026, 1, 5)) == analytics.Period(
        datetime.date(2025, 1, 1), datetime.date(2025, 12, 31)
    )
    assert add_months(datetime.date(2026, 1, 1), -1) == datetime.date(2025, 12, 1)


def test_page_renders_every_rep_team_and_leaderboard(data, client, login, manager_a):
    login(manager_a)
    response = client.get(reverse("sales:analytics"), {"period": "this_month"})
    assert response.status_code == 200
    html = response.content.decode()
    result = response.context["result"]
    assert result.period == _periods(data)["this month"]
    assert 'data-testid="leaderboard"' in html and 'id="sales-analytics-data"' in html
    assert "Alice Able" in html and "Sales" in html and "Account management" in html
    alice = data.reps["alice"]
    list_url = reverse("sales:opportunity_list")
    assert f"{list_url}?owner={alice.pk}&amp;status=won&amp;close_after={data.month(0).isoformat()}" in html
    assert 'data-value="5000.00"' in html  # closed-won revenue, everyone


def test_custom_period_and_invalid_dates(data, client, login, manager_a):
    login(manager_a)
    url = reverse("sales:analytics")
    start, end = data.month(-2), month_end(data.month(0))
    response = client.get(url, {"period": "custom", "start": start.isoformat(), "end": end.isoformat()})
    assert response.context["result"].period == analytics.Period(start, end)
    bad = client.get(url, {"period": "custom", "start": end.isoformat(), "end": start.isoformat()})
    assert bad.status_code == 200 and "The period ends before it starts." in bad.content.decode()
    assert bad.context["result"].period == preset_period("this_quarter", data.today)


def test_json_variant_has_the_same_figures(data, client, login, manager_a):
    login(manager_a)
    period = _periods(data)["three months"]
    body = client.get(
        reverse("sales:analytics"),
        {
            "period": "custom",
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "format": "json",
        },
    ).json()
    expected = expected_performance(data, period)
    alice = next(r for r in body["reps"] if r["user_id"] == str(data.reps["alice"].pk))
    e = expected[data.reps["alice"].pk]
    assert (
        alice["rank"] == 1
        and alice["revenue"] == f"{e['revenue']:.2f}"
        and alice["win_rate"] == f"{e['win_rate']:.1f}"
    )
    assert alice["attainment"] == f"{e['attainment']:.1f}" and alice["activities"] == e["activities"]
    assert body["period"] == {"start": period.start.isoformat(), "end": period.end.isoformat()}
    assert body["total"]["won"] == sum(r["won"] for r in expected.values())


def test_query_count_does_not_grow_with_reps_or_deals(data, client, login, manager_a):
    login(manager_a)
    url = reverse("sales:analytics")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url, {"period": "this_month"}).status_code == 200
        return len(queries)

    few = count()
    for n in range(4):
        rep = factories.user(data.org, role=Role.SALES_REP, department="sales")
        factories.opportunity(data.org, assigned_to=rep, stage="Closed won", amount=Decimal(n + 10))
    assert count() == few
    with CaptureQueriesContext(connection) as queries:
        client.get(url, {"period": "this_month"})
    assert len([q for q in queries.captured_queries if "opportunity_activities" in q["sql"]]) == 1


def test_only_sales_leads_and_admins_see_team_performance(client, login, org_a, superuser):
    url = reverse("sales:analytics")
    for role, status in [
        (Role.SALES_MANAGER, 200),
        (Role.ADMIN, 200),
        (Role.SALES_REP, 403),
        (Role.MARKETING_MANAGER, 403),
        (Role.SUPPORT_AGENT, 403),
    ]:
        login(factories.user(org_a, role=role))
        assert client.get(url).status_code == status, role
    login(superuser)
    assert client.get(url).status_code == 404


def test_other_organizations_figures_never_appear(data, client, login, org_b):
    manager_b = factories.user(org_b, role=Role.SALES_MANAGER)
    login(manager_b)
    body = client.get(reverse("sales:analytics"), {"period": "this_year", "format": "json"}).json()
    assert body["organization"] == org_b.slug
    assert {r["user_id"] for r in body["reps"]} == {str(manager_b.pk)}
    assert body["total"]["won"] == body["total"]["activities"] == 0


def test_a_reps_drill_down_lists_hold_their_won_and_lost_deals(data, client, login, manager_a):
    login(manager_a)
    period = _periods(data)["three months"]
    result = _performance(data, manager_a, period)
    for rep in result.reps:
        assert client.get(rep.links["won"]).context["count"] == rep.won, rep.label
        assert client.get(rep.links["lost"]).context["count"] == rep.lost, rep.label
