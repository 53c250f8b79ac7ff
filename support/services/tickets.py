"""Writes to tickets: create, reply, note, status and priority changes, with the event history the SLA
clock is computed from.

Each change is one transaction: the ticket row, its `ticket_events` row and the recomputed SLA deadlines
(support/sla.py) commit together, so a deadline never disagrees with the history it was derived from.
Routing (support/routing.py) claims an agent's capacity in the same transaction as the assignment.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.db.numbering import allocate_numbers
from crm.models import Organization, User
from crm.permissions import Capability, has_capability
from customers.models import Customer
from customers.services.customers import normalise_tags
from support.models import (
    DONE_STATUSES,
    Channel,
    Priority,
    Status,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketMessage,
    TicketType,
)

# Which interaction a ticket's traffic leaves on the customer's timeline, by channel.
INTERACTION_CHANNEL = {
    Channel.EMAIL: "email",
    Channel.WEB: "web",
    Channel.PHONE: "phone",
    Channel.CHAT: "chat",
    Channel.SOCIAL: "social",
}


def _require(actor: User | None, capability: Capability) -> None:
    if actor is not None and not has_capability(actor, capability):
        raise PermissionDenied


def record_event(
    *,
    ticket: Ticket,
    kind: str,
    actor: User | None = None,
    old_value: str = "",
    new_value: str = "",
    note: str = "",
    at=None,
) -> TicketEvent:
    return TicketEvent.objects.create(
        organization_id=ticket.organization_id,
        ticket=ticket,
        kind=kind,
        old_value=str(old_value or "")[:64],
        new_value=str(new_value or "")[:64],
        note=(note or "")[:300],
        actor=actor,
        at=at or timezone.now(),
    )


def _apply_sla(ticket: Ticket) -> Ticket:
    from support import sla

    return sla.ticket_apply_sla(ticket=ticket)


@transaction.atomic
def ticket_create(
    *,
    organization: Organization,
    actor: User | None,
    customer: Customer,
    subject: str,
    description: str = "",
    channel: str = Channel.WEB,
    type: str = TicketType.QUESTION,
    category: str = "",
    requested_priority: str = Priority.NORMAL,
    tags: Iterable[str] = (),
    route: bool = True,
) -> Ticket:
    """Open a ticket: number, CREATED event, SLA policy and deadlines, then routing to an agent (in the same
    transaction, so the ticket is never visible unrouted unless no agent is free)."""
    _require(actor, Capability.WORK_TICKETS)
    if customer.organization_id != organization.pk:
        raise ValidationError({"customer": _("The customer must belong to this organization.")})
    ticket = Ticket(
        organization=organization,
        customer=customer,
        subject=subject.strip()[:250],
        description=description,
        channel=channel,
        type=type,
        category=category,
        requested_priority=requested_priority,
        priority=requested_priority,
        tags=normalise_tags(tags),
        created_by=actor,
    )
    ticket.number = allocate_numbers("support_tickets", organization.pk)
    ticket.full_clean(
        exclude=["number", "customer", "organization"], validate_unique=False, validate_constraints=False
    )
    ticket.save(force_insert=True)
    record_event(
        ticket=ticket, kind=TicketEvent.Kind.CREATED, actor=actor, new_value=Status.NEW, at=ticket.created_at
    )
    ticket = _apply_sla(ticket)
    _log_interaction(ticket, actor=actor, body=description or subject, from_customer=True)
    if route:
        from support import routing

        routing.route_ticket(ticket_id=ticket.pk, organization_id=organization.pk, actor=actor)
        ticket.refresh_from_db()
    return ticket


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk, organization_id=ticket.organization_id)


@transaction.atomic
def ticket_set_status(*, ticket: Ticket, actor: User | None, status: str, note: str = "") -> Ticket:
    """Move a ticket to `status`. Resolving stamps resolved_at and frees the agent's capacity; reopening a
    resolved or closed ticket counts a reopen and takes capacity again through routing. The SLA deadlines are
    recomputed from the history (pending and on-hold pause the clock)."""
    _require(actor, Capability.WORK_TICKETS)
    if status not in Status.values:
        raise ValidationError({"status": _("Unknown status.")})
    stored = _locked(ticket)
    previous = stored.status
    if previous == status:
        return stored
    now = timezone.now()
    stored.status = status
    if status == Status.RESOLVED:
        stored.resolved_at = now
    if status == Status.CLOSED:
        stored.closed_at = now
        stored.resolved_at = stored.resolved_at or now
    reopened = previous in DONE_STATUSES and status not in DONE_STATUSES
    if reopened:
        stored.reopened_count += 1
        stored.resolved_at = None
        stored.closed_at = None
    stored.save()
    record_event(
        ticket=stored,
        kind=TicketEvent.Kind.STATUS,
        actor=actor,
        old_value=previous,
        new_value=status,
        note=note,
        at=now,
    )
    stored = _apply_sla(stored)
    from support import routing

    if status in DONE_STATUSES and previous not in DONE_STATUSES:
        routing.ticket_release(ticket=stored)
    elif reopened:
        if stored.assigned_to_id:
            routing.ticket_assign(ticket=stored, agent=stored.assigned_to, actor=actor, force=True)
        else:
            routing.route_ticket(ticket_id=stored.pk, organization_id=stored.organization_id, actor=actor)
    stored.refresh_from_db()
    if status == Status.RESOLVED:
        _on_resolved(stored)
    return stored


def _on_resolved(ticket: Ticket) -> None:
    """After a resolution commits, the customer gets the CSAT survey (once per ticket: support/surveys.py)."""
    from support import surveys

    ticket_id, organization_id = ticket.pk, ticket.organization_id
    transaction.on_commit(
        lambda: surveys.survey_send_for_ticket(ticket_id=ticket_id, organization_id=organization_id),
        robust=True,
    )


@transaction.atomic
def ticket_set_priority(*, ticket: Ticket, actor: User | None, priority: str, note: str = "") -> Ticket:
    _require(actor, Capability.WORK_TICKETS)
    if priority not in Priority.values:
        raise ValidationError({"priority": _("Unknown priority.")})
    stored = _locked(ticket)
    if stored.priority == priority:
        return stored
    previous = stored.priority
    stored.priority = priority
    stored.save()
    record_event(
        ticket=stored,
        kind=TicketEvent.Kind.PRIORITY,
        actor=actor,
        old_value=previous,
        new_value=priority,
        note=note,
    )
    return _apply_sla(stored)


@transaction.atomic
def ticket_update(*, ticket: Ticket, actor: User | None, **fields) -> Ticket:
    """Change subject, description, type, category or tags (priority and status have their own services)."""
    _require(actor, Capability.WORK_TICKETS)
    allowed = {"subject", "description", "type", "category", "tags"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    stored = _locked(ticket)
    if "tags" in fields:
        fields["tags"] = normalise_tags(fields["tags"])
    reclassified = any(
        name in fields and fields[name] != getattr(stored, name) for name in ("type", "category")
    )
    for name, value in fields.items():
        setattr(stored, name, value)
    stored.full_clean(
        exclude=["number", "customer", "organization"], validate_unique=False, validate_constraints=False
    )
    stored.save()
    if reclassified:
        # Policies match on the type: a reclassified ticket may move to another policy (and priority).
        stored = _apply_sla(stored)
    return stored


def _log_interaction(ticket: Ticket, *, actor: User | None, body: str, from_customer: bool) -> None:
    from customers.services.customers import interaction_log

    interaction_log(
        customer=ticket.customer,
        actor=None,  # written on the ticket's behalf: the agent's capability was checked by the caller
        interaction_type="support_ticket" if from_customer else "email_sent",
        channel=INTERACTION_CHANNEL.get(ticket.channel, ""),
        outcome=f"{ticket.ticket_number}: {ticket.subject}"[:200],
        notes=body[:2000],
    )


def _attach(message: TicketMessage, attachments: Iterable) -> None:
    from support.attachments import content_type_for, validate_upload

    for upload in attachments:
        validate_upload(upload)
        attachment = TicketAttachment(
            organization_id=message.organization_id,
            message=message,
            filename=upload.name[:255],
            content_type=content_type_for(upload.name),
            size=upload.size,
        )
        attachment.file.save(upload.name, upload, save=False)
        attachment.save(force_insert=True)


@transaction.atomic
def ticket_reply(
    *,
    ticket: Ticket,
    actor: User | None,
    body: str,
    attachments: Iterable = (),
    from_customer: bool = False,
    channel: str = "",
    email_message_id: str = "",
    set_status: str = "",
) -> TicketMessage:
    """A public reply. The first one by an agent stops the first-response clock; a customer's reply to a
    pending ticket reopens it (status open); an agent may set the next status in the same step."""
    if not from_customer:
        _require(actor, Capability.WORK_TICKETS)
    if not body.strip():
        raise ValidationError({"body": _("Write a message.")})
    stored = _locked(ticket)
    message = TicketMessage.objects.create(
        organization_id=stored.organization_id,
        ticket=stored,
        kind=TicketMessage.Kind.REPLY,
        author=None if from_customer else actor,
        from_customer=from_customer,
        body=body,
        channel=channel or (stored.channel if from_customer else Channel.EMAIL),
        email_message_id=email_message_id[:300],
    )
    _attach(message, attachments)
    if not from_customer and stored.first_response_at is None:
        stored.first_response_at = message.created_at
        stored.save(update_fields=["first_response_at", "updated_at"])
        record_event(ticket=stored, kind=TicketEvent.Kind.FIRST_RESPONSE, actor=actor, at=message.created_at)
        stored = _apply_sla(stored)
    _log_interaction(stored, actor=actor, body=body, from_customer=from_customer)
    next_status = set_status
    if (from_customer and stored.status in (Status.PENDING, Status.RESOLVED)) or (
        not from_customer and not next_status and stored.status == Status.NEW
    ):
        next_status = Status.OPEN
    if next_status and next_status != stored.status:
        ticket_set_status(ticket=stored, actor=actor if not from_customer else None, status=next_status)
    if not from_customer:
        from support import mailing

        message_id = message.pk
        organization_id = stored.organization_id
        transaction.on_commit(
            lambda: mailing.send_reply_email(message_id=message_id, organization_id=organization_id),
            robust=True,
        )
    return message


@transaction.atomic
def ticket_note(
    *, ticket: Ticket, actor: User | None, body: str, attachments: Iterable = ()
) -> TicketMessage:
    """An internal note: agents only, never sent to the customer, never stops an SLA clock."""
    _require(actor, Capability.WORK_TICKETS)
    if not body.strip():
        raise ValidationError({"body": _("Write a note.")})
    message = TicketMessage.objects.create(
        organization_id=ticket.organization_id,
        ticket=ticket,
        kind=TicketMessage.Kind.NOTE,
        author=actor,
        body=body,
    )
    _attach(message, attachments)
    return message
