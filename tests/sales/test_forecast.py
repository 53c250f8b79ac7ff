"""sales/forecasting.py: every figure of the forecast recomputed on a hand-made book of deals, by hand and by an
independent per-deal reference, plus the owner filter and `manage.py forecast`.

The book (as of 2026-03-10, organization in UTC, default pipeline):
- history of closed deals for the stage-to-win rates (12 months back): Negotiation reached by 6, 5 won;
  Proposal 6, 3 won; Prospecting 10, 6 won; Qualification only 3 (thin: its default 25 % is used);
- open deals in March, April and May (one customer with several of them and with a won and a lost deal, which
  a fan-out join would double count), an overridden probability, categories overridden to commit and to
  omitted, slipped close dates, idle deals, close dates moved twice;
- quotas of two reps.
"""

from __future__ import annotations

import datetime
import io
import itertools
import json
import uuid
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from crm.tenancy import system_context, tenant_context
from sales import forecasting
from sales.forecasting import forecast_as_dict, forecast_for_organization
from sales.models import Opportunity, OpportunityChange, Quota, SalesSettings, Stage
from tests import factories

AS_OF = datetime.date(2026, 3, 10)
D = Decimal
UTC = datetime.UTC
THREE = Decimal("3")


def _at(day: datetime.date, hour: int = 12) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=UTC)


def _set(deal, **fields) -> None:
    """Columns the services set to "now" (close date, creation, last activity), put where the book needs them."""
    with system_context():
        Opportunity.objects.filter(pk=deal.pk).update(**fields)


def _changes(deal, field: str, values: list[str], first: datetime.date) -> None:
    """History rows moving `field` through `values` (one row per step, a day apart)."""
    with system_context():
        OpportunityChange.objects.bulk_create(
            OpportunityChange(
                organization_id=deal.organization_id,
                opportunity=deal,
                field=field,
                old_value=old,
                new_value=new,
                changed_at=_at(first + datetime.timedelta(days=step)),
            )
            for step, (old, new) in enumerate(itertools.pairwise(values))
        )


def _closed(org, path: list[str], closed_on: datetime.date, amount="1000", **fields):
    """A deal that went through the stages of `path` and closed (won or lost) on `closed_on`."""
    final = path[-1]
    if final == "Closed lost":
        fields["lost_reason"] = "Budget"
    deal = factories.opportunity(org, stage=final, amount=D(amount), **fields)
    _set(deal, actual_close_date=closed_on, created_at=_at(closed_on - datetime.timedelta(days=60)))
    stage_ids = [str(factories.stage(org, name).pk) for name in path]
    _changes(deal, "stage", stage_ids, closed_on - datetime.timedelta(days=len(path)))
    return deal


def _open(org, stage: str, amount: str, close: datetime.date, *, created=datetime.date(2026, 3, 1), **fields):
    deal = factories.opportunity(org, stage=stage, amount=D(amount), expected_close_date=close, **fields)
    _set(deal, created_at=_at(created))
    return deal


def _dates(*days: str) -> list[str]:
    return list(days)


