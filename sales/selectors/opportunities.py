"""Reads of the opportunities area: the board, the list, one deal with its history, the customer 360 panel,
global search and the CSV export. Every read starts from `visible_opportunities(actor=...)`, so a deal the
actor may not see (another organization, or a colleague's in "own only" mode) is never read.

Query counts are fixed: the board reads its pipelines, its stages, the column totals (one aggregate) and
the first cards of every column (one window query), however many deals there are."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from itertools import groupby

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, DecimalField, F, Q, QuerySet, Sum, Window
from django.db.models.functions import Coalesce, RowNumber
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import User
from crm.search import SearchResult
from customers.models import Customer
from sales.models import ForecastCategory, Opportunity, OpportunityChange, Pipeline, Stage
from sales.selectors import visible_opportunities

CENT = Decimal("0.01")
BOARD_CARDS = 20  # cards drawn per column; the rest is "+ k more", a link to the filtered list
PANEL_DEALS = 10  # open deals listed on the customer 360 panel (count and total cover them all)
HISTORY_LIMIT = 200
LIST_CAP = 1000  # the list says "1,000+" rather than counting to the end

# Orderings offered by the list, each ending with a unique key for keyset pagination.
ORDERINGS = {
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "amount": ("amount", "id"),
    "-amount": ("-amount", "-id"),
    "probability": ("probability", "id"),
    "-probability": ("-probability", "-id"),
    "close": ("expected_close_date", "id"),
    "-close": ("-expected_close_date", "-id"),
}
DEFAULT_ORDERING = "-created"


def weighted(amount_times_probability: Decimal | None) -> Decimal:
    """Sum of amount * probability / 100, rounded half-up to the cent once, on the sum (not per deal)."""
    return (Decimal(amount_times_probability or 0) / 100).quantize(CENT, rounding=ROUND_HALF_UP)


# --- Pipelines and stages ------------------------------------------------------------------------------------


def pipelines_of(*, actor: User) -> list[Pipeline]:
    return list(
        Pipeline.objects.filter(organization_id=actor.organization_id).order_by("-is_default", "name")
    )


def pipeline_get(*, actor: User, pk) -> Pipeline:
    return get_object_or_404(Pipeline.objects.filter(organization_id=actor.organization_id), pk=pk)


def stage_get(*, actor: User, pk) -> Stage:
    return get_object_or_404(
        Stage.objects.filter(organization_id=actor.organization_id).select_related("pipeline"), pk=pk
    )


def stages_of(*, pipeline: Pipeline) -> list[Stage]:
    return list(
        Stage.objects.filter(organization_id=pipeline.organization_id, pipeline_id=pipeline.pk).order_by(
            "position", "id"
        )
    )


def stages_by_pipeline(*, actor: User) -> list[tuple[Pipeline, list[Stage]]]:
    """Every pipeline of the organization with its stages in order (one query): the stage pickers."""
    stages = (
        Stage.objects.filter(organization_id=actor.organization_id)
        .select_related("pipeline")
        .order_by("-pipeline__is_default", "pipeline__name", "pipeline_id", "position", "id")
    )
    return [(pipeline, list(group)) for pipeline, group in groupby(stages, key=lambda s: s.pipeline)]


def deal_counts_by_stage(*, pipeline: Pipeline) -> dict:
    """How many deals each stage of the pipeline holds (all statuses, all owners): the settings page, which
    refuses to delete a stage that holds any."""
    rows = (
        Opportunity.objects.filter(organization_id=pipeline.organization_id, pipeline_id=pipeline.pk)
        .values("stage_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["stage_id"]: row["n"] for row in rows}


def deal_counts_by_pipeline(*, actor: User) -> dict:
    rows = (
        Opportunity.objects.filter(organization_id=actor.organization_id)
        .values("pipeline_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["pipeline_id"]: row["n"] for row in rows}


# --- The board -----------------------------------------------------------------------------------------------


@dataclass
class BoardFilters:
    owner: str = ""  # "" everyone the actor may see, "mine", "none" (unassigned), or a user id
    close_from: datetime.date | None = None
    close_to: datetime.date | None = None


@dataclass
class BoardColumn:
    stage: Stage
    count: int = 0
    total: Decimal = Decimal("0.00")
    weighted: Decimal = Decimal("0.00")
    cards: list[Opportunity] = field(default_factory=list)

    @property
    def more(self) -> int:
        return self.count - len(self.cards)


def _close_date_filter(queryset: QuerySet, close_from, close_to) -> QuerySet:
    """A deal's close date is when it closed, or, while open, when it is expected to close."""
    if close_from is None and close_to is None:
        return queryset
    queryset = queryset.alias(close_date=Coalesce("actual_close_date", "expected_close_date"))
    if close_from is not None:
        queryset = queryset.filter(close_date__gte=close_from)
    if close_to is not None:
        queryset = queryset.filter(close_date__lte=close_to)
    return queryset


