"""SLA clocks: which policy a ticket runs on, and its deadlines, derived from the ticket's event history.

Working time. A policy runs on a business-hours calendar (working days and hours in a time zone, several
intervals a day, holidays) or, with no calendar, on calendar time. Business hours are computed in the
calendar's local wall time with zoneinfo and each interval's boundaries are converted to UTC, so a day
on which the clocks change has the length it really has (09:00-17:00 is eight hours on either side of a
DST change, and a 00:00-06:00 interval on the night the clocks go back is seven).

The clock. It starts at the ticket's CREATED event and runs while the ticket's status (from its STATUS
events) is neither paused (pending, on hold) nor done (resolved, closed). A target of N minutes is due at
the instant the running working time reaches N, which is "start + N working minutes, extended by the working
minutes spent paused". The first-response clock stops at the first public agent reply (the FIRST_RESPONSE
event, else `ticket.first_response_at`); the resolution clock stops at resolution and a reopen resumes it.
A clock that is not running shows the deadline it would have if it resumed: from the instant it stopped
(first response, resolution: so "met" is "stopped before the deadline"), or from now for a pause. Half of
each target (the `*_warn_at` instants) is when the escalation sweep warns the supervisors.

Policies are tried in `position` order and the first active one whose conditions all hold applies. The
policy is matched again each time the SLA is applied (creation, status and priority changes), so a
reclassified ticket moves to the policy that now matches and that policy's targets count from the ticket's
creation. The priority is not a condition (policies match the priority the customer asked for), so an
agent's priority change never moves a ticket to another policy; a policy's `set_priority` is applied only
when the ticket comes onto that policy.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Organization
from support.models import (
    DONE_STATUSES,
    PAUSED_STATUSES,
    BusinessCalendar,
    Holiday,
    Priority,
    SlaPolicy,
    Status,
    Ticket,
    TicketEvent,
    TicketType,
)

UTC = dt.UTC
ZERO = dt.timedelta(0)
DAY = dt.timedelta(days=1)
# A calendar with no working time for this many days in a row (holidays) is treated as broken.
MAX_IDLE_DAYS = 400
RECOMPUTE_BATCH = 500

SlaState = Literal["ok", "at_risk", "breached", "paused", "met"]


# --- Working time ------------------------------------------------------------------------------------------


def parse_clock(value: str) -> int:
    """ "HH:MM" -> minutes after midnight; "24:00" is the end of the day. Raises ValueError."""
    hours, _sep, minutes = str(value).strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and 1 <= len(hours) <= 2):
        raise ValueError(f"not a time of day: {value!r}")
    total = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or total > 24 * 60:
        raise ValueError(f"not a time of day: {value!r}")
    return total


def parse_week(hours: Mapping[str, Sequence[Sequence[str]]]) -> dict[int, list[tuple[int, int]]]:
    """The calendar's `hours` JSON ({"1": [["09:00", "17:00"]], ...}, ISO weekdays) as sorted minute ranges
    per weekday. Raises ValueError for a bad day, time, an empty or overlapping interval."""
    week: dict[int, list[tuple[int, int]]] = {}
    for key, intervals in (hours or {}).items():
        day = int(key)
        if not 1 <= day <= 7:
            raise ValueError(f"not an ISO weekday: {key!r}")
        ranges = []
        for interval in intervals or ():
            start, end = (parse_clock(part) for part in interval)
            if end <= start:
                raise ValueError(f"an interval must end after it starts: {interval!r}")
            ranges.append((start, end))
        ranges.sort()
        for (_start, end), (next_start, _end) in itertools.pairwise(ranges):
            if next_start < end:
                raise ValueError("intervals overlap")
        if ranges:
            week[day] = ranges
    return week


class WorkingTime(Protocol):
    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime: ...

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta: ...


class CalendarTime:
    """Around the clock: working time is elapsed time."""

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        return start + max(duration, ZERO)

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        return max(end - start, ZERO)


class BusinessHours:
    """Working intervals of a calendar: weekly hours in local wall time, minus holidays (local dates)."""

    def __init__(
        self,
        *,
        time_zone: str,
        hours: Mapping[str, Sequence[Sequence[str]]],
        holidays: Iterable[dt.date] = (),
    ) -> None:
        self.zone = ZoneInfo(time_zone or "UTC")
        self.week = parse_week(hours)
        if not self.week:
            raise ValueError("a business-hours calendar needs at least one working interval")
        self.holidays = frozenset(holidays)

    def _local(self, day: dt.date, minutes: int) -> dt.datetime:
        # Wall time on `day` (24:00 is the next day's midnight) converted to UTC. A wall time that does not
        # exist (the hour skipped in spring) reads with the offset before the change, i.e. the instant the
        # clocks jumped past it; an ambiguous one (the hour repeated in autumn) is its first occurrence.
        if minutes == 24 * 60:
            local = dt.datetime.combine(day + DAY, dt.time(0, 0), tzinfo=self.zone)
        else:
            local = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=self.zone)
        return local.astimezone(UTC)

    def day_intervals(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The working intervals of one local date, in UTC (none on a holiday or a day off)."""
        if day in self.holidays:
            return []
        intervals = []
        for start, end in self.week.get(day.isoweekday(), ()):
            utc_start, utc_end = self._local(day, start), self._local(day, end)
            if utc_end > utc_start:  # an interval inside the skipped hour has no length
                intervals.append((utc_start, utc_end))
        return intervals

    def intervals(self, start: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """The working intervals from `start` on (UTC), the first one clipped to `start`; endless."""
        day = start.astimezone(self.zone).date()
        idle = 0
        while True:
            worked = False
            for interval_start, interval_end in self.day_intervals(day):
                if interval_end <= start:
                    continue
                worked = True
                yield max(interval_start, start), interval_end
            idle = 0 if worked else idle + 1
            if idle > MAX_IDLE_DAYS:
                raise ValueError("the calendar has no working time for more than a year")
            day += DAY

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """The instant `duration` of working time after `start`."""
        if duration <= ZERO:
            return start
        remaining = duration
        for interval_start, interval_end in self.intervals(start):
            span = interval_end - interval_start
            if remaining <= span:
                return interval_start + remaining
            remaining -= span
        raise AssertionError("unreachable: intervals() is endless")

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Working time between two instants."""
        total = ZERO
        if end <= start:
            return total
        for interval_start, interval_end in self.intervals(start):
            if interval_start >= end:
                break
            total += min(interval_end, end) - interval_start
        return total


def working_time(calendar, holidays: Iterable = ()) -> WorkingTime:
    """The working time of `calendar` (anything with `time_zone` and `hours`) with these holidays (dates or
    Holiday rows); calendar time when there is no calendar."""
    if calendar is None:
        return CalendarTime()
    dates = [h if isinstance(h, dt.date) else h.date for h in holidays]
    return BusinessHours(time_zone=calendar.time_zone, hours=calendar.hours, holidays=dates)


def working_minutes_between(calendar, holidays: Iterable, start: dt.datetime, end: dt.datetime) -> float:
    """Elapsed working minutes between two instants on a calendar (calendar time when None): for reports."""
    return working_time(calendar, holidays).between(start, end) / dt.timedelta(minutes=1)


# --- The clock ---------------------------------------------------------------------------------------------

RUNNING, PAUSED, DONE = "running", "paused", "done"


def _phase(status: str) -> str:
    if status in PAUSED_STATUSES:
        return PAUSED
    if status in DONE_STATUSES:
        return DONE
    return RUNNING


@dataclass(frozen=True)
class Deadlines:
    first_response_due_at: dt.datetime | None = None
    resolution_due_at: dt.datetime | None = None
    first_response_warn_at: dt.datetime | None = None
    resolution_warn_at: dt.datetime | None = None
    paused_since: dt.datetime | None = None


def _phases(ticket, events: Iterable) -> list[tuple[dt.datetime, str]]:
    """The clock's phases from the history: [(since, running | paused | done)], consecutive equal phases
    merged, starting at creation. Events must come in (at, id) order (sorted stably by `at` here)."""
    created_at, initial, changes = None, Status.NEW, []
    for event in sorted(events, key=lambda e: e.at):
        if event.kind == TicketEvent.Kind.CREATED:
            created_at = event.at
            if event.new_value in Status.values:
                initial = event.new_value
        elif event.kind == TicketEvent.Kind.STATUS:
            changes.append((event.at, event.new_value))
    start = created_at or ticket.created_at
    phases = [(start, _phase(initial))]
    for at, status in changes:
        at, phase = max(at, start), _phase(status)
        if phases and phases[-1][0] == at:  # two changes at one instant: the later one counts
            phases.pop()
        if phases and phases[-1][1] == phase:
            continue
        phases.append((at, phase))
    return phases or [(start, _phase(initial))]


def _running_spans(
    phases: list[tuple[dt.datetime, str]], *, stop: dt.datetime | None, now: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """The spans in which the clock runs; the last one is open-ended (the projection once it resumes)."""
    spans: list[tuple[dt.datetime, dt.datetime | None]] = []
    for index, (since, phase) in enumerate(phases):
        until = phases[index + 1][0] if index + 1 < len(phases) else None
        if stop is not None:
            if since >= stop:
                break
            if until is None or until > stop:
                until = stop
        if phase == RUNNING:
            spans.append((since, until))
    if spans and spans[-1][1] is None:
        return spans
    # Not running at the end: project as if the clock resumed when it stopped (a first response or a
    # resolution, so "met" means "stopped before the deadline"), or now (a pause still going on).
    if stop is not None:
        resume = stop
    else:
        last_since, last_phase = phases[-1]
        resume = last_since if last_phase == DONE else max(now, last_since)
    spans.append((resume, None))
    return spans


def _due(clock: WorkingTime, spans, target: dt.timedelta) -> dt.datetime:
    """The instant the running working time over `spans` reaches `target`."""
    used = ZERO
    for since, until in spans:
        if until is None:
            return clock.add(since, target - used)
        worked = clock.between(since, until)
        if used + worked >= target:
            return clock.add(since, target - used)
        used += worked
    raise AssertionError("the last span is open-ended")


def compute_deadlines(
    *, ticket, policy, events: Iterable, calendar, holidays: Iterable, now: dt.datetime
) -> Deadlines:
    """The ticket's deadlines under `policy` (None: no SLA) from its events, on `calendar` (None: calendar
    time) with `holidays` (dates or Holiday rows). Pure: no database access."""
    events = list(events)
    phases = _phases(ticket, events)
    last_since, last_phase = phases[-1]
    paused_since = last_since if last_phase == PAUSED else None
    if policy is None:
        return Deadlines(paused_since=paused_since)
    clock = working_time(calendar, holidays)
    responses = [e.at for e in events if e.kind == TicketEvent.Kind.FIRST_RESPONSE]
    responded = min(responses) if responses else getattr(ticket, "first_response_at", None)
    if responded is not None:
        responded = max(responded, phases[0][0])
    first_response = _running_spans(phases, stop=responded, now=now)
    resolution = _running_spans(phases, stop=None, now=now)
    first_target = dt.timedelta(minutes=policy.first_response_minutes)
    resolution_target = dt.timedelta(minutes=policy.resolution_minutes)
    return Deadlines(
        first_response_due_at=_due(clock, first_response, first_target),
        resolution_due_at=_due(clock, resolution, resolution_target),
        first_response_warn_at=_due(clock, first_response, first_target / 2),
        resolution_warn_at=_due(clock, resolution, resolution_target / 2),
        paused_since=paused_since,
    )


def sla_state(ticket, now: dt.datetime | None = None) -> SlaState:
    """The badge: "met" (done within its targets), "breached", "paused", "at_risk" (half the time of a
    running target elapsed) or "ok"."""
    now = now or timezone.now()
    first_due, resolution_due = ticket.first_response_due_at, ticket.resolution_due_at
    responded = ticket.first_response_at
    late_response = bool(first_due and responded and responded > first_due)
    if ticket.status in DONE_STATUSES:
        resolved = ticket.resolved_at or ticket.closed_at
        late_resolution = bool(resolution_due and resolved and resolved > resolution_due)
        return "breached" if late_response or late_resolution else "met"
    if late_response or (resolution_due and now >= resolution_due):
        return "breached"
    if first_due and responded is None and now >= first_due:
        return "breached"
    if ticket.sla_paused_since:
        return "paused"
    first_warn, resolution_warn = ticket.first_response_warn_at, ticket.resolution_warn_at
    if (first_warn and responded is None and now >= first_warn) or (
        resolution_warn and now >= resolution_warn
    ):
        return "at_risk"
    return "ok"


# --- Policies ----------------------------------------------------------------------------------------------


def policy_matches(policy: SlaPolicy, ticket, *, customer_vip: bool) -> bool:
    """Every condition of the policy holds for the ticket (an empty condition holds for any ticket)."""
    return (
        policy.active
        and (not policy.match_vip or customer_vip)
        and (not policy.match_types or ticket.type in policy.match_types)
        and (not policy.match_priorities or ticket.requested_priority in policy.match_priorities)
        and (not policy.match_channels or ticket.channel in policy.match_channels)
    )


def policy_for(ticket, *, customer_vip: bool) -> SlaPolicy | None:
    """The first active policy of the ticket's organization, in order, whose conditions the ticket meets."""
    policies = SlaPolicy.objects.filter(organization_id=ticket.organization_id, active=True).order_by(
        "position", "id"
    )
    for policy in policies:
        if policy_matches(policy, ticket, customer_vip=customer_vip):
            return policy
    return None


