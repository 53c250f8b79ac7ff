"""Reads of the workload page: each agent's open load against their capacity, their oldest open ticket, how
many of their tickets are at risk or breached, and the team queue. Everything starts from the actor's
organization (another organization's id answers 404); query counts are fixed whatever the number of agents
or tickets, and no count scans more than a bounded number of rows.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db.models import Count, F, Min, Q
from django.http import Http404
from django.utils import timezone

from crm.models import Department, User
from crm.pagination import KeysetPage, keyset_page
from support.models import DONE_STATUSES, Ticket
from support.services.agents import DEFAULT_CAPACITY, ROUTED_ROLES

QUEUE_CAP = 1000  # the queue count reads at most this many rows ("1,000+" beyond)
AGENT_ORDERING = ("first_name", "last_name", "email", "id")


def breached_q(now: datetime.datetime) -> Q:
    """Active tickets past a deadline: support/sla.py's "breached" for a ticket that is not done."""
    return (
        Q(first_response_due_at__isnull=False, first_response_at__isnull=False)
        & Q(first_response_at__gt=F("first_response_due_at"))
        | Q(resolution_due_at__isnull=False, resolution_due_at__lte=now)
        | Q(
            first_response_due_at__isnull=False,
            first_response_at__isnull=True,
            first_response_due_at__lte=now,
        )
    )


def at_risk_q(now: datetime.datetime) -> Q:
    """support/sla.py's "at_risk": not breached, not paused, half the time of a running target elapsed."""
    warned = Q(
        first_response_warn_at__isnull=False, first_response_at__isnull=True, first_response_warn_at__lte=now
    ) | Q(resolution_warn_at__isnull=False, resolution_warn_at__lte=now)
    return warned & Q(sla_paused_since__isnull=True) & ~breached_q(now)


@dataclass
class AgentLoad:
    user: User
    capacity: int
    accepting: bool
    open_tickets: int  # counted from the tickets, not the routing counter
    at_risk: int = 0
    breached: int = 0
    oldest: Ticket | None = None
    last_assigned_at: datetime.datetime | None = None

    @property
    def percent(self) -> int:
        """Load as a share of capacity, 0-100 for the bar (a full or over-full agent shows a full bar)."""
        if self.capacity <= 0:
            return 100 if self.open_tickets else 0
        return min(100, round(100 * self.open_tickets / self.capacity))

    @property
    def level(self) -> str:
        """ok below 80 %, at_risk from 80 % to full, breached when over capacity (the SLA palette)."""
        if self.open_tickets > self.capacity:
            return "breached"
        return "at_risk" if self.percent >= 80 else "ok"

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.open_tickets)


@dataclass
class Workload:
    page: KeysetPage
    agents: list[AgentLoad]
    team_open: int
    team_capacity: int
    queued: int
    queued_capped: bool
    queued_by_category: list[tuple[str, int]] = field(default_factory=list)  # (department label or "", n)
    as_of: datetime.datetime | None = None


def _agents_queryset(organization_id):
    """Who appears: active support agents and admins (whom routing picks), and anyone with a profile (a
    support manager given tickets by hand, a deactivated agent whose tickets need a new home)."""
    return User.objects.filter(organization_id=organization_id).filter(
        Q(is_active=True, role__in=ROUTED_ROLES) | Q(support_profile__isnull=False)
    )


