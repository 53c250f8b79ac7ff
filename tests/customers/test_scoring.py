"""Lead, engagement and health scores: every rule branch recomputed on hand-made customers, the set-based
batch and the per-customer explain agreeing, trends from history, debounced rescoring, the command and the
settings page."""

from __future__ import annotations

import datetime
import random
import re
from io import StringIO

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.celery import app
from crm.models import AuditLog
from crm.tenancy import TenantContextError, system_context, tenant_context
from customers import scoring, tasks
from customers.models import Customer, ScoreHistory, ScoringModel
from customers.services import scoring as scoring_services
from customers.services.customers import interaction_log
from tests import factories

UTC = datetime.UTC
TODAY = timezone.now().date()
NOW = datetime.datetime.combine(TODAY, datetime.time(12), tzinfo=UTC)  # organizations below are in UTC


def at(days_ago: int, hour: int = 12) -> datetime.datetime:
    return datetime.datetime.combine(
        TODAY - datetime.timedelta(days=days_ago), datetime.time(hour), tzinfo=UTC
    )


def born(years: int, *, days_later: int = 0) -> datetime.date:
    """A birth date `years` before today (+ `days_later`): born(25) is 25 today, born(25, days_later=1)
    turns 25 tomorrow."""
    day = TODAY + datetime.timedelta(days=days_later)
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # February 29th
        return day.replace(year=day.year - years, day=28)


def make(org, interactions=(), **fields) -> Customer:
    """A customer and its interactions: (type, days ago[, sentiment])."""
    customer = factories.customer(org, **fields)
    for kind, days_ago, *mood in interactions:
        factories.interaction(
            customer, interaction_type=kind, interaction_date=at(days_ago), sentiment=mood[0] if mood else ""
        )
    return customer


def scored(org, customer) -> dict:
    """Score `customer` with the batch scorer, check that explain() says the same, return explain()."""
    with tenant_context(org.pk):
        assert scoring.score_organization(org.pk, customer_ids=[customer.pk], now=NOW) == 1
        stored = Customer.objects.get(pk=customer.pk)
        history = ScoreHistory.objects.filter(customer=stored).order_by("-scored_at", "-id").first()
        result = scoring.explain(stored, now=NOW)
    assert (stored.lead_score, stored.engagement_score, stored.health_score) == (
        result["total"],
        result["engagement"]["score"],
        result["health"]["score"],
    )
    assert history.breakdown == result["breakdown"]
    return result


# --- Lead score: each rule branch ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "points"),
    [
        ({"date_of_birth": born(25)}, 20),  # 25 today: in range
        ({"date_of_birth": born(25, days_later=1)}, 5),  # 24 until tomorrow
        ({"date_of_birth": born(55)}, 20),
        ({"date_of_birth": born(56, days_later=1)}, 20),  # 55 until tomorrow
        ({"date_of_birth": born(56)}, 5),
        ({"date_of_birth": born(40), "education_level": "phd", "job_title": "VP"}, 20),  # first match wins
        ({"education_level": "bachelors"}, 15),
        ({"education_level": "masters"}, 15),
        ({"education_level": "phd", "date_of_birth": born(70)}, 15),
        ({"education_level": "associate"}, 5),
        ({"education_level": "high_school"}, 5),
        ({"job_title": "Director of Sales"}, 15),
        ({"job_title": "SVP Marketing"}, 15),
        ({"job_title": "vp"}, 15),
        ({"job_title": "C-Suite advisor"}, 15),
        ({"job_title": "c suite"}, 15),
        ({"job_title": "csuite"}, 5),  # ILIKE '%c_suite%': the underscore is exactly one character
        ({"job_title": "Account manager"}, 5),
        ({}, 5),
    ],
)
def test_demographic_points_come_from_the_first_matching_rule(org_a, fields, points):
    result = scored(org_a, make(org_a, **fields))
    assert result["breakdown"]["demographic_score"] == points


@pytest.mark.parametrize(
    ("count", "points"), [(0, 5), (1, 5), (2, 5), (3, 10), (5, 10), (6, 15), (10, 15), (11, 25)]
)
def test_behavioral_points_follow_the_interaction_count_tiers(org_a, count, points):
    customer = make(org_a, [("note", 100)] * count)  # old: no recency points
    result = scored(org_a, customer)
    assert result["breakdown"]["behavioral_score"] == points
    assert result["factors"]["interaction_count"] == count


