"""Attribution of won revenue to campaigns: first-touch, last-touch and linear (docs/attribution.md).

For each won opportunity, its touches are the interactions of its customer that name a campaign
(`interaction_logs.campaign_id`) from the lookback window before the won moment (the end of the
opportunity's close day in the organization's time zone), plus its `source_campaign` as a touch at the
moment the opportunity was created. Touches are ordered by (time, id); the first gets all the revenue in
first-touch, the last all of it in last-touch, and each touch an equal share in linear (a campaign touched
twice gets two shares).

One statement for every model at once, set-based. Fan-out: an opportunity is joined to its customer's
interactions only (one deal, many touches), the shares are fixed per deal by window functions over that
deal's touches alone, and campaigns are grouped only at the end, so a customer with two won deals and three
touches gives each deal's revenue out exactly once. Nothing else is joined beside them.

Revenue is in the organization's currency (as sales/analytics.py counts closed-won revenue): won deals in
another currency are not converted and not attributed; they are counted in `other_currency_deals` so the
pages can say so.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, models
from django.utils.translation import gettext_lazy as _

from crm.models import Organization

ZERO = Decimal("0.00")
DEFAULT_LOOKBACK_DAYS = 365


class AttributionModel(models.TextChoices):
    FIRST_TOUCH = "first_touch", _("First touch")
    LAST_TOUCH = "last_touch", _("Last touch")
    LINEAR = "linear", _("Linear")


ATTRIBUTION_SQL = """
WITH won AS (
    SELECT o.id, o.customer_id, o.amount, o.currency = %(currency)s AS in_currency, o.created_at,
           o.source_campaign_id,
           -- The won moment: the end of the close day, in the organization's time zone.
           ((o.actual_close_date + 1)::timestamp AT TIME ZONE %(tz)s) AS won_at
    FROM opportunities o
    WHERE o.organization_id = %(org)s AND o.status = 'won'
      AND (%(start)s::date IS NULL OR o.actual_close_date >= %(start)s::date)
      AND (%(end)s::date IS NULL OR o.actual_close_date <= %(end)s::date)
),
deals AS (
    -- Only the deals that touch one of the campaigns asked for (all deals when none are named): the
    -- other campaigns' touches of these deals still take their shares below.
    SELECT w.* FROM won w
    WHERE %(campaigns)s::uuid[] IS NULL
       OR w.source_campaign_id = ANY(%(campaigns)s::uuid[])
       OR EXISTS (
            SELECT 1 FROM interaction_logs i
            WHERE i.organization_id = %(org)s AND i.customer_id = w.customer_id
              AND i.campaign_id = ANY(%(campaigns)s::uuid[])
              AND i.interaction_date < w.won_at
              AND i.interaction_date >= w.won_at - make_interval(days => %(lookback)s))
),
touches AS (
    SELECT d.id AS opportunity_id, d.amount, i.campaign_id, i.interaction_date AS touched_at, i.id AS touch_id
    FROM deals d
    JOIN interaction_logs i
      ON i.organization_id = %(org)s AND i.customer_id = d.customer_id AND i.campaign_id IS NOT NULL
     AND i.interaction_date < d.won_at
     AND i.interaction_date >= d.won_at - make_interval(days => %(lookback)s)
    WHERE d.in_currency
    UNION ALL
    -- The deal's own source campaign: a touch when the deal was created (its id breaks ties).
    SELECT d.id, d.amount, d.source_campaign_id, d.created_at, d.id
    FROM deals d
    WHERE d.in_currency AND d.source_campaign_id IS NOT NULL
),
ranked AS (
    SELECT opportunity_id, campaign_id, amount,
           row_number() OVER (PARTITION BY opportunity_id ORDER BY touched_at, touch_id) AS from_first,
           row_number() OVER (PARTITION BY opportunity_id ORDER BY touched_at DESC, touch_id DESC) AS from_last,
           count(*) OVER (PARTITION BY opportunity_id) AS touch_count
    FROM touches
)
SELECT campaign_id, GROUPING(campaign_id) AS is_total,
       coalesce(sum(amount) FILTER (WHERE from_first = 1), 0.00) AS first_touch,
       coalesce(sum(amount) FILTER (WHERE from_last = 1), 0.00) AS last_touch,
       coalesce(round(sum(amount / touch_count), 2), 0.00) AS linear,
       count(DISTINCT opportunity_id) AS deals,
       (SELECT count(*) FROM deals WHERE NOT in_currency) AS other_currency_deals