def _loads(organization_id, users: list[User], now) -> list[AgentLoad]:
    """One query for the counts, one for the oldest tickets: whatever the number of agents on the page."""
    ids = [u.pk for u in users]
    active = Ticket.objects.filter(organization_id=organization_id, assigned_to_id__in=ids).exclude(
        status__in=DONE_STATUSES
    )
    counts = {
        row["assigned_to_id"]: row
        for row in active.order_by()
        .values("assigned_to_id")
        .annotate(
            n=Count("id"),
            at_risk=Count("id", filter=at_risk_q(now)),
            breached=Count("id", filter=breached_q(now)),
            oldest_at=Min("created_at"),
        )
    }
    oldest = {
        t.assigned_to_id: t
        for t in active.order_by("assigned_to_id", "created_at", "id")
        .distinct("assigned_to_id")
        .only("id", "number", "subject", "created_at", "assigned_to_id", "organization_id")
    }
    loads = []
    for user in users:
        profile = getattr(user, "support_profile", None)
        row = counts.get(user.pk, {})
        loads.append(
            AgentLoad(
                user=user,
                capacity=profile.capacity if profile else DEFAULT_CAPACITY,
                accepting=profile.accepting if profile else True,
                open_tickets=row.get("n", 0),
                at_risk=row.get("at_risk", 0),
                breached=row.get("breached", 0),
                oldest=oldest.get(user.pk),
                last_assigned_at=profile.last_assigned_at if profile else None,
            )
        )
    return loads


def workload(*, actor: User, cursor: str | None = None, per_page: int = 25, now=None) -> Workload:
    """The workload page: a keyset page of agents with their loads, the team's load and capacity, and the
    queue (unassigned active tickets, counted up to QUEUE_CAP, by category). Six queries."""
    now = now or timezone.now()
    organization_id = actor.organization_id
    page = keyset_page(
        _agents_queryset(organization_id).select_related("support_profile"),
        ordering=AGENT_ORDERING,
        cursor=cursor,
        per_page=per_page,
    )
    agents = _loads(organization_id, page.items, now)
    # The team: every active agent listed (not only this page), from the routing counters (one row each).
    totals = (
        _agents_queryset(organization_id)
        .filter(is_active=True)
        .order_by()
        .values_list("support_profile__open_tickets", "support_profile__capacity")
    )
    team_open = sum(o or 0 for o, _c in totals)
    team_capacity = sum(DEFAULT_CAPACITY if c is None else c for _o, c in totals)
    waiting = list(
        Ticket.objects.filter(organization_id=organization_id, assigned_to__isnull=True)
        .exclude(status__in=DONE_STATUSES)
        .order_by("resolution_due_at", "id")
        .values_list("category", flat=True)[: QUEUE_CAP + 1]
    )
    capped = len(waiting) > QUEUE_CAP
    waiting = waiting[:QUEUE_CAP]
    by_category: dict[str, int] = {}
    for category in waiting:
        by_category[category] = by_category.get(category, 0) + 1
    return Workload(
        page=page,
        agents=agents,
        team_open=team_open,
        team_capacity=team_capacity,
        queued=len(waiting),
        queued_capped=capped,
        queued_by_category=[
            (str(Department(c).label) if c in Department.values else c, n)
            for c, n in sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        as_of=now,
    )


def agent_for_workload(*, actor: User, pk) -> AgentLoad:
    """One agent of the actor's organization as shown on the workload page (404 for anyone else)."""
    user = _agents_queryset(actor.organization_id).select_related("support_profile").filter(pk=pk).first()
    if user is None:
        raise Http404
    return _loads(actor.organization_id, [user], timezone.now())[0]


def agent_tickets(*, actor: User, agent: User, cursor: str | None = None, per_page: int = 50) -> KeysetPage:
    """The agent's active tickets, oldest first."""
    queryset = Ticket.objects.filter(organization_id=actor.organization_id, assigned_to=agent).exclude(
        status__in=DONE_STATUSES
    )
    return keyset_page(
        queryset.select_related("customer"), ordering=("created_at", "id"), cursor=cursor, per_page=per_page
    )


def rebalance_targets(*, actor: User, exclude: User) -> list[AgentLoad]:
    """Who tickets can move to: active people who work tickets, lightest load first (two queries)."""
    users = list(
        User.objects.filter(
            organization_id=actor.organization_id,
            is_active=True,
            role__in=[*ROUTED_ROLES, "support_manager"],
        )
        .exclude(pk=exclude.pk)
        .select_related("support_profile")
        .order_by(*AGENT_ORDERING)[:500]
    )
    loads = _loads(actor.organization_id, users, timezone.now())
    return sorted(loads, key=lambda a: (a.open_tickets / a.capacity if a.capacity else 1e9, str(a.user)))
