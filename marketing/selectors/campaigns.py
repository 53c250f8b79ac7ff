"""Reads of the campaigns area: the list (filters, keyset pages, counts per status), one campaign with its
segments, costs, sequences and forms, its goals against actuals, the pickers of the campaign form and of
the deal / interaction forms, and global search.

Every campaign of the organization is visible to whoever holds VIEW_CAMPAIGNS; every read filters by the
actor's organization (row-level security is the second wall). Query counts are fixed: the list reads its
page, a capped count and one GROUP BY for the per-status counts, however many campaigns there are.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Count, IntegerField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.formats import date_format

from crm.models import User
from crm.search import SearchResult
from customers.models import Segment
from marketing.attribution import campaign_revenue
from marketing.models import Campaign, CampaignChannel, CostEntry, EmailTemplate, LeadForm, Sequence

LIST_CAP = 1000  # the list says "1,000+" rather than counting to the end
SEARCH_LIMIT = 100
PICKER_LIMIT = 500  # campaigns offered by the deal and interaction forms' selects (newest first)
PERCENT = Decimal("0.1")

# A date column may be empty, and a keyset cursor cannot carry NULL or a date: a campaign without a start
# date sorts as the earliest, by its day number.
_START_KEY = RawSQL("coalesce(campaigns.start_date - date '1970-01-01', -1000000)", [], IntegerField())

# Orderings offered by the list, each ending with a unique key for keyset pagination.
ORDERINGS = {
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "start": ("start_key", "id"),
    "-start": ("-start_key", "-id"),
    "budget": ("budget", "id"),
    "-budget": ("-budget", "-id"),
    "cost": ("actual_cost", "id"),
    "-cost": ("-actual_cost", "-id"),
    "sent": ("sent_count", "id"),
    "-sent": ("-sent_count", "-id"),
}
DEFAULT_ORDERING = "-created"


def _percent(numerator: int | Decimal, denominator: int | Decimal) -> Decimal | None:
    """numerator / denominator in percent, one decimal (half-up); None when there is nothing to divide by."""
    if not denominator:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(PERCENT, rounding=ROUND_HALF_UP)


def reached(campaign: Campaign) -> int:
    """Emails that reached an inbox as far as we know: sent minus bounced (the denominator of the rates)."""
    return max(campaign.sent_count - campaign.bounced_count, 0)


def open_rate(campaign: Campaign) -> Decimal | None:
    """Unique opens over emails sent and not bounced, in percent."""
    return _percent(campaign.opened_count, reached(campaign))


def click_rate(campaign: Campaign) -> Decimal | None:
    """Unique clicks over emails sent and not bounced, in percent."""
    return _percent(campaign.clicked_count, reached(campaign))


def channel_labels(campaign: Campaign) -> list[str]:
    labels = dict(CampaignChannel.choices)
    return [str(labels.get(value, value)) for value in campaign.channels]


def budget_used(campaign: Campaign) -> Decimal | None:
    """Actual cost over budget, in percent (None without a budget)."""
    return _percent(campaign.actual_cost, campaign.budget)


# --- The list ------------------------------------------------------------------------------------------------


def campaigns_of(*, actor: User) -> QuerySet[Campaign]:
    return Campaign.objects.filter(organization_id=actor.organization_id)


def campaign_list(*, actor: User) -> QuerySet[Campaign]:
    """The list's rows: the campaign, its owner and the sort key of its start date."""
    return campaigns_of(actor=actor).select_related("owner").annotate(start_key=_START_KEY)


def capped_count(queryset: QuerySet, cap: int = LIST_CAP) -> tuple[int, bool]:
    """(count, capped): counts at most cap + 1 rows, so a large list is never counted to the end."""
    n = queryset.order_by()[: cap + 1].count()
    return min(n, cap), n > cap


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int


