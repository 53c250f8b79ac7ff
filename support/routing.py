"""Ticket routing: which agent gets a ticket, and the capacity counters that keep agents within their limit.

The design document's `route_support_ticket`, made safe under concurrency. An agent is eligible when they
are an active user with the role `support_agent` or `admin` (support managers supervise and escalate; they
take tickets only by manual assignment), their department equals the ticket's category or they have no
department, their profile (`support_agents`) is accepting tickets, and they hold fewer open tickets than their
capacity. Among the eligible, the department match wins, then the lower load, then the longest time since
their last assignment (never assigned first), then the user id. A ticket with no category prefers agents
without a department, then anyone.

Capacity without a global lock
------------------------------
`support_agents.open_tickets` is the number of active (not resolved or closed) tickets assigned to the agent.
One rule keeps it exact: **whoever changes an agent's true count holds that agent's row lock until commit.**

* A router locks the ticket row first (`FOR UPDATE`; an assigned or finished ticket is left alone), then
  claims a slot in one statement: the best eligible profile is picked `FOR UPDATE SKIP LOCKED` and
  incremented (`open_tickets + 1 ... WHERE open_tickets < capacity`). Concurrent routers therefore spread
  over different agents instead of queueing behind the same row; only when every eligible agent is locked
  does a router wait for one (and the re-check after the wait still refuses a full agent). One ticket is
  never assigned twice (its row lock plus `assigned_to IS NULL`); an agent never goes past capacity (the
  conditional increment under the row lock).
* Releasing never decrements blindly: it locks the agent's row and then *recounts* their active tickets in a
  new statement (a fresh READ COMMITTED snapshot, which sees every claim committed before the lock was
  granted). Running it twice leaves the same number, so a resolve retried, a close after a resolve, or a
  release racing another release frees a slot exactly once.
* Locks are always taken ticket first, then agents, several agents in profile-id order, so routers,
  releases, manual assignment and rebalancing cannot deadlock one another.

`agents_reconcile` recounts every agent of an organization (nightly, and after bulk changes made around the
services). The view of the queue is `ticket.queue_reason`: why a ticket waits unassigned.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Department, User
from crm.permissions import Capability, has_capability
from support.models import DONE_STATUSES, AgentProfile, Ticket, TicketEvent
from support.services.agents import (  # noqa: F401  (agents_reconcile is part of this interface)
    ACTIVE_TICKET_SQL,
    DEFAULT_CAPACITY,
    ROUTED_ROLES,
    agents_load_sync,
    agents_reconcile,
    lock_profiles,
    profiles_ensure,
    recount,
)

# Without an SLA policy, the design document's "otherwise 48 hours".
DEFAULT_RESOLUTION = datetime.timedelta(hours=48)

SUPERVISOR_NOTIFICATION = "supervisor_notification"
MANAGEMENT_ESCALATION = "management_escalation"


@dataclass
class RoutingDecision:
    """What routing decided for one ticket: the design document's result row, plus whether it waits."""

    agent_id: uuid.UUID | None
    priority: str
    estimated_resolution: datetime.timedelta
    reason: str
    sla_deadline: datetime.datetime | None
    escalation_triggers: dict = field(default_factory=dict)
    queued: bool = False


# --- the decision ------------------------------------------------------------------------------------------------


def _department_label(category: str) -> str:
    return str(Department(category).label) if category in Department.values else category


def _decision_facts(ticket: Ticket) -> dict:
    """Priority, estimated resolution, SLA deadline and escalation triggers (the design document's JSON: the
    supervisor at half the resolution time, management at the deadline). Half-time and deadline come from
    support/sla.py, which counts working time and pauses."""
    policy = ticket.sla_policy
    estimated = datetime.timedelta(minutes=policy.resolution_minutes) if policy else DEFAULT_RESOLUTION
    triggers = {}
    if ticket.resolution_due_at:
        triggers = {
            "first_escalation": {
                "trigger_time": ticket.resolution_warn_at.isoformat() if ticket.resolution_warn_at else None,
                "escalation_level": SUPERVISOR_NOTIFICATION,
                "action": "Notify supervisor of approaching SLA breach",
            },
            "final_escalation": {
                "trigger_time": ticket.resolution_due_at.isoformat(),
                "escalation_level": MANAGEMENT_ESCALATION,
                "action": "Escalate to management for SLA breach",
            },
        }
    return {
        "priority": ticket.priority,
        "estimated_resolution": estimated,
        "sla_deadline": ticket.resolution_due_at,
        "escalation_triggers": triggers,
    }


