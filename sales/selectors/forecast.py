"""Reads of the forecast area: whose forecast an actor may see, and the deals behind each figure (the
drill-down), always starting from `visible_opportunities`.

The drill-down's filters restate, per figure, which deals `sales/forecasting.py` adds up (see MEASURES and
docs/forecasting.md); the tests check that the deals listed add up to the figure.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Coalesce

from crm.models import User
from crm.permissions import MATRIX, Capability, has_capability
from sales import forecasting
from sales.models import ForecastCategory, Opportunity, OpportunityChange, SalesSettings
from sales.selectors import sees_all_opportunities, visible_opportunities

OMITTED = ForecastCategory.OMITTED


@dataclass(frozen=True)
class ForecastScope:
    """Whose forecast the actor looks at: `owner_id` None is the whole organization."""

    owner_id: uuid.UUID | None
    owner: User | None
    can_pick: bool  # may choose the organization or another owner


def forecast_owners(*, actor: User) -> QuerySet[User]:
    """Whose forecast can be picked: the organization's active people in a role that sells."""
    selling = [role for role, caps in MATRIX.items() if Capability.EDIT_OPPORTUNITIES in caps]
    return User.objects.filter(
        organization_id=actor.organization_id, is_active=True, role__in=selling
    ).order_by("first_name", "last_name", "email", "id")


def forecast_scope(*, actor: User, requested: str | uuid.UUID | None, owners: list[User]) -> ForecastScope:
    """Resolve the requested owner ("all", a user id, or nothing) into what the actor may see.

    Those who see every deal (managers, admins, reps when the organization shows all deals) may pick the
    organization or anyone; the default is the organization for those who may view all opportunities and
    their own forecast for everyone else. In "own only" mode a rep always gets their own.
    """
    can_pick = sees_all_opportunities(actor)
    own = ForecastScope(owner_id=actor.pk, owner=actor, can_pick=can_pick)
    if not can_pick:
        return own
    everyone = ForecastScope(owner_id=None, owner=None, can_pick=True)
    if requested == "all":
        return everyone
    chosen = next((user for user in owners if requested and str(user.pk) == str(requested)), None)
    if chosen is not None:
        return ForecastScope(owner_id=chosen.pk, owner=chosen, can_pick=True)
    # nothing (or no one we know) asked for: the default
    return everyone if has_capability(actor, Capability.VIEW_ALL_OPPORTUNITIES) else own


def no_activity_days(organization_id) -> int:
    return (
        SalesSettings.objects.filter(organization_id=organization_id)
        .values_list("no_activity_days", flat=True)
        .first()
    ) or SalesSettings._meta.get_field("no_activity_days").default


def forecast_deals(
    *,
    actor: User,
    measure: str,
    as_of: datetime.date,
    months: int,
    month: datetime.date | None = None,
    owner_id=None,
    time_zone: str = "UTC",
    idle_days: int | None = None,
    currency: str = "",
) -> QuerySet[Opportunity]:
    """The deals behind `measure` of the forecast as of `as_of` over `months` months: in `month` for a
    monthly figure (None: every month of the forecast), for the whole forecast for a risk."""
    if measure not in forecasting.MEASURES:
        raise ValueError(f"unknown measure {measure!r}")
    deals = visible_opportunities(actor=actor)
    if owner_id:
        deals = deals.filter(assigned_to_id=owner_id)
    first = forecasting.month_start(as_of)
    end = forecasting.add_months(first, months)
    if month is not None and forecasting.MEASURES[measure] == "month":
        start, stop = month, forecasting.add_months(month, 1)
    else:
        start, stop = first, end
    open_in = Q(
        status=Opportunity.Status.OPEN, expected_close_date__gte=start, expected_close_date__lt=stop
    ) & ~Q(forecast_category=OMITTED)
    won_in = Q(
        status=Opportunity.Status.WON,
        actual_close_date__gte=start,
        actual_close_date__lt=stop,
        actual_close_date__lte=as_of,
    )
    committed = Q(forecast_category__in=forecasting.COMMIT_CATEGORIES)
    at_risk = Q(status=Opportunity.Status.OPEN, expected_close_date__lt=end) & ~Q(forecast_category=OMITTED)
    if measure in ("expected", "pipeline", "low_coverage"):
        condition = open_in
    elif measure == "commit":
        condition = open_in & committed
    elif measure == "best_case_deals":
        condition = open_in & Q(forecast_category=ForecastCategory.BEST_CASE)
    elif measure == "pipeline_deals":
        condition = open_in & Q(forecast_category=ForecastCategory.PIPELINE)
    elif measure == "omitted":
        condition = Q(
            status=Opportunity.Status.OPEN,
            expected_close_date__gte=start,
            expected_close_date__lt=stop,
            forecast_category=OMITTED,
        )
    elif measure == "closed_won":
        condition = won_in
    elif measure == "worst_case":
        condition = won_in | (open_in & committed)
    elif measure == "best_case":
        condition = won_in | open_in
    elif measure == "slipped":
        condition = at_risk & Q(expected_close_date__lt=as_of)
    elif measure == "no_activity":
        days = idle_days if idle_days is not None else no_activity_days(actor.organization_id)
        before = forecasting.idle_before(as_of=as_of, time_zone=time_zone, days=days)
        deals = deals.annotate(touched_at=Coalesce("last_activity_at", "created_at"))
        condition = at_risk & Q(touched_at__lt=before)
    elif measure == "other_currency":
        condition = at_risk & ~Q(currency=currency)
    else:  # close_date_moved
        moved = (
            OpportunityChange.objects.filter(
                organization_id=actor.organization_id, field=OpportunityChange.Field.CLOSE_DATE
            )
            .values("opportunity_id")
            .annotate(moves=Count("id"))
            .filter(moves__gt=1)
            .values("opportunity_id")
        )
        condition = at_risk & Q(pk__in=moved)
    return deals.filter(condition)