def status_counts(*, actor: User) -> list[StatusCount]:
    """How many of the organization's campaigns are in each status (every status listed, zeros included):
    one GROUP BY on the (organization_id, status) index."""
    rows = dict(
        campaigns_of(actor=actor)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("status", "n")
    )
    return [StatusCount(value, str(label), rows.get(value, 0)) for value, label in Campaign.Status.choices]


def owner_choices(*, actor: User) -> list[User]:
    """Who may own a campaign: the organization's active users."""
    return list(
        User.objects.filter(organization_id=actor.organization_id, is_active=True)
        .only("id", "first_name", "last_name", "email")
        .order_by("first_name", "last_name", "id")
    )


# --- One campaign --------------------------------------------------------------------------------------------


def campaign_get(*, actor: User, pk) -> Campaign:
    """One campaign of the actor's organization, or 404."""
    return get_object_or_404(
        campaigns_of(actor=actor).select_related("owner", "template", "created_by"), pk=pk
    )


def segments_of(*, campaign: Campaign) -> list[Segment]:
    return list(
        Segment.objects.filter(
            organization_id=campaign.organization_id,
            pk__in=campaign.campaign_segments.filter(organization_id=campaign.organization_id).values(
                "segment_id"
            ),
        ).order_by("name")
    )


def cost_entries(*, campaign: Campaign) -> list[CostEntry]:
    return list(
        CostEntry.objects.filter(organization_id=campaign.organization_id, campaign_id=campaign.pk)
        .select_related("created_by")
        .order_by("-incurred_on", "-created_at", "-id")
    )


def cost_entry_get(*, campaign: Campaign, pk) -> CostEntry:
    """One cost entry of the campaign, or 404 (an entry of another campaign or organization)."""
    return get_object_or_404(
        CostEntry.objects.filter(organization_id=campaign.organization_id, campaign_id=campaign.pk), pk=pk
    )


def sequences_of(*, campaign: Campaign) -> list[Sequence]:
    return list(
        Sequence.objects.filter(organization_id=campaign.organization_id, campaign_id=campaign.pk).order_by(
            "name"
        )
    )


def forms_of(*, campaign: Campaign) -> list[LeadForm]:
    return list(
        LeadForm.objects.filter(organization_id=campaign.organization_id, campaign_id=campaign.pk).order_by(
            "name"
        )
    )


# --- Goals against actuals -----------------------------------------------------------------------------------

# A lead of a campaign: a customer created by a submission of one of its forms, or a customer whose very
# first interaction (earliest interaction_date, then id) is with the campaign. Each customer counts once.
LEADS_SQL = """
SELECT count(*) FROM (
    SELECT s.customer_id
    FROM marketing_form_submissions s
    JOIN marketing_forms f ON f.organization_id = s.organization_id AND f.id = s.form_id
    WHERE s.organization_id = %(org)s AND f.campaign_id = %(campaign)s AND s.created_customer
    UNION
    SELECT i.customer_id
    FROM interaction_logs i
    WHERE i.organization_id = %(org)s AND i.campaign_id = %(campaign)s
      AND NOT EXISTS (
          SELECT 1 FROM interaction_logs e
          WHERE e.organization_id = i.organization_id AND e.customer_id = i.customer_id
            AND (e.interaction_date, e.id) < (i.interaction_date, i.id)
      )
) AS leads
"""

# Won deals whose source campaign is this one: conversions the CRM records itself.
WON_DEALS_SQL = """
SELECT count(*) FROM opportunities
WHERE organization_id = %(org)s AND source_campaign_id = %(campaign)s AND status = 'won'
"""


@dataclass(frozen=True)
class GoalLine:
    key: str
    goal: int | Decimal | None
    actual: int | Decimal | None
    comparable: bool = True  # False: goal and actual are in different currencies

    @property
    def percent(self) -> Decimal | None:
        """How far the actual is towards the goal, in percent (None without a goal or an actual)."""
        if self.goal in (None, 0) or self.actual is None or not self.comparable:
            return None
        return _percent(self.actual, self.goal)

    @property
    def bar(self) -> int:
        """The progress bar's width class (0 to 100)."""
        return min(int(self.percent or 0), 100)


