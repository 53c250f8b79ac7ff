"""Reads of the agent workspace: the queues (views, filters, SLA-urgency order, capped counts), one ticket
with its thread, history and customer context, the customer 360 "Open tickets" panel and global search.

Everything starts from `visible_tickets` (the actor's organization; another organization's id answers 404).
Query counts are fixed: a queue page is one query for the rows (customer and assignee joined) plus one for the
view counts, whatever the number of tickets; the ticket page reads its thread, attachments and history in
one query each.

SLA urgency, the queues' default order: running tickets first, by the nearer of their two deadlines (the
first-response deadline only while no agent has answered), soonest — or most overdue — first; then the
paused ones (pending, on hold) in the same order; tickets without deadlines last within each group.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    DateTimeField,
    ExpressionWrapper,
    F,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Least
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import Department, User
from crm.permissions import MATRIX, Capability, has_capability
from crm.search import SearchResult
from customers.models import Customer
from support import sla
from support.filters import TicketFilter, ticket_number_in
from support.models import (
    DONE_STATUSES,
    PRIORITY_RANK,
    CannedResponse,
    Status,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketMessage,
)
from support.selectors import visible_tickets

QUEUE_CAP = 1000  # a view's count reads at most this many rows ("1,000+" beyond)
PANEL_TICKETS = 5
OTHER_TICKETS = 5
CANNED_LIMIT = 200
FAR_FUTURE = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)

ORDERINGS: dict[str, tuple[str, ...]] = {
    "urgency": ("sla_paused", "urgency_at", "id"),
    "priority": ("-priority_rank", "sla_paused", "urgency_at", "id"),
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
}
ORDERING_LABELS = {
    "urgency": gettext_lazy("SLA urgency"),
    "priority": gettext_lazy("Priority"),
    "newest": gettext_lazy("Newest"),
    "oldest": gettext_lazy("Oldest"),
}
DEFAULT_ORDERING = "urgency"
_DONE = tuple(str(s) for s in DONE_STATUSES)


# --- Queue views ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueView:
    key: str  # "mine", "unassigned", "all" or "category:<department>"
    label: str
    icon: str
    category: str = ""

    @property
    def kind(self) -> str:
        return self.key.split(":", 1)[0]


def queue_views(*, actor: User) -> list[QueueView]:
    """The views the actor may open: their tickets, the team queue (unassigned), every unsolved ticket
    (MANAGE_TICKETS), and one per category (every category for a manager, the agent's own department for
    an agent)."""
    views = [
        QueueView("mine", _("My tickets"), "person-check"),
        QueueView("unassigned", _("Unassigned"), "inbox"),
    ]
    manager = has_capability(actor, Capability.MANAGE_TICKETS)
    if manager:
        views.append(QueueView("all", _("All unsolved"), "collection"))
    for value, label in Department.choices:
        if manager or value == actor.department:
            views.append(QueueView(f"category:{value}", str(label), "folder2", category=value))
    return views


def queue_view(*, actor: User, key: str | None) -> QueueView:
    """The view named `key` if the actor may open it, else their default (their own tickets, or the team
    queue for someone who does not work tickets)."""
    views = queue_views(actor=actor)
    for view in views:
        if view.key == key:
            return view
    return views[0] if has_capability(actor, Capability.WORK_TICKETS) else views[1]


def _view_scope(view: QueueView, actor: User) -> Q:
    if view.kind == "mine":
        return Q(assigned_to_id=actor.pk)
    if view.kind == "unassigned":
        return Q(assigned_to__isnull=True)
    if view.kind == "category":
        return Q(category=view.category)
    return Q()


def with_urgency(queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Annotate the SLA urgency keys: `sla_paused` (the clock is stopped by pending / on hold), `urgency_at`
    (the nearer running deadline; far future when there is none) and `priority_rank` (4 = urgent)."""
    first_due = Case(
        When(first_response_at__isnull=True, then=F("first_response_due_at")),
        default=Value(None),
        output_field=DateTimeField(),
    )
    return queryset.annotate(
        sla_paused=ExpressionWrapper(Q(sla_paused_since__isnull=False), output_field=BooleanField()),
        # PostgreSQL's LEAST skips NULLs: the first-response deadline counts only while it runs.
        urgency_at=Coalesce(Least(first_due, F("resolution_due_at")), Value(FAR_FUTURE)),
        priority_rank=Case(
            *(When(priority=value, then=Value(rank)) for value, rank in PRIORITY_RANK.items()),
            default=Value(0),
            output_field=IntegerField(),
        ),
    )


