"""The sales dashboard: refreshing the materialized view, asking for a refresh, and reading it.

`sales_dashboard_mv` (migration sales/0002) holds, per organization, the open pipeline per stage, won and
closed deals per close month (last 12 months), average deal size and sales cycle of the deals won in that
window, and the weighted forecast of this month and the next two. It is refreshed CONCURRENTLY by beat every
30 minutes, by `manage.py refresh_dashboards` and by the page's "Refresh" (which enqueues the same task),
always through the SECURITY DEFINER function `crm_refresh_sales_dashboard()`; the app reads it only through
the tenant-filtered view `sales_dashboard`.

Money is per currency (a deal's amount is in its own currency, and nothing here converts): the page shows
one currency at a time, the organization's by default. Counts, win rates and cycle times cover every deal.
The figures are the whole organization's, whoever looks (sales reps in "own only" mode included): they are
aggregates; the lists behind them show only the deals the viewer may see.
"""

from __future__ import annotations

import datetime
import uuid
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from crm.models import Organization, User
from crm.permissions import Capability, has_capability
from sales.models import Stage

HISTORY_MONTHS = 12
FORECAST_MONTHS = 3
# "Refresh" pressed this long ago with no refresh since: shown as stuck, and may be pressed again.
REFRESH_STALE_AFTER = datetime.timedelta(minutes=10)
REFRESH_REQUESTED_KEY = "sales:dashboard:refresh-requested"
ZERO = Decimal("0")

_ROWS_SQL = (
    "SELECT kind, key, currency, deals, won, amount, weighted, value, refreshed_at "
    "FROM sales_dashboard WHERE organization_id = %s"
)


# --- Refreshing -------------------------------------------------------------------------------------------


def dashboard_refresh() -> datetime.datetime | None:
    """Refresh every organization's dashboard now (CONCURRENTLY once populated: readers are not blocked).

    Returns when, or None when another refresh was running (that one's figures are as fresh). The function
    runs as the owner role; the caller needs no tenant context and sees nothing it could not see before.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT crm_refresh_sales_dashboard()")
        refreshed_at = cursor.fetchone()[0]
    if refreshed_at is not None:
        cache.delete(REFRESH_REQUESTED_KEY)
    return refreshed_at


def can_request_refresh(actor: User) -> bool:
    """Those who see the whole pipeline (managers, admins) may ask for a refresh before beat's next one."""
    return has_capability(actor, Capability.VIEW_SALES_DASHBOARD) and has_capability(
        actor, Capability.VIEW_ALL_OPPORTUNITIES
    )


def dashboard_refresh_request(*, actor: User) -> bool:
    """The page's "Refresh": enqueue a refresh once the transaction commits. Returns False when one asked
    for earlier is still waiting (pressing again adds no task), unless it is older than REFRESH_STALE_AFTER.
    """
    if actor is None or not actor.organization_id or not can_request_refresh(actor):
        raise PermissionDenied
    if refresh_requested_at() is not None:
        return False

    def enqueue() -> None:
        from sales.tasks import refresh_sales_dashboard

        # `add` is atomic: of two managers pressing at once, one enqueues.
        if cache.add(REFRESH_REQUESTED_KEY, timezone.now().isoformat(), REFRESH_STALE_AFTER.total_seconds()):
            refresh_sales_dashboard.delay()

    transaction.on_commit(enqueue)
    return True


def refresh_requested_at() -> datetime.datetime | None:
    """When someone pressed "Refresh" for a refresh that has not run yet (None: nothing pending)."""
    value = cache.get(REFRESH_REQUESTED_KEY)
    return datetime.datetime.fromisoformat(value) if value else None


# --- Reading ----------------------------------------------------------------------------------------------