# The design document's rules (route_support_ticket) as policies, in its order. Its resolution times are
# kept; the first-response targets are ours (the document has none). The two urgent rules run around the
# clock; the others on the default business-hours calendar (Monday to Friday, 09:00-17:00 in the
# organization's time zone), where "48 h" means 48 working hours.
DEFAULT_CALENDAR_HOURS = {str(day): [["09:00", "17:00"]] for day in range(1, 6)}
DEFAULT_POLICIES = (
    {
        "name": "VIP customers",
        "match_vip": True,
        "set_priority": Priority.URGENT,
        "first_response_minutes": 30,
        "resolution_minutes": 2 * 60,
        "business_hours": False,
    },
    {
        "name": "Billing and account issues",
        "match_types": [TicketType.BILLING_ISSUE, TicketType.ACCOUNT_ISSUE],
        "set_priority": Priority.HIGH,
        "first_response_minutes": 60,
        "resolution_minutes": 4 * 60,
        "business_hours": True,
    },
    {
        "name": "Urgent (marked by the customer)",
        "match_priorities": [Priority.URGENT],
        "set_priority": Priority.URGENT,
        "first_response_minutes": 15,
        "resolution_minutes": 60,
        "business_hours": False,
    },
    {
        # The document raises a bug report to at least "high" (GREATEST(priority, 3)); urgent ones were
        # caught by the rule above, so what remains becomes high.
        "name": "Bug reports",
        "match_types": [TicketType.BUG_REPORT],
        "set_priority": Priority.HIGH,
        "first_response_minutes": 4 * 60,
        "resolution_minutes": 24 * 60,
        "business_hours": True,
    },
    {
        "name": "Standard",
        "set_priority": "",
        "first_response_minutes": 8 * 60,
        "resolution_minutes": 48 * 60,
        "business_hours": True,
    },
)
DEFAULT_CALENDAR_NAME = "Business hours"