FROM ranked
WHERE %(campaigns)s::uuid[] IS NULL OR campaign_id = ANY(%(campaigns)s::uuid[])
GROUP BY GROUPING SETS ((campaign_id), ())
"""


@dataclass(frozen=True)
class CampaignRevenue:
    """A campaign's (or a total's) attributed revenue under each model, and the won deals it touched."""

    first_touch: Decimal = ZERO
    last_touch: Decimal = ZERO
    linear: Decimal = ZERO
    deals: int = 0

    def for_model(self, model: str) -> Decimal:
        return getattr(self, AttributionModel(model).value)


@dataclass
class Attribution:
    """Revenue per campaign; `total` is computed by the database over the same touches (not summed from the
    rounded rows), so a linear total may differ from the sum of the rows by a cent."""

    currency: str
    by_campaign: dict[uuid.UUID, CampaignRevenue] = field(default_factory=dict)
    total: CampaignRevenue = field(default_factory=CampaignRevenue)
    other_currency_deals: int = 0

    def revenue(self, campaign_id: uuid.UUID) -> CampaignRevenue:
        return self.by_campaign.get(campaign_id, CampaignRevenue())


def attribution(
    *,
    organization_id: uuid.UUID,
    start: datetime.date | None = None,
    end: datetime.date | None = None,
    campaign_ids: list[uuid.UUID] | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    organization: Organization | None = None,
) -> Attribution:
    """Won revenue per campaign under every model, for deals closed between `start` and `end` (both
    included; None: unbounded), limited to `campaign_ids` when given. One query (two without
    `organization`, whose currency and time zone it needs)."""
    if lookback_days < 0:
        raise ValueError("lookback_days must not be negative")
    if organization is None:
        organization = Organization.objects.only("currency", "time_zone").get(pk=organization_id)
    params = {
        "org": organization_id,
        "currency": organization.currency,
        "tz": organization.time_zone or "UTC",
        "start": start,
        "end": end,
        "campaigns": list(campaign_ids) if campaign_ids is not None else None,
        "lookback": lookback_days,
    }
    result = Attribution(currency=organization.currency)
    with connection.cursor() as cursor:
        cursor.execute(ATTRIBUTION_SQL, params)
        rows = cursor.fetchall()
    for campaign_id, is_total, first, last, linear, deals, other in rows:
        revenue = CampaignRevenue(first_touch=first, last_touch=last, linear=linear, deals=deals)
        result.other_currency_deals = other
        if is_total:
            result.total = revenue
        else:
            result.by_campaign[campaign_id] = revenue
    return result


def attributed_revenue(
    *,
    organization_id: uuid.UUID,
    model: str,
    start: datetime.date | None,
    end: datetime.date | None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
) -> dict[uuid.UUID, Decimal]:
    """Revenue of the deals won between `start` and `end` attributed to each campaign under `model`, in the
    organization's currency. Campaigns that got nothing are left out."""
    model = AttributionModel(model)
    found = attribution(organization_id=organization_id, start=start, end=end, lookback_days=lookback_days)
    return {
        campaign_id: revenue.for_model(model)
        for campaign_id, revenue in found.by_campaign.items()
        if revenue.for_model(model)
    }


def campaign_revenue_by_model(
    campaign, *, lookback_days: int = DEFAULT_LOOKBACK_DAYS, organization: Organization | None = None
) -> CampaignRevenue:
    """Everything the campaign has been credited with so far (deals won at any time), under each model."""
    found = attribution(
        organization_id=campaign.organization_id,
        campaign_ids=[campaign.pk],
        lookback_days=lookback_days,
        organization=organization,
    )
    return found.revenue(campaign.pk)


def campaign_revenue(
    campaign, model: str = AttributionModel.LINEAR, *, lookback_days: int = DEFAULT_LOOKBACK_DAYS
) -> Decimal:
    """The campaign's attributed revenue so far under `model`, in the organization's currency (for the
    campaign page)."""
    return campaign_revenue_by_model(campaign, lookback_days=lookback_days).for_model(model)