def assignable_agents(*, actor: User) -> list[User]:
    """Active people of the actor's organization who may work tickets (for the assignee pickers)."""
    roles = [role for role, capabilities in MATRIX.items() if Capability.WORK_TICKETS in capabilities]
    return list(
        User.objects.filter(organization_id=actor.organization_id, is_active=True, role__in=roles).order_by(
            "first_name", "last_name", "email"
        )
    )


def queue(*, actor: User, view: QueueView, params, agents=()) -> tuple[TicketFilter, QuerySet[Ticket]]:
    """The tickets of a view, filtered (`params`: the query string) and annotated for SLA ordering; unsolved
    only unless a status is asked for."""
    base = visible_tickets(actor=actor).filter(_view_scope(view, actor))
    filterset = TicketFilter(params or None, queryset=base, actor=actor, agents=agents)
    queryset = filterset.qs if filterset.is_bound and filterset.is_valid() else base
    if not filterset.status_chosen:
        queryset = queryset.exclude(status__in=DONE_STATUSES)
    return filterset, with_urgency(queryset).select_related("customer", "assigned_to")


def ordering_for(sort: str | None) -> tuple[str, tuple[str, ...]]:
    key = sort if sort in ORDERINGS else DEFAULT_ORDERING
    return key, ORDERINGS[key]


def view_counts(*, actor: User, views: list[QueueView]) -> dict[str, tuple[int, bool]]:
    """{view key: (unsolved tickets, capped)} for every view, in one query; each count stops after
    QUEUE_CAP + 1 rows (the partial index on unsolved tickets serves them)."""
    if not views or not has_capability(actor, Capability.VIEW_TICKETS):
        return {view.key: (0, False) for view in views}
    parts, params = [], []
    for view in views:
        condition, extra = {
            "mine": ("assigned_to_id = %s", [actor.pk]),
            "unassigned": ("assigned_to_id IS NULL", []),
            "category": ("category = %s", [view.category]),
        }.get(view.kind, ("TRUE", []))
        parts.append(
            "(SELECT count(*) FROM (SELECT 1 FROM support_tickets WHERE organization_id = %s"
            f" AND status <> ALL(%s) AND {condition} LIMIT {QUEUE_CAP + 1}) AS v)"
        )
        params += [actor.organization_id, list(_DONE), *extra]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return {view.key: (min(n, QUEUE_CAP), n > QUEUE_CAP) for view, n in zip(views, row, strict=True)}


def capped_count(queryset: QuerySet, cap: int = QUEUE_CAP) -> tuple[int, bool]:
    n = queryset.order_by()[: cap + 1].count()
    return min(n, cap), n > cap


def bulk_tickets(*, actor: User, ids) -> list[Ticket]:
    """The tickets of a bulk action the actor may see (ids of other organizations, or not ids, drop out)."""
    valid = []
    for value in ids:
        try:
            valid.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return list(visible_tickets(actor=actor).filter(pk__in=valid).order_by("pk"))


# --- SLA facts for badges and countdowns ---------------------------------------------------------------------

SLA_LABELS = {
    "ok": gettext_lazy("On track"),
    "at_risk": gettext_lazy("At risk"),
    "breached": gettext_lazy("Breached"),
    "paused": gettext_lazy("Paused"),
    "met": gettext_lazy("Met"),
}