@pytest.fixture
def book(org_a):
    rep1 = factories.user(org_a, role="sales_rep", first_name="Rita")
    rep2 = factories.user(org_a, role="sales_rep", first_name="Sam")
    x = factories.customer(org_a, first_name="Xavier")
    P, Q, PR, N = "Prospecting", "Qualification", "Proposal", "Negotiation"
    won, lost = "Closed won", "Closed lost"
    # History for the stage-to-win rates.
    _closed(org_a, [P, PR, N, won], datetime.date(2025, 6, 1))
    _closed(org_a, [P, PR, N, won], datetime.date(2025, 9, 15))
    _closed(org_a, [P, PR, N, PR, N, won], datetime.date(2025, 12, 1))  # back and forth: counted once
    h4 = _closed(org_a, [P, N, won], datetime.date(2026, 3, 3), "12000", assigned_to=rep1, customer=x)
    _closed(org_a, [P, PR, N, lost], datetime.date(2026, 1, 10))
    _closed(org_a, [P, PR, lost], datetime.date(2025, 11, 11))
    _closed(org_a, [P, Q, won], datetime.date(2025, 5, 5))
    _closed(org_a, [P, Q, lost], datetime.date(2025, 7, 7))
    l1 = _closed(org_a, [P, Q, PR, lost], datetime.date(2026, 3, 5), "20000", assigned_to=rep1, customer=x)
    _closed(org_a, [P, Q, won], datetime.date(2025, 3, 1))  # older than 365 days: not counted
    w2 = _closed(org_a, [P, Q, won], datetime.date(2026, 3, 15), "5000", assigned_to=rep1)  # after as_of
    w3 = _closed(org_a, [P, N, won], datetime.date(2026, 2, 20), "4000", assigned_to=rep2)
    # Open deals.
    d1 = _open(org_a, N, "10000", datetime.date(2026, 3, 20), assigned_to=rep1, customer=x)
    _set(d1, last_activity_at=_at(datetime.date(2026, 3, 8)))
    _changes(
        d1, "expected_close_date", _dates("2026-01-31", "2026-02-28", "2026-03-20"), datetime.date(2026, 1, 5)
    )
    d2 = _open(
        org_a,
        PR,
        "8000",
        datetime.date(2026, 3, 25),
        assigned_to=rep1,
        customer=x,
        created=datetime.date(2026, 1, 1),
    )
    d3 = _open(org_a, P, "5000", datetime.date(2026, 4, 15), assigned_to=rep2, customer=x, probability=30)
    _set(d3, last_activity_at=_at(datetime.date(2026, 2, 1)))
    _changes(d3, "expected_close_date", _dates("2026-03-31", "2026-04-15"), datetime.date(2026, 2, 1))
    d4 = _open(org_a, Q, "4000", datetime.date(2026, 4, 2), assigned_to=rep2)
    d5 = _open(org_a, PR, "6000", datetime.date(2026, 5, 31), assigned_to=rep1, forecast_category="commit")
    d6 = _open(
        org_a,
        N,
        "7000",
        datetime.date(2026, 4, 10),
        assigned_to=rep2,
        forecast_category="omitted",
        created=datetime.date(2026, 1, 1),
    )
    d7 = _open(org_a, P, "3000", datetime.date(2026, 2, 15), assigned_to=rep1)
    d8 = _open(org_a, Q, "2000", datetime.date(2026, 3, 5), assigned_to=rep2)
    _changes(
        d8,
        "expected_close_date",
        _dates("2026-01-15", "2026-02-01", "2026-02-20", "2026-03-05"),
        datetime.date(2026, 1, 2),
    )
    d9 = _open(org_a, N, "9000", datetime.date(2026, 6, 15), assigned_to=rep1)  # after the 3 months
    _changes(
        d9, "expected_close_date", _dates("2026-04-01", "2026-05-01", "2026-06-15"), datetime.date(2026, 2, 1)
    )
    d10 = _open(org_a, P, "10000", datetime.date(2026, 5, 10), assigned_to=rep2)
    with system_context():
        Quota.objects.bulk_create(
            Quota(organization=org_a, user=user, month=month, amount=D(amount))
            for user, month, amount in [
                (rep1, datetime.date(2026, 3, 1), "30000"),
                (rep1, datetime.date(2026, 4, 1), "20000"),
                (rep2, datetime.date(2026, 3, 1), "10000"),
                (rep2, datetime.date(2026, 5, 1), "5000"),
                (rep1, datetime.date(2026, 6, 1), "50000"),  # after the 3 months
            ]
        )
    return SimpleNamespace(
        org=org_a, rep1=rep1, rep2=rep2, x=x, h4=h4, l1=l1, w2=w2, w3=w3,
        d1=d1, d2=d2, d3=d3, d4=d4, d5=d5, d6=d6, d7=d7, d8=d8, d9=d9, d10=d10,
    )  # fmt: skip


