"""The support part of `seed_demo` (support/demo.py) on a small organization: idempotent, tickets in every
status with threads spread over past weeks, agents' counters equal to their open tickets, stored SLA deadlines
equal to what the ticket's events give (recomputed through support/sla.py for every ticket, and by hand, with
an independent business-hours walk, for a few), and CSAT answers on their tickets."""

from __future__ import annotations

import datetime as dt
import types
import zoneinfo
from collections import Counter

import pytest
from django.utils import timezone

from crm.models import User
from crm.permissions import Role
from crm.tenancy import system_context
from support import demo, sla
from support.models import (
    DONE_STATUSES,
    PAUSED_STATUSES,
    AgentProfile,
    Article,
    BusinessCalendar,
    CannedResponse,
    Holiday,
    Status,
    Survey,
    Ticket,
    TicketEvent,
    TicketMessage,
)
from tests import factories

CLOCK_EVENTS = (TicketEvent.Kind.CREATED, TicketEvent.Kind.STATUS, TicketEvent.Kind.FIRST_RESPONSE)


@pytest.fixture
def demo_org(transactional_db, monkeypatch):
    """A small organization as seed_demo leaves it before support (a support team and customers, some VIP,
    some opted in to email), then the support demo. The demo's clock is pinned (`seeded_at`), so the
    deadlines of paused tickets — projected from the instant of seeding — can be recomputed exactly. Real
    commits (transactional_db), as under `manage.py seed_demo`: what the services do after commit (the CSAT
    survey of a resolved ticket, emails) happens as it does there."""
    org = factories.organization(slug="acme", name="Acme Demo", time_zone="Europe/Berlin")
    factories.user(org, role=Role.SUPPORT_MANAGER, first_name="Maya", last_name="Lind")
    factories.user(org, role=Role.SUPPORT_AGENT, first_name="Ann", last_name="Lee", department="billing")
    factories.user(org, role=Role.SUPPORT_AGENT, first_name="Bob", last_name="Stone")
    for n in range(12):
        factories.customer(org, first_name=f"Cust{n}", vip_status=n % 6 == 0, email_opt_in=n % 2 == 0)
    seeded_at = timezone.now()
    monkeypatch.setattr(demo, "timezone", types.SimpleNamespace(now=lambda: seeded_at))
    org.seeded_at = seeded_at
    org.made = _seed(org)
    return org


def _seed(org) -> dict[str, int]:
    with system_context():
        return {
            "users": demo.seed_agents(organization=org, password=factories.PASSWORD),
            "articles": demo.seed_knowledge_base(organization=org),
            "canned": demo.seed_canned_responses(organization=org),
            "tickets": demo.seed_tickets(organization=org),
        }


def _snapshot(org) -> dict[str, int]:
    with system_context():
        return {
            model.__name__: model.objects.filter(organization=org).count()
            for model in (
                User,
                Ticket,
                TicketEvent,
                TicketMessage,
                Survey,
                Article,
                CannedResponse,
                AgentProfile,
            )
        }


def _tickets(org) -> list[Ticket]:
    with system_context():
        return list(
            Ticket.objects.filter(organization=org).select_related("sla_policy__calendar").order_by("number")
        )


def _events(org) -> dict:
    history: dict = {}
    with system_context():
        for event in TicketEvent.objects.filter(organization=org, kind__in=CLOCK_EVENTS).order_by("at", "id"):
            history.setdefault(event.ticket_id, []).append(event)
    return history


# --- an independent business-hours clock (Monday to Friday, 09:00-17:00 local, no holidays) ------------------


def _working_day(day: dt.date, tz) -> tuple[dt.datetime, dt.datetime] | None:
    if day.isoweekday() > 5:
        return None
    return dt.datetime.combine(day, dt.time(9), tzinfo=tz), dt.datetime.combine(day, dt.time(17), tzinfo=tz)


def _working_between(start: dt.datetime, end: dt.datetime, tz) -> dt.timedelta:
    total, day = dt.timedelta(0), start.astimezone(tz).date()
    while day <= end.astimezone(tz).date():
        hours = _working_day(day, tz)
        if hours:
            begin, close = max(hours[0], start), min(hours[1], end)
            if begin < close:
                total += close.astimezone(dt.UTC) - begin.astimezone(dt.UTC)
        day += dt.timedelta(days=1)
    return total


