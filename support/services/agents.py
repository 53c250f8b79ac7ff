"""Agent profiles and capacity: the routing facts about each agent (capacity, accepting new tickets, the
open-ticket counter and the last assignment), and the rebalancing of tickets between agents.

The counter `support_agents.open_tickets` is the number of active tickets assigned to the agent. Routing
claims a slot with a conditional increment; everything else recounts under the agent's row lock (see
support/routing.py for the locking rule that keeps it exact without a global lock).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _

from crm.models import Organization, User
from crm.permissions import Capability, Role, has_capability
from customers.segments.membership import UUID7_SQL
from support.models import AgentProfile

# Who routing picks (the design document: support agents and admins).
ROUTED_ROLES = (Role.SUPPORT_AGENT.value, Role.ADMIN.value)
DEFAULT_CAPACITY = 10
# A ticket holds a slot of its assignee while it is active; the same predicate as the queue's partial index.
ACTIVE_TICKET_SQL = "NOT (t.status IN ('resolved', 'closed'))"


# --- counters (routing keeps them; support/routing.py explains the locking rule) ----------------------------


def profiles_ensure(*, organization_id, user_ids=None) -> int:
    """Create the missing agent profiles (capacity 10, accepting) in one statement: for every active user of a
    routed role, or for exactly `user_ids` (manual assignment may pick a support manager). The new counter
    starts from the user's active assigned tickets. Returns how many were created."""
    condition = "u.id = ANY(%(users)s)" if user_ids is not None else "u.is_active AND u.role = ANY(%(roles)s)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO support_agents (id, organization_id, user_id, capacity, accepting, open_tickets)"
            f" SELECT {UUID7_SQL}, u.organization_id, u.id, %(capacity)s, true,"
            "  (SELECT count(*) FROM support_tickets t WHERE t.organization_id = u.organization_id"
            f"    AND t.assigned_to_id = u.id AND {ACTIVE_TICKET_SQL})"
            " FROM users u"
            f" WHERE u.organization_id = %(org)s AND {condition}"
            "  AND NOT EXISTS (SELECT 1 FROM support_agents p WHERE p.user_id = u.id)"
            " ORDER BY u.id"
            " ON CONFLICT (user_id) DO NOTHING",
            {
                "org": organization_id,
                "users": [str(u) for u in user_ids or []],
                "roles": list(ROUTED_ROLES),
                "capacity": DEFAULT_CAPACITY,
            },
        )
        return cursor.rowcount


def lock_profiles(organization_id, user_ids) -> None:
    """Row-lock these agents' profiles, in profile-id order (the one order every writer uses)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM support_agents WHERE organization_id = %s AND user_id = ANY(%s) ORDER BY id FOR UPDATE",
            [organization_id, [str(u) for u in user_ids]],
        )


def recount(organization_id, user_ids=None) -> int:
    """Set open_tickets to the true count for these agents (all of the organization when None). The caller
    holds their row locks, taken in an earlier statement, so this statement's snapshot includes every claim
    committed before them. Returns how many counters changed."""
    scope = "AND a.user_id = ANY(%(users)s)" if user_ids is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE support_agents p SET open_tickets = c.n"
            " FROM (SELECT a.id, (SELECT count(*) FROM support_tickets t"
            "        WHERE t.organization_id = a.organization_id AND t.assigned_to_id = a.user_id"
            f"          AND {ACTIVE_TICKET_SQL}) AS n"
            f"       FROM support_agents a WHERE a.organization_id = %(org)s {scope}) c"
            " WHERE p.id = c.id AND p.organization_id = %(org)s AND p.open_tickets <> c.n",
            {"org": organization_id, "users": [str(u) for u in user_ids or []]},
        )
        return cursor.rowcount


def agents_load_sync(*, organization_id, user_ids) -> None:
    """Recount these agents' open tickets under their row locks (idempotent)."""
    ids = [u for u in user_ids if u]
    if ids:
        lock_profiles(organization_id, ids)
        recount(organization_id, ids)


@transaction.atomic
def agents_reconcile(*, organization_id) -> int:
    """Recompute every agent's open_tickets from the tickets (nightly, and after bulk changes made around the
    services); creates missing profiles first. Returns how many counters were wrong."""
    profiles_ensure(organization_id=organization_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM support_agents WHERE organization_id = %s ORDER BY id FOR UPDATE",
            [organization_id],
        )
    return recount(organization_id)


# --- profile settings and rebalancing -----------------------------------------------------------------------------


@transaction.atomic
def agent_profile_update(
    *, organization: Organization, actor: User | None, agent: User, capacity: int, accepting: bool
) -> AgentProfile:
    """Set an agent's capacity and whether routing gives them new tickets. More room, or accepting again,
    routes waiting tickets at once. Lowering capacity below the current load takes nothing away: the agent
    simply gets no new ticket until they are under it."""
    if actor is not None and not has_capability(actor, Capability.MANAGE_SUPPORT_SETTINGS):
        raise PermissionDenied
    if agent.organization_id != organization.pk:
        raise ValidationError({"agent": _("Choose someone of this organization.")})
    profiles_ensure(organization_id=organization.pk, user_ids=[agent.pk])
    lock_profiles(organization.pk, [agent.pk])
    profile = AgentProfile.objects.get(organization_id=organization.pk, user_id=agent.pk)
    more_room = capacity > profile.capacity or (accepting and not profile.accepting)
    profile.capacity, profile.accepting = capacity, accepting
    profile.full_clean(exclude=["organization", "user"], validate_unique=False)
    profile.save(update_fields=["capacity", "accepting"])
    if more_room:
        from support.routing import route_waiting

        route_waiting(organization_id=organization.pk, actor=actor)
    return profile


@transaction.atomic
def tickets_rebalance(
    *, organization: Organization, actor: User | None, ticket_ids, to_agent: User, force: bool = False
) -> int:
    """Move the chosen tickets to `to_agent`, all or none, through the same assignment path as
    `ticket_assign` (the target's capacity claimed, each previous assignee's slot freed). Needs
    MANAGE_TICKETS; `force` lets the target go past capacity. Returns how many tickets moved."""
    if actor is not None and not has_capability(actor, Capability.MANAGE_TICKETS):
        raise PermissionDenied
    if to_agent.organization_id != organization.pk:
        raise ValidationError({"to_agent": _("Choose someone of this organization.")})
    from support.routing import tickets_move

    return tickets_move(
        organization_id=organization.pk, ticket_ids=ticket_ids, agent=to_agent, actor=actor, force=force
    )