@pytest.mark.parametrize(
    ("moment", "recency"),
    [
        (at(0), 15),
        (at(7, hour=0), 15),  # midnight seven days ago: still within 7 days
        (at(8, hour=23), 10),
        (at(30, hour=0), 10),
        (at(31, hour=23), 0),
        (at(200), 0),
    ],
)
def test_behavioral_recency_points_count_calendar_days_back_from_today(org_a, moment, recency):
    customer = factories.customer(org_a)
    factories.interaction(customer, interaction_type="call", interaction_date=moment)
    result = scored(org_a, customer)
    assert result["breakdown"]["behavioral_score"] == 5 + recency


def test_interactions_after_now_are_not_counted(org_a):
    customer = factories.customer(org_a)
    factories.interaction(
        customer, interaction_type="call", interaction_date=NOW + datetime.timedelta(hours=1)
    )
    result = scored(org_a, customer)
    assert result["factors"]["interaction_count"] == 0
    assert result["breakdown"]["behavioral_score"] == 5


@pytest.mark.parametrize(
    ("interactions", "points"),
    [
        ([("email_opened", 1)] * 5, 0),
        ([("email_opened", 1)] * 6, 15),
        ([("email_opened", 1)] * 5 + [("email_opened", 31)], 0),  # 31 days ago: outside the window
        ([("email_opened", 30)] * 6, 15),  # 30 days ago: inside
        ([("website_visit", 2)] * 3, 0),
        ([("website_visit", 2)] * 4, 10),
        ([("form_submission", 40)], 0),
        ([("form_submission", 3)], 10),
        ([("email_opened", 1)] * 6 + [("website_visit", 1)] * 4 + [("form_submission", 1)], 35),
        ([("email_clicked", 1)] * 9, 0),
    ],
)
def test_engagement_points_count_responses_of_the_last_30_days(org_a, interactions, points):
    result = scored(org_a, make(org_a, interactions))
    assert result["breakdown"]["engagement_score"] == points


@pytest.mark.parametrize(
    ("revenue", "kind", "points"),
    [
        (10_000_001, "individual", 20),
        (10_000_000, "business", 15),  # not above 10M
        (1_000_001, "business", 15),
        (1_000_000, "business", 10),
        (100_001, "individual", 10),
        (100_000, "business", 5),
        (100_000, "individual", 0),
        (None, "business", 5),
        (None, "individual", 0),
    ],
)
def test_firmographic_points_follow_the_revenue_bands(org_a, revenue, kind, points):
    result = scored(org_a, make(org_a, annual_revenue=revenue, customer_type=kind))
    assert result["breakdown"]["firmographic_score"] == points


def test_total_is_capped_at_100(org_a):
    interactions = [("email_opened", 0)] * 6 + [("website_visit", 1)] * 4 + [("form_submission", 2)]
    customer = make(org_a, interactions, date_of_birth=born(30), annual_revenue=20_000_000)
    result = scored(org_a, customer)
    assert result["breakdown"] == {
        "demographic_score": 20,
        "behavioral_score": 40,
        "engagement_score": 35,
        "firmographic_score": 20,
        "total_score": 100,
    }  # 115 before the cap
    assert result["total"] == 100
    assert result["recommended_actions"][0]["action"] == "immediate_sales_contact"


@pytest.mark.parametrize(
    ("total", "action", "priority", "band"),
    [
        (100, "immediate_sales_contact", "high", "hot"),
        (80, "immediate_sales_contact", "high", "hot"),
        (79, "nurture_campaign", "medium", "warm"),
        (60, "nurture_campaign", "medium", "warm"),
        (59, "education_content", "low", "nurture"),
        (30, "education_content", "low", "nurture"),
        (29, None, None, "cold"),
        (0, None, None, "cold"),
    ],
)
def test_recommended_actions_start_at_30_60_and_80(total, action, priority, band):
    actions = scoring.recommended_actions(total)
    assert [(a["action"], a["priority"]) for a in actions] == ([(action, priority)] if action else [])
    assert scoring.band_of(total) == band


def test_factors_count_all_interactions_recent_ones_and_campaign_responses(org_a):
    interactions = [("email_opened", 1), ("email_clicked", 50), ("email_sent", 2), ("call", 6), ("call", 9)]
    result = scored(org_a, make(org_a, interactions))
    assert result["factors"] == {
        "interaction_count": 5,
        "recent_interactions": 3,  # 1, 2 and 6 days ago
        "campaign_responses": 2,
        "opportunity_count": 0,  # the customer has no opportunities
    }


# --- Engagement and health scores ---------------------------------------------------------------------


