"""Revenue forecast of an organization (or of one owner) for the next N months: expected revenue, best and
worst case from forecast categories and the organization's historical stage-to-win rates, commit, closed-won
to date, quota and pipeline coverage, risk factors and recommended actions.

A service layer with no web code: the forecast page, its JSON for the chart and `manage.py forecast` all call
`forecast_for_organization()` and read the same plain dataclasses. The formulas are defined in
docs/forecasting.md; every figure there is computed here and nowhere else.

Set-based: a fixed handful of aggregate queries whatever the number of deals (GROUP BY month over
`opportunities`, served index-only by `opportunities_forecast_idx` and `opportunities_closed_idx`; history of
`opportunity_changes` aggregated in subqueries before it meets a deal, so a deal is never counted twice).
Money is summed in SQL `numeric` and rounded once, to cents (half up), at the end.
"""

from __future__ import annotations

import datetime
import logging
import uuid
import zoneinfo
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from crm import tenancy
from crm.models import Organization
from sales.models import ForecastCategory, Quota, SalesSettings, Stage
from sales.services.opportunities import organization_today

logger = logging.getLogger(__name__)

# How far back the stage-to-win rates look (days, up to and including `as_of`).
HISTORY_DAYS = 365
# Fewer closed deals than this that went through a stage: use the stage's default probability instead.
MIN_HISTORY = 5
# Pipeline coverage below this multiple of the quota still to win is a risk.
COVERAGE_TARGET = Decimal("3")
# Each risk factor lists at most this many deal ids (the largest first); its count and amount cover all.
RISK_DEAL_LIMIT = 100
MAX_MONTHS = 24
# How long the stage-to-win counts are reused (seconds).
RATES_CACHE_SECONDS = 15 * 60

CENT = Decimal("0.01")
ZERO = Decimal("0")
# Categories an open deal can be committed under ("closed" set by hand on an open deal means "done").
COMMIT_CATEGORIES = (ForecastCategory.COMMIT, ForecastCategory.CLOSED)


def _money(value: Decimal | Fraction | int) -> Decimal:
    """Round to cents, half up (the one rounding step of every figure)."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def month_start(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def add_months(month: datetime.date, count: int) -> datetime.date:
    index = month.year * 12 + month.month - 1 + count
    return datetime.date(index // 12, index % 12 + 1, 1)


def forecast_months(as_of: datetime.date, months: int) -> list[datetime.date]:
    """The first days of the forecast's months: the month of `as_of` and the ones after it."""
    first = month_start(as_of)
    return [add_months(first, n) for n in range(months)]


# --- Results ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageRate:
    """How often a closed deal that went through this stage was won (the last HISTORY_DAYS days)."""

    stage_id: uuid.UUID
    name: str
    pipeline_id: uuid.UUID
    position: int
    default_probability: int
    reached: int  # closed deals that were ever in the stage
    won: int  # of them, won
    rate: Fraction  # won / reached, or the default probability when history is thin
    from_history: bool

    @property
    def percent(self) -> Decimal:
        return (Decimal(self.rate.numerator) * 100 / Decimal(self.rate.denominator)).quantize(Decimal("0.1"))