def _forecast(org, **kwargs):
    with tenant_context(org.pk):
        return forecast_for_organization(organization_id=org.pk, as_of=AS_OF, **kwargs)


# --- An independent per-deal reference ---------------------------------------------------------------------


def _cents(value) -> Decimal:
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def reference_forecast(organization_id, *, as_of, months, owner_id=None, coverage_target=THREE) -> dict:
    """The forecast computed deal by deal in Python from plain rows (the definitions of docs/forecasting.md,
    written a second time, without SQL aggregates): figures per month, stage rates and risks."""
    deals = list(Opportunity.objects.filter(organization_id=organization_id))
    changes = list(OpportunityChange.objects.filter(organization_id=organization_id))
    stages = list(Stage.objects.filter(organization_id=organization_id))
    quotas = list(Quota.objects.filter(organization_id=organization_id))
    idle_days = (
        SalesSettings.objects.filter(organization_id=organization_id)
        .values_list("no_activity_days", flat=True)
        .first()
        or 14
    )
    # Stage-to-win rates, org-wide.
    window = [
        d
        for d in deals
        if d.status != "open" and as_of - datetime.timedelta(days=365) < d.actual_close_date <= as_of
    ]
    been_in: dict[uuid.UUID, set] = {d.pk: {d.stage_id} for d in window}
    for change in changes:
        if change.field == "stage" and change.opportunity_id in been_in:
            been_in[change.opportunity_id] |= {
                uuid.UUID(v) for v in (change.old_value, change.new_value) if v
            }
    rates = {}
    for stage in stages:
        if stage.outcome != "open":
            continue
        reached = [d for d in window if stage.pk in been_in[d.pk]]
        won = [d for d in reached if d.status == "won"]
        rates[stage.pk] = (
            Fraction(len(won), len(reached)) if len(reached) >= 5 else Fraction(stage.probability, 100)
        )
    mine = [d for d in deals if owner_id is None or d.assigned_to_id == owner_id]
    first = as_of.replace(day=1)
    month_list = [forecasting.add_months(first, n) for n in range(months)]
    end = forecasting.add_months(first, months)
    result = {}
    for month in month_list:
        after = forecasting.add_months(month, 1)
        open_ = [
            d
            for d in mine
            if d.status == "open"
            and month <= d.expected_close_date < after
            and d.forecast_category != "omitted"
        ]
        won = [
            d
            for d in mine
            if d.status == "won" and month <= d.actual_close_date < after and d.actual_close_date <= as_of
        ]
        commit = [d for d in open_ if d.forecast_category in ("commit", "closed")]
        best = [d for d in open_ if d.forecast_category == "best_case"]
        pipe = [d for d in open_ if d.forecast_category == "pipeline"]
        closed_won = sum((d.amount for d in won), D(0))
        quota = sum(
            (q.amount for q in quotas if q.month == month and (owner_id is None or q.user_id == owner_id)),
            D(0),
        )
        pipeline = sum((d.amount for d in open_), D(0))
        remaining = quota - closed_won
        result[month] = {
            "expected": _cents(sum((Fraction(d.amount) * d.probability / 100 for d in open_), Fraction(0))),
            "worst_case": _cents(Fraction(closed_won) + sum((Fraction(d.amount) * rates[d.stage_id] for d in commit), Fraction(0))),
            "best_case": _cents(
                Fraction(closed_won)
                + sum((Fraction(d.amount) for d in commit + best), Fraction(0))
                + sum((Fraction(d.amount) * rates[d.stage_id] for d in pipe), Fraction(0))
            ),
            "commit": sum((d.amount for d in commit), D(0)),
            "closed_won": closed_won,
            "quota": quota,
            "pipeline": pipeline,
            "coverage": _cents(pipeline / remaining) if quota > 0 and remaining > 0 else None,
        }  # fmt: skip
    midnight = datetime.datetime.combine(as_of, datetime.time.min, tzinfo=UTC)
    idle_before = midnight - datetime.timedelta(days=idle_days)
    scope = [
        d
        for d in mine
        if d.status == "open" and d.forecast_category != "omitted" and d.expected_close_date < end
    ]
    date_moves = {}
    for change in changes:
        if change.field == "expected_close_date":
            date_moves[change.opportunity_id] = date_moves.get(change.opportunity_id, 0) + 1
    low = {
        m for m, row in result.items() if row["coverage"] is not None and row["coverage"] < coverage_target
    }
    risks = {
        "slipped": [d for d in scope if d.expected_close_date < as_of],
        "no_activity": [d for d in scope if (d.last_activity_at or d.created_at) < idle_before],
        "close_date_moved": [d for d in scope if date_moves.get(d.pk, 0) > 1],
        "low_coverage": [
            d for d in scope if d.expected_close_date >= first and d.expected_close_date.replace(day=1) in low
        ],
    }
    return {
        "months": result,
        "rates": rates,
        "risks": {
            code: (len(found), sum((d.amount for d in found), D(0)), {d.pk for d in found})
            for code, found in risks.items()
            if found
        },
    }


