"""The rules in Python: one customer's scores with their reasons (`explain`)."""

from __future__ import annotations

import datetime
import re
from collections import Counter

from django.db import connection
from django.db.models import Count, Max, Q
from django.utils.translation import gettext

from customers.scoring.definition import (
    CAMPAIGN_RESPONSE_TYPES,
    DEFAULT_WEIGHTS,
    EDUCATION_LEVELS,
    ENGAGEMENT_ACTIVITY_MAX,
    ENGAGEMENT_RECENCY,
    ENGAGEMENT_RECENT_DOUBLE_DAYS,
    ENGAGEMENT_TYPE_POINTS,
    ENGAGEMENT_WINDOW_DAYS,
    HEALTH_CHURNED_CAP,
    HEALTH_LIFECYCLE_MAX,
    HEALTH_LIFECYCLE_POINTS,
    HEALTH_RECENCY,
    HEALTH_SENTIMENT_DAYS,
    HEALTH_SENTIMENT_MAX,
    HEALTH_SENTIMENT_UNRATED,
    HEALTH_SUPPORT_MAX,
    HEALTH_SUPPORT_PER_ISSUE,
    LEAD_CAP,
    TITLE_PATTERNS,
    TREND_DAYS,
    TREND_DELTA,
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


def age_on(born: datetime.date, today: datetime.date) -> int:
    """Whole years, as PostgreSQL's EXTRACT(YEAR FROM AGE(today, born))."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _like(pattern: str) -> re.Pattern:
    body = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL)


_TITLE_RES = tuple(_like(p) for p in TITLE_PATTERNS)


def _first_over(value, tiers, default: int) -> int:
    """First tier whose threshold `value` exceeds (tiers highest first), else `default`."""
    for threshold, points in tiers:
        if value is not None and value > threshold:
            return points
    return default


def _first_since(moment, tiers, default: int) -> int:
    """First tier whose window start `moment` is at or after (tiers narrowest first), else `default`."""
    for start, points in tiers:
        if moment is not None and moment >= start:
            return points
    return default


def recommended_actions(total: int, w: Weights = DEFAULT_WEIGHTS) -> list[dict]:
    if total >= w.action_high:
        return [
            {
                "action": "immediate_sales_contact",
                "priority": "high",
                "reason": gettext("High-quality lead ready for conversion"),
            }
        ]
    if total >= w.action_medium:
        return [
            {
                "action": "nurture_campaign",
                "priority": "medium",
                "reason": gettext("Qualified lead requiring nurturing"),
            }
        ]
    if total >= w.action_low:
        return [
            {
                "action": "education_content",
                "priority": "low",
                "reason": gettext("Early stage lead needs education"),
            }
        ]
    return []


def band_of(total: int, w: Weights = DEFAULT_WEIGHTS) -> str:
    if total >= w.action_high:
        return "hot"
    if total >= w.action_medium:
        return "warm"
    return "nurture" if total >= w.action_low else "cold"


def trend_of(current: int, reference: int | None) -> str:
    """rising / falling / stable against the reference score from the history; new without history."""
    if reference is None:
        return "new"
    if current - reference >= TREND_DELTA:
        return "rising"
    if reference - current >= TREND_DELTA:
        return "falling"
    return "stable"


def _parts(values: dict[str, int], maxima: dict[str, int]) -> list[dict]:
    return [
        {
            "key": k,
            "points": v,
            "max": maxima[k],
            "percent": max(0, min(100, round(100 * v / maxima[k]))) if maxima[k] else 0,
        }
        for k, v in values.items()
    ]


def _source_count(kind: str, organization_id, customer_id) -> int:
    union = union_of(kind)
    if union is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT coalesce(sum(n), 0) FROM ({union}) AS u WHERE customer_id = %(customer_id)s",
            {"organization_id": organization_id, "customer_id": customer_id},
        )
        return int(cursor.fetchone()[0])


def _trend_reference(customer, clock: Clock) -> tuple[int, datetime.datetime] | None:
    """The latest history row at least TREND_DAYS old, else the oldest one (None: never scored)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "(SELECT 1, lead_score, scored_at FROM customer_score_history WHERE organization_id = %(org)s"
            " AND customer_id = %(id)s AND scored_at <= %(cutoff)s ORDER BY scored_at DESC, id DESC LIMIT 1)"
            " UNION ALL (SELECT 2, lead_score, scored_at FROM customer_score_history WHERE organization_id = %(org)s"
            " AND customer_id = %(id)s AND scored_at <= %(now)s ORDER BY scored_at, id LIMIT 1) ORDER BY 1 LIMIT 1",
            {
                "org": customer.organization_id,
                "id": customer.pk,
                "cutoff": clock.now - datetime.timedelta(days=TREND_DAYS),
                "now": clock.now,
            },
        )
        row = cursor.fetchone()
    return (row[1], row[2]) if row else None


