"""Attribution of won revenue to campaigns (marketing/attribution.py, docs/attribution.md) against a
hand-computed example: several customers and campaigns, touches before and after the win (in the
organization's time zone), outside the lookback, a source campaign, a tie broken by id, a share of thirds, a
deal in another currency, lost and unattributed deals, and a customer with three touches and two won deals
(no fan-out). The expected numbers are written out by hand below."""

from __future__ import annotations

import datetime
import uuid
import zoneinfo
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Organization
from crm.tenancy import system_context, tenant_context
from marketing import attribution
from marketing.attribution import AttributionModel, CampaignRevenue
from tests import factories
from tests.marketing import factories as mf

pytestmark = pytest.mark.django_db

ZONE = zoneinfo.ZoneInfo("America/New_York")
D0 = Decimal("0")


def at(day: datetime.date, hour: int = 12) -> datetime.datetime:
    """`hour` o'clock UTC on `day`."""
    return datetime.datetime.combine(day, datetime.time(hour), datetime.UTC)


def build_example(org) -> SimpleNamespace:
    """The example of docs/attribution.md. D is the close day of most deals, three days ago in New York."""
    with system_context():
        Organization.objects.filter(pk=org.pk).update(time_zone="America/New_York", currency="USD")
        org.refresh_from_db()
    d = timezone.now().astimezone(ZONE).date() - datetime.timedelta(days=3)
    days = datetime.timedelta
    c1 = mf.campaign(org, name="C1 newsletter")
    c2 = mf.campaign(org, name="C2 webinar")
    c3 = mf.campaign(org, name="C3 ads")
    people = {
        name: factories.customer(org, first_name=name)
        for name in ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Gina", "Harry", "Ivy"]
    }
    touch = mf.campaign_touch

    # Alice: C1, C2, C1, then C2 at 03:00 UTC the day after D, which is still D in New York (before the
    # win); C3 after the win; a note without a campaign. Deal 1200 won on D.
    a = people["Alice"]
    touch(a, campaign=c1, at=at(d - days(30)))
    touch(a, campaign=c2, at=at(d - days(10)))
    touch(a, campaign=None, at=at(d - days(5)), kind="note")
    touch(a, campaign=c1, at=at(d - days(2)))
    touch(a, campaign=c2, at=at(d + days(1), hour=3))
    touch(a, campaign=c3, at=at(d + days(1), hour=10))
    mf.won_deal(org, customer=a, amount=1200, closed_on=d)

    # Bob: C3 370 days before the win (outside the 365-day lookback), C2; the deal's source is C3, created
    # 50 days before. Deal 1000 won on D.
    b = people["Bob"]
    touch(b, campaign=c3, at=at(d - days(370)))
    touch(b, campaign=c2, at=at(d - days(100)))
    mf.won_deal(org, customer=b, amount=1000, closed_on=d, created_at=at(d - days(50)), source_campaign=c3)

    # Carol: three touches and two won deals. Deal 300 won on D sees C1, C1, C2; deal 600 won on D-14
    # sees C1, C1 (C2 came two days after it).
    c = people["Carol"]
    touch(c, campaign=c1, at=at(d - days(20)))
    touch(c, campaign=c1, at=at(d - days(15)))
    touch(c, campaign=c2, at=at(d - days(12)))
    mf.won_deal(org, customer=c, amount=300, closed_on=d)
    mf.won_deal(org, customer=c, amount=600, closed_on=d - days(14))

    # Dave: won in EUR (not attributed, counted as another currency). Erin: lost and open deals.
    touch(people["Dave"], campaign=c1, at=at(d - days(5)))
    mf.won_deal(org, customer=people["Dave"], amount=5000, closed_on=d, currency="EUR")
    touch(people["Erin"], campaign=c2, at=at(d - days(5)))
    lost = factories.opportunity(org, customer=people["Erin"], amount=Decimal("800"))
    with tenant_context(org.pk):
        from sales.models import Opportunity

        Opportunity.objects.filter(pk=lost.pk).update(status="lost", actual_close_date=d)
    factories.opportunity(org, customer=people["Erin"], amount=Decimal("900"))

    # Frank: won without any touch (unattributed). Gina: won 200 days before D (outside the period).
    mf.won_deal(org, customer=people["Frank"], amount=700, closed_on=d)
    touch(people["Gina"], campaign=c2, at=at(d - days(210)))
    mf.won_deal(org, customer=people["Gina"], amount=450, closed_on=d - days(200))

    # Harry: C1 and C2 at the same moment; C2's id is the smaller, so C2 is first. Deal 100 won on D.
    same = at(d - days(5))
    touch(people["Harry"], campaign=c1, at=same, id=uuid.UUID("00000000-0000-7000-8000-000000000002"))
    touch(people["Harry"], campaign=c2, at=same, id=uuid.UUID("00000000-0000-7000-8000-000000000001"))
    mf.won_deal(org, customer=people["Harry"], amount=100, closed_on=d)

    # Ivy: C1, C2, C3: thirds of 100 in linear.
    touch(people["Ivy"], campaign=c1, at=at(d - days(9)))
    touch(people["Ivy"], campaign=c2, at=at(d - days(8)))
    touch(people["Ivy"], campaign=c3, at=at(d - days(7)))
    mf.won_deal(org, customer=people["Ivy"], amount=100, closed_on=d)
    return SimpleNamespace(org=org, d=d, c1=c1, c2=c2, c3=c3, people=people)


