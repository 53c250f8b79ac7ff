"""Campaign reports: the funnel of one campaign and the side-by-side comparison of many (definitions in
docs/attribution.md).

Every figure comes from the rows, not from the campaign's counters: recipients from `email_sends`, leads
from form submissions and first interactions, conversions from won opportunities, revenue from
marketing/attribution.py. One statement per kind of figure whatever the number of campaigns, each metric
aggregated in its own subquery before anything is joined (no fan-out), and the totals computed by the
database in the same statements (GROUPING SETS), not summed from rounded rows.
"""

from __future__ import annotations

import datetime
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Q
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from crm.models import Organization, User
from crm.permissions import Capability, has_capability
from marketing.attribution import Attribution, AttributionModel, CampaignRevenue, attribution
from marketing.models import Campaign

ZERO = Decimal("0.00")
# The comparison shows at most this many campaigns (the newest first); narrower filters show the rest.
MAX_COMPARED = 200

FIGURES_SQL = """
WITH recipients AS (
    -- One row per (campaign, customer): several emails of one campaign to one customer (its sequence
    -- emails) count once in every stage.
    -- Sent: the provider took it (a row still 'sending' was claimed by a worker that may have died before
    -- handing it over: not counted until it is confirmed).
    SELECT s.campaign_id, s.customer_id,
           bool_or(s.status IN ('sent', 'delivered', 'bounced')) AS sent,
           bool_or(s.status IN ('sent', 'delivered') AND s.bounced_at IS NULL) AS delivered,
           bool_or(s.opened_at IS NOT NULL OR s.clicked_at IS NOT NULL) AS opened,
           bool_or(s.clicked_at IS NOT NULL) AS clicked,
           min(s.sent_at) FILTER (WHERE s.status IN ('sent', 'delivered', 'bounced')) AS first_sent_at
    FROM email_sends s
    WHERE s.organization_id = %(org)s AND s.campaign_id = ANY(%(campaigns)s::uuid[])
    GROUP BY s.campaign_id, s.customer_id
),
form_leads AS (
    -- Customers a form of the campaign created (a submission belongs to one form: no fan-out).
    SELECT f.campaign_id, sub.customer_id, min(sub.submitted_at) AS submitted_at
    FROM marketing_form_submissions sub
    JOIN marketing_forms f ON f.organization_id = sub.organization_id AND f.id = sub.form_id
    WHERE sub.organization_id = %(org)s AND sub.created_customer AND f.campaign_id = ANY(%(campaigns)s::uuid[])
    GROUP BY f.campaign_id, sub.customer_id
),
first_touch_leads AS (
    -- Customers whose very first interaction (by time, then id) names the campaign.
    SELECT DISTINCT i.campaign_id, i.customer_id
    FROM interaction_logs i
    WHERE i.organization_id = %(org)s AND i.campaign_id = ANY(%(campaigns)s::uuid[])
      AND NOT EXISTS (
          SELECT 1 FROM interaction_logs e
          WHERE e.organization_id = %(org)s AND e.customer_id = i.customer_id
            AND (e.interaction_date, e.id) < (i.interaction_date, i.id))
),
leads AS (
    SELECT campaign_id, customer_id FROM form_leads
    UNION
    SELECT campaign_id, customer_id FROM first_touch_leads
),
converted AS (
    -- Recipients with a deal won on or after the day of their first email of the campaign, and form
    -- leads with a deal won on or after the day they submitted (the organization's calendar days).
    SELECT r.campaign_id, r.customer_id FROM recipients r
    WHERE r.sent AND EXISTS (
        SELECT 1 FROM opportunities o
        WHERE o.organization_id = %(org)s AND o.customer_id = r.customer_id AND o.status = 'won'
          AND o.actual_close_date >= (r.first_sent_at AT TIME ZONE %(tz)s)::date)
    UNION
    SELECT l.campaign_id, l.customer_id FROM form_leads l
    WHERE EXISTS (
        SELECT 1 FROM opportunities o
        WHERE o.organization_id = %(org)s AND o.customer_id = l.customer_id AND o.status = 'won'
          AND o.actual_close_date >= (l.submitted_at AT TIME ZONE %(tz)s)::date)
),
send_counts AS (
    SELECT campaign_id, GROUPING(campaign_id) AS is_total,
           count(*) FILTER (WHERE sent) AS sent, count(*) FILTER (WHERE delivered) AS delivered,
           count(*) FILTER (WHERE opened) AS opened, count(*) FILTER (WHERE clicked) AS clicked
    FROM recipients GROUP BY GROUPING SETS ((campaign_id), ())
),
lead_counts AS (
    SELECT campaign_id, GROUPING(campaign_id) AS is_total, count(*) AS leads
    FROM leads GROUP BY GROUPING SETS ((campaign_id), ())
),
conversion_counts AS (
    SELECT campaign_id, GROUPING(campaign_id) AS is_total, count(*) AS conversions
    FROM converted GROUP BY GROUPING SETS ((campaign_id), ())
),
costs AS (
    -- Costs add up only in one currency: the organization's, as revenue is.
    SELECT c.id AS campaign_id, GROUPING(c.id) AS is_total, sum(c.actual_cost) AS cost
    FROM campaigns c
    WHERE c.organization_id = %(org)s AND c.id = ANY(%(campaigns)s::uuid[]) AND c.currency = %(currency)s
    GROUP BY GROUPING SETS ((c.id), ())
),
keys AS (
    SELECT k.id AS campaign_id, 0 AS is_total FROM unnest(%(campaigns)s::uuid[]) AS k(id)
    UNION ALL
    SELECT NULL, 1
)
SELECT k.campaign_id, k.is_total = 1,
       coalesce(s.sent, 0), coalesce(s.delivered, 0), coalesce(s.opened, 0), coalesce(s.clicked, 0),
       coalesce(l.leads, 0), coalesce(v.conversions, 0), coalesce(c.cost, 0.00)
FROM keys k
LEFT JOIN send_counts s ON s.is_total = k.is_total AND s.campaign_id IS NOT DISTINCT FROM k.campaign_id
LEFT JOIN lead_counts l ON l.is_total = k.is_total AND l.campaign_id IS NOT DISTINCT FROM k.campaign_id
LEFT JOIN conversion_counts v ON v.is_total = k.is_total AND v.campaign_id IS NOT DISTINCT FROM k.campaign_id
LEFT JOIN costs c ON c.is_total = k.is_total AND c.campaign_id IS NOT DISTINCT FROM k.campaign_id
"""