def test_engagement_score_weights_types_doubles_the_last_30_days_and_adds_recency(org_a):
    interactions = [
        ("meeting", 10),
        ("meeting", 12),
        ("call", 45),
        ("email_sent", 1),
        ("note", 0),
        ("chat", 120),
    ]
    result = scored(org_a, make(org_a, interactions))
    # 2 meetings x 10 x 2 + 1 call x 8 = 48 activity; last engaging interaction 10 days ago: 20.
    assert result["engagement"]["score"] == 68
    breakdown = result["engagement"]["breakdown"]
    assert (breakdown["activity_points"], breakdown["recency_points"], breakdown["interactions"]) == (
        48,
        20,
        3,
    )
    assert [(row["type"], row["count"]) for row in breakdown["by_type"]] == [("meeting", 2), ("call", 1)]


def test_engagement_score_caps_activity_at_70_and_is_zero_without_engagement(org_a):
    busy = scored(org_a, make(org_a, [("meeting", 0)] * 5))
    assert busy["engagement"]["score"] == 100  # 5 x 10 x 2 = 100 -> 70, plus 30 for today
    quiet = scored(org_a, make(org_a, [("email_sent", 0), ("note", 3)]))
    assert quiet["engagement"]["score"] == 0


def test_health_score_adds_recency_sentiment_stage_and_support(org_a):
    interactions = [
        ("call", 5, "positive"),
        ("meeting", 20, "positive"),
        ("chat", 40, "neutral"),
        ("call", 80, "negative"),
        ("call", 100, "negative"),  # older than 90 days: not in the sentiment mix
    ]
    result = scored(org_a, make(org_a, interactions, lifecycle_stage="customer"))
    breakdown = result["health"]["breakdown"]
    # sentiment: 30 x (2x2 + 1) / (2 x 4) = 18 (rounded down)
    assert (breakdown["recency_points"], breakdown["sentiment_points"]) == (35, 18)
    assert (breakdown["lifecycle_points"], breakdown["support_points"]) == (22, 10)
    assert result["health"]["score"] == 85


@pytest.mark.parametrize(
    ("days_ago", "recency"), [(7, 35), (8, 25), (30, 25), (31, 15), (90, 15), (91, 5), (180, 5), (181, 0)]
)
def test_health_recency_points_by_days_since_the_last_interaction(org_a, days_ago, recency):
    result = scored(org_a, make(org_a, [("note", days_ago)], lifecycle_stage="subscriber"))
    assert result["health"]["breakdown"]["recency_points"] == recency
    # no rated interaction: 15; subscriber: 8; no open issues: 10
    assert result["health"]["score"] == recency + 15 + 8 + 10


def test_churned_customers_have_a_low_health_score(org_a):
    result = scored(org_a, make(org_a, [("meeting", 1, "positive")], lifecycle_stage="churned"))
    assert result["health"]["breakdown"]["lifecycle_points"] == 0
    assert result["health"]["score"] == 20  # 35 + 30 + 0 + 10 = 75, capped at 20
    assert result["health"]["breakdown"]["churned_cap"] is True


def test_other_apps_supply_open_issues_and_opportunities_through_count_sources(org_a, monkeypatch):
    for kind in ("opportunities", "open_issues"):
        monkeypatch.setitem(scoring.COUNT_SOURCES, kind, [])  # the registry, emptied for this test
    by_email = (
        "SELECT id AS customer_id, {n} AS n FROM customers "
        "WHERE organization_id = %(organization_id)s AND email LIKE 'flagged%%'"
    )
    scoring.register_count_source("open_issues", scoring.CountSource("tickets", by_email.format(n=1)))
    scoring.register_count_source("open_issues", scoring.CountSource("complaints", by_email.format(n=1)))
    scoring.register_count_source("opportunities", scoring.CountSource("deals", by_email.format(n=3)))
    flagged = make(org_a, [("call", 1)], email="flagged@org-a.example", lifecycle_stage="customer")
    plain = make(org_a, [("call", 1)], lifecycle_stage="customer")
    flagged_result, plain_result = scored(org_a, flagged), scored(org_a, plain)
    assert flagged_result["health"]["breakdown"]["open_issues"] == 2
    assert flagged_result["health"]["breakdown"]["support_points"] == 0  # 10 - 2 x 5
    assert plain_result["health"]["breakdown"]["support_points"] == 10
    assert flagged_result["factors"]["opportunity_count"] == 3
    assert plain_result["factors"]["opportunity_count"] == 0


# --- Batch and explain agree; weights per organization ----------------------------------------------------


