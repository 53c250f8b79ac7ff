"""The rules in SQL: every customer of an organization scored in one statement (`score_organization`)."""

from __future__ import annotations

import datetime
import uuid

from django.db import connection

from compliance.models import ConsentPurpose
from compliance.selectors.consent import consent_sql
from crm import tenancy
from customers.models import Customer
from customers.scoring.definition import (
    EDUCATION_LEVELS,
    ENGAGEMENT_ACTIVITY_MAX,
    ENGAGEMENT_RECENCY,
    ENGAGEMENT_RECENT_DOUBLE_DAYS,
    ENGAGEMENT_TYPE_POINTS,
    ENGAGEMENT_WINDOW_DAYS,
    HEALTH_CHURNED_CAP,
    HEALTH_LIFECYCLE_POINTS,
    HEALTH_RECENCY,
    HEALTH_SENTIMENT_DAYS,
    HEALTH_SENTIMENT_MAX,
    HEALTH_SENTIMENT_UNRATED,
    HEALTH_SUPPORT_MAX,
    HEALTH_SUPPORT_PER_ISSUE,
    LEAD_CAP,
    TITLE_PATTERNS,
    Clock,
    Weights,
    clock_for,
    count_tiers,
    engagement_rules,
    organization_settings,
    recency_tiers,
    revenue_tiers,
    union_of,
)
from customers.scoring.explain import age_on


class _Params(dict):
    """Collects parameter values; every number and list in the generated SQL is a parameter."""

    def __call__(self, value) -> str:
        name = f"p{len(self)}"
        self[name] = value
        return f"%({name})s"


def _case_over(q: _Params, expr: str, tiers, default: int | str) -> str:
    """`default`: a number, or an SQL expression (a string) for the ELSE branch."""
    whens = " ".join(f"WHEN {expr} > {q(t)} THEN {q(p)}" for t, p in tiers)
    return f"CASE {whens} ELSE {default if isinstance(default, str) else q(default)} END"


def _case_since(q: _Params, expr: str, tiers, default: int) -> str:
    whens = " ".join(f"WHEN {expr} >= {q(start)} THEN {q(p)}" for start, p in tiers)
    return f"CASE {whens} ELSE {q(default)} END"


def _case_map(q: _Params, expr: str, mapping: dict[str, int]) -> str:
    whens = " ".join(f"WHEN {q(k)} THEN {q(v)}" for k, v in mapping.items())
    return f"CASE {expr} {whens} ELSE 0 END"