# By hand, period [D-30, D], lookback 365 days:
#   deal      first  last   linear
#   Alice     C1     C2     C1 600, C2 600          (C1, C2, C1, C2)
#   Bob       C2     C3     C2 500, C3 500          (C2, source C3; C3 of D-370 is outside the lookback)
#   Carol 300 C1     C2     C1 200, C2 100          (C1, C1, C2)
#   Carol 600 C1     C1     C1 600                  (C1, C1)
#   Harry     C2     C1     C1 50, C2 50            (C2, C1: tie broken by id)
#   Ivy       C1     C3     33.33… each             (C1, C2, C3)
FIRST = {"C1": Decimal("2200.00"), "C2": Decimal("1100.00")}  # 1200+300+600+100 ; 1000+100
LAST = {
    "C1": Decimal("700.00"),
    "C2": Decimal("1500.00"),
    "C3": Decimal("1100.00"),
}  # 600+100 ; 1200+300 ; 1000+100
LINEAR = {
    "C1": Decimal("1483.33"),  # 600 + 200 + 600 + 50 + 33.333…
    "C2": Decimal("1283.33"),  # 600 + 500 + 100 + 50 + 33.333…
    "C3": Decimal("533.33"),  # 500 + 33.333…
}


@pytest.fixture
def example(org_a):
    return build_example(org_a)


def _by_name(ex, revenue: dict) -> dict:
    names = {ex.c1.pk: "C1", ex.c2.pk: "C2", ex.c3.pk: "C3"}
    return {names[campaign_id]: value for campaign_id, value in revenue.items()}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (AttributionModel.FIRST_TOUCH, FIRST),
        (AttributionModel.LAST_TOUCH, LAST),
        (AttributionModel.LINEAR, LINEAR),
    ],
)
def test_attributed_revenue_matches_the_hand_computed_example(example, model, expected):
    with tenant_context(example.org.pk):
        revenue = attribution.attributed_revenue(
            organization_id=example.org.pk,
            model=model,
            start=example.d - datetime.timedelta(days=30),
            end=example.d,
        )
    assert _by_name(example, revenue) == expected


def test_totals_are_computed_from_the_deals_not_from_rounded_rows(example):
    with tenant_context(example.org.pk):
        found = attribution.attribution(
            organization_id=example.org.pk, start=example.d - datetime.timedelta(days=30), end=example.d
        )
    # Every attributed deal's amount once: 1200 + 1000 + 300 + 600 + 100 + 100 (Frank has no touch).
    assert found.total == CampaignRevenue(
        first_touch=Decimal("3300.00"), last_touch=Decimal("3300.00"), linear=Decimal("3300.00"), deals=6
    )
    assert sum(r.linear for r in found.by_campaign.values()) == Decimal("3299.99")  # the rows, rounded
    assert found.other_currency_deals == 1  # Dave's EUR deal
    assert found.currency == "USD"
    # Deals touched per campaign: C1 Alice, Carol twice, Harry, Ivy; C2 Alice, Bob, Carol 300, Harry, Ivy;
    # C3 Bob, Ivy.
    assert _by_name(example, {k: v.deals for k, v in found.by_campaign.items()}) == {
        "C1": 5,
        "C2": 5,
        "C3": 2,
    }