TYPES = [
    "email_sent",
    "email_opened",
    "email_clicked",
    "website_visit",
    "form_submission",
    "call",
    "meeting",
    "chat",
    "note",
    "social",
    "purchase",
    "support_ticket",
]


def _varied_customers(org, count: int, seed: int) -> list[Customer]:
    rng = random.Random(seed)
    customers = []
    for n in range(count):
        fields = {
            "date_of_birth": rng.choice([None, born(rng.randint(18, 80), days_later=rng.randint(-3, 3))]),
            "education_level": rng.choice(["", "high_school", "bachelors", "masters", "phd", "other"]),
            "job_title": rng.choice(
                ["", "Director", "EVP Sales", "C-suite", "Engineer", "csuite", "Advisor"]
            ),
            "annual_revenue": rng.choice(
                [None, 0, 99_999, 100_000, 100_001, 999_999, 1_000_001, 10**7, 10**7 + 1]
            ),
            "customer_type": rng.choice(["individual", "business"]),
            "lifecycle_stage": rng.choice(list(scoring.HEALTH_LIFECYCLE_POINTS)),
        }
        if n == 0:
            fields["date_of_birth"] = datetime.date(1996, 2, 29)  # leap-day birthday
        interactions = [
            (rng.choice(TYPES), rng.randint(0, 200), rng.choice(["", "", "positive", "neutral", "negative"]))
            for _ in range(rng.choice([0, 1, 2, 3, 5, 6, 8, 11, 14]))
        ]
        customers.append(make(org, interactions, **fields))
    return customers


def _assert_batch_matches_explain(org, customers):
    with tenant_context(org.pk):
        ids = [c.pk for c in customers]
        assert scoring.score_organization(org.pk, customer_ids=ids, now=NOW) == len(customers)
        for customer in Customer.objects.filter(pk__in=ids):
            result = scoring.explain(customer, now=NOW)
            history = ScoreHistory.objects.get(customer=customer)
            assert (customer.lead_score, customer.engagement_score, customer.health_score) == (
                result["total"],
                result["engagement"]["score"],
                result["health"]["score"],
            ), customer.pk
            assert history.breakdown == result["breakdown"]
            assert history.scored_at == customer.scored_at == NOW


def test_batch_scores_equal_explain_for_every_customer_of_a_varied_set(org_a):
    customers = _varied_customers(org_a, 40, seed=7)
    _assert_batch_matches_explain(org_a, customers)
    with tenant_context(org_a.pk):
        totals = set(Customer.objects.values_list("lead_score", flat=True))
    assert len(totals) > 8  # the set really is varied


def test_weights_are_overridden_per_organization_and_both_entry_points_use_them(org_a, org_b, admin_a):
    overrides = {
        "title_points": 30,
        "interactions_low": 0,
        "interactions_low_points": 12,
        "recent_days": 3,
        "recent_points": 20,
        "opens_over": 1,
        "revenue_low": 50_000,
        "action_high": 70,
    }
    with tenant_context(org_a.pk, user=admin_a):
        scoring_services.scoring_model_update(organization=org_a, actor=admin_a, weights=overrides)
    profile = {"job_title": "Director", "annual_revenue": 60_000}
    interactions = [("email_opened", 2), ("email_opened", 2)]
    custom = scored(org_a, make(org_a, interactions, **profile))
    default = scored(org_b, make(org_b, interactions, **profile))
    assert custom["breakdown"] == {
        "demographic_score": 30,
        "behavioral_score": 12 + 20,
        "engagement_score": 15,
        "firmographic_score": 10,
        "total_score": 87,
    }
    assert default["breakdown"] == {
        "demographic_score": 15,
        "behavioral_score": 5 + 15,
        "engagement_score": 0,
        "firmographic_score": 0,
        "total_score": 35,
    }
    assert custom["band"] == "hot"
    _assert_batch_matches_explain(org_a, _varied_customers(org_a, 15, seed=11))


@pytest.mark.parametrize(
    ("weights", "field"),
    [
        ({"age_points": 101}, "age_points"),
        ({"age_points": -1}, "age_points"),
        ({"recent_days": 0}, "recent_days"),
        ({"age_points": True}, "age_points"),
        ({"age_points": "7"}, "age_points"),
        ({"age_min": 60}, "age_max"),
        ({"interactions_mid": 10}, "interactions_high"),
        ({"interactions_low": 5}, "interactions_mid"),
        ({"recent_days": 30}, "active_days"),
        ({"revenue_mid": 100_000}, "revenue_mid"),
        ({"action_medium": 80}, "action_high"),
        ({"action_low": 60}, "action_medium"),
    ],
)
def test_weights_out_of_range_or_out_of_order_are_rejected_on_the_field(weights, field):
    with pytest.raises(ValidationError) as caught:
        scoring.validate_weights(weights)
    assert field in caught.value.error_dict


