"""Every read of the sales app that is more than a `get`, one module per area. This module holds the rule
every other read starts from: which opportunities an actor may see."""

from __future__ import annotations

from django.db.models import QuerySet

from crm.models import User
from crm.permissions import Capability, has_capability
from sales.models import Opportunity, SalesSettings


def sees_all_opportunities(actor: User) -> bool:
    """Managers and admins see every deal; others too unless the organization chose "own only"."""
    if has_capability(actor, Capability.VIEW_ALL_OPPORTUNITIES):
        return True
    setting = (
        SalesSettings.objects.filter(organization_id=actor.organization_id)
        .values_list("opportunity_visibility", flat=True)
        .first()
    )
    return setting != SalesSettings.Visibility.OWN


def visible_opportunities(*, actor: User) -> QuerySet[Opportunity]:
    """The opportunities `actor` may see: their organization's, narrowed to their own in "own only" mode.
    Everything that shows a deal (board, list, detail, quotes, activities, forecast) starts here, so a deal
    the actor may not see answers 404 everywhere."""
    if not has_capability(actor, Capability.VIEW_OPPORTUNITIES):
        return Opportunity.objects.none()
    queryset = Opportunity.objects.filter(organization_id=actor.organization_id)
    if not sees_all_opportunities(actor):
        queryset = queryset.filter(assigned_to_id=actor.pk)
    return queryset
