"""The one definition of the scores: lead-score weights (the design document's rules, overridable per
organization), the fixed tables of the engagement and health scores, the rule tiers both interpreters
walk, the count sources other apps register, and the calendar-day time windows."""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm import tenancy

logger = logging.getLogger(__name__)

# --- The definition ---------------------------------------------------------------------------------------

# Value kinds and their allowed ranges (inclusive).
BOUNDS = {"points": (0, 100), "count": (0, 10_000), "days": (1, 365), "age": (0, 120), "money": (0, 10**12)}


def _w(default: int, kind: str, group: str, label) -> dataclasses.Field:
    return dataclasses.field(default=default, metadata={"kind": kind, "group": group, "label": label})


@dataclass(frozen=True)
class Weights:
    """Points and thresholds of the lead score (defaults: the design document's rules, exactly)."""

    # Demographic: the first matching branch counts.
    age_min: int = _w(25, "age", "demographic", _("Age from (years)"))
    age_max: int = _w(55, "age", "demographic", _("Age to (years)"))
    age_points: int = _w(20, "points", "demographic", _("Points when the age is in that range"))
    education_points: int = _w(
        15, "points", "demographic", _("Points for a bachelor's, master's or doctorate")
    )
    title_points: int = _w(15, "points", "demographic", _("Points for a director, VP or C-suite title"))
    demographic_other_points: int = _w(5, "points", "demographic", _("Points when none of these applies"))
    # Behavioral: interaction count tier (all time) plus recency of the last interaction.
    interactions_high: int = _w(10, "count", "behavioral", _("Many interactions: more than"))
    interactions_high_points: int = _w(25, "points", "behavioral", _("Points for many interactions"))
    interactions_mid: int = _w(5, "count", "behavioral", _("Some interactions: more than"))
    interactions_mid_points: int = _w(15, "points", "behavioral", _("Points for some interactions"))
    interactions_low: int = _w(2, "count", "behavioral", _("Few interactions: more than"))
    interactions_low_points: int = _w(10, "points", "behavioral", _("Points for a few interactions"))
    interactions_base_points: int = _w(5, "points", "behavioral", _("Points for fewer interactions"))
    recent_days: int = _w(7, "days", "behavioral", _("Recent: last interaction within (days)"))
    recent_points: int = _w(15, "points", "behavioral", _("Points when recent"))
    active_days: int = _w(30, "days", "behavioral", _("Active: last interaction within (days)"))
    active_points: int = _w(10, "points", "behavioral", _("Points when active"))
    # Engagement: responses within a window, each rule independent.
    engagement_days: int = _w(30, "days", "engagement", _("Count responses of the last (days)"))
    opens_over: int = _w(5, "count", "engagement", _("Emails opened: more than"))
    opens_points: int = _w(15, "points", "engagement", _("Points for emails opened"))
    visits_over: int = _w(3, "count", "engagement", _("Website visits: more than"))
    visits_points: int = _w(10, "points", "engagement", _("Points for website visits"))
    forms_over: int = _w(0, "count", "engagement", _("Forms submitted: more than"))
    forms_points: int = _w(10, "points", "engagement", _("Points for forms submitted"))
    # Firmographic: the first matching branch counts.
    revenue_high: int = _w(10_000_000, "money", "firmographic", _("Large company: revenue above"))
    revenue_high_points: int = _w(20, "points", "firmographic", _("Points for a large company"))
    revenue_mid: int = _w(1_000_000, "money", "firmographic", _("Mid-size company: revenue above"))
    revenue_mid_points: int = _w(15, "points", "firmographic", _("Points for a mid-size company"))
    revenue_low: int = _w(100_000, "money", "firmographic", _("Small company: revenue above"))
    revenue_low_points: int = _w(10, "points", "firmographic", _("Points for a small company"))
    business_points: int = _w(5, "points", "firmographic", _("Points for any other business"))
    # Recommended actions: the highest threshold reached.
    action_high: int = _w(80, "points", "actions", _("Immediate sales contact from score"))
    action_medium: int = _w(60, "points", "actions", _("Nurture campaign from score"))
    action_low: int = _w(30, "points", "actions", _("Education content from score"))

    def overrides(self) -> dict[str, int]:
        """The values that differ from the defaults (what `ScoringModel.weights` stores)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }

    @property
    def maxima(self) -> dict[str, int]:
        """The most points each part of the lead score can give (the bars' scale)."""
        return {
            "demographic": max(
                self.age_points, self.education_points, self.title_points, self.demographic_other_points
            ),
            "behavioral": max(
                self.interactions_high_points,
                self.interactions_mid_points,
                self.interactions_low_points,
                self.interactions_base_points,
            )
            + max(self.recent_points, self.active_points, 0),
            "engagement": self.opens_points + self.visits_points + self.forms_points,
            "firmographic": max(
                self.revenue_high_points,
                self.revenue_mid_points,
                self.revenue_low_points,
                self.business_points,
                0,
            ),
        }


DEFAULT_WEIGHTS = Weights()
WEIGHT_FIELDS = {f.name: f for f in dataclasses.fields(Weights)}
GROUPS = {
    "demographic": _("Demographic"),
    "behavioral": _("Behavioral"),
    "engagement": _("Engagement"),
    "firmographic": _("Firmographic"),
    "actions": _("Recommended actions"),
}
# Thresholds that must be in increasing order, lowest first.
ORDERED = (
    ("age_min", "age_max", True),  # True: equal allowed
    ("interactions_low", "interactions_mid", False),
    ("interactions_mid", "interactions_high", False),
    ("recent_days", "active_days", False),
    ("revenue_low", "revenue_mid", False),
    ("revenue_mid", "revenue_high", False),
    ("action_low", "action_medium", False),
    ("action_medium", "action_high", False),
)

# Fixed parts of the lead score (the design document's lists).
EDUCATION_LEVELS = ("bachelors", "masters", "phd")
TITLE_PATTERNS = ("%director%", "%vp%", "%c_suite%")  # SQL ILIKE patterns: `_` is any one character
CAMPAIGN_RESPONSE_TYPES = ("email_opened", "email_clicked")
LEAD_CAP = 100

# Engagement score (0-100) over the last 90 days.
ENGAGEMENT_WINDOW_DAYS = 90
ENGAGEMENT_TYPE_POINTS = {
    "meeting": 10,
    "purchase": 10,
    "call": 8,
    "form_submission": 8,
    "chat": 5,
    "email_clicked": 4,
    "website_visit": 3,
    "social": 3,
    "email_opened": 2,
    "support_ticket": 1,
}  # email_sent and note are our own actions: 0
ENGAGEMENT_RECENT_DOUBLE_DAYS = 30  # interactions of the last 30 days count twice
ENGAGEMENT_ACTIVITY_MAX = 70
ENGAGEMENT_RECENCY = ((7, 30), (30, 20), (90, 10))  # last engaging interaction within (days) -> points

# Health score (0-100).
HEALTH_RECENCY = ((7, 35), (30, 25), (90, 15), (180, 5))  # last interaction within (days) -> points
HEALTH_SENTIMENT_DAYS = 90
HEALTH_SENTIMENT_MAX = 30
HEALTH_SENTIMENT_UNRATED = 15  # no rated interaction: neither good nor bad
HEALTH_LIFECYCLE_POINTS = {
    "subscriber": 8,
    "lead": 10,
    "marketing_qualified": 12,
    "sales_qualified": 15,
    "opportunity": 18,
    "customer": 22,
    "champion": 25,
    "churned": 0,
}
HEALTH_LIFECYCLE_MAX = 25
HEALTH_SUPPORT_MAX = 10
HEALTH_SUPPORT_PER_ISSUE = 5
HEALTH_CHURNED_CAP = 20

# Trend, from the score history.
TREND_DAYS = 7
TREND_DELTA = 5


def validate_weights(values: Mapping) -> Weights:
    """Weights from stored or submitted overrides; ValidationError keyed by field when out of range or order."""
    errors: dict[str, list] = {}
    unknown = sorted(set(values) - set(WEIGHT_FIELDS))
    if unknown:
        raise ValidationError(gettext("Unknown scoring settings: %(names)s") % {"names": ", ".join(unknown)})
    merged = {}
    for name, field in WEIGHT_FIELDS.items():
        value = values.get(name, field.default)
        low, high = BOUNDS[field.metadata["kind"]]
        if isinstance(value, bool) or not isinstance(value, int):
            errors[name] = [gettext("Enter a whole number.")]
        elif not low <= value <= high:
            errors[name] = [
                gettext("Enter a number from %(low)s to %(high)s.") % {"low": low, "high": f"{high:,}"}
            ]
        merged[name] = value
    for name, messages in order_errors({k: v for k, v in merged.items() if k not in errors}).items():
        errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return Weights(**merged)


def order_errors(values: Mapping[str, int]) -> dict[str, list[str]]:
    """Thresholds out of order, keyed by the higher one's name (pairs with a missing value are skipped)."""
    errors: dict[str, list[str]] = {}
    for lower, upper, equal_ok in ORDERED:
        if values.get(lower) is None or values.get(upper) is None:
            continue
        if values[upper] < values[lower] or (not equal_ok and values[upper] == values[lower]):
            message = (
                gettext("Must be at least %(value)s, the “%(label)s” value.")
                if equal_ok
                else gettext("Must be more than %(value)s, the “%(label)s” value.")
            ) % {"label": WEIGHT_FIELDS[lower].metadata["label"], "value": f"{values[lower]:,}"}
            errors.setdefault(upper, []).append(message)
    return errors


# --- Other apps' numbers: opportunities, open support issues ----------------------------------------------


@dataclass(frozen=True)
class CountSource:
    """SQL giving `(customer_id, n)` rows for one organization, parameter `%(organization_id)s` (literal `%`
    written `%%`). Registered by the app that owns the rows, so customers imports none of them."""

    name: str
    sql: str


COUNT_SOURCES: dict[str, list[CountSource]] = {"opportunities": [], "open_issues": []}


def register_count_source(kind: str, source: CountSource) -> None:
    """`kind`: "opportunities" (the opportunity_count factor) or "open_issues" (the health score)."""
    sources = COUNT_SOURCES[kind]
    if all(existing.name != source.name for existing in sources):
        sources.append(source)


def union_of(kind: str) -> str | None:
    sources = COUNT_SOURCES[kind]
    return " UNION ALL ".join(f"SELECT customer_id, n FROM ({s.sql}) AS src" for s in sources) or None


# --- Time windows --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    now: datetime.datetime
    today: datetime.date
    tz: datetime.tzinfo

    def since(self, days: int) -> datetime.datetime:
        """Midnight (organization time) `days` calendar days before today: "within N days" starts here."""
        return datetime.datetime.combine(
            self.today - datetime.timedelta(days=days), datetime.time.min, self.tz
        )


def clock_for(now: datetime.datetime | None, time_zone: str) -> Clock:
    try:
        tz = ZoneInfo(time_zone or "UTC")
    except (ValueError, KeyError):
        tz = ZoneInfo("UTC")
    now = now or timezone.now()
    return Clock(now=now, today=now.astimezone(tz).date(), tz=tz)


def organization_settings(organization_id) -> tuple[Weights, str]:
    """The organization's weights (defaults where not overridden) and its time zone, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.time_zone, m.weights FROM organizations o "
            "LEFT JOIN lead_scoring_models m ON m.organization_id = o.id WHERE o.id = %s",
            [organization_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise tenancy.TenantContextError(f"Organization {organization_id} is not visible in this context.")
    time_zone, stored = row
    try:
        # Django has psycopg hand jsonb over as text (JSONField decodes it); so does this raw query.
        weights = validate_weights(json.loads(stored) if isinstance(stored, str) else stored or {})
    except (ValidationError, ValueError, TypeError):
        # Stored weights are validated on save; a row edited by hand falls back to the defaults (both paths).
        logger.warning(
            "Invalid stored scoring weights for organization %s; using the defaults", organization_id
        )
        weights = DEFAULT_WEIGHTS
    return weights, time_zone


# --- Rule tiers, walked by both interpreters ------------------------------------------------------------


def count_tiers(w: Weights):
    """(more than this many interactions, points), highest first."""
    return (
        (w.interactions_high, w.interactions_high_points),
        (w.interactions_mid, w.interactions_mid_points),
        (w.interactions_low, w.interactions_low_points),
    )


def recency_tiers(w: Weights, clock: Clock):
    """(window start, points) for the last interaction, narrowest window first."""
    return ((clock.since(w.recent_days), w.recent_points), (clock.since(w.active_days), w.active_points))


def revenue_tiers(w: Weights):
    """(annual revenue above, points), highest first."""
    return (
        (w.revenue_high, w.revenue_high_points),
        (w.revenue_mid, w.revenue_mid_points),
        (w.revenue_low, w.revenue_low_points),
    )


def engagement_rules(w: Weights):
    """(interaction type, more than, points): the engagement part of the lead score."""
    return (
        ("email_opened", w.opens_over, w.opens_points),
        ("website_visit", w.visits_over, w.visits_points),
        ("form_submission", w.forms_over, w.forms_points),
    )