def _figures(forecast) -> dict:
    return {
        row.month: {
            "expected": row.expected,
            "worst_case": row.worst_case,
            "best_case": row.best_case,
            "commit": row.commit,
            "closed_won": row.closed_won,
            "quota": row.quota,
            "pipeline": row.pipeline,
            "coverage": row.coverage,
        }
        for row in forecast.months
    }


# --- The figures, by hand -------------------------------------------------------------------------------------


MARCH, APRIL, MAY = datetime.date(2026, 3, 1), datetime.date(2026, 4, 1), datetime.date(2026, 5, 1)


def test_stage_win_rates_come_from_twelve_months_of_history_with_a_fallback_when_thin(book):
    forecast = _forecast(book.org)
    rates = {r.name: (r.reached, r.won, r.rate, r.from_history) for r in forecast.stage_rates}
    assert rates == {
        "Prospecting": (10, 6, Fraction(3, 5), True),
        "Qualification": (3, 1, Fraction(1, 4), False),  # 3 deals: the stage's default 25 %
        "Proposal": (6, 3, Fraction(1, 2), True),
        "Negotiation": (6, 5, Fraction(5, 6), True),  # the deal that went back and forth counts once
    }
    assert [r.name for r in forecast.stage_rates] == [
        "Prospecting",
        "Qualification",
        "Proposal",
        "Negotiation",
    ]


def test_every_month_figure_matches_the_hand_computation(book):
    forecast = _forecast(book.org)
    march, april, may = forecast.months
    # March: d1 10,000 Negotiation/commit 75 %; d2 8,000 Proposal/best case 50 %; d8 2,000 Qualification 25 %
    # (slipped but still in March); won h4 12,000 on 3 March (the win on 15 March is after as_of).
    assert (march.month, march.expected, march.commit, march.best_case_deals, march.pipeline_deals) == (
        MARCH, D("12000.00"), D("10000.00"), D("8000.00"), D("2000.00"),
    )  # fmt: skip
    assert (march.closed_won, march.won_deals, march.quota, march.pipeline, march.open_deals) == (
        D("12000.00"), 1, D("40000.00"), D("20000.00"), 3,
    )  # fmt: skip
    assert march.worst_case == D("20333.33")  # 12,000 + 10,000 x 5/6
    assert march.best_case == D("30500.00")  # 12,000 + 10,000 + 8,000 + 2,000 x 25 %
    assert march.coverage == D("0.71")  # 20,000 / (40,000 - 12,000)
    # April: d3 5,000 Prospecting at an overridden 30 %, d4 4,000 Qualification; d6 7,000 omitted.
    assert (april.expected, april.commit, april.pipeline, april.omitted, april.closed_won) == (
        D("2500.00"), D("0"), D("9000.00"), D("7000.00"), D("0"),
    )  # fmt: skip
    assert (april.worst_case, april.best_case) == (D("0.00"), D("4000.00"))  # 5,000 x 3/5 + 4,000 x 1/4
    assert (april.quota, april.coverage) == (D("20000.00"), D("0.45"))
    # May: d5 6,000 Proposal overridden to commit (50 %), d10 10,000 Prospecting.
    assert (may.expected, may.commit, may.pipeline) == (D("4000.00"), D("6000.00"), D("16000.00"))
    assert (may.worst_case, may.best_case) == (
        D("3000.00"),
        D("12000.00"),
    )  # 6,000 x 1/2; 6,000 + 10,000 x 3/5
    assert (may.quota, may.coverage) == (D("5000.00"), D("3.20"))
    total = forecast.total
    assert (total.expected, total.commit, total.closed_won, total.quota, total.pipeline) == (
        D("18500.00"), D("16000.00"), D("12000.00"), D("65000.00"), D("45000.00"),
    )  # fmt: skip
    assert (total.worst_case, total.best_case, total.coverage) == (D("23333.33"), D("46500.00"), D("0.85"))