_CLAIM_SQL = """
WITH pick AS (
    SELECT p.id, u.department
    FROM support_agents p
    JOIN users u ON u.id = p.user_id AND u.organization_id = p.organization_id
    WHERE p.organization_id = %(org)s AND u.is_active AND u.role = ANY(%(roles)s)
      AND p.accepting AND p.open_tickets < p.capacity
      AND (%(category)s = '' OR u.department = %(category)s OR u.department = '')
    ORDER BY CASE WHEN u.department = %(category)s THEN 0 ELSE 1 END,
             p.open_tickets, p.last_assigned_at NULLS FIRST, p.user_id
    LIMIT 1
    FOR UPDATE OF p {skip}
)
, claimed AS (
    UPDATE support_agents a SET open_tickets = a.open_tickets + 1, last_assigned_at = %(now)s
    FROM pick
    WHERE a.id = pick.id AND a.open_tickets < a.capacity
    RETURNING a.user_id, a.open_tickets, a.capacity, pick.department
), assigned AS (
    UPDATE support_tickets t
    SET assigned_to_id = claimed.user_id, assigned_at = %(now)s, queue_reason = '', updated_at = %(now)s
    FROM claimed
    WHERE t.id = %(ticket)s AND t.organization_id = %(org)s AND t.assigned_to_id IS NULL
    RETURNING t.id
)
SELECT user_id, open_tickets, capacity, department, (SELECT count(*) FROM assigned) FROM claimed
"""


def _claim(*, organization_id, ticket_id, category: str, now, wait: bool):
    """Claim a slot of the best eligible agent and assign the (locked) ticket to them, in one statement:
    (user_id, load after, capacity, department) or None. First among the agents no other router is claiming
    right now; with `wait`, then also waiting for busy ones."""
    params = {
        "org": organization_id,
        "ticket": ticket_id,
        "roles": list(ROUTED_ROLES),
        "category": category or "",
        "now": now,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL.format(skip="SKIP LOCKED"), params)
        row = cursor.fetchone()
        if row is None and wait:
            cursor.execute(_CLAIM_SQL.format(skip=""), params)
            row = cursor.fetchone()
    if row is None:
        return None
    if row[4] != 1:  # impossible while the caller holds the ticket's row lock: refuse rather than miscount
        raise RuntimeError(f"ticket {ticket_id} changed under its row lock")
    return row[:4]