def duration_text(delta: dt.timedelta) -> str:
    """ "2 d 3 h", "1 h 20 m", "12 m", "< 1 m": the countdown's wording (static/js/support.js says the same)."""
    minutes = int(abs(delta).total_seconds() // 60)
    if minutes == 0:
        return _("< 1 m")
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("%(d)d d %(h)d h") % {"d": days, "h": hours}
    if hours:
        return _("%(h)d h %(m)d m") % {"h": hours, "m": minutes}
    return _("%(m)d m") % {"m": minutes}


def countdown_text(due: dt.datetime, now: dt.datetime) -> str:
    """ "in 1 h 20 m" before the deadline, "overdue 12 m" after it."""
    if due > now:
        return _("in %(time)s") % {"time": duration_text(due - now)}
    return _("overdue %(time)s") % {"time": duration_text(now - due)}


@dataclass
class Deadline:
    label: str
    due: dt.datetime
    done_at: dt.datetime | None  # when the clock stopped (first response, resolution)
    running: bool
    overdue: bool
    countdown: str = ""  # only while the clock runs

    @property
    def due_iso(self) -> str:
        """For static/js/support.js: UTC, whole seconds (every browser parses it)."""
        return self.due.astimezone(dt.UTC).replace(microsecond=0).isoformat()


@dataclass
class SlaFacts:
    state: str
    label: str
    due: dt.datetime | None  # the deadline the countdown counts to (None: no running deadline)
    target: str  # "First response" / "Resolution"
    countdown: str
    overdue: bool
    deadlines: list[Deadline] = field(default_factory=list)

    @property
    def due_iso(self) -> str:
        return self.due.astimezone(dt.UTC).replace(microsecond=0).isoformat() if self.due else ""


def sla_facts(ticket: Ticket, now: dt.datetime) -> SlaFacts:
    """The SLA badge (support/sla.py `sla_state`) and the countdown to the nearer running deadline."""
    state = sla.sla_state(ticket, now)
    running = ticket.is_active and not ticket.sla_paused_since
    first_running = running and ticket.first_response_at is None and ticket.first_response_due_at is not None
    resolution_running = running and ticket.resolution_due_at is not None
    deadlines = []
    for label, due, done_at, runs in (
        (_("First response"), ticket.first_response_due_at, ticket.first_response_at, first_running),
        (
            _("Resolution"),
            ticket.resolution_due_at,
            ticket.resolved_at or ticket.closed_at,
            resolution_running,
        ),
    ):
        if due is None:
            continue
        deadlines.append(
            Deadline(
                label=label,
                due=due,
                done_at=done_at,
                running=runs,
                overdue=done_at > due if done_at else (runs and now >= due),
                countdown=countdown_text(due, now) if runs else "",
            )
        )
    candidates = [d for d in deadlines if d.running]
    nearest = min(candidates, key=lambda d: d.due) if candidates else None
    return SlaFacts(
        state=state,
        label=str(SLA_LABELS[state]),
        due=nearest.due if nearest else None,
        target=nearest.label if nearest else "",
        countdown=nearest.countdown if nearest else "",
        overdue=bool(nearest and nearest.overdue),
        deadlines=deadlines,
    )


def with_sla_facts(tickets, now: dt.datetime | None = None) -> list[Ticket]:
    """Put `sla` (SlaFacts) on each ticket, for the templates."""
    now = now or timezone.now()
    tickets = list(tickets)
    for ticket in tickets:
        ticket.sla = sla_facts(ticket, now)
    return tickets


# --- One ticket ----------------------------------------------------------------------------------------------


def ticket_get(*, actor: User, pk) -> Ticket:
    """A ticket the actor may see, with its customer, assignee and SLA policy; 404 otherwise."""
    try:
        return (
            visible_tickets(actor=actor)
            .select_related("customer", "assigned_to", "sla_policy", "created_by")
            .get(pk=pk)
        )
    except Ticket.DoesNotExist:
        raise Http404 from None


def customer_for_form(*, actor: User, pk) -> Customer | None:
    """A customer of the actor's organization by id (the new-ticket form's `?customer=`), or None."""
    try:
        pk = uuid.UUID(str(pk))
    except ValueError:
        return None
    return Customer.objects.filter(organization_id=actor.organization_id, pk=pk).first()


def thread(*, ticket: Ticket) -> list[TicketMessage]:
    """The ticket's messages (public replies and internal notes), oldest first, with authors and attachments:
    two queries whatever the length of the thread."""
    return list(
        TicketMessage.objects.filter(organization_id=ticket.organization_id, ticket_id=ticket.pk)
        .select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )


def attachment_get(*, actor: User, pk) -> TicketAttachment:
    """An attachment of a ticket the actor may see; 404 otherwise."""
    attachment = (
        TicketAttachment.objects.filter(organization_id=actor.organization_id, pk=pk)
        .select_related("message")
        .first()
    )
    if (
        attachment is None
        or not visible_tickets(actor=actor).filter(pk=attachment.message.ticket_id).exists()
    ):
        raise Http404
    return attachment


@dataclass
class HistoryEntry:
    kind: str
    icon: str
    title: str
    detail: str
    at: dt.datetime
    actor: User | None


_EVENT_ICONS = {
    TicketEvent.Kind.CREATED: "plus-circle",
    TicketEvent.Kind.STATUS: "arrow-left-right",
    TicketEvent.Kind.PRIORITY: "flag",
    TicketEvent.Kind.ASSIGNED: "person-check",
    TicketEvent.Kind.FIRST_RESPONSE: "reply",
    TicketEvent.Kind.POLICY: "stopwatch",
    TicketEvent.Kind.ESCALATED: "exclamation-triangle",
    TicketEvent.Kind.ROUTING: "signpost-split",
}


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError):
        return None