def test_a_customer_with_three_touches_and_two_won_deals_is_counted_once_per_deal(example):
    """Carol's two deals (900) and three touches: each deal's amount goes out once, not once per touch."""
    carol = example.people["Carol"]
    with tenant_context(example.org.pk):
        from sales.models import Opportunity

        others = Opportunity.objects.filter(organization_id=example.org.pk, status="won").exclude(
            customer=carol
        )
        others.update(status="lost")
        found = attribution.attribution(organization_id=example.org.pk)
    assert found.total == CampaignRevenue(
        first_touch=Decimal("900.00"), last_touch=Decimal("900.00"), linear=Decimal("900.00"), deals=2
    )
    assert _by_name(example, {k: v.first_touch for k, v in found.by_campaign.items()}) == {
        "C1": Decimal("900.00"),
        "C2": D0,  # touched, never first
    }
    assert _by_name(example, {k: v.linear for k, v in found.by_campaign.items()}) == {
        "C1": Decimal("800.00"),
        "C2": Decimal("100.00"),
    }


def test_the_period_counts_deals_by_close_date(example):
    """Only Carol's 600 deal closed in [D-14, D-14]: all of it to C1."""
    day = example.d - datetime.timedelta(days=14)
    with tenant_context(example.org.pk):
        for model in AttributionModel:
            revenue = attribution.attributed_revenue(
                organization_id=example.org.pk, model=model, start=day, end=day
            )
            assert _by_name(example, revenue) == {"C1": Decimal("600.00")}


def test_a_zero_lookback_leaves_only_the_source_campaign(example):
    with tenant_context(example.org.pk):
        revenue = attribution.attributed_revenue(
            organization_id=example.org.pk,
            model=AttributionModel.LINEAR,
            start=example.d - datetime.timedelta(days=30),
            end=example.d,
            lookback_days=0,
        )
    assert _by_name(example, revenue) == {"C3": Decimal("1000.00")}


def test_a_longer_lookback_reaches_older_touches(example):
    """With 400 days Bob's C3 touch of D-370 is in: it becomes his first touch (C2 loses 1000)."""
    with tenant_context(example.org.pk):
        revenue = attribution.attributed_revenue(
            organization_id=example.org.pk,
            model=AttributionModel.FIRST_TOUCH,
            start=example.d - datetime.timedelta(days=30),
            end=example.d,
            lookback_days=400,
        )
    assert _by_name(example, revenue) == {
        "C1": Decimal("2200.00"),
        "C2": Decimal("100.00"),
        "C3": Decimal("1000.00"),
    }


def test_campaign_revenue_counts_deals_won_at_any_time(example):
    """The campaign page: Gina's deal (450, won 200 days before D, touched only by C2) adds to C2."""
    with tenant_context(example.org.pk):
        c2 = attribution.campaign_revenue_by_model(example.c2)
        assert c2 == CampaignRevenue(
            first_touch=Decimal("1550.00"),  # 1000 + 100 + 450
            last_touch=Decimal("1950.00"),  # 1200 + 300 + 450
            linear=Decimal("1733.33"),  # 1283.33 + 450
            deals=6,
        )
        assert attribution.campaign_revenue(example.c3, AttributionModel.LAST_TOUCH) == Decimal("1100.00")
        assert attribution.campaign_revenue(example.c1) == LINEAR["C1"]


def test_campaign_revenue_is_one_query(example):
    org = example.org
    with tenant_context(org.pk):
        with CaptureQueriesContext(connection) as queries:
            attribution.campaign_revenue_by_model(example.c1, organization=org)
    assert len(queries) == 1


def test_a_campaign_nobody_touched_gets_nothing(example):
    quiet = mf.campaign(example.org, name="Quiet")
    with tenant_context(example.org.pk):
        assert attribution.campaign_revenue_by_model(quiet) == CampaignRevenue()
        assert attribution.campaign_revenue(quiet) == D0


def test_another_organization_sees_nothing_of_it(example, org_b):
    """Row-level security and the organization filter: org B's attribution over the same period is empty,
    and asking as org B for org A's campaigns finds nothing."""
    with tenant_context(org_b.pk):
        found = attribution.attribution(organization_id=org_b.pk)
        assert found.by_campaign == {} and found.total == CampaignRevenue()
        found = attribution.attribution(organization_id=org_b.pk, campaign_ids=[example.c1.pk])
        assert found.by_campaign == {}


def test_unknown_models_and_negative_lookbacks_are_refused(example):
    with tenant_context(example.org.pk), pytest.raises(ValueError):
        attribution.attributed_revenue(organization_id=example.org.pk, model="u-shaped", start=None, end=None)
    with tenant_context(example.org.pk), pytest.raises(ValueError):
        attribution.attribution(organization_id=example.org.pk, lookback_days=-1)
