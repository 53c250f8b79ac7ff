"""The forecast page, its drill-down and the quota grid: what they show, whose numbers, in a fixed number of
queries, and the 403 / 404 rules."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm import navigation
from crm.tenancy import system_context, tenant_context
from sales.models import Quota, SalesSettings
from sales.services.opportunities import organization_today
from tests import factories

D = Decimal


@pytest.fixture
def team(org_a):
    return {
        "manager": factories.user(org_a, role="sales_manager", first_name="Mona"),
        "rep": factories.user(org_a, role="sales_rep", first_name="Rita"),
        "other_rep": factories.user(org_a, role="sales_rep", first_name="Omar"),
        "agent": factories.user(org_a, role="support_agent"),
    }


@pytest.fixture
def today(org_a):
    return organization_today(org_a)


def _deals(org, team, today, n: int = 1):
    """n deals of the rep and n of the other rep, closing today, in Negotiation (commit, 75 %)."""
    deals = []
    for i in range(n):
        deals.append(
            factories.opportunity(
                org,
                stage="Negotiation",
                amount=D("1000") + i,
                expected_close_date=today,
                assigned_to=team["rep"],
            )
        )
        deals.append(
            factories.opportunity(
                org,
                stage="Proposal",
                amount=D("400"),
                expected_close_date=today,
                assigned_to=team["other_rep"],
            )
        )
    return deals


def _own_only(org):
    with system_context():
        SalesSettings.objects.update_or_create(
            organization=org, defaults={"opportunity_visibility": SalesSettings.Visibility.OWN}
        )


def test_the_page_shows_the_services_numbers_with_chart_data_and_drill_down_links(
    client, login, org_a, team, today
):
    _deals(org_a, team, today)
    with system_context():
        Quota.objects.create(
            organization=org_a, user=team["rep"], month=today.replace(day=1), amount=D("500")
        )
    login(team["manager"])
    response = client.get(reverse("sales:forecast"), {"months": "6"})
    assert response.status_code == 200
    forecast = response.context["forecast"]
    assert (forecast.owner_id, len(forecast.months), forecast.as_of) == (None, 6, today)
    this_month = forecast.months[0]
    # 1,000 x 75 % + 400 x 50 %; commit 1,000; pipeline 1,400 over a 500 quota
    assert (this_month.expected, this_month.commit, this_month.pipeline) == (
        D("950.00"),
        D("1000.00"),
        D("1400.00"),
    )
    assert (this_month.quota, this_month.coverage) == (D("500.00"), D("2.80"))
    html = response.content.decode()
    chart = json.loads(
        html.split('id="forecast-chart-data" type="application/json">')[1].split("</script>")[0]
    )
    assert [s["key"] for s in chart["series"]] == [
        "closed_won",
        "commit",
        "expected",
        "worst_case",
        "best_case",
        "quota",
    ]
    expected_series = next(s for s in chart["series"] if s["key"] == "expected")
    assert expected_series["values"][0] == "950.00" and len(expected_series["values"]) == 6
    assert f"measure=commit&amp;owner=all&amp;months=6&amp;month={today:%Y-%m}" in html
    assert 'data-testid="forecast-as-of"' in html and "js/forecast-chart.js" in html
    assert "<script>" not in html  # CSP: no inline scripts
    assert 'data-risk="low_coverage"' in html  # 2.8x < 3x


def test_the_page_takes_the_same_number_of_queries_whatever_the_deals(client, login, org_a, team, today):
    login(team["manager"])
    _deals(org_a, team, today, n=1)
    client.get(reverse("sales:forecast"))
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("sales:forecast")).status_code == 200
    _deals(org_a, team, today, n=15)
    with system_context():
        Quota.objects.create(organization=org_a, user=team["rep"], month=today.replace(day=1), amount=D("5"))
    with CaptureQueriesContext(connection) as many:
        assert client.get(reverse("sales:forecast"), {"months": "12"}).status_code == 200
    assert len(many) == len(few)
    # the forecast's own reads: the open deals, the wins and the risks, once each
    assert sum(q["sql"].count("FROM opportunities o") for q in many.captured_queries) == 3


def test_a_rep_sees_their_own_forecast_by_default_and_may_pick_when_all_deals_are_visible(
    client, login, org_a, team, today
):
    _deals(org_a, team, today)
    login(team["rep"])
    response = client.get(reverse("sales:forecast"))
    assert response.context["scope"].owner_id == team["rep"].pk
    assert response.context["forecast"].months[0].commit == D("1000.00")
    everyone = client.get(reverse("sales:forecast"), {"owner": "all"})
    assert everyone.context["scope"].owner_id is None
    assert everyone.context["forecast"].months[0].pipeline == D("1400.00")
    colleague = client.get(reverse("sales:forecast"), {"owner": str(team["other_rep"].pk)})
    assert colleague.context["forecast"].months[0].pipeline == D("400.00")


def test_in_own_only_mode_a_rep_always_gets_their_own_forecast(client, login, org_a, team, today):
    _deals(org_a, team, today)
    _own_only(org_a)
    login(team["rep"])
    for owner in ("all", str(team["other_rep"].pk), ""):
        response = client.get(reverse("sales:forecast"), {"owner": owner})
        assert response.context["scope"].owner_id == team["rep"].pk
        assert not response.context["scope"].can_pick
        assert response.context["forecast"].months[0].pipeline == D("1000.00")
    assert 'name="owner"' not in response.content.decode()


def test_managers_default_to_the_organization_and_can_pick_an_owner(client, login, org_a, team, today):
    _deals(org_a, team, today)
    login(team["manager"])
    assert client.get(reverse("sales:forecast")).context["scope"].owner_id is None
    picked = client.get(reverse("sales:forecast"), {"owner": str(team["other_rep"].pk)})
    assert picked.context["scope"].owner_id == team["other_rep"].pk
    unknown = client.get(reverse("sales:forecast"), {"owner": str(team["manager"].organization_id)})
    assert unknown.context["scope"].owner_id is None


def test_the_drill_down_lists_the_deals_behind_a_figure_largest_first(client, login, org_a, team, today):
    deals = _deals(org_a, team, today, n=3)
    login(team["manager"])
    url = reverse("sales:forecast_deals")
    response = client.get(url, {"measure": "commit", "month": f"{today:%Y-%m}", "owner": "all", "months": 3})
    assert response.status_code == 200
    listed = [d.pk for d in response.context["page"].items]
    commit = sorted((d for d in deals if d.forecast_category == "commit"), key=lambda d: -d.amount)
    assert listed == [d.pk for d in commit]
    pipeline = client.get(url, {"measure": "pipeline", "owner": "all", "months": 3})
    assert len(pipeline.context["page"].items) == 6


def test_the_drill_down_pages_with_keyset_and_a_fixed_number_of_queries(client, login, org_a, team, today):
    login(team["manager"])
    _deals(org_a, team, today, n=2)
    url = reverse("sales:forecast_deals")
    params = {"measure": "pipeline", "owner": "all", "months": 3}
    client.get(url, params)
    with CaptureQueriesContext(connection) as few:
        client.get(url, params)
    _deals(org_a, team, today, n=30)
    with CaptureQueriesContext(connection) as many:
        first = client.get(url, params)
    assert len(many) == len(few)
    assert len(first.context["page"].items) == 50 and first.context["page"].has_next
    second = client.get(url, {**params, "cursor": first.context["page"].next_cursor})
    assert len(second.context["page"].items) == 14
    assert not {d.pk for d in first.context["page"].items} & {d.pk for d in second.context["page"].items}


def test_the_drill_down_hides_deals_the_actor_may_not_see(client, login, org_a, org_b, team, today):
    _deals(org_a, team, today)
    factories.opportunity(org_b, stage="Negotiation", expected_close_date=today)
    _own_only(org_a)
    login(team["rep"])
    response = client.get(reverse("sales:forecast_deals"), {"measure": "pipeline", "owner": "all"})
    assert [d.assigned_to_id for d in response.context["page"].items] == [team["rep"].pk]
    other = client.get(
        reverse("sales:forecast_deals"), {"measure": "pipeline", "owner": str(team["other_rep"].pk)}
    )
    assert [d.assigned_to_id for d in other.context["page"].items] == [team["rep"].pk]


@pytest.mark.parametrize(
    "params",
    [
        {"measure": "nonsense"},
        {"measure": "commit", "month": "2026-13"},
        {"measure": "commit", "month": "1999-01"},  # outside the forecast
        {"measure": "commit", "owner": "not-a-uuid"},
        {"measure": "commit", "months": "7"},
    ],
)
def test_the_drill_down_answers_404_to_bad_parameters(client, login, team, params):
    login(team["manager"])
    assert client.get(reverse("sales:forecast_deals"), params).status_code == 404


def test_who_may_open_what(client, login, team):
    login(team["agent"])
    assert client.get(reverse("sales:forecast")).status_code == 403
    assert client.get(reverse("sales:forecast_deals"), {"measure": "commit"}).status_code == 403
    assert client.get(reverse("sales:quotas")).status_code == 403
    login(team["rep"])
    assert client.get(reverse("sales:forecast")).status_code == 200
    assert client.get(reverse("sales:quotas")).status_code == 403
    assert client.post(reverse("sales:quotas"), {}).status_code == 403
    login(team["manager"])
    assert client.get(reverse("sales:quotas")).status_code == 200


def test_each_role_opens_the_forecast_pages_its_capabilities_allow(client, login, org_a):
    from crm.permissions import MATRIX, Capability, Role

    bare = reverse("sales:forecast_deals")
    pages = {
        reverse("sales:forecast"): Capability.VIEW_FORECAST,
        bare: Capability.VIEW_FORECAST,  # no figure asked for: back to the forecast page
        bare + "?measure=expected": Capability.VIEW_FORECAST,
        reverse("sales:quotas"): Capability.MANAGE_QUOTAS,
    }
    for role in Role.values:
        login(factories.user(org_a, role=role))
        for url, capability in pages.items():
            want = (302 if url == bare else 200) if capability in MATRIX[role] else 403
            assert client.get(url).status_code == want, (role, url)


def test_platform_operators_get_an_empty_state(client, login, superuser):
    login(superuser)
    assert client.get(reverse("sales:forecast")).context["no_org"]
    assert client.get(reverse("sales:quotas")).context["no_org"]
    assert client.get(reverse("sales:forecast_deals"), {"measure": "commit"}).status_code == 404


def test_forecast_and_quotas_are_in_the_sales_navigation():
    items = {item.url_name: item for item in navigation.all_items()}
    assert items["sales:forecast"].section == items["sales:quotas"].section == "sales"
    assert str(items["sales:forecast"].label) == "Forecast" and str(items["sales:quotas"].label) == "Quotas"


# --- The quota grid ----------------------------------------------------------------------------------------


def _cell(user, month: datetime.date) -> str:
    return f"q_{user.pk}_{month:%Y-%m}"


def _grid_post(response, changes: dict) -> dict:
    """The grid as the browser posts it: every cell and its hidden initial, with `changes` applied."""
    form = response.context["form"]
    data = {}
    for name, field in form.fields.items():
        initial = form.initial.get(name, field.initial)
        value = "" if initial is None else str(initial)
        data[name] = value
        data[f"initial-{name}"] = value
    data.update(changes)
    return data


def test_managers_set_and_clear_quotas_on_the_grid(client, login, org_a, team, today):
    login(team["manager"])
    url = reverse("sales:quotas")
    response = client.get(url)
    months = response.context["months"]
    assert len(months) == 6 and months[0] == today.replace(day=1)
    people = {row["user"].pk for row in response.context["form"].rows()}
    assert people == {team["manager"].pk, team["rep"].pk, team["other_rep"].pk}  # not the support agent
    saved = client.post(
        url,
        _grid_post(
            response, {_cell(team["rep"], months[0]): "12000.50", _cell(team["other_rep"], months[2]): "0"}
        ),
    )
    assert saved.status_code == 302
    with tenant_context(org_a.pk):
        stored = {(q.user_id, q.month): q.amount for q in Quota.objects.all()}
    assert stored == {
        (team["rep"].pk, months[0]): D("12000.50"),
        (team["other_rep"].pk, months[2]): D("0.00"),
    }
    again = client.get(url)
    assert again.context["totals"][0] == D("12000.50")
    client.post(url, _grid_post(again, {_cell(team["rep"], months[0]): ""}))
    with tenant_context(org_a.pk):
        assert list(Quota.objects.values_list("user_id", "month")) == [(team["other_rep"].pk, months[2])]


def test_saving_keeps_a_colleagues_change_to_cells_left_alone(client, login, org_a, team, today):
    login(team["manager"])
    url = reverse("sales:quotas")
    seen = client.get(url)
    month = seen.context["months"][0]
    with system_context():  # a colleague saves meanwhile
        Quota.objects.create(organization=org_a, user=team["other_rep"], month=month, amount=D("777"))
    client.post(url, _grid_post(seen, {_cell(team["rep"], month): "100"}))
    with tenant_context(org_a.pk):
        stored = dict(Quota.objects.values_list("user_id", "amount"))
    assert stored == {team["other_rep"].pk: D("777.00"), team["rep"].pk: D("100.00")}


def test_saving_a_grid_takes_the_same_queries_for_one_cell_or_many(client, login, org_a, team, today):
    login(team["manager"])
    url = reverse("sales:quotas")
    page = client.get(url, {"months": "12"})
    months = page.context["months"]
    with CaptureQueriesContext(connection) as one:
        client.post(f"{url}?months=12", _grid_post(page, {_cell(team["rep"], months[0]): "1"}))
    page = client.get(url, {"months": "12"})
    changes = {
        _cell(user, m): "2" for user in (team["rep"], team["other_rep"], team["manager"]) for m in months
    }
    with CaptureQueriesContext(connection) as many:
        client.post(f"{url}?months=12", _grid_post(page, changes))
    assert len(one) == len(many)
    with tenant_context(org_a.pk):
        assert Quota.objects.count() == 36


def test_a_bad_amount_is_shown_beside_its_cell_and_nothing_is_saved(client, login, org_a, team):
    login(team["manager"])
    url = reverse("sales:quotas")
    page = client.get(url)
    months = page.context["months"]
    response = client.post(
        url, _grid_post(page, {_cell(team["rep"], months[0]): "-5", _cell(team["rep"], months[1]): "10"})
    )
    assert response.status_code == 200
    assert response.context["form"].errors[_cell(team["rep"], months[0])]
    with tenant_context(org_a.pk):
        assert not Quota.objects.exists()


def test_the_quota_service_refuses_other_organizations_people_bad_months_and_reps(org_a, org_b, team):
    from django.core.exceptions import PermissionDenied, ValidationError

    from sales.services.quotas import quotas_set

    stranger = factories.user(org_b, role="sales_rep")
    month = datetime.date(2026, 4, 1)
    with tenant_context(org_a.pk):
        with pytest.raises(ValidationError):
            quotas_set(organization_id=org_a.pk, actor=team["manager"], values={(stranger.pk, month): D("1")})
        with pytest.raises(ValidationError):
            quotas_set(
                organization_id=org_a.pk,
                actor=team["manager"],
                values={(team["rep"].pk, datetime.date(2026, 4, 2)): D("1")},
            )
        with pytest.raises(PermissionDenied):
            quotas_set(organization_id=org_a.pk, actor=team["rep"], values={(team["rep"].pk, month): D("1")})
        result = quotas_set(
            organization_id=org_a.pk, actor=team["manager"], values={(team["rep"].pk, month): D("5")}
        )
        assert (result.saved, result.cleared) == (1, 0)
        unchanged = quotas_set(
            organization_id=org_a.pk, actor=team["manager"], values={(team["rep"].pk, month): D("5.00")}
        )
        assert (unchanged.saved, unchanged.cleared) == (0, 0)