def _eligibility(organization_id, category: str) -> tuple[int, int, int]:
    """(agents of the department or without one, of those accepting, of those with free capacity)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE coalesce(p.accepting, true)),"
            " count(*) FILTER (WHERE coalesce(p.accepting, true)"
            "   AND coalesce(p.open_tickets, 0) < coalesce(p.capacity, %(capacity)s))"
            " FROM users u LEFT JOIN support_agents p ON p.user_id = u.id AND p.organization_id = u.organization_id"
            " WHERE u.organization_id = %(org)s AND u.is_active AND u.role = ANY(%(roles)s)"
            "  AND (%(category)s = '' OR u.department = %(category)s OR u.department = '')",
            {
                "org": organization_id,
                "roles": list(ROUTED_ROLES),
                "category": category or "",
                "capacity": DEFAULT_CAPACITY,
            },
        )
        return cursor.fetchone()


def queue_reason(organization_id, category: str) -> tuple[str, bool]:
    """Why no agent can take a ticket of `category` now, and whether it is only that the free agents are
    being assigned other tickets this very moment (worth another try, not worth recording)."""
    people, accepting, free = _eligibility(organization_id, category)
    facts = {"department": _department_label(category), "count": accepting}
    if people == 0:
        if category:
            return _("No active agent in %(department)s, and none without a department.") % facts, False
        return _("No active support agent.") % facts, False
    if accepting == 0:
        if category:
            return _(
                "No agent in %(department)s (or without a department) is accepting tickets."
            ) % facts, False
        return _("No agent is accepting tickets.") % facts, False
    if free == 0:
        if category:
            return _(
                "No agent in %(department)s (or without a department) with free capacity:"
                " all %(count)d are at capacity."
            ) % facts, False
        return _("No agent with free capacity: all %(count)d are at capacity.") % facts, False
    return _("Every free agent was busy taking another ticket; it will be routed on the next round."), True


def _agent_reason(*, department: str, category: str, load: int, capacity: int) -> str:
    facts = {"load": load, "capacity": capacity}
    if category and department == category:
        return _(
            "%(department)s specialist with the lightest load (%(load)d of %(capacity)d open tickets)"
        ) % {
            **facts,
            "department": _department_label(category),
        }
    if category:
        return _(
            "No free %(department)s specialist: agent without a department with the lightest load"
            " (%(load)d of %(capacity)d open tickets)"
        ) % {**facts, "department": _department_label(category)}
    if not department:
        return (
            _("Agent without a department with the lightest load (%(load)d of %(capacity)d open tickets)")
            % facts
        )
    return _("Lightest load among all agents (%(load)d of %(capacity)d open tickets)") % facts


def _policy_reason(ticket: Ticket) -> str:
    if ticket.sla_policy_id:
        return _("SLA policy “%(policy)s”, priority %(priority)s") % {
            "policy": ticket.sla_policy.name,
            "priority": ticket.get_priority_display(),
        }
    return _("No SLA policy, priority %(priority)s") % {"priority": ticket.get_priority_display()}


def _events(ticket: Ticket, rows: list[tuple[str, str, str, str]], actor: User | None, at) -> None:
    TicketEvent.objects.bulk_create(
        [
            TicketEvent(
                organization_id=ticket.organization_id,
                ticket_id=ticket.pk,
                kind=kind,
                old_value=old[:64],
                new_value=new[:64],
                note=note[:300],
                actor=actor,
                at=at,
            )
            for kind, old, new, note in rows
        ]
    )


def _lock_ticket(ticket_id, organization_id) -> Ticket:
    return (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("sla_policy")
        .get(pk=ticket_id, organization_id=organization_id)
    )


def _route(*, ticket: Ticket, actor: User | None, wait: bool, now) -> RoutingDecision:
    """Route a ticket whose row the caller has locked."""
    facts = _decision_facts(ticket)
    if not ticket.is_active:
        return RoutingDecision(agent_id=None, reason=_("The ticket is resolved or closed."), **facts)
    if ticket.assigned_to_id:
        return RoutingDecision(
            agent_id=ticket.assigned_to_id, reason=_("Already assigned; left as it is."), **facts
        )
    organization_id = ticket.organization_id
    profiles_ensure(organization_id=organization_id)
    claimed = _claim(
        organization_id=organization_id, ticket_id=ticket.pk, category=ticket.category, now=now, wait=wait
    )
    policy_reason = _policy_reason(ticket)
    if claimed is None:
        why, transient = queue_reason(organization_id, ticket.category)
        if not transient and why != ticket.queue_reason:
            Ticket.objects.filter(pk=ticket.pk, organization_id=organization_id).update(
                queue_reason=why[:300], updated_at=now
            )
            ticket.queue_reason = why[:300]
            _events(ticket, [(TicketEvent.Kind.ROUTING, "", "queued", why)], actor, now)
        return RoutingDecision(agent_id=None, reason=f"{policy_reason}. {why}", queued=True, **facts)
    agent_id, load, capacity, department = claimed
    reason = f"{policy_reason}. {_agent_reason(department=department, category=ticket.category, load=load, capacity=capacity)}."
    ticket.assigned_to_id, ticket.assigned_at, ticket.queue_reason = agent_id, now, ""
    _events(
        ticket,
        [
            (TicketEvent.Kind.ROUTING, "", str(agent_id), reason),
            (TicketEvent.Kind.ASSIGNED, "", str(agent_id), _("Routed automatically")),
        ],
        actor,
        now,
    )
    return RoutingDecision(agent_id=agent_id, reason=reason, **facts)


@transaction.atomic(savepoint=False)  # no savepoint round trips: a failure fails the caller's transaction
def route_ticket(
    *, ticket_id, organization_id, actor: User | None = None, wait: bool = True
) -> RoutingDecision:
    """Pick the agent for an unassigned, active ticket and assign it (events ROUTING and ASSIGNED), or leave
    it in the team queue with `queue_reason` saying why. An assigned or finished ticket is left alone.
    `wait=False`: never wait for an agent another router is claiming (used from inside other writes)."""
    ticket = _lock_ticket(ticket_id, organization_id)
    return _route(ticket=ticket, actor=actor, wait=wait, now=timezone.now())


def _free_capacity_exists(organization_id) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM support_agents p JOIN users u ON u.id = p.user_id"
            " AND u.organization_id = p.organization_id"
            " WHERE p.organization_id = %s AND u.is_active AND u.role = ANY(%s)"
            "  AND p.accepting AND p.open_tickets < p.capacity)",
            [organization_id, list(ROUTED_ROLES)],
        )
        return cursor.fetchone()[0]


@transaction.atomic
def route_waiting(*, organization_id, limit: int = 200, actor: User | None = None, exclude=()) -> int:
    """Route queued tickets (active, unassigned) most urgent first: the earliest resolution deadline, then
    the oldest. Tickets another transaction holds are skipped (`SKIP LOCKED`), and once no agent for a
    category is free its other tickets are not tried again in this round. Never waits for a busy agent, so
    it is safe inside a release. `exclude`: tickets not to route now (one just unassigned by hand would
    otherwise go straight back). Returns how many were assigned."""
    profiles_ensure(organization_id=organization_id)
    if not _free_capacity_exists(organization_id):
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.id FROM support_tickets t"
            f" WHERE t.organization_id = %s AND t.assigned_to_id IS NULL AND {ACTIVE_TICKET_SQL}"
            "  AND t.id <> ALL(%s::uuid[])"
            " ORDER BY t.resolution_due_at, t.id LIMIT %s FOR UPDATE SKIP LOCKED",
            [organization_id, [str(i) for i in exclude], limit],
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return 0
    tickets = {
        t.pk: t
        for t in Ticket.objects.select_related("sla_policy").filter(
            organization_id=organization_id, pk__in=ids
        )
    }
    now = timezone.now()
    routed = 0
    exhausted: set[str] = set()
    for ticket_id in ids:
        ticket = tickets[ticket_id]
        if ticket.category in exhausted or "" in exhausted:
            continue
        decision = _route(ticket=ticket, actor=actor, wait=False, now=now)
        if decision.queued:
            exhausted.add(ticket.category)
        else:
            routed += 1
    return routed


# --- manual assignment and release -----------------------------------------------------------------------------


def _check_assignee(ticket: Ticket, agent: User) -> None:
    if agent.organization_id != ticket.organization_id:
        raise ValidationError({"agent": _("Choose someone of this organization.")})
    if not agent.is_active or not has_capability(agent, Capability.WORK_TICKETS):
        raise ValidationError({"agent": _("%(name)s cannot work on tickets.") % {"name": agent}})


def _assign_locked(
    *, ticket: Ticket, agent: User, actor: User | None, force: bool, now, notify: bool = True
) -> bool:
    """Assign a locked, active ticket to `agent`; returns whether a slot of the previous assignee was freed."""
    organization_id = ticket.organization_id
    previous = ticket.assigned_to_id
    profiles_ensure(organization_id=organization_id, user_ids=[agent.pk] + ([previous] if previous else []))
    lock_profiles(organization_id, [agent.pk] + ([previous] if previous else []))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE support_agents SET open_tickets = open_tickets + 1, last_assigned_at = %(now)s"
            " WHERE organization_id = %(org)s AND user_id = %(agent)s AND (%(force)s OR open_tickets < capacity)"
            " RETURNING open_tickets, capacity",
            {"org": organization_id, "agent": agent.pk, "force": force, "now": now},
        )
        row = cursor.fetchone()
    if row is None:
        profile = AgentProfile.objects.get(organization_id=organization_id, user_id=agent.pk)
        raise ValidationError(
            {
                "agent": _(
                    "%(name)s already has %(load)d of %(capacity)d open tickets. Assign over capacity to do it"
                    " anyway."
                )
                % {"name": agent, "load": profile.open_tickets, "capacity": profile.capacity}
            }
        )
    load, capacity = row
    Ticket.objects.filter(pk=ticket.pk, organization_id=organization_id).update(
        assigned_to_id=agent.pk, assigned_at=now, queue_reason="", updated_at=now
    )
    if previous:
        recount(organization_id, [previous])
    note = _("Assigned by %(actor)s") % {"actor": actor} if actor else _("Assigned")
    if load > capacity:
        note += " " + _("(over capacity: %(load)d of %(capacity)d)") % {"load": load, "capacity": capacity}
    _events(ticket, [(TicketEvent.Kind.ASSIGNED, str(previous or ""), str(agent.pk), note)], actor, now)
    ticket.assigned_to_id, ticket.assigned_at, ticket.queue_reason = agent.pk, now, ""
    if notify and actor is not None and actor.pk != agent.pk:
        _notify_assignee(ticket, agent, actor)
    return bool(previous)


def _notify_assignee(ticket: Ticket | None, agent: User, actor: User, *, count: int = 1) -> None:
    """Tell the agent someone else gave them a ticket (or, after a rebalance, `count` tickets)."""
    from django.urls import NoReverseMatch, reverse

    from crm.services import notification_create

    try:
        url = reverse("support:ticket_detail", kwargs={"pk": ticket.pk}) if ticket else ""
    except NoReverseMatch:
        url = ""
    if ticket is not None:
        title = _("%(actor)s assigned you %(ticket)s") % {"actor": actor, "ticket": ticket.ticket_number}
    else:
        title = _("%(actor)s moved %(count)d tickets to you") % {"actor": actor, "count": count}
    notification_create(recipient=agent, title=title, body=ticket.subject if ticket else "", url=url)


def _check_assign_permission(*, ticket: Ticket, agent: User, actor: User | None, force: bool) -> None:
    if actor is None:
        return
    manager = has_capability(actor, Capability.MANAGE_TICKETS)
    taking = agent.pk == actor.pk and ticket.assigned_to_id is None
    if force and not manager:
        raise PermissionDenied
    if not manager and not (taking and has_capability(actor, Capability.WORK_TICKETS)):
        raise PermissionDenied


@transaction.atomic
def ticket_assign(*, ticket: Ticket, agent: User, actor: User | None, force: bool = False) -> Ticket:
    """Assign a ticket by hand. Agents may take an unassigned ticket for themselves; assigning to others,
    reassigning and `force` (past the agent's capacity) need MANAGE_TICKETS. Capacity is claimed like routing
    does (and refused when full unless forced); the previous assignee's slot is freed and the queue routed.
    Assigning to the current assignee only re-syncs their counter (what a reopen needs); if that assignee has
    left (deactivated, or no longer working tickets), the ticket goes back to the team and is routed."""
    stored = _lock_ticket(ticket.pk, ticket.organization_id)
    if not stored.is_active:
        raise ValidationError(_("A resolved or closed ticket cannot be assigned; reopen it first."))
    if stored.assigned_to_id == agent.pk:
        profiles_ensure(organization_id=stored.organization_id, user_ids=[agent.pk])
        agents_load_sync(organization_id=stored.organization_id, user_ids=[agent.pk])
        if not agent.is_active or not has_capability(agent, Capability.WORK_TICKETS):
            stored = ticket_release(ticket=stored, actor=None, unassign=True)
            _route(ticket=stored, actor=actor, wait=False, now=timezone.now())
        return stored
    _check_assignee(stored, agent)
    _check_assign_permission(ticket=stored, agent=agent, actor=actor, force=force)
    freed = _assign_locked(ticket=stored, agent=agent, actor=actor, force=force, now=timezone.now())
    if freed:
        route_waiting(organization_id=stored.organization_id, limit=20)
    return stored


@transaction.atomic
def ticket_release(*, ticket: Ticket, actor: User | None = None, unassign: bool = False) -> Ticket:
    """Free the slot a ticket held. Call it after the ticket was resolved or closed (its assignee keeps the
    credit), or with `unassign=True` to send an active ticket back to the team queue. The agent's counter is
    recounted under its row lock, so calling this twice frees the slot once. Then the queue is routed."""
    stored = _lock_ticket(ticket.pk, ticket.organization_id)
    agent_id = stored.assigned_to_id
    if agent_id is None:
        return stored
    now = timezone.now()
    if unassign:
        own = actor is not None and actor.pk == agent_id and has_capability(actor, Capability.WORK_TICKETS)
        if actor is not None and not own and not has_capability(actor, Capability.MANAGE_TICKETS):
            raise PermissionDenied
        lock_profiles(stored.organization_id, [agent_id])
        reason = _("Unassigned by %(actor)s") % {"actor": actor} if actor else _("Unassigned")
        Ticket.objects.filter(pk=stored.pk, organization_id=stored.organization_id).update(
            assigned_to=None, assigned_at=None, queue_reason=reason[:300], updated_at=now
        )
        _events(stored, [(TicketEvent.Kind.ASSIGNED, str(agent_id), "", reason)], actor, now)
        stored.assigned_to_id, stored.assigned_at, stored.queue_reason = None, None, reason[:300]
    agents_load_sync(organization_id=stored.organization_id, user_ids=[agent_id])
    route_waiting(organization_id=stored.organization_id, limit=20, exclude=[stored.pk] if unassign else ())
    return stored


def tickets_move(*, organization_id, ticket_ids, agent: User, actor: User | None, force: bool = False) -> int:
    """Move tickets to `agent` (rebalancing) in one transaction, all or none: every ticket row is locked
    first (id order), then each is assigned through the same path as `ticket_assign`; the queue is routed
    once at the end. Tickets already with the agent, resolved or closed are skipped. Returns how many moved."""
    with transaction.atomic():
        tickets = list(
            Ticket.objects.select_for_update(of=("self",))
            .filter(organization_id=organization_id, pk__in=list(ticket_ids))
            .order_by("pk")
        )
        now = timezone.now()
        moved = freed = 0
        for ticket in tickets:
            if not ticket.is_active or ticket.assigned_to_id == agent.pk:
                continue
            _check_assignee(ticket, agent)
            _check_assign_permission(ticket=ticket, agent=agent, actor=actor, force=force)
            freed += _assign_locked(
                ticket=ticket, agent=agent, actor=actor, force=force, now=now, notify=False
            )
            moved += 1
        if moved and actor is not None and actor.pk != agent.pk:
            _notify_assignee(None, agent, actor, count=moved)
        if freed:
            route_waiting(organization_id=organization_id, limit=20)
        return moved


# --- for the beat tasks (run as the platform, across organizations) ---------------------------------------------


def organizations_with_waiting_tickets() -> list:
    """Organizations with an active, unassigned ticket: one EXISTS probe per organization on the queue's
    partial index."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.id FROM organizations o WHERE EXISTS (SELECT 1 FROM support_tickets t"
            f" WHERE t.organization_id = o.id AND t.assigned_to_id IS NULL AND {ACTIVE_TICKET_SQL}) ORDER BY o.id"
        )
        return [row[0] for row in cursor.fetchall()]


def organizations_with_agents() -> list:
    return list(
        AgentProfile.objects.order_by("organization_id").values_list("organization_id", flat=True).distinct()
    )


def agent_tickets_requeue(*, user: User) -> int:
    """A deactivated agent's active tickets go back to the team queue and are routed to the others (the
    person can no longer be chosen: routing only picks active users). Returns how many were re-queued."""
    tickets = list(
        Ticket.objects.filter(organization_id=user.organization_id, assigned_to_id=user.pk)
        .exclude(status__in=DONE_STATUSES)
        .order_by("id")
    )
    reason = _("Assigned agent was deactivated")
    now = timezone.now()
    for ticket in tickets:
        stored = _lock_ticket(ticket.pk, ticket.organization_id)
        Ticket.objects.filter(pk=stored.pk, organization_id=stored.organization_id).update(
            assigned_to=None, assigned_at=None, queue_reason=reason, updated_at=now
        )
        _events(stored, [(TicketEvent.Kind.ASSIGNED, str(user.pk), "", reason)], None, now)
    if tickets:
        agents_load_sync(organization_id=user.organization_id, user_ids=[user.pk])
        route_waiting(organization_id=user.organization_id)
    return len(tickets)