def test_risk_factors_list_the_deals_behind_them(book):
    forecast = _forecast(book.org)
    risks = {r.code: (r.count, r.amount, r.deal_ids, r.months) for r in forecast.risks}
    assert risks == {
        # before the end of May, open and not omitted; largest first
        "low_coverage": (5, D("29000.00"), (book.d1.pk, book.d2.pk, book.d3.pk, book.d4.pk, book.d8.pk), (MARCH, APRIL)),
        "slipped": (2, D("5000.00"), (book.d7.pk, book.d8.pk), ()),
        "no_activity": (2, D("13000.00"), (book.d2.pk, book.d3.pk), ()),  # d6 is idle too, but omitted
        "close_date_moved": (2, D("12000.00"), (book.d1.pk, book.d8.pk), ()),  # d9 closes after May
    }  # fmt: skip


def test_recommended_actions_follow_the_risks_and_gaps(book):
    forecast = _forecast(book.org)
    actions = [(a.code, a.measure, a.month) for a in forecast.actions]
    assert actions == [
        ("build_pipeline", "pipeline", MARCH),
        ("build_pipeline", "pipeline", APRIL),
        ("update_close_dates", "slipped", None),
        ("confirm_timelines", "close_date_moved", None),
        ("follow_up", "no_activity", None),
        ("advance_best_case", "best_case_deals", MARCH),  # 12,000 + 12,000 < 40,000
    ]
    # March needs 3 x 28,000 - 20,000 = 64,000 more pipeline.
    assert "64,000.00 USD" in forecast.actions[0].message


def test_the_forecast_matches_an_independent_per_deal_computation(book):
    forecast = _forecast(book.org, months=4)
    with tenant_context(book.org.pk):
        expected = reference_forecast(book.org.pk, as_of=AS_OF, months=4)
    assert _figures(forecast) == expected["months"]
    assert {r.stage_id: r.rate for r in forecast.stage_rates} == expected["rates"]
    assert {r.code: (r.count, r.amount, set(r.deal_ids)) for r in forecast.risks} == expected["risks"]


def test_the_owner_filter_keeps_that_owners_deals_and_quotas(book):
    forecast = _forecast(book.org, owner_id=book.rep1.pk)
    march, april, may = forecast.months
    assert (march.expected, march.commit, march.closed_won, march.quota, march.pipeline) == (
        D("11500.00"), D("10000.00"), D("12000.00"), D("30000.00"), D("18000.00"),
    )  # fmt: skip
    assert (march.worst_case, march.best_case, march.coverage) == (D("20333.33"), D("30000.00"), D("1.00"))
    assert (april.quota, april.pipeline, april.coverage) == (D("20000.00"), D("0"), D("0.00"))
    assert (may.commit, may.quota, may.coverage) == (D("6000.00"), D("0"), None)
    with tenant_context(book.org.pk):
        expected = reference_forecast(book.org.pk, as_of=AS_OF, months=3, owner_id=book.rep1.pk)
    assert _figures(forecast) == expected["months"]
    assert {r.code: (r.count, r.amount, set(r.deal_ids)) for r in forecast.risks} == expected["risks"]
    # win rates stay the organization's
    assert {r.name: r.rate for r in forecast.stage_rates}["Negotiation"] == Fraction(5, 6)