def test_unknown_weights_are_rejected_and_defaults_store_nothing():
    with pytest.raises(ValidationError):
        scoring.validate_weights({"bogus": 1})
    assert scoring.validate_weights({}) == scoring.DEFAULT_WEIGHTS
    assert scoring.validate_weights({"age_min": 25, "title_points": 9}).overrides() == {"title_points": 9}


def test_only_admins_change_the_weights_and_the_change_is_audited(
    org_a, admin_a, django_capture_on_commit_callbacks, monkeypatch
):
    manager = factories.user(org_a, role="sales_manager")
    with tenant_context(org_a.pk, user=manager):
        with pytest.raises(PermissionDenied):
            scoring_services.scoring_model_update(organization=org_a, actor=manager, weights={})
    enqueued = []
    monkeypatch.setattr(tasks.rescore_customers, "delay", lambda **kw: enqueued.append(kw))
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk, user=admin_a):
        model = scoring_services.scoring_model_update(
            organization=org_a, actor=admin_a, weights={"age_points": 25}
        )
    assert enqueued == [{"organization_id": str(org_a.pk)}]  # everyone is rescored with the new weights
    with tenant_context(org_a.pk):
        assert ScoringModel.objects.get().weights == {"age_points": 25}
        entry = AuditLog.objects.get(table_name="lead_scoring_models", record_id=str(model.pk))
    assert entry.user_id == admin_a.pk


# --- History and trend ----------------------------------------------------------------------------------


def _history(org, customer, *rows):
    with tenant_context(org.pk):
        for days_ago, lead in rows:
            ScoreHistory.objects.create(
                organization_id=org.pk,
                customer=customer,
                scored_at=NOW - datetime.timedelta(days=days_ago),
                lead_score=lead,
                engagement_score=0,
                health_score=0,
            )


@pytest.mark.parametrize(
    ("rows", "trend", "delta"),
    [
        ((), "new", None),
        (((20, 25),), "rising", 10),
        (((20, 30),), "rising", 5),
        (((20, 31),), "stable", 4),
        (((20, 39),), "stable", -4),
        (((10, 40),), "falling", -5),
        (((7, 80),), "falling", -45),  # exactly 7 days old counts as the reference
        (((20, 10), (8, 33), (2, 35)), "stable", 2),  # the latest row at least 7 days old
        (((3, 20), (1, 35)), "rising", 15),  # none that old: the oldest one
        (((40, 35), (30, 90)), "falling", -55),
    ],
)
def test_trend_compares_the_score_with_the_history_at_least_7_days_back(org_a, rows, trend, delta):
    customer = make(org_a, job_title="VP", interactions=[("call", 1)])  # 15 + 5 + 15 = 35
    _history(org_a, customer, *rows)
    with tenant_context(org_a.pk):
        result = scoring.explain(Customer.objects.get(pk=customer.pk), now=NOW)
    assert result["total"] == 35
    assert (result["trend"], result["trend_detail"]["delta"]) == (trend, delta)


def test_history_records_only_changes_and_the_trend_follows_it(org_a):
    customer = make(org_a, job_title="VP")
    with tenant_context(org_a.pk):
        scoring.score_organization(org_a.pk, now=NOW - datetime.timedelta(days=10))
        scoring.score_organization(org_a.pk, now=NOW - datetime.timedelta(days=9))  # nothing changed
        assert list(ScoreHistory.objects.values_list("lead_score", flat=True)) == [20]
    for _ in range(6):
        factories.interaction(customer, interaction_type="website_visit", interaction_date=at(1))
    with tenant_context(org_a.pk):
        scoring.score_organization(org_a.pk, now=NOW)
        stored = Customer.objects.get(pk=customer.pk)
        assert list(ScoreHistory.objects.order_by("scored_at").values_list("lead_score", flat=True)) == [
            20,
            55,
        ]
        result = scoring.explain(stored, now=NOW)
    assert stored.scored_at == NOW
    assert (result["total"], result["trend"], result["trend_detail"]["reference_score"]) == (55, "rising", 20)


