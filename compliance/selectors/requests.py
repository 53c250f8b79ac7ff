"""Reads of the request workflow: the queue (both laws in one list, ordered by deadline), one request, its
timeline, and the requests of a customer.

The queue is one UNION query of the two tables (each side filtered and keyset-bounded before the union,
so the database can use the (organization_id, status, due_at) indexes), plus one COUNT per table for the
status counts: a fixed number of queries whatever the page holds.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field

from django.core import signing
from django.db.models import Case, CharField, Count, IntegerField, Q, QuerySet, Value, When
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from compliance.models import OPEN_STATUSES, CcpaRequest, GdprRequest, PrivacyRequest, RequestStatus
from compliance.services.requests.common import KINDS
from compliance.services.requests.deadlines import DUE_SOON
from crm.models import AuditLog, User
from crm.permissions import Capability, has_capability

PER_PAGE = 25
_CURSOR_SALT = "compliance.request_queue"
_ORDERING = ("open_rank", "due_at", "id")
_QUEUE_FIELDS = (
    "id",
    "kind",
    "number",
    "open_rank",
    "status",
    "request_type",
    "requester_name",
    "requester_email",
    "received_at",
    "due_at",
    "completed_at",
    "extended_at",
    "customer_id",
    "customer__number",
    "customer__first_name",
    "customer__last_name",
    "customer__company_name",
    "assigned_to__first_name",
    "assigned_to__last_name",
    "assigned_to__email",
)


def deadline_facts(*, status: str, due_at: datetime.datetime, now: datetime.datetime) -> dict:
    """The SLA-style state of a deadline (support's palette: ok / at_risk / breached, met when done,
    paused when closed otherwise) and its countdown text."""
    if status == RequestStatus.COMPLETED:
        return {"state": "met", "overdue": False, "countdown": _("completed")}
    if status not in OPEN_STATUSES:
        return {"state": "paused", "overdue": False, "countdown": _("closed")}
    remaining = due_at - now
    if remaining <= datetime.timedelta(0):
        days = (-remaining).days
        text = (
            ngettext("overdue by %(n)d day", "overdue by %(n)d days", days) % {"n": days}
            if days
            else _("overdue by %(h)d h") % {"h": int((-remaining).total_seconds() // 3600)}
        )
        return {"state": "breached", "overdue": True, "countdown": text}
    days = remaining.days
    text = (
        ngettext("due in %(n)d day", "due in %(n)d days", days) % {"n": days}
        if days
        else _("due in %(h)d h") % {"h": int(remaining.total_seconds() // 3600)}
    )
    return {"state": "at_risk" if remaining <= DUE_SOON else "ok", "overdue": False, "countdown": text}


@dataclass
class QueueRow:
    id: uuid.UUID
    kind: str
    number: int
    status: str
    request_type: str
    requester_name: str
    requester_email: str
    received_at: datetime.datetime
    due_at: datetime.datetime
    completed_at: datetime.datetime | None
    extended: bool
    customer_id: uuid.UUID | None
    customer_label: str
    assignee_label: str
    facts: dict = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return f"{self.kind.upper()}-{self.number:05d}"

    @property
    def url(self) -> str:
        return reverse("compliance:request_detail", kwargs={"kind": self.kind, "pk": self.id})

    @property
    def status_label(self) -> str:
        return RequestStatus(self.status).label

    @property
    def type_label(self) -> str:
        return KINDS[self.kind].Type(self.request_type).label


@dataclass
class Queue:
    rows: list[QueueRow]
    next_cursor: str | None
    previous_cursor: str | None
    status_counts: list[dict]
    overdue_count: int
    open_count: int

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None

    @property
    def items(self) -> list[QueueRow]:
        return self.rows


def _scoped(model: type[PrivacyRequest], actor: User) -> QuerySet:
    return model.objects.filter(organization_id=actor.organization_id)


def _side(model, kind: str, actor: User, filters: dict, now) -> QuerySet | None:
    """One table's part of the queue with every filter applied (None when the kind filter excludes it)."""
    if filters.get("kind") and filters["kind"] != kind:
        return None
    qs = _scoped(model, actor)
    request_type = filters.get("request_type")
    if request_type:
        if request_type not in model.Type.values:
            return None
        qs = qs.filter(request_type=request_type)
    status = filters.get("status") or "open"
    if status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif status != "all":
        qs = qs.filter(status=status)
    if filters.get("overdue"):
        qs = qs.filter(status__in=OPEN_STATUSES, due_at__lt=now)
    assignee = filters.get("assignee")
    if assignee == "me":
        qs = qs.filter(assigned_to_id=actor.pk)
    elif assignee == "none":
        qs = qs.filter(assigned_to__isnull=True)
    elif isinstance(assignee, User):
        qs = qs.filter(assigned_to_id=assignee.pk)
    return qs.annotate(
        kind=Value(kind, output_field=CharField()),
        open_rank=Case(
            When(status__in=OPEN_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()
        ),
    )


def _after(values: list, *, reverse: bool) -> Q:
    """(open_rank, due_at, id) strictly after `values` (before, when `reverse`), as OR-ed prefixes."""
    op = "lt" if reverse else "gt"
    condition = Q()
    for position, name in enumerate(_ORDERING):
        step = Q(**{f"{name}__{op}": values[position]})
        for earlier in range(position):
            step &= Q(**{_ORDERING[earlier]: values[earlier]})
        condition |= step
    return condition


def _encode(row: dict, direction: str) -> str:
    return signing.dumps(
        {"v": [row["open_rank"], row["due_at"].isoformat(), str(row["id"])], "d": direction},
        salt=_CURSOR_SALT,
    )


def _decode(cursor: str | None) -> tuple[list, str] | None:
    if not cursor:
        return None
    try:
        data = signing.loads(cursor, salt=_CURSOR_SALT)
        rank, due, pk = data["v"]
        return [int(rank), parse_datetime(due), uuid.UUID(pk)], data.get("d", "next")
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None  # a forged or stale cursor: start from the beginning


def _row(values: dict, now) -> QueueRow:
    customer_label = ""
    if values["customer_id"]:
        name = " ".join(p for p in (values["customer__first_name"], values["customer__last_name"]) if p)
        customer_label = name or values["customer__company_name"] or f"C-{values['customer__number']:06d}"
    assignee = " ".join(p for p in (values["assigned_to__first_name"], values["assigned_to__last_name"]) if p)
    return QueueRow(
        id=values["id"],
        kind=values["kind"],
        number=values["number"],
        status=values["status"],
        request_type=values["request_type"],
        requester_name=values["requester_name"],
        requester_email=values["requester_email"],
        received_at=values["received_at"],
        due_at=values["due_at"],
        completed_at=values["completed_at"],
        extended=values["extended_at"] is not None,
        customer_id=values["customer_id"],
        customer_label=customer_label,
        assignee_label=assignee or values["assigned_to__email"] or "",
        facts=deadline_facts(status=values["status"], due_at=values["due_at"], now=now),
    )


def _counts(actor: User, filters: dict, now) -> tuple[list[dict], int, int]:
    """Requests per status (with every filter but status and overdue), and how many open ones are
    overdue: one aggregate query per table."""
    base_filters = {k: v for k, v in filters.items() if k not in ("status", "overdue")}
    base_filters["status"] = "all"
    totals = dict.fromkeys(RequestStatus.values, 0)
    overdue = 0
    aggregates = {s: Count("id", filter=Q(status=s)) for s in RequestStatus.values}
    aggregates["overdue"] = Count("id", filter=Q(status__in=OPEN_STATUSES, due_at__lt=now))
    for kind, model in KINDS.items():
        qs = _side(model, kind, actor, base_filters, now)
        if qs is None:
            continue
        result = qs.values("organization_id").order_by().aggregate(**aggregates)
        for status in RequestStatus.values:
            totals[status] += result[status]
        overdue += result["overdue"]
    rows = [{"status": s, "label": RequestStatus(s).label, "count": totals[s]} for s in RequestStatus.values]
    return rows, overdue, sum(totals[s] for s in OPEN_STATUSES)


def request_queue(
    *, actor: User, filters: dict | None = None, cursor: str | None = None, per_page: int = PER_PAGE
) -> Queue:
    """The privacy request queue: open requests first, each group by deadline (soonest first)."""
    if not has_capability(actor, Capability.VIEW_PRIVACY_REQUESTS):
        raise Http404
    filters = filters or {}
    now = timezone.now()
    decoded = _decode(cursor)
    direction = decoded[1] if decoded else "next"
    reverse = direction == "previous"
    sides = []
    for kind, model in KINDS.items():
        qs = _side(model, kind, actor, filters, now)
        if qs is None:
            continue
        if decoded:
            qs = qs.filter(_after(decoded[0], reverse=reverse))
        sides.append(qs.values(*_QUEUE_FIELDS).order_by())
    values: list[dict] = []
    if sides:
        union = sides[0].union(*sides[1:], all=True) if len(sides) > 1 else sides[0]
        ordering = [f"-{f}" for f in _ORDERING] if reverse else list(_ORDERING)
        values = list(union.order_by(*ordering)[: per_page + 1])
    more = len(values) > per_page
    values = values[:per_page]
    if reverse:
        values.reverse()
    has_next = more if not reverse else bool(decoded)
    has_previous = bool(decoded) if not reverse else more
    status_counts, overdue_count, open_count = _counts(actor, filters, now)
    return Queue(
        rows=[_row(v, now) for v in values],
        next_cursor=_encode(values[-1], "next") if values and has_next else None,
        previous_cursor=_encode(values[0], "previous") if values and has_previous else None,
        status_counts=status_counts,
        overdue_count=overdue_count,
        open_count=open_count,
    )


def request_get(*, actor: User, kind: str, pk) -> PrivacyRequest:
    """One request of the actor's organization; 404 for an unknown kind, another organization's id, or an
    actor who may not see requests."""
    model = KINDS.get(kind)
    if model is None or not has_capability(actor, Capability.VIEW_PRIVACY_REQUESTS):
        raise Http404
    try:
        return (
            _scoped(model, actor)
            .select_related("customer", "assigned_to", "verified_by", "created_by")
            .get(pk=pk)
        )
    except model.DoesNotExist:
        raise Http404 from None


def request_timeline(*, privacy_request: PrivacyRequest, limit: int = 100) -> list[dict]:
    """The request's history from its audit trail rows (newest first): the status changes and the fields
    each step changed, by whom, when. Two queries (the rows, then their users); the verification code's
    hash and the result blob are never shown."""
    entries = list(
        AuditLog.objects.filter(
            organization_id=privacy_request.organization_id,
            table_name=privacy_request._meta.db_table,
            record_id=str(privacy_request.pk),
        ).order_by("-occurred_at", "-id")[:limit]
    )
    users = {u.pk: u for u in User.objects.filter(pk__in={e.user_id for e in entries if e.user_id})}
    hidden = {"verification_code_hash", "updated_at", "result", "verification_attempts"}
    timeline = []
    for entry in entries:
        old, new = entry.old_values or {}, entry.new_values or {}
        changed = [k for k in (entry.changed_fields or []) if k not in hidden]
        status_to = new.get("status") if old.get("status") != new.get("status") else None
        if entry.operation == "UPDATE" and not changed and not status_to:
            continue
        timeline.append(
            {
                "at": entry.occurred_at,
                "operation": entry.operation,
                "operation_label": AuditLog.Operation(entry.operation).label,
                "user": users.get(entry.user_id),
                "status_to": RequestStatus(status_to).label if status_to in RequestStatus.values else None,
                "changed": [
                    str(privacy_request._meta.get_field(k).verbose_name)
                    if k
                    in {f.name for f in privacy_request._meta.fields}
                    | {f.attname for f in privacy_request._meta.fields}
                    else k
                    for k in changed
                    if k != "status"
                ]
                if entry.operation == "UPDATE"
                else [],
            }
        )
    return timeline


def requests_for_customer(*, customer, actor: User, limit: int = 10) -> list[QueueRow]:
    """The customer's privacy requests (both laws, newest first) for the customer 360 page: one query."""
    if not has_capability(actor, Capability.VIEW_PRIVACY_REQUESTS):
        return []
    now = timezone.now()
    sides = []
    for kind, model in KINDS.items():
        qs = _side(model, kind, actor, {"status": "all"}, now).filter(customer_id=customer.pk)
        sides.append(qs.values(*_QUEUE_FIELDS).order_by())
    values = sides[0].union(*sides[1:], all=True).order_by("-received_at", "-id")[:limit]
    return [_row(v, now) for v in values]


def assignable_users(*, actor: User) -> QuerySet:
    """Colleagues who may handle privacy requests (hold PROCESS_PRIVACY_REQUESTS)."""
    users = User.objects.filter(organization_id=actor.organization_id, is_active=True).order_by(
        "first_name", "last_name", "email"
    )
    return users.filter(
        pk__in=[u.pk for u in users if has_capability(u, Capability.PROCESS_PRIVACY_REQUESTS)]
    )


def privacy_panel_for_customer(*, customer, actor: User) -> dict:
    """The customer 360 "Privacy requests" panel (JSON-safe): the customer's requests for those who may see
    them (one query), and where to log a new one."""
    rows = requests_for_customer(customer=customer, actor=actor)
    return {
        "can_view": has_capability(actor, Capability.VIEW_PRIVACY_REQUESTS),
        "create_url": f"{reverse('compliance:request_create')}?customer={customer.pk}",
        "requests": [
            {
                "reference": row.reference,
                "url": row.url,
                "type": str(row.type_label),
                "status": row.status,
                "status_label": str(row.status_label),
                "received_at": row.received_at.isoformat(),
                "countdown": str(row.facts["countdown"]),
                "state": row.facts["state"],
            }
            for row in rows
        ],
    }


# What the public verify pages read of a request: its state and deadline, never its details or result.
PUBLIC_REQUEST_FIELDS = (
    "id",
    "organization_id",
    "number",
    "status",
    "request_type",
    "requester_email",
    "due_at",
    "extended_at",
    "verification_code_hash",
    "verification_sent_at",
    "verification_attempts",
    "verified_at",
    "rejection_reason",
)


def public_request_get(*, organization_id, pk) -> PrivacyRequest:
    """The GDPR or CCPA request `pk` of the organization, for its data subject's public pages (no login: the
    organization comes from the URL's slug); 404 if it is neither. The ids are UUIDs of one space."""
    for model in (GdprRequest, CcpaRequest):
        found = (
            model.objects.filter(organization_id=organization_id, pk=pk).only(*PUBLIC_REQUEST_FIELDS).first()
        )
        if found is not None:
            return found
    raise Http404