def test_no_quota_gives_no_coverage_and_suggests_setting_quotas(org_a):
    factories.opportunity(org_a, stage="Proposal", amount=D("500"), expected_close_date=AS_OF)
    forecast = _forecast(org_a, months=1)
    (month,) = forecast.months
    assert (month.expected, month.quota, month.coverage) == (D("250.00"), D("0"), None)
    assert [a.code for a in forecast.actions] == ["set_quotas"]


def test_a_quota_already_won_has_no_coverage_ratio(book):
    with system_context():
        Quota.objects.filter(user=book.rep1, month=MARCH).update(amount=D("11000"))
    forecast = _forecast(book.org, owner_id=book.rep1.pk, months=1)
    assert (forecast.months[0].quota, forecast.months[0].closed_won, forecast.months[0].coverage) == (
        D("11000.00"), D("12000.00"), None,
    )  # fmt: skip
    assert forecast.months[0].attainment == D("109.1")


def test_another_organizations_deals_never_count(book, org_b):
    factories.opportunity(org_b, stage="Negotiation", amount=D("99999"), expected_close_date=AS_OF)
    with tenant_context(book.org.pk):
        # asking for the other organization from inside this one's context: RLS shows nothing of it
        other = forecast_for_organization(organization_id=book.org.pk, as_of=AS_OF)
    assert other.total.pipeline == D("45000.00")
    forecast_b = _forecast(org_b, months=1)
    assert (forecast_b.months[0].commit, forecast_b.total.pipeline) == (D("99999.00"), D("99999.00"))


def test_the_default_as_of_is_today_in_the_organizations_time_zone(org_a):
    from sales.services.opportunities import organization_today

    with tenant_context(org_a.pk):
        forecast = forecast_for_organization(organization_id=org_a.pk, months=2)
    assert forecast.as_of == organization_today(org_a)
    assert forecast.months[0].month == forecast.as_of.replace(day=1)


def test_the_forecast_takes_a_fixed_number_of_queries_and_reuses_the_win_rates(
    book, django_assert_num_queries
):
    forecasting.forget_stage_win_rates(organization_id=book.org.pk, as_of=AS_OF)
    with tenant_context(book.org.pk):
        # organization, settings, stages, win rates, open deals, wins, quotas, risks
        with django_assert_num_queries(8):
            forecast_for_organization(organization_id=book.org.pk, as_of=AS_OF, months=12)
        with django_assert_num_queries(7):  # the stage-to-win counts come from the cache
            again = forecast_for_organization(organization_id=book.org.pk, as_of=AS_OF, months=12)
    assert {r.name: r.rate for r in again.stage_rates}["Negotiation"] == Fraction(5, 6)
    with tenant_context(book.org.pk), django_assert_num_queries(6):  # the figures without the risk pass
        figures = forecast_for_organization(
            organization_id=book.org.pk, as_of=AS_OF, months=12, include_risks=False
        )
    assert _figures(figures) == _figures(again) and figures.risks == []


def test_risk_lists_keep_the_largest_deals_and_count_them_all(book, monkeypatch):
    monkeypatch.setattr(forecasting, "RISK_DEAL_LIMIT", 1)
    risk = _forecast(book.org).risk("no_activity")
    assert (risk.count, risk.amount, risk.deal_ids) == (2, D("13000.00"), (book.d2.pk,))


def test_deals_in_another_currency_are_flagged(book):
    eur = _open(book.org, "Proposal", "900", datetime.date(2026, 4, 20), currency="EUR")
    forecast = _forecast(book.org)
    risk = forecast.risk("other_currency")
    assert (risk.count, risk.amount, risk.deal_ids) == (1, D("900.00"), (eur.pk,))
    assert "convert_currency" in [a.code for a in forecast.actions]
    assert forecast.months[1].best_case_deals == D("900.00")  # still counted, at face value