def test_customers_with_restricted_processing_keep_their_stored_score(org_a):
    restricted = make(org_a, [("meeting", 1)] * 12, date_of_birth=born(30))
    other = make(org_a, [("meeting", 1)])
    with tenant_context(org_a.pk):
        Customer.objects.filter(pk=restricted.pk).update(
            processing_restricted=True, lead_score=42, engagement_score=7, health_score=9
        )
        assert scoring.score_organization(org_a.pk, now=NOW) == 1
        kept = Customer.objects.get(pk=restricted.pk)
        assert (kept.lead_score, kept.engagement_score, kept.health_score, kept.scored_at) == (42, 7, 9, None)
        assert not ScoreHistory.objects.filter(customer=restricted).exists()
        assert ScoreHistory.objects.filter(customer=other).exists()
        result = scoring.explain(kept, now=NOW)
    assert result == {
        "customer_id": str(restricted.pk),
        "restricted": True,
        "total": 42,
        "stored": {"lead_score": 42, "engagement_score": 7, "health_score": 9, "scored_at": None},
    }


def test_scoring_sees_only_its_own_organization(org_a, org_b):
    mine = make(org_a, [("call", 1)])
    theirs = make(org_b, [("call", 1)])
    with tenant_context(org_a.pk):
        assert scoring.score_organization(org_a.pk, now=NOW) == 1
    with pytest.raises(TenantContextError), tenant_context(org_a.pk):
        scoring.score_organization(org_b.pk, now=NOW)  # RLS: the other organization is not even visible
    with system_context():
        assert Customer.objects.get(pk=theirs.pk).scored_at is None
        assert Customer.objects.get(pk=mine.pk).scored_at == NOW


# --- Debounced rescoring, tasks, command -----------------------------------------------------------------


@pytest.fixture
def rescore_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks.rescore_customers, "apply_async_on_commit", lambda *a, **kw: calls.append(kw))
    return calls


def test_a_burst_of_interactions_enqueues_one_rescoring_task(
    org_a, admin_a, rescore_calls, django_capture_on_commit_callbacks
):
    customer = factories.customer(org_a)
    key = cache.make_key(scoring_services._rescore_key(org_a.pk, customer.pk))
    raw = redis.Redis.from_url(settings.REDIS_URL)
    raw.delete(key)
    try:
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk, user=admin_a):
                interaction_log(customer=customer, actor=admin_a, interaction_type="call")
        assert rescore_calls == [
            {
                "kwargs": {"organization_id": str(org_a.pk), "customer_ids": [str(customer.pk)]},
                "countdown": scoring_services.RESCORE_DEBOUNCE_SECONDS + 1,
            }
        ]
        assert 0 < raw.ttl(key) <= scoring_services.RESCORE_DEBOUNCE_SECONDS
        raw.delete(key)  # the window is over: the next interaction enqueues again
        with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk, user=admin_a):
            interaction_log(customer=customer, actor=admin_a, interaction_type="note")
        assert len(rescore_calls) == 2
    finally:
        raw.delete(key)
        raw.close()


def test_rescore_task_scores_the_given_customers_in_their_organization(org_a):
    first, second = make(org_a, [("call", 1)]), make(org_a, [("call", 1)])
    assert tasks.rescore_customers(organization_id=str(org_a.pk), customer_ids=[str(first.pk)]) == 1
    with system_context():
        assert Customer.objects.get(pk=first.pk).lead_score == 25  # 5 + 5 + 15
        assert Customer.objects.get(pk=second.pk).scored_at is None
    assert tasks.rescore_customers(organization_id=str(org_a.pk)) == 2


def test_nightly_task_enqueues_one_rescoring_per_trial_or_active_organization(org_a, org_b, monkeypatch):
    trial = factories.organization(status="trial")
    factories.organization(status="suspended")
    enqueued = []
    monkeypatch.setattr(tasks.rescore_customers, "delay_on_commit", lambda **kw: enqueued.append(kw))
    assert tasks.score_all_organizations() == 3
    assert sorted(e["organization_id"] for e in enqueued) == sorted(str(o.pk) for o in (org_a, org_b, trial))
    entry = next(
        e for e in app.conf.beat_schedule.values() if e["task"] == "customers.tasks.score_all_organizations"
    )
    assert entry["schedule"].hour == {3}