def _working_add(start: dt.datetime, amount: dt.timedelta, tz) -> dt.datetime:
    """The instant `amount` of working time after `start`, walking day by day."""
    day = start.astimezone(tz).date()
    while True:
        hours = _working_day(day, tz)
        if hours:
            begin = max(hours[0], start).astimezone(dt.UTC)
            close = hours[1].astimezone(dt.UTC)
            if begin < close:
                if close - begin >= amount:
                    return begin + amount
                amount -= close - begin
        day += dt.timedelta(days=1)


def _add(policy, start: dt.datetime, amount: dt.timedelta) -> dt.datetime:
    if policy.calendar_id is None:
        return start + amount
    return _working_add(start, amount, zoneinfo.ZoneInfo(policy.calendar.time_zone))


def _worked(policy, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    if policy.calendar_id is None:
        return end - start
    return _working_between(start, end, zoneinfo.ZoneInfo(policy.calendar.time_zone))


# --- the tests ------------------------------------------------------------------------------------------------


def test_every_status_has_tickets_with_threads_and_a_second_run_creates_nothing(demo_org):
    _check_statuses_and_threads(demo_org)
    _check_second_run(demo_org)


def _check_second_run(demo_org) -> None:
    assert demo_org.made == {
        "users": len(demo.EXTRA_AGENTS["acme"]),
        "articles": len(demo.ARTICLES),
        "canned": 3,
        "tickets": 45,
    }
    before = _snapshot(demo_org)

    assert _seed(demo_org) == {"users": 0, "articles": 0, "canned": 0, "tickets": 0}
    assert _snapshot(demo_org) == before


def _check_statuses_and_threads(demo_org) -> None:
    tickets = _tickets(demo_org)
    now = demo_org.seeded_at
    assert len(tickets) == 45
    assert [t.number for t in tickets] == list(range(1, 46))
    assert {t.status for t in tickets} == set(Status.values)
    with system_context():
        messages = list(TicketMessage.objects.filter(organization=demo_org))
    by_ticket = Counter((m.ticket_id, m.kind, m.from_customer) for m in messages)
    for ticket in tickets:
        agent_replies = by_ticket[(ticket.pk, "reply", False)]
        # Every ticket past "new" has an agent's reply (its first response); new ones have none yet.
        assert (agent_replies >= 1) == (ticket.status != Status.NEW), ticket
        assert (ticket.first_response_at is not None) == (ticket.status != Status.NEW), ticket
        assert now - dt.timedelta(days=41) <= ticket.created_at <= now, ticket
        if ticket.status in DONE_STATUSES:
            assert ticket.created_at <= now - dt.timedelta(days=3)
            assert ticket.resolved_at is not None and ticket.created_at <= ticket.resolved_at <= now
        assert (ticket.closed_at is not None) == (ticket.status == Status.CLOSED)
    for message in messages:
        ticket = next(t for t in tickets if t.pk == message.ticket_id)
        assert ticket.created_at <= message.created_at <= now
    assert sum(1 for m in messages if m.kind == "note") >= 1
    assert sum(1 for m in messages if m.from_customer) >= 1
    # Spread over weeks, not all in one burst.
    assert max(t.created_at for t in tickets) - min(t.created_at for t in tickets) > dt.timedelta(days=14)


def test_counters_and_deadlines_agree_with_the_tickets_and_their_events(demo_org):
    _check_agent_counters(demo_org)
    _check_deadlines_through_sla(demo_org)
    _check_deadlines_by_hand(demo_org)


def _check_agent_counters(demo_org) -> None:
    """Each agent's open_tickets is the number of active tickets assigned to them."""
    tickets = _tickets(demo_org)
    open_by_agent = Counter(t.assigned_to_id for t in tickets if t.assigned_to_id and t.is_active)
    with system_context():
        profiles = list(AgentProfile.objects.filter(organization=demo_org))
        routed = set(
            User.objects.filter(organization=demo_org, role__in=[Role.SUPPORT_AGENT, Role.ADMIN]).values_list(
                "pk", flat=True
            )
        )
    assert {p.user_id for p in profiles} >= routed
    for profile in profiles:
        assert profile.open_tickets == open_by_agent[profile.user_id], profile
        assert profile.open_tickets <= profile.capacity
    assert sum(open_by_agent.values()) >= 1
    # Every active ticket is either assigned or waits in the team queue with the reason.
    for ticket in tickets:
        if ticket.is_active and ticket.assigned_to_id is None:
            assert ticket.queue_reason


def _check_deadlines_through_sla(demo_org) -> None:
    """Every ticket's stored deadlines are what sla.compute_deadlines gives on its stored events."""
    tickets = _tickets(demo_org)
    history = _events(demo_org)
    with system_context():
        holidays = {c.pk: [] for c in BusinessCalendar.objects.filter(organization=demo_org)}
        for holiday in Holiday.objects.filter(organization=demo_org):
            holidays[holiday.calendar_id].append(holiday.date)
    for ticket in tickets:
        policy = ticket.sla_policy
        assert policy is not None, ticket
        deadlines = sla.compute_deadlines(
            ticket=ticket,
            policy=policy,
            events=history[ticket.pk],
            calendar=policy.calendar,
            holidays=holidays.get(policy.calendar_id, []),
            now=demo_org.seeded_at,
        )
        stored = (
            ticket.first_response_due_at,
            ticket.resolution_due_at,
            ticket.first_response_warn_at,
            ticket.resolution_warn_at,
            ticket.sla_paused_since,
        )
        assert stored == (
            deadlines.first_response_due_at,
            deadlines.resolution_due_at,
            deadlines.first_response_warn_at,
            deadlines.resolution_warn_at,
            deadlines.paused_since,
        ), ticket
        assert (ticket.sla_paused_since is not None) == (ticket.status in PAUSED_STATUSES), ticket


def _check_deadlines_by_hand(demo_org) -> None:
    """Without support/sla.py: the default calendar is Monday to Friday 09:00-17:00 in the organization's time
    zone, no holidays. A done ticket that was never paused is due `target` of working time after creation;
    a ticket paused now is due after the working time it had left when it paused, counted from the seeding."""
    tickets = _tickets(demo_org)
    history = _events(demo_org)
    with system_context():
        [calendar] = BusinessCalendar.objects.filter(organization=demo_org)
        assert not Holiday.objects.filter(organization=demo_org).exists()
    assert (calendar.time_zone, calendar.hours) == ("Europe/Berlin", sla.DEFAULT_CALENDAR_HOURS)

    def statuses(ticket):
        return [e.new_value for e in history[ticket.pk] if e.kind == TicketEvent.Kind.STATUS]

    never_paused_done = [
        t
        for t in tickets
        if t.status in DONE_STATUSES and not set(statuses(t)) & {str(s) for s in PAUSED_STATUSES}
    ]
    on_hours = [t for t in never_paused_done if t.sla_policy.calendar_id]
    around_the_clock = [t for t in never_paused_done if not t.sla_policy.calendar_id]
    assert on_hours and around_the_clock
    for ticket in (on_hours[0], around_the_clock[0]):
        policy = ticket.sla_policy
        assert ticket.first_response_due_at == _add(
            policy, ticket.created_at, dt.timedelta(minutes=policy.first_response_minutes)
        )
        assert ticket.resolution_due_at == _add(
            policy, ticket.created_at, dt.timedelta(minutes=policy.resolution_minutes)
        )

    paused = [t for t in tickets if t.status in PAUSED_STATUSES]
    assert paused
    for ticket in paused:
        policy = ticket.sla_policy
        paused_at = max(e.at for e in history[ticket.pk] if e.kind == TicketEvent.Kind.STATUS)
        assert ticket.sla_paused_since == paused_at
        target = dt.timedelta(minutes=policy.resolution_minutes)
        used = _worked(policy, ticket.created_at, paused_at)
        expected = (
            _add(policy, ticket.created_at, target)
            if used >= target
            else _add(policy, demo_org.seeded_at, target - used)
        )
        assert ticket.resolution_due_at == expected, ticket


def test_csat_answers_are_stored_on_their_tickets(demo_org):
    tickets = {t.pk: t for t in _tickets(demo_org)}
    with system_context():
        surveys = list(Survey.objects.filter(organization=demo_org))
    csat = [s for s in surveys if s.kind == Survey.Kind.CSAT]
    answered = [s for s in csat if s.responded_at]
    assert answered and [s for s in surveys if s.kind == Survey.Kind.NPS and s.responded_at]
    assert len({s.ticket_id for s in csat}) == len(csat)  # one CSAT survey per ticket
    for survey in csat:
        ticket = tickets[survey.ticket_id]
        assert ticket.status in DONE_STATUSES
        assert survey.customer_id == ticket.customer_id
        assert survey.agent_id == ticket.assigned_to_id
        assert ticket.resolved_at <= survey.sent_at <= survey.expires_at
        if survey.responded_at:
            assert 1 <= survey.score <= 5
            assert survey.sent_at <= survey.responded_at <= demo_org.seeded_at
    rated = {s.ticket_id: s.score for s in answered}
    assert {pk: t.satisfaction_rating for pk, t in tickets.items() if t.satisfaction_rating} == rated