def add_months(month: datetime.date, count: int) -> datetime.date:
    index = month.year * 12 + month.month - 1 + count
    return datetime.date(index // 12, index % 12 + 1, 1)


def month_end(month: datetime.date) -> datetime.date:
    return add_months(month, 1) - datetime.timedelta(days=1)


def _percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(100) * part / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def opportunity_list_url(**params) -> str:
    """The opportunity list filtered by `params` (sales/filters.py: stage, status, owner, and
    close_after/close_before on a deal's close date: the actual one once closed, the expected one while open).
    `currency` is passed along for organizations with several currencies."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse("sales:opportunity_list") + (f"?{query}" if query else "")


@dataclass
class StageFigure:
    stage: Stage
    deals: int = 0
    amount: Decimal = ZERO
    weighted: Decimal = ZERO
    url: str = ""


@dataclass
class PipelineFunnel:
    pipeline_id: uuid.UUID
    name: str
    stages: list[StageFigure]

    @property
    def deals(self) -> int:
        return sum(s.deals for s in self.stages)

    @property
    def amount(self) -> Decimal:
        return sum((s.amount for s in self.stages), ZERO)


@dataclass
class MonthFigure:
    """Deals closed in one calendar month (won + lost) and the share won."""

    month: datetime.date
    closed: int = 0
    won: int = 0
    won_url: str = ""
    lost_url: str = ""

    @property
    def lost(self) -> int:
        return self.closed - self.won

    @property
    def rate(self) -> Decimal | None:
        return _percent(self.won, self.closed)


@dataclass
class ForecastMonth:
    month: datetime.date
    deals: int = 0
    amount: Decimal = ZERO
    weighted: Decimal = ZERO
    url: str = ""


@dataclass
class Dashboard:
    organization: Organization
    refreshed_at: datetime.datetime | None
    currency: str
    currencies: list[str] = field(default_factory=list)
    funnels: list[PipelineFunnel] = field(default_factory=list)
    months: list[MonthFigure] = field(default_factory=list)
    forecast: list[ForecastMonth] = field(default_factory=list)
    # Deals won in the last 12 months in `currency`: how many, their value, average deal size.
    won_deals: int = 0
    won_amount: Decimal = ZERO
    average_deal_size: Decimal | None = None
    # All deals won in the last 12 months (any currency): average days from creation to close.
    cycle_deals: int = 0
    average_cycle_days: Decimal | None = None
    links: dict[str, str] = field(default_factory=dict)
    refresh_requested_at: datetime.datetime | None = None

    @property
    def is_empty(self) -> bool:
        """Never refreshed since the organization existed: nothing to show yet."""
        return self.refreshed_at is None

    @property
    def open_deals(self) -> int:
        return sum(f.deals for f in self.funnels)

    @property
    def open_amount(self) -> Decimal:
        return sum((f.amount for f in self.funnels), ZERO)

    @property
    def open_weighted(self) -> Decimal:
        return sum((s.weighted for f in self.funnels for s in f.stages), ZERO)

    @property
    def closed_deals(self) -> int:
        return sum(m.closed for m in self.months)

    @property
    def won_count(self) -> int:
        return sum(m.won for m in self.months)

    @property
    def win_rate(self) -> Decimal | None:
        """Won ÷ closed over the 12 months (not the average of the monthly rates)."""
        return _percent(self.won_count, self.closed_deals)

    @property
    def forecast_weighted(self) -> Decimal:
        return sum((m.weighted for m in self.forecast), ZERO)

    @property
    def history_start(self) -> datetime.date | None:
        return self.months[0].month if self.months else None

    @property
    def refresh_pending(self) -> bool:
        return self.refresh_requested_at is not None and (
            self.refreshed_at is None or self.refresh_requested_at > self.refreshed_at
        )


def sales_dashboard(*, actor: User, currency: str | None = None) -> Dashboard:
    """The actor's organization's dashboard as of its last refresh, money in `currency` (default: the
    organization's; one not in use falls back to it). Two queries: the view's rows, the open stages."""
    if not actor.organization_id or not has_capability(actor, Capability.VIEW_SALES_DASHBOARD):
        raise Http404
    organization = actor.organization
    with connection.cursor() as cursor:
        cursor.execute(_ROWS_SQL, [actor.organization_id])
        rows = cursor.fetchall()

    refreshed_at = max((row[8] for row in rows), default=None)
    currencies = sorted({row[2] for row in rows if row[2]} | {organization.currency})
    chosen = currency if currency in currencies else organization.currency
    dashboard = Dashboard(
        organization=organization,
        refreshed_at=refreshed_at,
        currency=chosen,
        currencies=currencies,
        refresh_requested_at=refresh_requested_at(),
    )
    if refreshed_at is None:
        return dashboard
    # Links carry the currency only where it narrows anything (the list shows every currency otherwise).
    link_currency = chosen if len(currencies) > 1 else None

    by_kind: dict[str, dict[str, tuple]] = defaultdict(dict)
    for kind, key, row_currency, deals, won, amount, weighted, value, _at in rows:
        if row_currency in ("", chosen):
            by_kind[kind][key] = (deals, won, amount or ZERO, weighted or ZERO, value)

    # Months are the organization's calendar months as of the refresh (as the view computed them).
    zone = zoneinfo.ZoneInfo(organization.time_zone or "UTC")
    this_month = refreshed_at.astimezone(zone).date().replace(day=1)
    history_start = add_months(this_month, 1 - HISTORY_MONTHS)

    stages = (
        Stage.objects.filter(organization_id=actor.organization_id, outcome=Stage.Outcome.OPEN)
        .select_related("pipeline")
        .order_by("-pipeline__is_default", "pipeline__name", "pipeline_id", "position", "id")
    )
    funnels: dict[uuid.UUID, PipelineFunnel] = {}
    for stage in stages:
        funnel = funnels.setdefault(
            stage.pipeline_id,
            PipelineFunnel(pipeline_id=stage.pipeline_id, name=stage.pipeline.name, stages=[]),
        )
        deals, _won, amount, weighted, _value = by_kind["stage"].get(str(stage.pk), (0, 0, ZERO, ZERO, None))
        funnel.stages.append(
            StageFigure(
                stage=stage,
                deals=deals,
                amount=amount,
                weighted=weighted,
                url=opportunity_list_url(stage=stage.pk, status="open", currency=link_currency),
            )
        )
    dashboard.funnels = list(funnels.values())

    for n in range(HISTORY_MONTHS):
        month = add_months(history_start, n)
        closed, won, *_ = by_kind["month"].get(f"{month:%Y-%m}", (0, 0, ZERO, ZERO, None))
        period = {"close_after": month.isoformat(), "close_before": month_end(month).isoformat()}
        dashboard.months.append(
            MonthFigure(
                month=month,
                closed=closed,
                won=won,
                won_url=opportunity_list_url(status="won", **period),
                lost_url=opportunity_list_url(status="lost", **period),
            )
        )

    for n in range(FORECAST_MONTHS):
        month = add_months(this_month, n)
        deals, _won, amount, weighted, _value = by_kind["forecast"].get(
            f"{month:%Y-%m}", (0, 0, ZERO, ZERO, None)
        )
        dashboard.forecast.append(
            ForecastMonth(
                month=month,
                deals=deals,
                amount=amount,
                weighted=weighted,
                url=opportunity_list_url(
                    status="open",
                    close_after=month.isoformat(),
                    close_before=month_end(month).isoformat(),
                    currency=link_currency,
                ),
            )
        )

    won = by_kind["won"].get("")
    if won:
        dashboard.won_deals, dashboard.won_amount, dashboard.average_deal_size = won[0], won[2], won[4]
    cycle = by_kind["cycle"].get("")
    if cycle:
        dashboard.cycle_deals, dashboard.average_cycle_days = cycle[0], cycle[4]

    history_end = month_end(this_month).isoformat()
    window = {"close_after": history_start.isoformat(), "close_before": history_end}
    dashboard.links = {
        "open": opportunity_list_url(status="open", currency=link_currency),
        "won": opportunity_list_url(status="won", currency=link_currency, **window),
        "won_all_currencies": opportunity_list_url(status="won", **window),
        "lost": opportunity_list_url(status="lost", **window),
        "forecast": opportunity_list_url(
            status="open",
            close_after=this_month.isoformat(),
            close_before=month_end(add_months(this_month, FORECAST_MONTHS - 1)).isoformat(),
            currency=link_currency,
        ),
    }
    return dashboard


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _rate(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.1f}"


def dashboard_as_json(dashboard: Dashboard) -> dict:
    """The page's figures as data (the `?format=json` variant; money as strings, exact)."""
    return {
        "organization": dashboard.organization.slug,
        "refreshed_at": dashboard.refreshed_at.isoformat() if dashboard.refreshed_at else None,
        "currency": dashboard.currency,
        "currencies": dashboard.currencies,
        "kpis": {
            "open_deals": dashboard.open_deals,
            "open_amount": _money(dashboard.open_amount),
            "open_weighted": _money(dashboard.open_weighted),
            "win_rate_12m": _rate(dashboard.win_rate),
            "won_deals_12m": dashboard.won_count,
            "closed_deals_12m": dashboard.closed_deals,
            "average_deal_size": _money(dashboard.average_deal_size),
            "average_sales_cycle_days": _rate(dashboard.average_cycle_days),
            "forecast_3m_weighted": _money(dashboard.forecast_weighted),
        },
        "funnel": [
            {
                "pipeline_id": str(funnel.pipeline_id),
                "pipeline": funnel.name,
                "stages": [
                    {
                        "stage_id": str(s.stage.pk),
                        "stage": s.stage.name,
                        "deals": s.deals,
                        "amount": _money(s.amount),
                        "weighted": _money(s.weighted),
                        "url": s.url,
                    }
                    for s in funnel.stages
                ],
            }
            for funnel in dashboard.funnels
        ],
        "conversion": [
            {
                "month": f"{m.month:%Y-%m}",
                "closed": m.closed,
                "won": m.won,
                "lost": m.lost,
                "rate": _rate(m.rate),
            }
            for m in dashboard.months
        ],
        "forecast": [
            {
                "month": f"{m.month:%Y-%m}",
                "deals": m.deals,
                "amount": _money(m.amount),
                "weighted": _money(m.weighted),
                "url": m.url,
            }
            for m in dashboard.forecast
        ],
    }


def chart_data(dashboard: Dashboard) -> dict:
    """What static/js/sales-charts.js draws (through json_script): labels and plain numbers."""
    return {
        "currency": dashboard.currency,
        "funnels": [
            {
                "id": str(funnel.pipeline_id),
                "labels": [s.stage.name for s in funnel.stages],
                "deals": [s.deals for s in funnel.stages],
                "amounts": [float(s.amount) for s in funnel.stages],
                "weighted": [float(s.weighted) for s in funnel.stages],
                "urls": [s.url for s in funnel.stages],
            }
            for funnel in dashboard.funnels
        ],
        "conversion": {
            "labels": [date_format(m.month, "M Y") for m in dashboard.months],
            "rates": [float(m.rate) if m.rate is not None else None for m in dashboard.months],
            "won": [m.won for m in dashboard.months],
            "closed": [m.closed for m in dashboard.months],
            "urls": [m.won_url for m in dashboard.months],
        },
        "forecast": {
            "labels": [date_format(m.month, "M Y") for m in dashboard.forecast],
            "weighted": [float(m.weighted) for m in dashboard.forecast],
            "amounts": [float(m.amount) for m in dashboard.forecast],
            "urls": [m.url for m in dashboard.forecast],
        },
    }
