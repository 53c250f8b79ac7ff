"""The escalation sweep: supervisors warned at half the SLA time, management at the deadline, each once.

For every running ticket (active, not paused) and each of its targets still open (first response not yet
given; resolution), the sweep looks at the stored instants support/sla.py derived from the ticket's history:
- `*_warn_at` (half the target's working time) passed, deadline not yet: WARNING, an in-app notification to
  the supervisors (the organization's active support managers);
- `*_due_at` passed: BREACH, a notification to management (active support managers and admins).
Each escalation is a `ticket_escalations` row, unique per (ticket, level, target), plus an ESCALATED event on
the ticket's timeline (old value: the target, new value: the level).

Exactly once. The candidates are chosen and claimed in one `INSERT ... SELECT ... ON CONFLICT DO NOTHING
RETURNING` per organization and level, and only the rows a sweep inserted are notified, in the same
transaction. A second sweep running at the same time blocks on the first one's uncommitted unique-key entries
and, once it commits, skips them (conflict); if the first rolls back, the second inserts and notifies
instead. Candidates are inserted in (ticket, target) order, so two sweeps never wait on each other in a
cycle. A sweep run again later finds the rows and does nothing. A ticket whose deadline moves (a reopen, a
calendar edit) is not escalated a second time at the same level.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from dataclasses import dataclass

from django.db import connection, transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Notification, User
from crm.permissions import Role
from customers.segments.membership import UUID7_SQL
from support.models import DONE_STATUSES, Escalation, Ticket, TicketEvent

_ACTIVE = "t.organization_id = %(org)s AND t.status NOT IN ({done}) AND t.sla_paused_since IS NULL".format(
    done=", ".join(f"'{status}'" for status in sorted(DONE_STATUSES))
)
# The deadline condition of each level: a warning only while the deadline is still ahead.
_LEVEL_CONDITION = {Escalation.Level.WARNING: "> %(now)s", Escalation.Level.BREACH: "<= %(now)s"}

_CLAIM_SQL = """
WITH due (ticket_id, target, due_at) AS (
    SELECT t.id, 'first_response', t.first_response_due_at FROM support_tickets t
    WHERE {active} AND t.first_response_at IS NULL
      AND t.first_response_warn_at <= %(now)s AND t.first_response_due_at {condition}
    UNION ALL
    SELECT t.id, 'resolution', t.resolution_due_at FROM support_tickets t
    WHERE {active} AND t.resolution_warn_at <= %(now)s AND t.resolution_due_at {condition}
)
INSERT INTO ticket_escalations (id, organization_id, ticket_id, level, target, due_at, at, notified)
SELECT {uuid7}, %(org)s, due.ticket_id, %(level)s, due.target, due.due_at, %(now)s, %(notified)s::uuid[]
FROM due
ORDER BY due.ticket_id, due.target
ON CONFLICT (organization_id, ticket_id, level, target) DO NOTHING
RETURNING ticket_id, target, due_at
"""

_ORGANIZATIONS_SQL = """
SELECT DISTINCT t.organization_id FROM support_tickets t
WHERE t.status NOT IN ({done}) AND t.sla_paused_since IS NULL AND (
    (t.first_response_at IS NULL AND t.first_response_warn_at <= %(now)s AND NOT EXISTS (
        SELECT 1 FROM ticket_escalations e
        WHERE e.organization_id = t.organization_id AND e.ticket_id = t.id AND e.target = 'first_response'
          AND e.level = CASE WHEN t.first_response_due_at <= %(now)s THEN 'breach' ELSE 'warning' END))
    OR (t.resolution_warn_at <= %(now)s AND NOT EXISTS (
        SELECT 1 FROM ticket_escalations e
        WHERE e.organization_id = t.organization_id AND e.ticket_id = t.id AND e.target = 'resolution'
          AND e.level = CASE WHEN t.resolution_due_at <= %(now)s THEN 'breach' ELSE 'warning' END))
)
""".format(done=", ".join(f"'{status}'" for status in sorted(DONE_STATUSES)))


@dataclass(frozen=True)
class SweepResult:
    warnings: int = 0
    breaches: int = 0


def organizations_with_due_escalations(*, now: dt.datetime | None = None) -> list[uuid.UUID]:
    """Organizations with a running ticket past a half-time or a deadline not yet escalated at that level
    (run as the platform: the beat task enqueues one sweep per organization)."""
    with connection.cursor() as cursor:
        cursor.execute(_ORGANIZATIONS_SQL, {"now": now or timezone.now()})
        return [row[0] for row in cursor.fetchall()]


def recipients(*, organization_id, level: str) -> list[User]:
    """Who hears of an escalation: supervisors (active support managers) for a warning; management (active
    support managers and admins) for a breach."""
    roles = (
        [Role.SUPPORT_MANAGER] if level == Escalation.Level.WARNING else [Role.SUPPORT_MANAGER, Role.ADMIN]
    )
    return list(
        User.objects.filter(organization_id=organization_id, is_active=True, role__in=roles)
        .select_related("organization")
        .order_by("id")
    )


def _claim(*, organization_id, level: str, now: dt.datetime, notified: list[uuid.UUID]) -> list[tuple]:
    sql = _CLAIM_SQL.format(active=_ACTIVE, condition=_LEVEL_CONDITION[level], uuid7=UUID7_SQL)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"org": organization_id, "now": now, "level": level, "notified": notified})
        return cursor.fetchall()


def _ticket_url(ticket: Ticket) -> str:
    try:
        return reverse("support:ticket_detail", kwargs={"pk": ticket.pk})
    except NoReverseMatch:  # the workspace pages are not mounted (yet)
        return ""


def _zone(user: User) -> zoneinfo.ZoneInfo:
    """The zone a person reads times in: their own, else their organization's, else UTC."""
    name = user.time_zone or getattr(user.organization, "time_zone", "") or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _text(level: str, target: str, ticket: Ticket, due: dt.datetime, zone) -> tuple[str, str]:
    what = _("first response") if target == Escalation.Target.FIRST_RESPONSE else _("resolution")
    when = due.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    values = {"number": ticket.ticket_number, "what": what, "when": when, "subject": ticket.subject}
    if level == Escalation.Level.WARNING:
        title = _("SLA at risk: %(number)s, %(what)s due %(when)s") % values
        body = _("Half the time for the %(what)s of %(number)s (%(subject)s) has passed.") % values
    else:
        title = _("SLA breached: %(number)s, %(what)s was due %(when)s") % values
        body = _("The %(what)s deadline of %(number)s (%(subject)s) has passed.") % values
    return title[:200], body