def percent(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    """part ÷ whole in percent to one decimal, half up; None when there is no whole to divide by."""
    if not whole:
        return None
    return (Decimal(100) * Decimal(part) / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Period:
    start: datetime.date
    end: datetime.date  # included


@dataclass(frozen=True)
class Counts:
    """The counted figures of one campaign (or of all, for the totals)."""

    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    leads: int = 0
    conversions: int = 0
    cost: Decimal = ZERO  # in the organization's currency (the totals: its campaigns in that currency)


@dataclass
class FunnelStage:
    key: str
    label: str
    count: int
    of_previous: Decimal | None  # % of the stage before
    of_first: Decimal | None  # % of sent


@dataclass
class CampaignFigures:
    """What a campaign (`campaign` None: the totals of a comparison) achieved, and the ratios of it."""

    campaign: Campaign | None
    counts: Counts
    revenue: CampaignRevenue
    model: str
    currency: str  # the organization's: revenue's, and the cost's when `cost_comparable`
    cost: Decimal
    cost_currency: str
    # Totals only: some campaigns' costs are in another currency and are left out of `cost`.
    partial_cost: bool = False

    @property
    def cost_comparable(self) -> bool:
        """The cost is all of it and in the revenue's currency: only then is ROI meaningful."""
        return self.cost_currency == self.currency and not self.partial_cost

    @property
    def attributed(self) -> Decimal:
        return self.revenue.for_model(self.model)

    @property
    def delivery_rate(self) -> Decimal | None:
        return percent(self.counts.delivered, self.counts.sent)

    @property
    def open_rate(self) -> Decimal | None:
        """Opened ÷ delivered (a click counts as an open: images may have been blocked)."""
        return percent(self.counts.opened, self.counts.delivered)

    @property
    def click_rate(self) -> Decimal | None:
        """Clicked ÷ delivered."""
        return percent(self.counts.clicked, self.counts.delivered)

    @property
    def cost_per_lead(self) -> Decimal | None:
        """Cost ÷ leads, in the cost's currency."""
        if not self.counts.leads or self.partial_cost:
            return None
        return (self.cost / self.counts.leads).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    @property
    def roi(self) -> Decimal | None:
        """ROI under the chosen model."""
        return self.roi_for(self.model)

    def roi_for(self, model: str) -> Decimal | None:
        """(revenue - cost) ÷ cost in percent; None when there is no cost or it is in another currency."""
        if not self.cost or not self.cost_comparable:
            return None
        return percent(self.revenue.for_model(model) - self.cost, self.cost)

    @property
    def funnel(self) -> list[FunnelStage]:
        """Sent → delivered → opened → clicked → converted (converted counts form leads too, so it is not
        a subset of clicked: see docs/attribution.md)."""
        c = self.counts
        stages = [
            ("sent", _("Sent"), c.sent),
            ("delivered", _("Delivered"), c.delivered),
            ("opened", _("Opened"), c.opened),
            ("clicked", _("Clicked"), c.clicked),
            ("converted", _("Converted"), c.conversions),
        ]
        result = []
        previous = None
        for key, label, count in stages:
            result.append(
                FunnelStage(
                    key=key,
                    label=label,
                    count=count,
                    of_previous=percent(count, previous) if previous is not None else None,
                    of_first=percent(count, c.sent) if key != "sent" else None,
                )
            )
            previous = count
        return result


def _figures(
    *, organization: Organization, campaign_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, Counts], Counts]:
    """Counts per campaign and their totals (one query)."""
    params = {
        "org": organization.pk,
        "campaigns": campaign_ids,
        "tz": organization.time_zone or "UTC",
        "currency": organization.currency,
    }
    with connection.cursor() as cursor:
        cursor.execute(FIGURES_SQL, params)
        rows = cursor.fetchall()
    per_campaign: dict[uuid.UUID, Counts] = {}
    total = Counts()
    for campaign_id, is_total, sent, delivered, opened, clicked, leads, conversions, cost in rows:
        counts = Counts(sent, delivered, opened, clicked, leads, conversions, cost)
        if is_total:
            total = counts
        else:
            per_campaign[campaign_id] = counts
    return per_campaign, total


def _organization(actor: User, capability: Capability) -> Organization:
    if actor is None or not actor.organization_id or not has_capability(actor, capability):
        raise Http404
    return actor.organization


def _campaign_figures(
    campaign: Campaign, counts: Counts, revenue: CampaignRevenue, model: str, organization: Organization
) -> CampaignFigures:
    return CampaignFigures(
        campaign=campaign,
        counts=counts,
        revenue=revenue,
        model=model,
        currency=organization.currency,
        cost=campaign.actual_cost,
        cost_currency=campaign.currency,
    )


def campaign_funnel(
    *, actor: User, campaign: Campaign, model: str = AttributionModel.LINEAR
) -> CampaignFigures:
    """One campaign's funnel, leads, cost per lead, attributed revenue and ROI (two queries)."""
    organization = _organization(actor, Capability.VIEW_CAMPAIGNS)
    if campaign.organization_id != organization.pk:
        raise Http404
    model = AttributionModel(model)
    per_campaign, _total = _figures(organization=organization, campaign_ids=[campaign.pk])
    found = attribution(
        organization_id=organization.pk, campaign_ids=[campaign.pk], organization=organization
    )
    return _campaign_figures(
        campaign, per_campaign.get(campaign.pk, Counts()), found.revenue(campaign.pk), model, organization
    )


@dataclass
class Comparison:
    period: Period
    model: str
    currency: str
    rows: list[CampaignFigures]
    total: CampaignFigures
    sort: str
    truncated: bool = False  # more campaigns matched than MAX_COMPARED
    other_currency_deals: int = 0  # won deals in other currencies touching these campaigns: not counted
    other_currency_campaigns: list[Campaign] = field(default_factory=list)  # costs left out of the totals

    def chart(self, detail_url: Callable[[Campaign], str]) -> dict:
        """Cost and attributed revenue per campaign, in the table's order, for the chart."""
        return {
            "currency": self.currency,
            "labels": [row.campaign.name for row in self.rows],
            "cost": [float(row.cost) if row.cost_comparable else None for row in self.rows],
            "revenue": [float(row.attributed) for row in self.rows],
            "urls": [detail_url(row.campaign) for row in self.rows],
        }


def _none_last(value, descending: bool):
    """A sort key that puts missing values last whichever the direction."""
    if value is None:
        return (1, 0)
    return (0, -value if descending else value)


SORTS: dict[str, Callable[[CampaignFigures], object]] = {
    "cost": lambda r: r.cost if r.cost_comparable else None,
    "sent": lambda r: r.counts.sent,
    "open_rate": lambda r: r.open_rate,
    "click_rate": lambda r: r.click_rate,
    "leads": lambda r: r.counts.leads,
    "cost_per_lead": lambda r: r.cost_per_lead if r.cost_comparable else None,
    "conversions": lambda r: r.counts.conversions,
    "revenue": lambda r: r.attributed,
    "roi": lambda r: r.roi,
}
DEFAULT_SORT = "-revenue"


def _sorted(rows: list[CampaignFigures], sort: str) -> tuple[list[CampaignFigures], str]:
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key == "name":
        ordered = sorted(
            rows, key=lambda r: (r.campaign.name.casefold(), str(r.campaign.pk)), reverse=descending
        )
        return ordered, sort
    if key not in SORTS:
        return _sorted(rows, DEFAULT_SORT)
    # Ties keep the name order; missing values (no cost, nothing delivered) go last either way.
    by_name = sorted(rows, key=lambda r: (r.campaign.name.casefold(), str(r.campaign.pk)))
    return sorted(by_name, key=lambda r: _none_last(SORTS[key](r), descending)), sort


def compared_campaigns(*, organization: Organization, period: Period, status: str = "", channel: str = ""):
    """The organization's campaigns that ran during the period: from their start date (their creation day
    when they have none) to their end date (open-ended when they have none)."""
    zone = zoneinfo.ZoneInfo(organization.time_zone or "UTC")
    period_end = datetime.datetime.combine(period.end + datetime.timedelta(days=1), datetime.time(), zone)
    campaigns = Campaign.objects.filter(organization_id=organization.pk).filter(
        Q(start_date__lte=period.end) | Q(start_date__isnull=True, created_at__lt=period_end),
        Q(end_date__isnull=True) | Q(end_date__gte=period.start),
    )
    if status:
        campaigns = campaigns.filter(status=status)
    if channel:
        campaigns = campaigns.filter(channels__contains=[channel])
    return campaigns.order_by("-start_date", "-created_at", "-id")


def campaign_comparison(
    *,
    actor: User,
    period: Period,
    status: str = "",
    channel: str = "",
    model: str = AttributionModel.LINEAR,
    sort: str = DEFAULT_SORT,
) -> Comparison:
    """The campaigns that ran in the period side by side, each with its figures to date (the same numbers
    as its own page), sorted by `sort` ("-revenue", "name", ...), with totals. Three queries whatever the
    number of campaigns (plus the organization's row when the actor's is not loaded yet)."""
    organization = _organization(actor, Capability.VIEW_MARKETING_REPORTS)
    model = AttributionModel(model)
    campaigns = list(
        compared_campaigns(organization=organization, period=period, status=status, channel=channel)[
            : MAX_COMPARED + 1
        ]
    )
    truncated = len(campaigns) > MAX_COMPARED
    campaigns = campaigns[:MAX_COMPARED]
    ids = [c.pk for c in campaigns]
    per_campaign, total_counts = _figures(organization=organization, campaign_ids=ids)
    found: Attribution = attribution(
        organization_id=organization.pk, campaign_ids=ids, organization=organization
    )
    rows = [
        _campaign_figures(c, per_campaign.get(c.pk, Counts()), found.revenue(c.pk), model, organization)
        for c in campaigns
    ]
    rows, sort = _sorted(rows, sort or DEFAULT_SORT)
    total = CampaignFigures(
        campaign=None,
        counts=total_counts,
        revenue=found.total,
        model=model,
        currency=organization.currency,
        cost=total_counts.cost,
        cost_currency=organization.currency,
        partial_cost=any(c.currency != organization.currency for c in campaigns),
    )
    return Comparison(
        period=period,
        model=model,
        currency=organization.currency,
        rows=rows,
        total=total,
        sort=sort,
        truncated=truncated,
        other_currency_deals=found.other_currency_deals,
        other_currency_campaigns=[c for c in campaigns if c.currency != organization.currency],
    )