def _owner_filter(queryset: QuerySet, owner: str, actor: User) -> QuerySet:
    if owner == "mine":
        return queryset.filter(assigned_to_id=actor.pk)
    if owner == "none":
        return queryset.filter(assigned_to__isnull=True)
    if owner:
        return queryset.filter(assigned_to_id=owner)
    return queryset


def board_deals(*, actor: User, pipeline: Pipeline, filters: BoardFilters) -> QuerySet[Opportunity]:
    deals = visible_opportunities(actor=actor).filter(pipeline_id=pipeline.pk)
    deals = _owner_filter(deals, filters.owner, actor)
    return _close_date_filter(deals, filters.close_from, filters.close_to)


def board(
    *,
    actor: User,
    pipeline: Pipeline,
    filters: BoardFilters | None = None,
    card_stage_ids: set | None = None,
    per_column: int | None = None,
) -> list[BoardColumn]:
    """One column per stage of `pipeline`: count, total and weighted total of the deals in it, and its
    first `per_column` cards by amount (only for the stages in `card_stage_ids` when given: redrawing the
    columns a move touched).

    Four queries whatever the number of deals: the stages, the visibility setting, one GROUP BY for every
    column's figures, and one window query (row_number() per stage) for the cards."""
    filters = filters or BoardFilters()
    per_column = per_column or BOARD_CARDS
    columns = [BoardColumn(stage=s) for s in stages_of(pipeline=pipeline)]
    if not columns:
        return []
    by_stage = {c.stage.pk: c for c in columns}
    deals = board_deals(actor=actor, pipeline=pipeline, filters=filters)
    figures = (
        deals.values("stage_id")
        .annotate(
            n=Count("id"),
            total=Sum("amount"),
            weighted_raw=Sum(F("amount") * F("probability"), output_field=DecimalField()),
        )
        .order_by()
    )
    for row in figures:
        column = by_stage.get(row["stage_id"])
        if column is not None:
            column.count = row["n"]
            column.total = (row["total"] or Decimal("0")).quantize(CENT)
            column.weighted = weighted(row["weighted_raw"])
    card_deals = deals
    if card_stage_ids is not None:
        card_deals = deals.filter(stage_id__in=list(card_stage_ids))
    cards = (
        card_deals.annotate(
            rank=Window(
                RowNumber(), partition_by=[F("stage_id")], order_by=[F("amount").desc(), F("id").desc()]
            )
        )
        .filter(rank__lte=per_column)
        .select_related("customer", "assigned_to")
        .order_by("stage_id", "rank")
    )
    for card in cards:
        if card.stage_id in by_stage:
            by_stage[card.stage_id].cards.append(card)
    return columns


def board_summary(columns: list[BoardColumn]) -> dict:
    """The board's header figures: the open columns' count, total and weighted total."""
    open_columns = [c for c in columns if c.stage.outcome == Stage.Outcome.OPEN]
    return {
        "count": sum(c.count for c in open_columns),
        "total": sum((c.total for c in open_columns), Decimal("0.00")),
        "weighted": sum((c.weighted for c in open_columns), Decimal("0.00")),
    }


# --- The list ------------------------------------------------------------------------------------------------


def opportunity_list(*, actor: User) -> QuerySet[Opportunity]:
    return visible_opportunities(actor=actor).select_related("customer", "stage", "assigned_to")


def capped_count(queryset: QuerySet, cap: int = LIST_CAP) -> tuple[int, bool]:
    """(count, capped): counts at most cap + 1 rows, so a large list is never counted to the end."""
    n = queryset.order_by()[: cap + 1].count()
    return min(n, cap), n > cap


def opportunity_get(*, actor: User, pk, for_update: bool = False) -> Opportunity:
    """One deal the actor may see, or 404."""
    return get_object_or_404(
        visible_opportunities(actor=actor).select_related(
            "customer", "stage", "pipeline", "assigned_to", "created_by", "source_campaign"
        ),
        pk=pk,
    )


def owner_choices(*, actor: User) -> list[User]:
    """Who may own a deal: the organization's active users."""
    return list(
        User.objects.filter(organization_id=actor.organization_id, is_active=True).only(
            "id", "first_name", "last_name", "email"
        )
    )


def customer_options(*, actor: User, query: str, limit: int = 8) -> list[Customer]:
    """Customers for the deal form's picker: by name, company, email or number (typo-tolerant, the
    customers list's search)."""
    from customers import selectors as customer_selectors

    query = (query or "").strip()
    base = customer_selectors.customers_of(actor=actor)
    if not query:
        return list(base.order_by("-created_at", "-id")[:limit])
    if query.upper().startswith("C-") and query[2:].isdigit():
        return list(base.filter(number=int(query[2:]))[:limit])
    matches = customer_selectors.search(base, query, organization_id=actor.organization_id)
    return list(matches.order_by("-similarity", "-id")[:limit])