@transaction.atomic
def ensure_default_policies(organization: Organization) -> list[SlaPolicy]:
    """Give an organization that has no SLA policy at all the design document's defaults, on a default
    business-hours calendar (created if missing). Idempotent, and safe when two tickets arrive at once for
    a new organization (serialized by an advisory lock). An organization that has policies (even all
    inactive: "no SLA") keeps them untouched. Returns the organization's policies in order."""
    existing = SlaPolicy.objects.filter(organization_id=organization.pk).order_by("position", "id")
    if existing.exists():
        return list(existing)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"support.sla.defaults:{organization.pk}"],
        )
    if existing.exists():
        return list(existing)
    calendar, _created = BusinessCalendar.objects.get_or_create(
        organization_id=organization.pk,
        name=DEFAULT_CALENDAR_NAME,
        defaults={"time_zone": organization.time_zone or "UTC", "hours": DEFAULT_CALENDAR_HOURS},
    )
    policies = []
    for index, spec in enumerate(DEFAULT_POLICIES, start=1):
        fields = {k: v for k, v in spec.items() if k != "business_hours"}
        policies.append(
            SlaPolicy.objects.create(
                organization_id=organization.pk,
                position=index * 10,
                calendar=calendar if spec["business_hours"] else None,
                **fields,
            )
        )
    return policies