@transaction.atomic
def escalation_sweep(*, organization_id, now: dt.datetime | None = None) -> SweepResult:
    """Escalate the organization's running tickets that crossed a half-time or a deadline, each once per
    level and target; returns how many warnings and breaches this sweep recorded (0 for those another sweep
    recorded first). Runs in the organization's tenant context."""
    now = now or timezone.now()
    counts = {}
    for level in (Escalation.Level.WARNING, Escalation.Level.BREACH):
        people = recipients(organization_id=organization_id, level=level)
        claimed = _claim(
            organization_id=organization_id, level=level, now=now, notified=[u.pk for u in people]
        )
        counts[level] = len(claimed)
        if not claimed:
            continue
        tickets = Ticket.objects.filter(organization_id=organization_id, pk__in={row[0] for row in claimed})
        tickets = {ticket.pk: ticket for ticket in tickets.only("id", "organization_id", "number", "subject")}
        events, notifications = [], []
        for ticket_id, target, due in claimed:
            ticket = tickets[ticket_id]
            events.append(
                TicketEvent(
                    organization_id=organization_id,
                    ticket_id=ticket_id,
                    kind=TicketEvent.Kind.ESCALATED,
                    old_value=target,
                    new_value=level,
                    note=str(Escalation.Level(level).label)[:300],
                    at=now,
                )
            )
            for person in people:
                title, body = _text(level, target, ticket, due, _zone(person))
                notifications.append((person, title, body, _ticket_url(ticket)))
        TicketEvent.objects.bulk_create(events)
        _notify(notifications, level=level)
    return SweepResult(warnings=counts[Escalation.Level.WARNING], breaches=counts[Escalation.Level.BREACH])


def _notify(notifications, *, level: str) -> None:
    from crm.services import notification_create

    severity = Notification.Level.WARNING if level == Escalation.Level.WARNING else Notification.Level.DANGER
    for person, title, body, url in notifications:
        notification_create(recipient=person, title=title, body=body, url=url, level=severity)


def escalations_of(*, ticket: Ticket) -> list[Escalation]:
    """The ticket's escalations, latest first (for the ticket page)."""
    return list(Escalation.objects.filter(organization_id=ticket.organization_id, ticket_id=ticket.pk))