def explain(customer, *, now: datetime.datetime | None = None) -> dict:
    """One customer's lead, engagement and health scores with their reasons, computed in Python.

    The result is what `customers/scoring/_score_panel.html` renders and the 360 JSON returns (times are
    datetimes: serialise with DjangoJSONEncoder, as JsonResponse does).
    """
    from customers.models import Interaction, InteractionType

    weights, time_zone = organization_settings(customer.organization_id)
    clock = clock_for(now, time_zone)
    stored = {
        "lead_score": customer.lead_score,
        "engagement_score": customer.engagement_score,
        "health_score": customer.health_score,
        "scored_at": customer.scored_at,
    }
    if customer.processing_restricted:
        # Processing is restricted (GDPR art. 18): nothing is computed; the stored score is shown as it was.
        return {
            "customer_id": str(customer.pk),
            "restricted": True,
            "total": customer.lead_score,
            "stored": stored,
        }
    w = weights
    interactions = Interaction.objects.filter(
        organization_id=customer.organization_id, customer_id=customer.pk, interaction_date__lte=clock.now
    )
    totals = interactions.aggregate(
        count=Count("id"),
        last=Max("interaction_date"),
        campaign=Count("id", filter=Q(interaction_type__in=CAMPAIGN_RESPONSE_TYPES)),
    )
    widest = max(w.recent_days, w.engagement_days, ENGAGEMENT_WINDOW_DAYS, HEALTH_SENTIMENT_DAYS)
    rows = list(
        interactions.filter(interaction_date__gte=clock.since(widest)).values_list(
            "interaction_date", "interaction_type", "sentiment"
        )
    )
    count, last = totals["count"], totals["last"]

    # Lead score: the design document's four parts.
    demographic = w.demographic_other_points
    if customer.date_of_birth and w.age_min <= age_on(customer.date_of_birth, clock.today) <= w.age_max:
        demographic = w.age_points
    elif customer.education_level in EDUCATION_LEVELS:
        demographic = w.education_points
    elif any(pattern.fullmatch(customer.job_title or "") for pattern in _TITLE_RES):
        demographic = w.title_points
    behavioral = _first_over(count, count_tiers(w), w.interactions_base_points) + _first_since(
        last, recency_tiers(w, clock), 0
    )
    engagement_start = clock.since(w.engagement_days)
    responses = Counter(kind for at, kind, _s in rows if at >= engagement_start)
    engagement = sum(points for kind, over, points in engagement_rules(w) if responses[kind] > over)
    otherwise = w.business_points if customer.customer_type == "business" else 0
    firmographic = _first_over(customer.annual_revenue, revenue_tiers(w), otherwise)
    total = min(demographic + behavioral + engagement + firmographic, LEAD_CAP)

    # Engagement score.
    window = clock.since(ENGAGEMENT_WINDOW_DAYS)
    doubled = clock.since(ENGAGEMENT_RECENT_DOUBLE_DAYS)
    engaging = [
        (at, kind) for at, kind, _s in rows if at >= window and ENGAGEMENT_TYPE_POINTS.get(kind, 0) > 0
    ]
    raw = sum(ENGAGEMENT_TYPE_POINTS[kind] * (2 if at >= doubled else 1) for at, kind in engaging)
    last_engaged = max((at for at, _k in engaging), default=None)
    activity = min(raw, ENGAGEMENT_ACTIVITY_MAX)
    engagement_recency = _first_since(last_engaged, [(clock.since(d), p) for d, p in ENGAGEMENT_RECENCY], 0)
    engagement_score = activity + engagement_recency

    # Health score.
    health_recency = _first_since(last, [(clock.since(d), p) for d, p in HEALTH_RECENCY], 0)
    sentiment_start = clock.since(HEALTH_SENTIMENT_DAYS)
    moods = Counter(
        s for at, _k, s in rows if at >= sentiment_start and s in ("positive", "neutral", "negative")
    )
    rated = sum(moods.values())
    sentiment = (
        HEALTH_SENTIMENT_MAX * (2 * moods["positive"] + moods["neutral"]) // (2 * rated)
        if rated
        else HEALTH_SENTIMENT_UNRATED
    )
    lifecycle = HEALTH_LIFECYCLE_POINTS.get(customer.lifecycle_stage, 0)
    open_issues = _source_count("open_issues", customer.organization_id, customer.pk)
    support = max(0, HEALTH_SUPPORT_MAX - HEALTH_SUPPORT_PER_ISSUE * open_issues)
    health_raw = health_recency + sentiment + lifecycle + support
    churned = customer.lifecycle_stage == "churned"
    health_score = min(health_raw, HEALTH_CHURNED_CAP) if churned else health_raw

    reference = _trend_reference(customer, clock)
    parts = {
        "demographic": demographic,
        "behavioral": behavioral,
        "engagement": engagement,
        "firmographic": firmographic,
    }
    return {
        "customer_id": str(customer.pk),
        "restricted": False,
        "computed_at": clock.now,
        "total": total,
        "band": band_of(total, w),
        "breakdown": {f"{k}_score": v for k, v in parts.items()} | {"total_score": total},
        "components": _parts(parts, w.maxima),
        "factors": {
            "interaction_count": count,
            "recent_interactions": sum(1 for at, _k, _s in rows if at >= clock.since(w.recent_days)),
            "campaign_responses": totals["campaign"],
            "opportunity_count": _source_count("opportunities", customer.organization_id, customer.pk),
        },
        "recommended_actions": recommended_actions(total, w),
        "trend": trend_of(total, reference[0] if reference else None),
        "trend_detail": {
            "delta": total - reference[0] if reference else None,
            "reference_score": reference[0] if reference else None,
            "reference_at": reference[1] if reference else None,
        },
        "engagement": {
            "score": engagement_score,
            "breakdown": {
                "activity_points": activity,
                "recency_points": engagement_recency,
                "weighted_activity": raw,
                "interactions": len(engaging),
                "by_type": [
                    {"type": kind, "label": str(InteractionType(kind).label), "count": n}
                    for kind, n in Counter(kind for _at, kind in engaging).most_common()
                ],
                "last_engaged_at": last_engaged,
            },
            "parts": _parts(
                {"activity": activity, "recency": engagement_recency},
                {"activity": ENGAGEMENT_ACTIVITY_MAX, "recency": ENGAGEMENT_RECENCY[0][1]},
            ),
        },
        "health": {
            "score": health_score,
            "breakdown": {
                "recency_points": health_recency,
                "sentiment_points": sentiment,
                "lifecycle_points": lifecycle,
                "support_points": support,
                "churned_cap": churned and health_raw > HEALTH_CHURNED_CAP,
                "last_interaction_at": last,
                "sentiment": {k: moods[k] for k in ("positive", "neutral", "negative")},
                "lifecycle_stage": customer.lifecycle_stage,
                "lifecycle_label": str(customer.get_lifecycle_stage_display()),
                "open_issues": open_issues,
            },
            "parts": _parts(
                {
                    "recency": health_recency,
                    "sentiment": sentiment,
                    "lifecycle": lifecycle,
                    "support": support,
                },
                {
                    "recency": HEALTH_RECENCY[0][1],
                    "sentiment": HEALTH_SENTIMENT_MAX,
                    "lifecycle": HEALTH_LIFECYCLE_MAX,
                    "support": HEALTH_SUPPORT_MAX,
                },
            ),
        },
        "stored": stored,
    }