@dataclass(frozen=True)
class Actuals:
    leads: int
    entered_conversions: int
    won_deals: int
    revenue: Decimal  # won revenue attributed by the linear model (marketing/attribution.py)
    goals: tuple[GoalLine, ...]

    @property
    def conversions(self) -> int:
        return self.entered_conversions + self.won_deals


def _scalar(sql: str, params: dict) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0] or 0


def actuals_of(*, campaign: Campaign, organization_currency: str) -> Actuals:
    """Leads, conversions (entered + won deals sourced by the campaign) and attributed revenue (linear
    model, in the organization's currency), each beside its goal: two counting queries, plus what
    attribution reads. The revenue goal is in the campaign's currency: when that is another one, the page
    shows both without a percentage."""
    params = {"org": campaign.organization_id, "campaign": campaign.pk}
    leads = _scalar(LEADS_SQL, params)
    won = _scalar(WON_DEALS_SQL, params)
    revenue = campaign_revenue(campaign)
    conversions = campaign.conversions + won
    return Actuals(
        leads=leads,
        entered_conversions=campaign.conversions,
        won_deals=won,
        revenue=revenue,
        goals=(
            GoalLine("leads", campaign.goal_leads, leads),
            GoalLine("conversions", campaign.goal_conversions, conversions),
            GoalLine(
                "revenue",
                campaign.goal_revenue,
                revenue,
                comparable=campaign.currency == organization_currency,
            ),
        ),
    )


# --- Pickers -------------------------------------------------------------------------------------------------


def template_choices(*, actor: User, include: EmailTemplate | None = None) -> list[EmailTemplate]:
    """Templates a campaign may use: the organization's that are not archived (plus its current one)."""
    templates = EmailTemplate.objects.filter(organization_id=actor.organization_id).filter(
        Q(is_archived=False) | Q(pk=getattr(include, "pk", None))
    )
    return list(templates.only("id", "name", "organization_id").order_by("name"))


def segment_choices(*, actor: User) -> list[Segment]:
    return list(
        Segment.objects.filter(organization_id=actor.organization_id)
        .only("id", "name", "member_count", "organization_id")
        .order_by("name")
    )


def campaign_options(*, organization_id, include_id=None) -> list[Campaign]:
    """The organization's campaigns for the deal form's "Source campaign" and the interaction form's
    campaign select: newest first, capped, plus the one already chosen (id and name only; one query, two
    when the chosen one is beyond the cap)."""
    campaigns = Campaign.objects.filter(organization_id=organization_id).only("id", "name", "organization_id")
    rows = list(campaigns.order_by("-created_at", "-id")[:PICKER_LIMIT])
    if include_id and all(c.pk != include_id for c in rows):
        rows += list(campaigns.filter(pk=include_id))
    return rows


# --- Global search -------------------------------------------------------------------------------------------


def search_campaigns(*, user: User, query: str, limit: int) -> list[SearchResult]:
    """Global search provider: campaigns by name, newest first."""
    matches = (
        campaigns_of(actor=user)
        .filter(name__icontains=query[:SEARCH_LIMIT])
        .order_by("-created_at", "-id")[:limit]
    )
    return [
        SearchResult(
            kind="Campaigns",
            title=c.name,
            subtitle=" · ".join(
                filter(
                    None,
                    [
                        str(c.get_status_display()),
                        ", ".join(channel_labels(c)),
                        _date_range(c.start_date, c.end_date),
                    ],
                )
            ),
            url=reverse("marketing:campaign_detail", args=[c.pk]),
            icon="megaphone",
        )
        for c in matches
    ]


def _date_range(start: datetime.date | None, end: datetime.date | None) -> str:
    days = [date_format(d, "M j, Y") for d in (start, end) if d]
    return " \N{EN DASH} ".join(days)