def history(*, ticket: Ticket) -> list[HistoryEntry]:
    """The ticket's events, newest first, in words: status and priority changes, SLA policy changes,
    routing decisions with their reasons, assignments and escalations. Two queries (events, then the people
    named by assignment events)."""
    events = list(
        TicketEvent.objects.filter(organization_id=ticket.organization_id, ticket_id=ticket.pk)
        .select_related("actor")
        .order_by("-at", "-id")
    )
    ids = {
        parsed
        for e in events
        if e.kind in (TicketEvent.Kind.ASSIGNED, TicketEvent.Kind.ROUTING)
        for parsed in (_uuid(e.old_value), _uuid(e.new_value))
        if parsed
    }
    people = (
        {u.pk: u for u in User.objects.filter(organization_id=ticket.organization_id, pk__in=ids)}
        if ids
        else {}
    )

    def person(value: str) -> str:
        found = people.get(_uuid(value))
        return str(found) if found else _("someone no longer here")

    statuses, priorities = dict(Status.choices), dict(Ticket._meta.get_field("priority").choices)
    entries = []
    for e in events:
        kind, detail = e.kind, e.note
        if kind == TicketEvent.Kind.CREATED:
            title = _("Ticket created")
        elif kind == TicketEvent.Kind.STATUS:
            title = _("Status: %(old)s → %(new)s") % {
                "old": statuses.get(e.old_value, e.old_value),
                "new": statuses.get(e.new_value, e.new_value),
            }
        elif kind == TicketEvent.Kind.PRIORITY:
            title = _("Priority: %(old)s → %(new)s") % {
                "old": priorities.get(e.old_value, e.old_value),
                "new": priorities.get(e.new_value, e.new_value),
            }
        elif kind == TicketEvent.Kind.ASSIGNED:
            if e.new_value:
                title = _("Assigned to %(name)s") % {"name": person(e.new_value)}
                if e.old_value:
                    title += " " + _("(was %(name)s)") % {"name": person(e.old_value)}
            else:
                title = _("Unassigned (was %(name)s)") % {"name": person(e.old_value)}
        elif kind == TicketEvent.Kind.FIRST_RESPONSE:
            title = _("First response sent")
        elif kind == TicketEvent.Kind.POLICY:
            title = (
                _("SLA policy: %(name)s") % {"name": e.new_value}
                if e.new_value
                else _("No SLA policy applies")
            )
            if e.old_value:
                detail = _("was %(name)s") % {"name": e.old_value}
        elif kind == TicketEvent.Kind.ESCALATED:
            target = _("first response") if e.old_value == "first_response" else _("resolution")
            if e.new_value == "breach":
                title = _("SLA breached (%(target)s): management notified") % {"target": target}
            else:
                title = _("SLA at risk (%(target)s): supervisors notified") % {"target": target}
            detail = ""
        elif kind == TicketEvent.Kind.ROUTING:
            if e.new_value == "queued":
                title = _("Routing: waiting in the team queue")
            else:
                title = _("Routing: assigned to %(name)s") % {"name": person(e.new_value)}
        else:
            title = e.get_kind_display()
        entries.append(
            HistoryEntry(
                kind=kind,
                icon=_EVENT_ICONS.get(kind, "dot"),
                title=title,
                detail=detail,
                at=e.at,
                actor=e.actor,
            )
        )
    return entries


def other_tickets(*, ticket: Ticket, limit: int = OTHER_TICKETS) -> list[Ticket]:
    """The customer's other tickets, newest first (one query)."""
    return list(
        Ticket.objects.filter(organization_id=ticket.organization_id, customer_id=ticket.customer_id)
        .exclude(pk=ticket.pk)
        .order_by("-created_at", "-id")[:limit]
    )


def canned_for_ticket(*, actor: User, ticket: Ticket) -> list[dict]:
    """The organization's canned responses with their merge fields filled in for this ticket (one query)."""
    from support.services.canned import canned_render

    return [
        {"id": str(c.pk), "title": c.title, "text": canned_render(c.body, ticket=ticket, agent=actor)}
        for c in CannedResponse.objects.filter(organization_id=ticket.organization_id).order_by("title")[
            :CANNED_LIMIT
        ]
    ]