def test_score_leads_command_scores_one_or_every_organization_and_prints_a_summary(org_a, org_b):
    make(org_a, [("call", 1)])
    make(org_a)
    make(org_b)
    out = StringIO()
    call_command("score_leads", "--org", "org-a", stdout=out)
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"\[1/1\] Org A \(org-a\): 2 customers scored in \d+\.\d\d s", lines[0])
    assert re.fullmatch(r"Scored 2 customers in 1 organization\(s\) in \d+\.\d\d s\.", lines[-1].strip())
    with system_context():
        assert not Customer.objects.filter(organization=org_a, scored_at__isnull=True).exists()
        assert Customer.objects.filter(organization=org_b, scored_at__isnull=True).count() == 1
    out = StringIO()
    call_command("score_leads", stdout=out)
    assert "Scored 3 customers in 2 organization(s)" in out.getvalue()
    with pytest.raises(CommandError, match="no-such-org"):
        call_command("score_leads", "--org", "no-such-org", stdout=StringIO())


# --- The settings page ----------------------------------------------------------------------------------


def test_only_admins_open_the_scoring_page_and_see_it_in_the_navigation(org_a, admin_a, login, client):
    url = reverse("customers:scoring")
    for role in ("sales_manager", "sales_rep", "marketing_manager", "support_manager"):
        login(factories.user(org_a, role=role))
        assert client.get(url).status_code == 403, role
        assert client.post(reverse("customers:scoring_rescore")).status_code == 403, role
        assert url not in client.get(reverse("home")).content.decode()
    login(admin_a)
    response = client.get(url)
    assert response.status_code == 200
    assert f'href="{url}"' in client.get(reverse("home")).content.decode()
    assert "No customers yet" in response.content.decode()