@dataclass
class MonthForecast:
    month: datetime.date  # the first day of the month
    expected: Decimal = ZERO  # Σ amount * probability / 100 of open, non-omitted deals closing this month
    worst_case: Decimal = ZERO  # closed won + commit deals * their stage's historical win rate
    best_case: Decimal = ZERO  # closed won + commit + best-case deals + pipeline deals * historical rate
    commit: Decimal = ZERO  # Σ amount of open deals in the commit category
    best_case_deals: Decimal = ZERO  # Σ amount of open deals in the best-case category
    pipeline_deals: Decimal = ZERO  # Σ amount of open deals in the pipeline category
    omitted: Decimal = ZERO  # Σ amount of open deals in the omitted category (counted nowhere else)
    closed_won: Decimal = ZERO  # Σ amount of deals won this month, up to as_of
    quota: Decimal = ZERO
    pipeline: Decimal = ZERO  # open pipeline: Σ amount of open, non-omitted deals closing this month
    coverage: Decimal | None = None  # pipeline ÷ (quota - closed won), None without a quota still to win
    open_deals: int = 0  # open, non-omitted deals closing this month
    commit_deals: int = 0
    won_deals: int = 0

    @property
    def remaining_quota(self) -> Decimal:
        return max(self.quota - self.closed_won, ZERO)

    @property
    def attainment(self) -> Decimal | None:
        """Closed won as a percentage of the quota."""
        if self.quota <= 0:
            return None
        return (self.closed_won * 100 / self.quota).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class RiskFactor:
    code: str  # low_coverage, slipped, no_activity, close_date_moved, other_currency
    label: str
    count: int  # every deal behind the risk
    amount: Decimal
    deal_ids: tuple[uuid.UUID, ...]  # the largest RISK_DEAL_LIMIT of them, by amount
    months: tuple[datetime.date, ...] = ()  # low_coverage: the months below the target


@dataclass(frozen=True)
class RecommendedAction:
    code: str
    message: str
    severity: str  # danger, warning, info
    measure: str = ""  # the drill-down behind it (see MEASURES)
    month: datetime.date | None = None


@dataclass
class Forecast:
    organization_id: uuid.UUID
    owner_id: uuid.UUID | None
    as_of: datetime.date
    generated_at: datetime.datetime
    currency: str
    time_zone: str
    coverage_target: Decimal
    no_activity_days: int
    months: list[MonthForecast]
    total: MonthForecast  # the months added up (coverage recomputed from the sums)
    stage_rates: list[StageRate]
    risks: list[RiskFactor] = field(default_factory=list)
    actions: list[RecommendedAction] = field(default_factory=list)

    @property
    def start(self) -> datetime.date:
        return self.months[0].month

    @property
    def end(self) -> datetime.date:
        """The first day after the forecast's last month."""
        return add_months(self.months[-1].month, 1)

    def risk(self, code: str) -> RiskFactor | None:
        return next((r for r in self.risks if r.code == code), None)


# The deals behind each figure, for drill-downs (sales/selectors/forecast.py applies them). Month figures
# take the month; risk figures cover the whole forecast (open, non-omitted deals closing before its end).
MEASURES = {
    "expected": "month",
    "pipeline": "month",
    "commit": "month",
    "best_case_deals": "month",
    "pipeline_deals": "month",
    "omitted": "month",
    "closed_won": "month",
    "worst_case": "month",
    "best_case": "month",
    "low_coverage": "month",
    "slipped": "risk",
    "no_activity": "risk",
    "close_date_moved": "risk",
    "other_currency": "risk",
}


# --- SQL ---------------------------------------------------------------------------------------------------

# Open deals by close month, category and stage: every column is in opportunities_forecast_idx (index-only).
OPEN_SQL = """
SELECT date_trunc('month', o.expected_close_date::timestamp)::date AS month, o.forecast_category, o.stage_id,
       count(*), sum(o.amount), sum(o.amount * o.probability)
FROM opportunities o
WHERE o.organization_id = %(org)s AND o.status = 'open'
  AND o.expected_close_date >= %(start)s AND o.expected_close_date < %(end)s{owner}
GROUP BY 1, 2, 3
"""

# Won deals by close month up to as_of: opportunities_closed_idx (index-only).
WON_SQL = """
SELECT date_trunc('month', o.actual_close_date::timestamp)::date AS month, count(*), sum(o.amount)
FROM opportunities o
WHERE o.organization_id = %(org)s AND o.status = 'won'
  AND o.actual_close_date >= %(start)s AND o.actual_close_date < %(end)s
  AND o.actual_close_date <= %(as_of)s{owner}
GROUP BY 1
"""