def canned_list(*, actor: User) -> QuerySet[CannedResponse]:
    return CannedResponse.objects.filter(organization_id=actor.organization_id).select_related("created_by")


def canned_get(*, actor: User, pk) -> CannedResponse:
    canned = canned_list(actor=actor).filter(pk=pk).first()
    if canned is None:
        raise Http404
    return canned


def _article_urls(article, org_slug: str) -> tuple[str, str]:
    """(the agents' page of an article, its public page) where those pages exist."""
    from django.urls import NoReverseMatch

    internal = public = ""
    try:
        internal = reverse("support:kb_detail", args=[article.pk])
    except (NoReverseMatch, AttributeError):
        internal = getattr(article, "url", "") or ""
    slug = getattr(article, "slug", "")
    if slug and org_slug and getattr(article, "status", "published") == "published":
        try:
            public = reverse("kb:article", kwargs={"org_slug": org_slug, "slug": slug})
        except NoReverseMatch:
            public = ""
    return internal, public


def suggested_articles(*, ticket: Ticket, org_slug: str = "", limit: int = 5) -> tuple[bool, list[dict]]:
    """(available, [{title, url, public_url}]) from the knowledge base's `suggest_articles`, when the knowledge
    base is installed; (False, []) otherwise, so the page says so instead of failing."""
    try:
        from support import kb
    except ImportError:
        return False, []
    suggest = getattr(kb, "suggest_articles", None)
    if suggest is None:
        return False, []
    articles = []
    for item in suggest(ticket=ticket, limit=limit) or ():
        url, public_url = _article_urls(item, org_slug)
        articles.append(
            {
                "title": getattr(item, "title", str(item)),
                "url": url,
                "public_url": public_url,
                "category": getattr(item, "category", ""),
            }
        )
    return True, articles


# --- Customer 360, merge, search -------------------------------------------------------------------------------


def open_tickets_for_customer(*, customer: Customer, actor: User) -> dict:
    """The 360 page's "Open tickets" (the design document's `open_tickets`): the customer's unsolved tickets,
    most urgent first (at most PANEL_TICKETS), and how many there are. Two queries."""
    tickets = visible_tickets(actor=actor).filter(customer_id=customer.pk).exclude(status__in=DONE_STATUSES)
    count = tickets.count()
    rows = list(with_urgency(tickets).order_by(*ORDERINGS["urgency"])[:PANEL_TICKETS]) if count else []
    now = timezone.now()
    return {
        "count": count,
        "tickets": [
            {
                "ticket_id": str(t.pk),
                "number": t.ticket_number,
                "subject": t.subject,
                "status": t.status,
                "status_label": str(_("Pending"))
                if t.status == Status.PENDING
                else str(t.get_status_display()),
                "priority": t.priority,
                "priority_label": str(t.get_priority_display()),
                "created": t.created_at.isoformat(),
                "last_update": t.updated_at.isoformat(),
                "sla_state": sla.sla_state(t, now),
                "url": reverse("support:ticket_detail", args=[t.pk]),
            }
            for t in rows
        ],
    }


def tickets_count(*, organization_id, customer_id) -> int:
    """How many tickets of one customer a merge would move."""
    return Ticket.objects.filter(organization_id=organization_id, customer_id=customer_id).count()


def surveys_count(*, organization_id, customer_id) -> int:
    from support.models import Survey

    return Survey.objects.filter(organization_id=organization_id, customer_id=customer_id).count()


def search_tickets(*, user: User, query: str, limit: int) -> list[SearchResult]:
    """Global search provider: a ticket by its number (T-000042, #42, 42) or by words of its subject."""
    number = ticket_number_in(query)
    condition = Q(subject__icontains=query)
    if number is not None:
        condition |= Q(number=number)
    matches = visible_tickets(actor=user).filter(condition).select_related("customer")
    if number is not None:  # the ticket with that number first, then subjects that mention it
        matches = matches.annotate(exact=ExpressionWrapper(Q(number=number), output_field=BooleanField()))
        matches = matches.order_by("-exact", "-created_at", "-id")
    else:
        matches = matches.order_by("-created_at", "-id")
    return [
        SearchResult(
            kind="Tickets",
            title=f"{t.ticket_number} {t.subject}",
            subtitle=" · ".join(filter(None, [t.customer.display_name, str(t.get_status_display())])),
            url=reverse("support:ticket_detail", args=[t.pk]),
            icon="life-preserver",
        )
        for t in matches[:limit]
    ]