def test_scoring_page_shows_the_distribution_in_10_point_buckets(org_a, admin_a, login, client):
    scores = [0, 9, 10, 55, 59, 95, 100, 100, 100]
    for value in scores:
        customer = factories.customer(org_a)
        with tenant_context(org_a.pk):
            Customer.objects.filter(pk=customer.pk).update(lead_score=value, scored_at=at(2))
    login(admin_a)
    html = client.get(reverse("customers:scoring")).content.decode()
    counts = {int(low): int(n) for low, n in re.findall(r'data-bucket="(\d+)">([\d,]+)<', html)}
    expected = {low: sum(1 for s in scores if min(s // 10, 9) * 10 == low) for low in range(0, 100, 10)}
    assert counts == expected == {0: 2, 10: 1, 20: 0, 30: 0, 40: 0, 50: 2, 60: 0, 70: 0, 80: 0, 90: 4}
    assert "bar-fill pct-100" in html and "bar-fill pct-50" in html  # 4 is the tallest, 2 is half
    assert '<span class="small text-body-secondary" data-testid="scored-total">9 customers</span>' in html
    assert at(2).strftime("%b %-d, %Y") in html  # the last score change


def test_scoring_page_shows_the_last_full_run(
    org_a, admin_a, login, client, django_capture_on_commit_callbacks
):
    make(org_a)
    make(org_a)
    try:
        with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk):
            scoring_services.scores_recompute(organization_id=org_a.pk, now=NOW)
        login(admin_a)
        html = client.get(reverse("customers:scoring")).content.decode()
        last_run = html.split('data-testid="last-run">')[1].split("</dd>")[0]
        assert NOW.strftime("%b %-d, %Y 12:00") in last_run
        assert "2 customers scored in" in last_run
    finally:
        cache.delete(scoring_services._last_run_key(org_a.pk))


def test_saving_weights_shows_field_errors_and_saves_nothing_when_invalid(org_a, admin_a, login, client):
    login(admin_a)
    url = reverse("customers:scoring")
    data = {name: getattr(scoring.DEFAULT_WEIGHTS, name) for name in scoring.WEIGHT_FIELDS}
    response = client.post(url, {**data, "age_min": 60, "age_points": 101, "revenue_mid": ""})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"age_points", "age_max", "revenue_mid"}  # every error at once
    response = client.post(url, {**data, "age_min": 60, "action_low": 70})
    errors = response.context["form"].errors
    assert set(errors) == {"age_max", "action_medium"}
    html = response.content.decode()
    assert 'id="id_age_max-error"' in html and "Please correct the highlighted fields." in html
    with tenant_context(org_a.pk):
        assert not ScoringModel.objects.exists()


def test_saving_weights_stores_the_overrides_and_rescores(
    org_a, admin_a, login, client, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued = []
    monkeypatch.setattr(tasks.rescore_customers, "delay", lambda **kw: enqueued.append(kw))
    login(admin_a)
    url = reverse("customers:scoring")
    data = {name: getattr(scoring.DEFAULT_WEIGHTS, name) for name in scoring.WEIGHT_FIELDS}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {**data, "title_points": 18}, follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert "Scoring weights saved" in response.content.decode()
    assert enqueued == [{"organization_id": str(org_a.pk)}]
    with tenant_context(org_a.pk):
        assert ScoringModel.objects.get().weights == {"title_points": 18}
    assert 'value="18"' in response.content.decode()
    client.post(url, {"reset": "1"})
    with tenant_context(org_a.pk):
        assert ScoringModel.objects.get().weights == {}


def test_rescore_now_enqueues_a_run_of_the_whole_organization(
    org_a, admin_a, login, client, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued = []
    monkeypatch.setattr(tasks.rescore_customers, "delay", lambda **kw: enqueued.append(kw))
    login(admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("customers:scoring_rescore"), follow=True)
    assert enqueued == [{"organization_id": str(org_a.pk)}]
    assert "Rescoring started" in response.content.decode()
    assert client.get(reverse("customers:scoring_rescore")).status_code == 405


# --- The panel the 360 page includes ----------------------------------------------------------------------


def test_score_panel_renders_the_explanation(org_a):
    customer = make(org_a, [("email_opened", 1)] * 6 + [("meeting", 2, "positive")], job_title="Director")
    _history(org_a, customer, (10, 20))
    result = scored(org_a, customer)
    html = render_to_string("customers/scoring/_score_panel.html", {"score": result})
    assert result["total"] == 15 + 30 + 15 + 0
    assert re.search(r'data-testid="lead-score-total">60<', html)
    assert 'data-trend="rising"' in html and "Rising: +40" in html
    assert 'data-part="behavioral">30<span class="fw-normal text-body-secondary"> / 40<' in html
    assert 'aria-valuenow="30" aria-valuemin="0" aria-valuemax="40"><div class="progress-bar pct-75">' in html
    assert 'data-factor="interaction_count">7<' in html
    assert 'data-action="nurture_campaign"' in html
    assert f'data-testid="engagement-score">{result["engagement"]["score"]}<' in html
    assert f'data-testid="health-score">{result["health"]["score"]}<' in html
    with tenant_context(org_a.pk):
        Customer.objects.filter(pk=customer.pk).update(processing_restricted=True)
        restricted = scoring.explain(Customer.objects.get(pk=customer.pk), now=NOW)
    html = render_to_string("customers/scoring/_score_panel.html", {"score": restricted})
    assert "processing of this customer" in html and 'data-testid="lead-score-total">60<' in html


def test_batch_scores_equal_explain_on_the_seeded_demo_customers(org_a, admin_a):
    from customers.demo import seed_customers

    with system_context():
        assert seed_customers(organization=org_a, users=[admin_a]) > 100
        customers = list(Customer.objects.filter(organization=org_a))
    _assert_batch_matches_explain(org_a, customers)


def test_the_settings_page_lays_out_every_weight_exactly_once():
    from customers.views.scoring import RULES

    names = [
        part
        for rows in RULES.values()
        for _label, condition, points in rows
        for part in [*condition, points]
        if isinstance(part, str) and part in scoring.WEIGHT_FIELDS
    ]
    assert sorted(names) == sorted(scoring.WEIGHT_FIELDS)


def test_score_panel_without_a_score_says_so_instead_of_failing():
    html = render_to_string("customers/scoring/_score_panel.html", {})
    assert "The lead score is not available." in html


def test_explain_runs_a_fixed_number_of_queries_whatever_the_customers_history(
    org_a, django_assert_num_queries
):
    quiet = make(org_a)
    busy = make(
        org_a, [(kind, days) for kind in ("call", "email_opened", "meeting") for days in range(0, 200, 9)]
    )
    _history(org_a, busy, (30, 10), (20, 15), (10, 20))
    with tenant_context(org_a.pk):
        customers = list(Customer.objects.filter(pk__in=[quiet.pk, busy.pk]))
        for customer in customers:
            # settings + weights, interaction totals, recent interactions, trend reference, and one per
            # kind of count source that an installed app registered (sales: opportunities)
            sources = sum(1 for kind in scoring.COUNT_SOURCES.values() if kind)
            with django_assert_num_queries(4 + sources):
                scoring.explain(customer, now=NOW)


def test_scoring_page_runs_the_same_queries_for_few_or_many_customers(org_a, admin_a, login, client):
    login(admin_a)
    url = reverse("customers:scoring")
    make(org_a, [("call", 1)])
    client.get(url)  # warm the session and caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for _ in range(15):
        make(org_a, [("call", 3), ("meeting", 40)])
    with tenant_context(org_a.pk):
        scoring.score_organization(org_a.pk, now=NOW)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(few) == len(many)