# --- Applying the SLA to tickets ---------------------------------------------------------------------------

_CLOCK_EVENTS = (TicketEvent.Kind.CREATED, TicketEvent.Kind.STATUS, TicketEvent.Kind.FIRST_RESPONSE)
_DEADLINE_FIELDS = (
    "first_response_due_at",
    "resolution_due_at",
    "first_response_warn_at",
    "resolution_warn_at",
    "sla_paused_since",
)


def _calendar_with_holidays(policy: SlaPolicy | None) -> tuple[BusinessCalendar | None, list[dt.date]]:
    if policy is None or policy.calendar_id is None:
        return None, []
    calendar = policy.calendar
    holidays = list(
        Holiday.objects.filter(organization_id=calendar.organization_id, calendar_id=calendar.pk).values_list(
            "date", flat=True
        )
    )
    return calendar, holidays


def _customer_vip(ticket: Ticket) -> bool:
    if Ticket.customer.is_cached(ticket):
        return bool(ticket.customer.vip_status)
    from customers.models import Customer

    return bool(
        Customer.objects.filter(organization_id=ticket.organization_id, pk=ticket.customer_id)
        .values_list("vip_status", flat=True)
        .first()
    )


def _store(ticket: Ticket, deadlines: Deadlines) -> list[str]:
    """Put the deadlines on the ticket; the names of the fields that changed."""
    changed = []
    for field in _DEADLINE_FIELDS:
        value = getattr(deadlines, "paused_since" if field == "sla_paused_since" else field)
        if getattr(ticket, field) != value:
            setattr(ticket, field, value)
            changed.append(field)
    return changed