# Stage-to-win rates of the organization: closed deals of the history window and the stages each was ever in.
# A deal was in every stage it left (the `old_value` of its stage changes) and is in its current one, so
# both sides of each change need not be read; DISTINCT makes a deal that went back and forth count once.
RATES_SQL = """
WITH closed AS MATERIALIZED (
    SELECT o.id, o.stage_id, o.status = 'won' AS won
    FROM opportunities o
    WHERE o.organization_id = %(org)s AND o.status IN ('won', 'lost')
      AND o.actual_close_date > %(history_start)s AND o.actual_close_date <= %(as_of)s
), left_stages AS (
    SELECT DISTINCT c.opportunity_id, c.old_value
    FROM opportunity_changes c
    WHERE c.organization_id = %(org)s AND c.field = 'stage' AND c.old_value <> ''
      AND c.opportunity_id IN (SELECT closed.id FROM closed)
)
SELECT reached.stage_id, count(*), count(*) FILTER (WHERE reached.won)
FROM (
    SELECT closed.stage_id, closed.won FROM closed
    UNION ALL
    SELECT l.old_value::uuid, closed.won
    FROM left_stages l JOIN closed ON closed.id = l.opportunity_id
    WHERE l.old_value::uuid IS DISTINCT FROM closed.stage_id
) AS reached
GROUP BY reached.stage_id
"""

# The risk factors in one row: the open, non-omitted deals the forecast counts or should count (closing
# before its end, slipped ones included), flagged; close-date changes counted per deal in a subquery before
# they meet a deal. The flagged ones are kept once (MATERIALIZED); each risk's largest deals come from a
# top-N sort of them, not from sorting every flagged deal.
RISKS_SQL = """
WITH moves AS (
    SELECT c.opportunity_id
    FROM opportunity_changes c
    WHERE c.organization_id = %(org)s AND c.field = 'expected_close_date'
    GROUP BY c.opportunity_id
    HAVING count(*) > 1
), risky AS MATERIALIZED (
    SELECT * FROM (
        SELECT o.id, o.amount,
               o.expected_close_date < %(as_of)s AS slipped,
               coalesce(o.last_activity_at, o.created_at) < %(idle_before)s AS idle,
               o.expected_close_date >= %(start)s
                 AND date_trunc('month', o.expected_close_date::timestamp)::date = ANY(%(low_months)s::date[])
                 AS low,
               moves.opportunity_id IS NOT NULL AS moved,
               o.currency <> %(currency)s AS other_currency
        FROM opportunities o
        LEFT JOIN moves ON moves.opportunity_id = o.id
        WHERE o.organization_id = %(org)s AND o.status = 'open' AND o.forecast_category <> 'omitted'
          AND o.expected_close_date < %(end)s{owner}
    ) AS flagged
    WHERE slipped OR idle OR low OR moved OR other_currency
)
SELECT {columns}
FROM risky
"""
RISK_FLAGS = ("low", "slipped", "idle", "moved", "other_currency")
RISK_COLUMNS = ",\n       ".join(
    f"count(*) FILTER (WHERE {flag}), coalesce(sum(amount) FILTER (WHERE {flag}), 0), "
    f"ARRAY(SELECT id FROM risky WHERE {flag} ORDER BY amount DESC, id LIMIT %(limit)s)"
    for flag in RISK_FLAGS
)


def _owner_clause(owner_id, column: str = "o.assigned_to_id") -> str:
    return f"\n  AND {column} = %(owner)s" if owner_id else ""