def _scoring_sql(w: Weights, clock: Clock, only_ids: bool) -> tuple[str, _Params]:
    q = _Params()
    only_c = " AND c.id = ANY(%(ids)s::uuid[])" if only_ids else ""
    only_i = " AND i.customer_id = ANY(%(ids)s::uuid[])" if only_ids else ""
    engagement_start = q(clock.since(w.engagement_days))
    window, doubled = q(clock.since(ENGAGEMENT_WINDOW_DAYS)), q(clock.since(ENGAGEMENT_RECENT_DOUBLE_DAYS))
    sentiment_start = q(clock.since(HEALTH_SENTIMENT_DAYS))
    engaging = {k: v for k, v in ENGAGEMENT_TYPE_POINTS.items() if v > 0}
    stats = ", ".join(
        [
            "count(*) AS n_all",
            "max(i.interaction_date) AS last_at",
            *(
                f"count(*) FILTER (WHERE i.interaction_type = {q(kind)} AND i.interaction_date >= {engagement_start}) AS n_{kind}"
                for kind, _over, _points in engagement_rules(w)
            ),
            f"sum({_case_map(q, 'i.interaction_type', engaging)} * CASE WHEN i.interaction_date >= {doubled} THEN 2 ELSE 1 END)"
            f" FILTER (WHERE i.interaction_date >= {window}) AS activity",
            f"max(i.interaction_date) FILTER (WHERE i.interaction_type = ANY({q(list(engaging))}) AND i.interaction_date >= {window}) AS last_engaged",
            *(
                f"count(*) FILTER (WHERE i.sentiment = {q(mood)} AND i.interaction_date >= {sentiment_start}) AS n_{mood}"
                for mood in ("positive", "neutral", "negative")
            ),
        ]
    )
    joins, open_issues = [], "0"
    if union := union_of("open_issues"):
        joins.append(
            f"LEFT JOIN (SELECT customer_id, sum(n) AS n FROM ({union}) AS u GROUP BY customer_id) AS oi ON oi.customer_id = t.id"
        )
        open_issues = "coalesce(oi.n, 0)"

    def s(name: str) -> str:
        return f"coalesce(s.{name}, 0)"

    # The date of birth is encrypted at rest: the ages are worked out in Python (age_band_ids) and arrive
    # as the ids of the customers whose age is in the range.
    demographic = (
        f"CASE WHEN t.in_age_band THEN {q(w.age_points)}"
        f" WHEN t.education_level = ANY({q(list(EDUCATION_LEVELS))}) THEN {q(w.education_points)}"
        f" WHEN t.job_title ILIKE ANY({q(list(TITLE_PATTERNS))}) THEN {q(w.title_points)}"
        f" ELSE {q(w.demographic_other_points)} END"
    )
    behavioral = (
        f"{_case_over(q, s('n_all'), count_tiers(w), w.interactions_base_points)}"
        f" + {_case_since(q, 's.last_at', recency_tiers(w, clock), 0)}"
    )
    engagement = " + ".join(
        f"CASE WHEN {s('n_' + kind)} > {q(over)} THEN {q(points)} ELSE 0 END"
        for kind, over, points in engagement_rules(w)
    )
    firmographic = _case_over(
        q,
        "t.annual_revenue",
        revenue_tiers(w),
        f"CASE WHEN t.customer_type = 'business' THEN {q(w.business_points)} ELSE 0 END",
    )
    engagement_score = (
        f"LEAST({s('activity')}, {q(ENGAGEMENT_ACTIVITY_MAX)})"
        f" + {_case_since(q, 's.last_engaged', [(clock.since(d), p) for d, p in ENGAGEMENT_RECENCY], 0)}"
    )
    rated = f"({s('n_positive')} + {s('n_neutral')} + {s('n_negative')})"
    health = (
        f"{_case_since(q, 's.last_at', [(clock.since(d), p) for d, p in HEALTH_RECENCY], 0)}"
        f" + CASE WHEN {rated} = 0 THEN {q(HEALTH_SENTIMENT_UNRATED)}"
        f" ELSE {q(HEALTH_SENTIMENT_MAX)} * (2 * {s('n_positive')} + {s('n_neutral')}) / (2 * {rated}) END"
        f" + {_case_map(q, 't.lifecycle_stage', HEALTH_LIFECYCLE_POINTS)}"
        f" + GREATEST(0, {q(HEALTH_SUPPORT_MAX)} - {q(HEALTH_SUPPORT_PER_ISSUE)} * {open_issues})"
    )
    sql = f"""
WITH targets AS (
    SELECT c.id, ab.id IS NOT NULL AS in_age_band, c.education_level, c.job_title, c.annual_revenue,
           c.customer_type, c.lifecycle_stage
    FROM customers c LEFT JOIN unnest(%(age_band)s::uuid[]) AS ab(id) ON ab.id = c.id
    WHERE c.organization_id = %(organization_id)s AND {consent_sql(ConsentPurpose.PROFILING, "c")}{only_c}
), stats AS (
    SELECT i.customer_id, {stats}
    FROM interaction_logs i
    WHERE i.organization_id = %(organization_id)s AND i.interaction_date <= %(now)s{only_i}
    GROUP BY i.customer_id
), parts AS (
    SELECT t.id, t.lifecycle_stage,
           {demographic} AS demographic, {behavioral} AS behavioral, {engagement} AS engagement,
           {firmographic} AS firmographic, {engagement_score} AS engagement_score, {health} AS health_raw
    FROM targets t LEFT JOIN stats s ON s.customer_id = t.id {" ".join(joins)}
), scored AS (
    SELECT p.*, LEAST(p.demographic + p.behavioral + p.engagement + p.firmographic, {q(LEAD_CAP)}) AS lead,
           CASE WHEN p.lifecycle_stage = 'churned' THEN LEAST(p.health_raw, {q(HEALTH_CHURNED_CAP)})
                ELSE p.health_raw END AS health
    FROM parts p
), changed AS (
    UPDATE customers c
    SET lead_score = s.lead, engagement_score = s.engagement_score, health_score = s.health,
        scored_at = %(now)s
    FROM scored s
    WHERE c.organization_id = %(organization_id)s AND c.id = s.id
      AND (c.scored_at IS NULL OR c.lead_score <> s.lead OR c.engagement_score <> s.engagement_score
           OR c.health_score <> s.health)
    RETURNING c.id, s.lead, s.engagement_score, s.health, s.demographic, s.behavioral, s.engagement,
              s.firmographic
), logged AS (
    INSERT INTO customer_score_history
        (organization_id, customer_id, scored_at, lead_score, engagement_score, health_score, breakdown)
    SELECT %(organization_id)s, ch.id, %(now)s, ch.lead, ch.engagement_score, ch.health,
           jsonb_build_object('demographic_score', ch.demographic, 'behavioral_score', ch.behavioral,
                              'engagement_score', ch.engagement, 'firmographic_score', ch.firmographic,
                              'total_score', ch.lead)
    FROM changed ch
    RETURNING 1
)
SELECT (SELECT count(*) FROM scored), (SELECT count(*) FROM logged)
"""
    return sql, q