def _event(ticket: Ticket, kind: str, *, old: str = "", new: str = "", note: str = "", at=None) -> None:
    TicketEvent.objects.create(
        organization_id=ticket.organization_id,
        ticket=ticket,
        kind=kind,
        old_value=old[:64],
        new_value=new[:64],
        note=note[:300],
        at=at or timezone.now(),
    )


@transaction.atomic
def ticket_apply_sla(
    *, ticket: Ticket, now: dt.datetime | None = None, install_defaults: bool = True
) -> Ticket:
    """Match the ticket's policy (recording a POLICY event, and the policy's priority, when it changes) and
    store the deadlines and `sla_paused_since` recomputed from its events. Called on creation and after every
    status or priority change (and a first response), inside the service's transaction. A ticket without a
    policy in an organization without any first installs the default policies (`install_defaults`)."""
    now = now or timezone.now()
    if ticket.sla_policy_id is None and install_defaults:
        ensure_default_policies(Organization.objects.get(pk=ticket.organization_id))
    policy = policy_for(ticket, customer_vip=_customer_vip(ticket))
    changed: list[str] = []
    if (policy.pk if policy else None) != ticket.sla_policy_id:
        previous = ticket.sla_policy.name if ticket.sla_policy_id else ""
        ticket.sla_policy = policy
        changed.append("sla_policy")
        _event(ticket, TicketEvent.Kind.POLICY, old=previous, new=policy.name if policy else "", at=now)
        if policy is not None and policy.set_priority and policy.set_priority != ticket.priority:
            _event(
                ticket,
                TicketEvent.Kind.PRIORITY,
                old=ticket.priority,
                new=policy.set_priority,
                note=_("Set by the SLA policy %(name)s") % {"name": policy.name},
                at=now,
            )
            ticket.priority = policy.set_priority
            changed.append("priority")
    events = TicketEvent.objects.filter(
        organization_id=ticket.organization_id, ticket_id=ticket.pk, kind__in=_CLOCK_EVENTS
    ).order_by("at", "id")
    calendar, holidays = _calendar_with_holidays(policy)
    deadlines = compute_deadlines(
        ticket=ticket, policy=policy, events=events, calendar=calendar, holidays=holidays, now=now
    )
    changed += _store(ticket, deadlines)
    if changed:
        ticket.save(update_fields=[*changed, "updated_at"])
    return ticket