def customer_get(*, actor: User, pk) -> Customer | None:
    from customers import selectors as customer_selectors

    return customer_selectors.customers_of(actor=actor).filter(pk=pk).first()


# --- History -------------------------------------------------------------------------------------------------


@dataclass
class HistoryLine:
    field: str
    label: str
    old: str
    new: str


@dataclass
class HistoryEntry:
    at: datetime.datetime
    by: User | None
    note: str
    lines: list[HistoryLine]


def _money(value: str, currency: str) -> str:
    try:
        return f"{Decimal(value):,.2f} {currency}"
    except (ArithmeticError, ValueError):
        return value


def _date(value: str) -> str:
    try:
        return datetime.date.fromisoformat(value).strftime("%b %-d, %Y")
    except ValueError:
        return value


def opportunity_history(*, opportunity: Opportunity, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    """The deal's changes, newest first, "from → to, when, who", with stage and owner ids resolved to their
    names. Changes made in one step (a move changes stage, status and probability together) form one entry.
    Three queries at most: the changes, the stages and the owners they name."""
    changes = list(
        OpportunityChange.objects.filter(
            organization_id=opportunity.organization_id, opportunity_id=opportunity.pk
        ).select_related("changed_by")[:limit]
    )
    stage_ids = {
        v
        for c in changes
        if c.field == OpportunityChange.Field.STAGE
        for v in (c.old_value, c.new_value)
        if v
    }
    user_ids = {
        v
        for c in changes
        if c.field == OpportunityChange.Field.OWNER
        for v in (c.old_value, c.new_value)
        if v
    }
    stage_names = (
        {
            str(pk): name
            for pk, name in Stage.objects.filter(
                organization_id=opportunity.organization_id, pk__in=stage_ids
            ).values_list("pk", "name")
        }
        if stage_ids
        else {}
    )
    user_names = (
        {
            str(u.pk): str(u)
            for u in User.objects.filter(organization_id=opportunity.organization_id, pk__in=user_ids).only(
                "id", "first_name", "last_name", "email"
            )
        }
        if user_ids
        else {}
    )
    statuses = dict(Opportunity.Status.choices)
    labels = dict(OpportunityChange.Field.choices)
    currency = opportunity.currency

    def show(field_name: str, value: str) -> str:
        if not value:
            return _("Unassigned") if field_name == OpportunityChange.Field.OWNER else "—"
        if field_name == OpportunityChange.Field.STAGE:
            return stage_names.get(value, _("(deleted stage)"))
        if field_name == OpportunityChange.Field.OWNER:
            return user_names.get(value, _("(former user)"))
        if field_name == OpportunityChange.Field.AMOUNT:
            return _money(value, currency)
        if field_name == OpportunityChange.Field.CLOSE_DATE:
            return _date(value)
        if field_name == OpportunityChange.Field.STATUS:
            return str(statuses.get(value, value))
        if field_name == OpportunityChange.Field.PROBABILITY:
            return f"{value} %"
        return value

    order = [f.value for f in OpportunityChange.Field]
    entries = []
    for (at, _by), group in groupby(changes, key=lambda c: (c.changed_at, c.changed_by_id)):
        group = sorted(group, key=lambda c: order.index(c.field) if c.field in order else len(order))
        entries.append(
            HistoryEntry(
                at=at,
                by=group[0].changed_by,
                note=next((c.note for c in group if c.note), ""),
                lines=[
                    HistoryLine(
                        field=c.field,
                        label=str(labels.get(c.field, c.field)),
                        old=show(c.field, c.old_value),
                        new=show(c.field, c.new_value),
                    )
                    for c in group
                ],
            )
        )
    return entries


def last_open_stage(*, opportunity: Opportunity, stages: list[Stage]) -> Stage | None:
    """The open stage a closed deal was in before it closed (from its history), else the first open stage:
    where "reopen" puts it back by default."""
    open_stages = {str(s.pk): s for s in stages if s.outcome == Stage.Outcome.OPEN}
    previous = (
        OpportunityChange.objects.filter(
            organization_id=opportunity.organization_id,
            opportunity_id=opportunity.pk,
            field=OpportunityChange.Field.STAGE,
            old_value__in=list(open_stages),
        )
        .values_list("old_value", flat=True)
        .first()
    )
    if previous in open_stages:
        return open_stages[previous]
    return next(iter(open_stages.values()), None)


# --- Customer 360 panel, merge, search -------------------------------------------------------------------


def open_opportunities_for_customer(*, customer: Customer, actor: User) -> dict:
    """The 360 page's "Open opportunities" (the design document's `active_opportunities`): the open deals
    the actor may see (largest first, at most PANEL_DEALS), and the count and total of all of them.
    Three queries: the visibility setting, one aggregate, one list."""
    deals = visible_opportunities(actor=actor).filter(customer_id=customer.pk, status=Opportunity.Status.OPEN)
    figures = deals.aggregate(
        n=Count("id"), total=Sum("amount"), currencies=ArrayAgg("currency", distinct=True)
    )
    rows = list(
        deals.select_related("stage").order_by("expected_close_date", "-amount", "-id")[:PANEL_DEALS]
        if figures["n"]
        else []
    )
    return {
        "count": figures["n"],
        "total": str((figures["total"] or Decimal("0")).quantize(CENT)),
        # One currency in the common case; with several, the total is given without one ("mixed").
        "currency": figures["currencies"][0] if len(figures["currencies"] or []) == 1 else "",
        "opportunities": [
            {
                "opportunity_id": str(d.pk),
                "name": d.name,
                "stage": d.stage.name,
                "value": str(d.amount),
                "currency": d.currency,
                "probability": d.probability,
                "close_date": d.expected_close_date.isoformat(),
                "url": reverse("sales:opportunity_detail", args=[d.pk]),
            }
            for d in rows
        ],
    }


def opportunities_count(*, organization_id, customer_id) -> int:
    """How many deals of one customer a merge would move (the merge page)."""
    return Opportunity.objects.filter(organization_id=organization_id, customer_id=customer_id).count()


def search_opportunities(*, user: User, query: str, limit: int) -> list[SearchResult]:
    """Global search provider: deals by name or their customer's company, newest first."""
    matches = (
        visible_opportunities(actor=user)
        .filter(Q(name__icontains=query) | Q(customer__company_name__icontains=query))
        .select_related("customer", "stage")
        .order_by("-created_at", "-id")[:limit]
    )
    return [
        SearchResult(
            kind="Opportunities",
            title=d.name,
            subtitle=" · ".join(
                filter(None, [d.customer.display_name, d.stage.name, f"{d.amount:,.2f} {d.currency}"])
            ),
            url=reverse("sales:opportunity_detail", args=[d.pk]),
            icon="briefcase",
        )
        for d in matches
    ]


# --- Export --------------------------------------------------------------------------------------------------

EXPORT_COLUMNS = [
    ("name", gettext_lazy("Opportunity")),
    ("customer", gettext_lazy("Customer")),
    ("customer_number", gettext_lazy("Customer number")),
    ("pipeline", gettext_lazy("Pipeline")),
    ("stage", gettext_lazy("Stage")),
    ("status", gettext_lazy("Status")),
    ("amount", gettext_lazy("Amount")),
    ("currency", gettext_lazy("Currency")),
    ("probability", gettext_lazy("Probability (%)")),
    ("weighted", gettext_lazy("Weighted amount")),
    ("forecast_category", gettext_lazy("Forecast category")),
    ("expected_close_date", gettext_lazy("Expected close date")),
    ("actual_close_date", gettext_lazy("Actual close date")),
    ("owner", gettext_lazy("Owner")),
    ("next_step", gettext_lazy("Next step")),
    ("lost_reason", gettext_lazy("Lost reason")),
    ("created_at", gettext_lazy("Created")),
]


def export_rows(queryset: QuerySet[Opportunity]) -> Iterator[list]:
    """The header, then one row of raw values per deal, read 2,000 at a time from a server-side cursor (the
    caller keeps the tenant context open while it iterates and makes the cells spreadsheet-safe)."""
    categories = dict(ForecastCategory.choices)
    statuses = dict(Opportunity.Status.choices)
    yield [str(label) for _key, label in EXPORT_COLUMNS]
    rows = queryset.select_related("customer", "stage", "pipeline", "assigned_to").order_by(
        "created_at", "id"
    )
    for deal in rows.iterator(chunk_size=2000):
        values = {
            "name": deal.name,
            "customer": deal.customer.display_name,
            "customer_number": deal.customer.customer_number,
            "pipeline": deal.pipeline.name,
            "stage": deal.stage.name,
            "status": str(statuses.get(deal.status, deal.status)),
            "amount": f"{deal.amount:.2f}",
            "currency": deal.currency,
            "probability": deal.probability,
            "weighted": f"{deal.weighted_amount:.2f}",
            "forecast_category": str(categories.get(deal.forecast_category, deal.forecast_category)),
            "expected_close_date": deal.expected_close_date.isoformat(),
            "actual_close_date": deal.actual_close_date.isoformat() if deal.actual_close_date else "",
            "owner": str(deal.assigned_to) if deal.assigned_to_id else "",
            "next_step": deal.next_step,
            "lost_reason": deal.lost_reason,
            "created_at": deal.created_at.isoformat(),
        }
        yield [values[key] for key, _label in EXPORT_COLUMNS]