def score_organization(organization_id, *, customer_ids=None, now: datetime.datetime | None = None) -> int:
    """Score every customer of the organization (or those of `customer_ids`) in one statement; returns how
    many were scored. Customers who may not be profiled (compliance.selectors.consent: processing restricted,
    erased, anonymized or objecting to profiling) are skipped and keep their stored scores.
    Only changed scores are written, each change appended to the score history."""
    tenancy.require()
    if customer_ids is not None:
        customer_ids = [uuid.UUID(str(pk)) for pk in customer_ids]
        if not customer_ids:
            return 0
    weights, time_zone = organization_settings(organization_id)
    clock = clock_for(now, time_zone)
    sql, params = _scoring_sql(weights, clock, only_ids=customer_ids is not None)
    age_band = age_band_ids(organization_id, weights, clock, customer_ids=customer_ids)
    params.update(organization_id=organization_id, now=clock.now, ids=customer_ids, age_band=age_band)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        scored, _changed = cursor.fetchone()
    return scored


def age_band_ids(organization_id, w: Weights, clock: Clock, *, customer_ids=None) -> list[uuid.UUID]:
    """The customers (of `customer_ids`, or all) whose age today is within the weights' range: their dates
    of birth decrypted and compared in Python, read 5,000 at a time (a hash join then matches the ids)."""
    customers = Customer.objects.filter(organization_id=organization_id, date_of_birth__isnull=False)
    if customer_ids is not None:
        customers = customers.filter(id__in=customer_ids)
    return [
        pk
        for pk, born in customers.order_by().values_list("id", "date_of_birth").iterator(chunk_size=5000)
        if w.age_min <= age_on(born, clock.today) <= w.age_max
    ]


def score_distribution(organization_id) -> tuple[list[dict], datetime.datetime | None]:
    """Stored lead scores in ten 10-point buckets (0-9, ..., 90-100), and when a score last changed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT LEAST(lead_score / 10, 9) AS bucket, count(*), max(scored_at) FROM customers "
            "WHERE organization_id = %s GROUP BY 1",
            [organization_id],
        )
        rows = cursor.fetchall()
    counts = {bucket: n for bucket, n, _at in rows}
    last_changed = max((at for _b, _n, at in rows if at is not None), default=None)
    top = max(counts.values(), default=0)
    buckets = [
        {
            "low": b * 10,
            "high": 100 if b == 9 else b * 10 + 9,
            "count": counts.get(b, 0),
            "percent": round(100 * counts.get(b, 0) / top) if top else 0,
        }
        for b in range(10)
    ]
    return buckets, last_changed