def _recompute(tickets, *, organization_id, now: dt.datetime | None) -> int:
    """Recompute and store the deadlines of these tickets (their policies unchanged), in batches: each batch
    locks its rows (in id order, so a concurrent status change waits or is waited for, never lost), reads
    their events in one query and writes the changed rows in one UPDATE. Returns how many were recomputed."""
    now = now or timezone.now()
    clocks: dict = {}
    total, last_id = 0, None
    base = tickets.filter(organization_id=organization_id).exclude(status__in=DONE_STATUSES).order_by("id")
    while True:
        batch_query = base if last_id is None else base.filter(id__gt=last_id)
        batch = list(
            batch_query.select_related("sla_policy").select_for_update(of=("self",))[:RECOMPUTE_BATCH]
        )
        if not batch:
            return total
        last_id = batch[-1].pk
        history: dict = {t.pk: [] for t in batch}
        for event in TicketEvent.objects.filter(
            organization_id=organization_id, ticket_id__in=list(history), kind__in=_CLOCK_EVENTS
        ).order_by("ticket_id", "at", "id"):
            history[event.ticket_id].append(event)
        updated = []
        for ticket in batch:
            policy = ticket.sla_policy
            key = policy.calendar_id if policy else None
            if key not in clocks:
                clocks[key] = _calendar_with_holidays(policy)
            calendar, holidays = clocks[key]
            deadlines = compute_deadlines(
                ticket=ticket,
                policy=policy,
                events=history[ticket.pk],
                calendar=calendar,
                holidays=holidays,
                now=now,
            )
            if _store(ticket, deadlines):
                updated.append(ticket)
        if updated:
            Ticket.objects.bulk_update(updated, list(_DEADLINE_FIELDS))
        total += len(batch)


@transaction.atomic
def recompute_for_calendar(*, calendar_id, organization_id, now: dt.datetime | None = None) -> int:
    """After a calendar or holiday edit: recompute every active ticket on a policy that uses the calendar.
    Returns how many tickets were recomputed."""
    return _recompute(
        Ticket.objects.filter(sla_policy__calendar_id=calendar_id), organization_id=organization_id, now=now
    )


@transaction.atomic
def recompute_for_policy(*, policy_id, organization_id, now: dt.datetime | None = None) -> int:
    """After a policy's targets or calendar changed: recompute its active tickets. Returns how many."""
    return _recompute(
        Ticket.objects.filter(sla_policy_id=policy_id), organization_id=organization_id, now=now
    )