def _weighted(deals) -> Decimal:
    return _cents(sum((Fraction(d.amount) * d.probability / 100 for d in deals), Fraction(0)))


def test_the_drill_down_lists_exactly_the_deals_behind_each_figure(book):
    """Each figure of the forecast, recomputed from the deals its drill-down lists."""
    from sales.selectors.forecast import forecast_deals

    manager = factories.user(book.org, role="sales_manager")
    forecast = _forecast(book.org)
    rate = {r.stage_id: r.rate for r in forecast.stage_rates}

    def listed(measure, month=None):
        with tenant_context(book.org.pk, user=manager):
            return list(
                forecast_deals(
                    actor=manager, measure=measure, as_of=AS_OF, months=3, month=month, currency="USD"
                )
            )

    def total(deals):
        return sum((d.amount for d in deals), D(0))

    for row in forecast.months:
        m = row.month
        assert _weighted(listed("expected", m)) == row.expected
        assert total(listed("pipeline", m)) == row.pipeline
        assert total(listed("commit", m)) == row.commit
        assert total(listed("best_case_deals", m)) == row.best_case_deals
        assert total(listed("pipeline_deals", m)) == row.pipeline_deals
        assert total(listed("omitted", m)) == row.omitted
        assert total(listed("closed_won", m)) == row.closed_won
        worst = listed("worst_case", m)
        assert (
            _cents(
                sum(
                    (Fraction(d.amount) * (1 if d.status == "won" else rate[d.stage_id]) for d in worst),
                    Fraction(0),
                )
            )
            == row.worst_case
        )
        best = listed("best_case", m)
        assert (
            _cents(
                sum(
                    (
                        Fraction(d.amount) * (rate[d.stage_id] if d.forecast_category == "pipeline" else 1)
                        for d in best
                    ),
                    Fraction(0),
                )
            )
            == row.best_case
        )
    assert _weighted(listed("expected")) == forecast.total.expected  # no month: the whole forecast
    for risk in forecast.risks:
        month = risk.months[0] if risk.months else None
        deals = listed(risk.code) if not month else [d for m in risk.months for d in listed(risk.code, m)]
        assert {d.pk for d in deals} == set(risk.deal_ids)
        assert total(deals) == risk.amount


def test_months_out_of_range_are_refused(org_a):
    with tenant_context(org_a.pk), pytest.raises(ValueError):
        forecast_for_organization(organization_id=org_a.pk, months=0)


# --- manage.py forecast --------------------------------------------------------------------------------------


def test_the_command_prints_the_same_numbers_as_json(book):
    out = io.StringIO()
    call_command("forecast", org=book.org.slug, months=3, json=True, as_of="2026-03-10", stdout=out)
    printed = json.loads(out.getvalue())
    printed.pop("generated_at")
    expected = forecast_as_dict(_forecast(book.org, months=3), with_generated_at=False)
    assert printed == json.loads(json.dumps(expected))
    assert printed["months"][0]["expected"] == "12000.00"  # Decimals as strings
    assert printed["total"]["worst_case"] == "23333.33"


def test_the_command_filters_by_owner_email_and_prints_a_table(book):
    out = io.StringIO()
    call_command(
        "forecast",
        org=book.org.slug,
        months=3,
        owner=book.rep1.email,
        json=True,
        as_of="2026-03-10",
        stdout=out,
    )
    assert json.loads(out.getvalue())["months"][0]["expected"] == "11500.00"
    table = io.StringIO()
    call_command("forecast", org=book.org.slug, months=3, as_of="2026-03-10", stdout=table)
    text = table.getvalue()
    assert "2026-03" in text and "12,000.00" in text and "23,333.33" in text
    assert "Expected close date has passed" in text


def test_the_command_refuses_an_unknown_organization_or_owner(book):
    with pytest.raises(CommandError):
        call_command("forecast", org="nope", months=3)
    with pytest.raises(CommandError):
        call_command("forecast", org=book.org.slug, months=3, owner="nobody@example.test")
