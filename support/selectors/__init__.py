"""Every read of the support app that is more than a `get`, one module per area. This module holds the rule
every other read starts from: which tickets an actor may see."""

from __future__ import annotations

from django.db.models import QuerySet

from crm.models import User
from crm.permissions import Capability, has_capability
from support.models import Ticket


def visible_tickets(*, actor: User) -> QuerySet[Ticket]:
    """The tickets `actor` may see: every ticket of their organization, if their role may see tickets at all.
    Every page that shows a ticket starts here, so a ticket of another organization answers 404."""
    if not has_capability(actor, Capability.VIEW_TICKETS):
        return Ticket.objects.none()
    return Ticket.objects.filter(organization_id=actor.organization_id)