def _fetch(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- The computation ---------------------------------------------------------------------------------------


def _rate_counts(*, organization_id, as_of: datetime.date) -> dict[uuid.UUID, tuple[int, int]]:
    """{stage id: (closed deals that were in it, of them won)} over the history window, cached for
    RATES_CACHE_SECONDS: a year of history barely moves in minutes, and this is the forecast's one query that
    reads history rather than an index. The stages themselves (names, defaults) are always read fresh."""
    key = f"sales:forecast:rates:{organization_id}:{as_of.isoformat()}"
    try:
        cached = cache.get(key)
    except Exception:  # a cache outage must not take the forecast down: compute instead
        logger.warning("forecast: cache unavailable, computing stage win rates", exc_info=True)
        cached = None
    if cached is not None:
        return cached
    history_start = as_of - datetime.timedelta(days=HISTORY_DAYS)
    counts = {
        stage_id: (reached, won)
        for stage_id, reached, won in _fetch(
            RATES_SQL, {"org": organization_id, "as_of": as_of, "history_start": history_start}
        )
    }
    try:
        cache.set(key, counts, RATES_CACHE_SECONDS)
    except Exception:  # see above
        logger.warning("forecast: cache unavailable, stage win rates not kept", exc_info=True)
    return counts


def forget_stage_win_rates(*, organization_id, as_of: datetime.date) -> None:
    """Drop the cached rates (tests, or after a bulk change of history)."""
    cache.delete(f"sales:forecast:rates:{organization_id}:{as_of.isoformat()}")


def stage_win_rates(*, organization_id, as_of: datetime.date) -> list[StageRate]:
    """The historical win rate of every open stage of the organization (fallback: its default probability
    when fewer than MIN_HISTORY closed deals of the window went through it)."""
    stages = list(
        Stage.objects.filter(organization_id=organization_id, outcome=Stage.Outcome.OPEN)
        .order_by("-pipeline__is_default", "pipeline_id", "position", "id")
        .values_list("id", "name", "pipeline_id", "position", "probability")
    )
    counts = _rate_counts(organization_id=organization_id, as_of=as_of)
    rates = []
    for stage_id, name, pipeline_id, position, probability in stages:
        reached, won = counts.get(stage_id, (0, 0))
        from_history = reached >= MIN_HISTORY
        rate = Fraction(won, reached) if from_history else Fraction(probability, 100)
        rates.append(
            StageRate(stage_id, name, pipeline_id, position, probability, reached, won, rate, from_history)
        )
    return rates


def forecast_for_organization(
    *,
    organization_id,
    months: int = 3,
    owner_id=None,
    as_of: datetime.date | None = None,
    coverage_target: Decimal = COVERAGE_TARGET,
    include_risks: bool = True,
) -> Forecast:
    """The forecast of `organization_id` (only deals and quotas of `owner_id` when given) for `months`
    months starting with the month of `as_of` (default: today in the organization's time zone).

    Reads through the caller's tenant context (RLS applies); callers decide what the actor may see (the
    forecast page restricts reps in "own only" mode to their own forecast). A fixed number of queries.
    `include_risks=False` leaves out the risk factors (and the actions they lead to): the figures alone come
    from index-only aggregates.
    """
    tenancy.require()
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be between 1 and {MAX_MONTHS}")
    organization = Organization.objects.only("currency", "time_zone").get(pk=organization_id)
    as_of = as_of or organization_today(organization)
    no_activity_days = (
        SalesSettings.objects.filter(organization_id=organization_id)
        .values_list("no_activity_days", flat=True)
        .first()
    ) or SalesSettings._meta.get_field("no_activity_days").default
    month_list = forecast_months(as_of, months)
    start, end = month_list[0], add_months(month_list[-1], 1)
    params = {"org": organization_id, "start": start, "end": end, "as_of": as_of, "owner": owner_id}
    owner = _owner_clause(owner_id)

    rates = stage_win_rates(organization_id=organization_id, as_of=as_of)
    rate_of = {r.stage_id: r.rate for r in rates}

    rows = {m: MonthForecast(month=m) for m in month_list}
    exact: dict[datetime.date, dict[str, Fraction]] = {
        m: {"expected": Fraction(0), "worst": Fraction(0), "pipeline_weighted": Fraction(0)}
        for m in month_list
    }
    for month, category, stage_id, count, amount, amount_x_probability in _fetch(
        OPEN_SQL.format(owner=owner), params
    ):
        row, sums = rows[month], exact[month]
        if category == ForecastCategory.OMITTED:
            row.omitted += amount
            continue
        row.open_deals += count
        row.pipeline += amount
        sums["expected"] += Fraction(amount_x_probability) / 100
        # Only open stages have a rate; an open deal in a won or lost stage cannot come about through the
        # services (the status follows the stage) and would weigh nothing.
        rate = rate_of.get(stage_id, Fraction(0))
        if category in COMMIT_CATEGORIES:
            row.commit += amount
            row.commit_deals += count
            sums["worst"] += Fraction(amount) * rate
        elif category == ForecastCategory.BEST_CASE:
            row.best_case_deals += amount
        else:
            row.pipeline_deals += amount
            sums["pipeline_weighted"] += Fraction(amount) * rate

    for month, count, amount in _fetch(WON_SQL.format(owner=owner), params):
        rows[month].closed_won += amount
        rows[month].won_deals += count

    quotas = Quota.objects.filter(organization_id=organization_id, month__gte=start, month__lt=end)
    if owner_id:
        quotas = quotas.filter(user_id=owner_id)
    per_month = quotas.order_by().values("month").annotate(total=Sum("amount")).values_list("month", "total")
    for month, amount in per_month:
        rows[month].quota += amount

    for month in month_list:
        row, sums = rows[month], exact[month]
        row.expected = _money(sums["expected"])
        row.worst_case = _money(Fraction(row.closed_won) + sums["worst"])
        row.best_case = _money(
            Fraction(row.closed_won + row.commit + row.best_case_deals) + sums["pipeline_weighted"]
        )
        row.coverage = _coverage(row)

    total = _total(list(rows.values()), exact)
    forecast = Forecast(
        organization_id=organization.pk,
        owner_id=owner_id,
        as_of=as_of,
        generated_at=timezone.now(),
        currency=organization.currency,
        time_zone=organization.time_zone or "UTC",
        coverage_target=coverage_target,
        no_activity_days=no_activity_days,
        months=list(rows.values()),
        total=total,
        stage_rates=rates,
    )
    if include_risks:  # the one pass over the deals themselves (not index-only); the figures do without it
        forecast.risks = _risks(forecast, params, owner)
    forecast.actions = _actions(forecast)
    return forecast


def _coverage(row: MonthForecast) -> Decimal | None:
    """Open pipeline ÷ the quota still to win; None without a quota, or with the quota already won."""
    remaining = row.quota - row.closed_won
    if row.quota <= 0 or remaining <= 0:
        return None
    return (row.pipeline / remaining).quantize(CENT, rounding=ROUND_HALF_UP)


def _total(rows: list[MonthForecast], exact: dict) -> MonthForecast:
    total = MonthForecast(month=rows[0].month)
    for name in (
        "commit",
        "best_case_deals",
        "pipeline_deals",
        "omitted",
        "closed_won",
        "quota",
        "pipeline",
        "open_deals",
        "commit_deals",
        "won_deals",
    ):
        setattr(total, name, sum((getattr(r, name) for r in rows), type(getattr(total, name))()))
    # Rounded once from the exact sums, so the total is not off by the months' rounding.
    total.expected = _money(sum((s["expected"] for s in exact.values()), Fraction(0)))
    total.worst_case = _money(
        Fraction(total.closed_won) + sum((s["worst"] for s in exact.values()), Fraction(0))
    )
    total.best_case = _money(
        Fraction(total.closed_won + total.commit + total.best_case_deals)
        + sum((s["pipeline_weighted"] for s in exact.values()), Fraction(0))
    )
    total.coverage = _coverage(total)
    return total


def idle_before(*, as_of: datetime.date, time_zone: str, days: int) -> datetime.datetime:
    """Deals whose last activity (or creation, if none) is before this are idle: the start of `as_of` in
    the organization's time zone, minus the organization's no-activity days."""
    midnight = datetime.datetime.combine(
        as_of, datetime.time.min, tzinfo=zoneinfo.ZoneInfo(time_zone or "UTC")
    )
    return midnight - datetime.timedelta(days=days)


def _idle_before(forecast: Forecast) -> datetime.datetime:
    return idle_before(as_of=forecast.as_of, time_zone=forecast.time_zone, days=forecast.no_activity_days)


def _risks(forecast: Forecast, params: dict, owner: str) -> list[RiskFactor]:
    low_months = [
        row.month
        for row in forecast.months
        if row.coverage is not None and row.coverage < forecast.coverage_target
    ]
    (row,) = _fetch(
        RISKS_SQL.format(owner=owner, columns=RISK_COLUMNS),
        {
            **params,
            "idle_before": _idle_before(forecast),
            "low_months": low_months,
            "limit": RISK_DEAL_LIMIT,
            "currency": forecast.currency,
        },
    )
    found = {}
    for index, flag in enumerate(RISK_FLAGS):
        count, amount, ids = row[index * 3 : index * 3 + 3]
        found[flag] = (count, amount, tuple(ids or ()))
    labels = {
        "low": (
            "low_coverage",
            _("Pipeline coverage below %(target)sx the quota still to win")
            % {"target": _number(forecast.coverage_target)},
        ),
        "slipped": ("slipped", _("Expected close date has passed")),
        "idle": (
            "no_activity",
            _("No activity for %(days)s days or more") % {"days": forecast.no_activity_days},
        ),
        "moved": ("close_date_moved", _("Close date moved more than once")),
        "other_currency": (
            "other_currency",
            _("In another currency than %(currency)s (added at face value)")
            % {"currency": forecast.currency},
        ),
    }
    risks = []
    for flag in RISK_FLAGS:
        count, amount, ids = found[flag]
        code, label = labels[flag]
        if flag == "low":
            if not low_months:
                continue
        elif not count:
            continue
        risks.append(
            RiskFactor(
                code=code,
                label=label,
                count=count,
                amount=_money(amount),
                deal_ids=ids,
                months=tuple(low_months) if flag == "low" else (),
            )
        )
    return risks


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _money_text(value: Decimal, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def _month_text(month: datetime.date) -> str:
    return date_format(month, "F Y")


def _actions(forecast: Forecast) -> list[RecommendedAction]:
    """What to do about the risks and gaps, most urgent first."""
    currency = forecast.currency
    actions: list[RecommendedAction] = []
    for row in forecast.months:
        if row.coverage is not None and row.coverage < forecast.coverage_target:
            needed = _money(forecast.coverage_target * (row.quota - row.closed_won) - row.pipeline)
            actions.append(
                RecommendedAction(
                    code="build_pipeline",
                    severity="danger",
                    measure="pipeline",
                    month=row.month,
                    message=_(
                        "%(month)s: pipeline covers %(coverage)sx the quota still to win (target %(target)sx). "
                        "Add about %(needed)s of opportunities closing that month."
                    )
                    % {
                        "month": _month_text(row.month),
                        "coverage": row.coverage,
                        "target": _number(forecast.coverage_target),
                        "needed": _money_text(needed, currency),
                    },
                )
            )
    slipped = forecast.risk("slipped")
    if slipped:
        actions.append(
            RecommendedAction(
                code="update_close_dates",
                severity="danger",
                measure="slipped",
                message=_(
                    "Update or close %(count)s deal(s) whose expected close date has passed (%(amount)s): "
                    "until they are re-dated they are missing from the forecast or overstate this month."
                )
                % {"count": slipped.count, "amount": _money_text(slipped.amount, currency)},
            )
        )
    moved = forecast.risk("close_date_moved")
    if moved:
        actions.append(
            RecommendedAction(
                code="confirm_timelines",
                severity="warning",
                measure="close_date_moved",
                message=_(
                    "Confirm the decision date with the customer for %(count)s deal(s) whose close date moved "
                    "more than once (%(amount)s); move them out of commit if it is not firm."
                )
                % {"count": moved.count, "amount": _money_text(moved.amount, currency)},
            )
        )
    idle = forecast.risk("no_activity")
    if idle:
        actions.append(
            RecommendedAction(
                code="follow_up",
                severity="warning",
                measure="no_activity",
                message=_(
                    "Follow up on %(count)s deal(s) with no activity for %(days)s days or more (%(amount)s)."
                )
                % {
                    "count": idle.count,
                    "days": forecast.no_activity_days,
                    "amount": _money_text(idle.amount, currency),
                },
            )
        )
    other = forecast.risk("other_currency")
    if other:
        actions.append(
            RecommendedAction(
                code="convert_currency",
                severity="warning",
                measure="other_currency",
                message=_(
                    "%(count)s deal(s) are priced in another currency than %(currency)s and are added at face "
                    "value (%(amount)s): convert their amounts to %(currency)s for a reliable forecast."
                )
                % {
                    "count": other.count,
                    "currency": currency,
                    "amount": _money_text(other.amount, currency),
                },
            )
        )
    for row in forecast.months:
        landing = row.closed_won + row.expected
        if row.quota > 0 and landing < row.quota and row.best_case_deals > 0:
            actions.append(
                RecommendedAction(
                    code="advance_best_case",
                    severity="info",
                    measure="best_case_deals",
                    month=row.month,
                    message=_(
                        "%(month)s: closed won plus expected revenue (%(landing)s) is %(gap)s short of the "
                        "quota. Work the best-case deals (%(best)s) towards commit."
                    )
                    % {
                        "month": _month_text(row.month),
                        "landing": _money_text(landing, currency),
                        "gap": _money_text(row.quota - landing, currency),
                        "best": _money_text(row.best_case_deals, currency),
                    },
                )
            )
    if forecast.total.quota <= 0:
        actions.append(
            RecommendedAction(
                code="set_quotas",
                severity="info",
                message=_("No quota is set for these months: set quotas to measure coverage and attainment."),
            )
        )
    return actions


# --- Plain data (the command's JSON, the chart) --------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Fraction):
        return str(_rate_decimal(value))
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _rate_decimal(rate: Fraction) -> Decimal:
    return (Decimal(rate.numerator) / Decimal(rate.denominator)).quantize(Decimal("0.0001"), ROUND_HALF_UP)


MONTH_FIELDS = (
    "month",
    "expected",
    "best_case",
    "worst_case",
    "commit",
    "closed_won",
    "quota",
    "pipeline",
    "coverage",
    "best_case_deals",
    "pipeline_deals",
    "omitted",
    "open_deals",
    "commit_deals",
    "won_deals",
)


def forecast_as_dict(forecast: Forecast, *, with_generated_at: bool = True) -> dict[str, Any]:
    """The forecast as JSON-ready data: Decimals as strings, dates ISO, ids as strings."""

    def month(row: MonthForecast) -> dict:
        return {name: _plain(getattr(row, name)) for name in MONTH_FIELDS}

    data = {
        "organization_id": _plain(forecast.organization_id),
        "owner_id": _plain(forecast.owner_id),
        "as_of": _plain(forecast.as_of),
        "currency": forecast.currency,
        "coverage_target": _plain(forecast.coverage_target),
        "no_activity_days": forecast.no_activity_days,
        "months": [month(row) for row in forecast.months],
        "total": {k: v for k, v in month(forecast.total).items() if k != "month"},
        "stage_rates": [
            {
                "stage_id": _plain(r.stage_id),
                "stage": r.name,
                "reached": r.reached,
                "won": r.won,
                "rate": _plain(r.rate),
                "from_history": r.from_history,
            }
            for r in forecast.stage_rates
        ],
        "risks": [
            {
                "code": r.code,
                "label": r.label,
                "count": r.count,
                "amount": _plain(r.amount),
                "deal_ids": _plain(r.deal_ids),
                "months": _plain(r.months),
            }
            for r in forecast.risks
        ],
        "actions": [
            {"code": a.code, "severity": a.severity, "message": a.message, "month": _plain(a.month)}
            for a in forecast.actions
        ],
    }
    if with_generated_at:
        data["generated_at"] = _plain(forecast.generated_at)
    return data
