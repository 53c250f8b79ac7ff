"""Support reports on a hand-made data set: two agents in two categories, tickets with their event history
(pauses, a reopen, a holiday, a VIP ticket on calendar time, late and on-time replies), CSAT and NPS answers
in and out of the period. Every figure is recomputed here independently: times by counting working minutes
one at a time, SLA compliance by hand (and against support/sla.py's badge), scores from plain lists."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.tenancy import system_context, tenant_context
from support import reports, sla
from support.models import BusinessCalendar, Holiday, Survey, Ticket, TicketEvent
from tests import factories

UTC = dt.UTC
MARCH = reports.ReportPeriod(
    start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31), unit="week", time_zone="UTC"
)
HOLIDAY = dt.date(2026, 3, 10)  # a Tuesday, on the business-hours calendar
_numbers = itertools.count(1)


def at(day, hour, minute=0, month=3):
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


def working_minutes(start, end, *, business: bool) -> int:
    """Independent count: minutes from start to end that fall Monday-Friday 09:00-17:00 UTC, not on the
    holiday (business hours), or every minute (calendar time)."""
    if not business:
        return int((end - start).total_seconds() // 60)
    count, instant = 0, start
    while instant < end:
        if instant.isoweekday() <= 5 and instant.date() != HOLIDAY and 9 <= instant.hour < 17:
            count += 1
        instant += dt.timedelta(minutes=1)
    return count


def pct(part, whole, places="0.1"):
    if not whole:
        return None
    return (Decimal(100) * part / whole).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def avg(values, places="0.01"):
    if not values:
        return None
    return (Decimal(sum(values)) / len(values)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def nps_of(scores):
    if not scores:
        return None
    return pct(sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores), len(scores))


def event(ticket, kind, at, new="", old=""):
    TicketEvent.objects.create(
        organization_id=ticket.organization_id, ticket=ticket, kind=kind, old_value=old, new_value=new, at=at
    )


def handled_ticket(
    org,
    *,
    agent,
    created,
    resolved,
    responded=None,
    type="question",
    category="",
    customer=None,
    pauses=(),
    reopened=None,
    status="resolved",
):
    """A ticket straight into the table with the events the SLA clock reads, its deadlines then derived by
    support/sla.py as of its resolution. `pauses`: (pending from, open again at); `reopened`: (first
    resolution, reopened at)."""
    with system_context():
        ticket = Ticket.objects.create(
            organization=org,
            number=next(_numbers),
            subject=f"Case {created:%d %H:%M}",
            customer=customer or factories.customer(org),
            type=type,
            category=category,
            assigned_to=agent,
            assigned_at=created if agent else None,
            created_at=created,
        )
        event(ticket, "created", created, new="new")
        event(ticket, "status", created, old="new", new="open")
        if responded:
            event(ticket, "first_response", responded)
            ticket.first_response_at = responded
        for start, end in pauses:
            event(ticket, "status", start, old="open", new="pending")
            event(ticket, "status", end, old="pending", new="open")
        if reopened:
            event(ticket, "status", reopened[0], old="open", new="resolved")
            event(ticket, "status", reopened[1], old="resolved", new="open")
            ticket.reopened_count = 1
        if resolved:
            event(ticket, "status", resolved, old="open", new=status)
            ticket.status, ticket.resolved_at = status, resolved
            if status == "closed":
                ticket.closed_at = resolved
        ticket.save()
        return sla.ticket_apply_sla(ticket=ticket, now=resolved or created)


def answered(org, *, kind, score, when, customer, ticket=None, agent=None, category="", comment=""):
    with system_context():
        return Survey.objects.create(
            organization=org,
            kind=kind,
            customer=customer,
            ticket=ticket,
            agent=agent,
            category=category,
            sent_at=when - dt.timedelta(hours=2),
            expires_at=when + dt.timedelta(days=10),
            responded_at=when,
            score=score,
            comment=comment,
        )


@pytest.fixture
def data(db):
    return build_data()


def build_data() -> SimpleNamespace:
    org = factories.organization(time_zone="UTC", name="Helpdesk Org")
    alice = factories.user(
        org, role="support_agent", first_name="Alice", last_name="Able", department="billing"
    )
    bob = factories.user(
        org, role="support_agent", first_name="Bob", last_name="Baker", department="technical"
    )
    carol = factories.user(org, role="support_agent", first_name="Carol", last_name="Idle")
    manager = factories.user(org, role="support_manager")
    with system_context():
        sla.ensure_default_policies(org)
        calendar = BusinessCalendar.objects.get(organization=org)
        Holiday.objects.create(organization=org, calendar=calendar, date=HOLIDAY, name="Spring day")
    vip = factories.customer(org, vip_status=True)
    t = SimpleNamespace()
    # Alice: billing issue (1 h / 4 h business), answered and resolved the same morning.
    t.a1 = handled_ticket(
        org,
        agent=alice,
        created=at(2, 9),
        responded=at(2, 9, 30),
        resolved=at(2, 11),
        type="billing_issue",
        category="billing",
    )
    # Alice: standard question over a weekend, resolved, reopened, resolved again on the holiday.
    t.a2 = handled_ticket(
        org,
        agent=alice,
        created=at(6, 16),
        responded=at(9, 10),
        resolved=at(10, 16),
        reopened=(at(9, 12), at(9, 13)),
    )
    # Alice: VIP ticket on Saturday, calendar time (30 min / 2 h).
    t.a3 = handled_ticket(
        org,
        agent=alice,
        created=at(7, 10),
        responded=at(7, 10, 10),
        resolved=at(7, 11),
        customer=vip,
        category="billing",
    )
    # Bob: bug report (4 h / 24 h business), first reply late, resolved then closed.
    t.b1 = handled_ticket(
        org,
        agent=bob,
        created=at(3, 9),
        responded=at(3, 15),
        resolved=at(4, 12),
        type="bug_report",
        category="technical",
        status="closed",
    )
    # Bob: billing issue, pending overnight, resolved after its deadline.
    t.b2 = handled_ticket(
        org,
        agent=bob,
        created=at(4, 10),
        responded=at(4, 10, 20),
        resolved=at(5, 15),
        type="billing_issue",
        category="technical",
        pauses=[(at(4, 10, 30), at(5, 10))],
    )
    # Nobody's: resolved without a reply.
    t.u1 = handled_ticket(org, agent=None, created=at(2, 10), resolved=at(2, 11))
    # Outside the figures: resolved in February; still open.
    t.old = handled_ticket(
        org,
        agent=bob,
        created=at(26, 9, month=2),
        responded=at(26, 9, 5, month=2),
        resolved=at(27, 10, month=2),
    )
    t.open = handled_ticket(org, agent=alice, created=at(12, 9), responded=at(12, 9, 5), resolved=None)

    customers = [factories.customer(org) for _ in range(6)]
    csat = [  # (score, when, ticket, agent, category, comment)
        (5, at(2, 12), t.a1, alice, "billing", "Great"),
        (4, at(11, 9), t.a2, alice, "", ""),
        (2, at(4, 13), t.b1, bob, "technical", "Slow first reply"),
        (3, at(5, 16), t.b2, bob, "billing", "Okay"),
        (1, at(3, 9), t.old, bob, "technical", "Old ticket, answered in March"),
    ]
    for score, when, ticket, agent, category, comment in csat:
        answered(
            org,
            kind="csat",
            score=score,
            when=when,
            customer=ticket.customer,
            ticket=ticket,
            agent=agent,
            category=category,
            comment=comment,
        )
    answered(org, kind="csat", score=5, when=at(20, 9, month=2), customer=customers[0], agent=alice)  # before
    with system_context():  # sent, not answered
        Survey.objects.create(
            organization=org, kind="csat", customer=vip, ticket=t.a3, agent=alice, expires_at=at(20, 9)
        )
    nps = [  # (score, when, agent, category, comment)
        (10, at(10, 9), alice, "billing", "Love it"),
        (9, at(12, 9), bob, "technical", ""),
        (6, at(2, 9), None, "", "Meh"),
        (7, at(16, 9), alice, "billing", ""),
        (0, at(31, 23, 30), bob, "technical", "Never again"),
    ]
    for (score, when, agent, category, comment), customer in zip(nps, customers[1:], strict=True):
        answered(
            org,
            kind="nps",
            score=score,
            when=when,
            customer=customer,
            agent=agent,
            category=category,
            comment=comment,
        )
    answered(org, kind="nps", score=10, when=at(1, 0, 10, month=4), customer=customers[0])  # after
    return SimpleNamespace(
        org=org, alice=alice, bob=bob, carol=carol, manager=manager, t=t, csat=csat, nps=nps
    )


def run(org, fn, period=MARCH):
    with tenant_context(org.pk):
        return fn(organization_id=org.pk, period=period)


# --- CSAT and NPS --------------------------------------------------------------------------------------------


def test_csat_and_nps_totals_match_an_independent_count(data):
    report = run(data.org, reports.satisfaction_report)
    csat_scores = [row[0] for row in data.csat]
    nps_scores = [row[0] for row in data.nps]
    assert report.total.csat.responses == 5
    assert report.total.csat.average == avg(csat_scores) == Decimal("3.00")
    assert report.total.csat.satisfied_percent == pct(sum(s >= 4 for s in csat_scores), 5) == Decimal("40.0")
    assert report.total.nps.responses == 5
    assert report.total.nps.nps == nps_of(nps_scores) == Decimal("0.0")
    assert (report.total.nps.promoters, report.total.nps.passives, report.total.nps.detractors) == (2, 1, 2)
    assert report.total.nps.promoter_percent == Decimal("40.0")
    assert report.total.nps.detractor_percent == Decimal("40.0")


def test_csat_and_nps_by_week_cover_every_week_of_the_period(data):
    report = run(data.org, reports.satisfaction_report)
    weeks = [row.key for row in report.by_period]
    assert weeks == ["2026-02-23", "2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23", "2026-03-30"]
    for row in report.by_period:
        monday = dt.date.fromisoformat(row.key)
        inside = lambda when, m=monday: m <= when.date() < m + dt.timedelta(days=7)  # noqa: E731
        csat = [s for s, when, *_ in data.csat if inside(when)]
        nps = [s for s, when, *_ in data.nps if inside(when)]
        assert (row.csat.responses, row.csat.average) == (len(csat), avg(csat)), row.key
        assert (row.nps.responses, row.nps.nps) == (len(nps), nps_of(nps)), row.key
    by_key = {row.key: row for row in report.by_period}
    assert by_key["2026-03-02"].csat.average == Decimal("2.75")
    assert by_key["2026-03-09"].nps.nps == Decimal("100.0")
    # The drill-down of a week lists exactly that week's answers (clipped to the period).
    query = parse_qs(urlparse(by_key["2026-02-23"].links["csat"]).query)
    assert (query["start"], query["end"], query["kind"], query["all"]) == (
        ["2026-03-01"],
        ["2026-03-01"],
        ["csat"],
        ["1"],
    )


def test_by_month_buckets_by_calendar_month(data):
    period = reports.ReportPeriod(start=dt.date(2026, 2, 1), end=dt.date(2026, 4, 30), unit="month")
    report = run(data.org, reports.satisfaction_report, period)
    by_key = {row.key: row for row in report.by_period}
    assert list(by_key) == ["2026-02-01", "2026-03-01", "2026-04-01"]
    assert by_key["2026-02-01"].csat.responses == 1
    assert by_key["2026-03-01"].csat.responses == 5
    assert (by_key["2026-04-01"].nps.responses, by_key["2026-04-01"].nps.nps) == (1, Decimal("100.0"))


def test_csat_and_nps_by_agent_and_by_category(data):
    report = run(data.org, reports.satisfaction_report)
    agents = {row.key: row for row in report.by_agent}
    for key, agent in (("alice", data.alice), ("bob", data.bob), ("none", None)):
        row = agents[str(agent.pk) if agent else "none"]
        csat = [s for s, _w, _t, a, *_ in data.csat if a == agent]
        nps = [s for s, _w, a, *_ in data.nps if a == agent]
        assert (row.csat.responses, row.csat.average) == (len(csat), avg(csat)), key
        assert (row.nps.responses, row.nps.nps) == (len(nps), nps_of(nps)), key
    assert agents[str(data.alice.pk)].label == "Alice Able"
    assert agents[str(data.bob.pk)].csat.average == Decimal("2.00")
    assert agents["none"].label == "Unattributed" and agents["none"].nps.nps == Decimal("-100.0")
    assert [row.key for row in report.by_agent][-1] == "none"
    categories = {row.key: row for row in report.by_category}
    assert set(categories) == {"billing", "technical", "none"}
    for key in categories:
        csat = [s for s, _w, _t, _a, c, _x in data.csat if (c or "none") == key]
        nps = [s for s, _w, _a, c, _x in data.nps if (c or "none") == key]
        assert (categories[key].csat.average, categories[key].nps.nps) == (avg(csat), nps_of(nps)), key
    assert categories["billing"].label == "Billing"
    # Drill-downs: the agent's answers, and their tickets in the queue.
    assert parse_qs(urlparse(agents[str(data.bob.pk)].links["csat"]).query)["agent"] == [str(data.bob.pk)]
    tickets = parse_qs(urlparse(agents[str(data.bob.pk)].links["tickets"]).query)
    assert (tickets["assignee"], tickets["status"], tickets["view"]) == ([str(data.bob.pk)], ["any"], ["all"])


def test_answers_are_counted_on_the_organizations_calendar_days(db):
    org = factories.organization(time_zone="America/New_York")
    customer = factories.customer(org)
    # 02:00 UTC on April 1st is still March 31st in New York (EDT, UTC-4).
    answered(org, kind="csat", score=4, when=at(1, 2, month=4), customer=customer)
    answered(org, kind="csat", score=2, when=at(1, 5, month=4), customer=customer)  # April 1st, 01:00 local
    period = reports.ReportPeriod(
        start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31), unit="month", time_zone="America/New_York"
    )
    report = run(org, reports.satisfaction_report, period)
    assert (report.total.csat.responses, report.total.csat.average) == (1, Decimal("4.00"))
    assert report.by_period[0].csat.responses == 1


# --- Agent performance -----------------------------------------------------------------------------------------


def expected_times(tickets, *, business):
    first = [
        working_minutes(t.created_at, t.first_response_at, business=business[t.pk])
        for t in tickets
        if t.first_response_at
    ]
    resolution = [working_minutes(t.created_at, t.resolved_at, business=business[t.pk]) for t in tickets]
    return first, resolution


def test_agent_performance_matches_an_independent_computation(data):
    t = data.t
    report = run(data.org, reports.agent_performance)
    rows = {row.user_id: row for row in report.agents}
    assert set(rows) == {data.alice.pk, data.bob.pk, data.carol.pk, None}  # Carol: an agent with nothing yet
    business = {x.pk: x.sla_policy.calendar_id is not None for x in vars(t).values()}
    assert not business[t.a3.pk] and business[t.a2.pk]  # the VIP policy runs around the clock
    # Hand-checked SLA outcomes, and support/sla.py's badge agrees.
    met = {t.a1: True, t.a2: True, t.a3: True, t.b1: False, t.b2: False, t.u1: True}
    with system_context():
        for ticket, ok in met.items():
            assert (sla.sla_state(Ticket.objects.get(pk=ticket.pk)) == "met") is ok, ticket.subject
    handled = {data.alice.pk: [t.a1, t.a2, t.a3], data.bob.pk: [t.b1, t.b2], None: [t.u1], data.carol.pk: []}
    csat = {data.alice.pk: [5, 4], data.bob.pk: [2, 3, 1], None: [], data.carol.pk: []}
    for user_id, tickets in handled.items():
        row = rows[user_id]
        first, resolution = expected_times(tickets, business=business)
        assert row.handled == len(tickets)
        assert row.reopened == sum(x.reopened_count > 0 for x in tickets)
        assert row.reopen_percent == pct(row.reopened, len(tickets))
        assert (row.sla_met, row.with_sla) == (sum(met[x] for x in tickets), len(tickets))
        assert row.sla_percent == pct(sum(met[x] for x in tickets), len(tickets))
        assert row.first_response_median == (statistics.median(first) if first else None)
        assert row.first_response_average == (pytest.approx(statistics.fmean(first)) if first else None)
        assert row.resolution_median == (statistics.median(resolution) if resolution else None)
        assert row.resolution_average == (pytest.approx(statistics.fmean(resolution)) if resolution else None)
        assert (row.csat_responses, row.csat_average) == (len(csat[user_id]), avg(csat[user_id]))
    # The figures by hand, so a shared mistake in the helpers above cannot hide.
    alice, bob = rows[data.alice.pk], rows[data.bob.pk]
    assert sorted(alice.first_response_minutes) == [10, 30, 120]  # VIP 10 min; Fri 16-17 + Mon 9-10
    assert sorted(alice.resolution_minutes) == [60, 120, 540]  # Fri 60 + Mon 480 + holiday 0
    assert (alice.reopen_percent, alice.sla_percent, alice.csat_average) == (
        Decimal("33.3"),
        Decimal("100.0"),
        Decimal("4.50"),
    )
    assert sorted(bob.first_response_minutes) == [20, 360]
    assert sorted(bob.resolution_minutes) == [660, 780]  # the pending night counts: creation to resolution
    assert (bob.first_response_median, bob.resolution_median, bob.sla_percent) == (190, 720, Decimal("0.0"))
    assert rows[None].label == "Unassigned" and rows[None].first_response_median is None
    assert rows[data.carol.pk].sla_percent is None and rows[data.carol.pk].csat_average is None
    # The team: raw counts summed, medians over every ticket (not medians of medians).
    total = report.total
    assert (total.handled, total.reopened, total.sla_met, total.with_sla) == (6, 1, 4, 6)
    assert (total.sla_percent, total.reopen_percent, total.csat_average) == (
        Decimal("66.7"),
        Decimal("16.7"),
        Decimal("3.00"),
    )
    assert total.first_response_median == 30 and total.resolution_median == (120 + 540) / 2
    # Order: most tickets first, the unassigned row last.
    assert [row.user_id for row in report.agents] == [data.alice.pk, data.bob.pk, data.carol.pk, None]


def test_a_ticket_reopened_and_not_yet_resolved_again_counts_nowhere(data):
    with system_context():
        Ticket.objects.filter(pk=data.t.a1.pk).update(status="open", resolved_at=None, reopened_count=1)
    report = run(data.org, reports.agent_performance)
    alice = next(row for row in report.agents if row.user_id == data.alice.pk)
    assert alice.handled == 2 and alice.reopened == 1


def test_minutes_read_as_working_hours():
    assert reports.minutes_text(None) == "—"
    assert reports.minutes_text(45.4) == "45 min"
    assert reports.minutes_text(125) == "2 h 05 min"
    assert reports.minutes_text(48 * 60) == "48 h 00 min"


# --- Query counts ----------------------------------------------------------------------------------------------


def count_queries(fn):
    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured.captured_queries)


def test_reports_run_a_fixed_number_of_queries_whatever_the_data(data):
    def both():
        run(data.org, reports.satisfaction_report)
        run(data.org, reports.agent_performance)

    before = count_queries(both)
    extra = factories.user(data.org, role="support_agent")
    for day in (2, 3, 4, 5, 6, 9, 11, 12):
        ticket = handled_ticket(
            data.org,
            agent=extra,
            created=at(day, 9),
            responded=at(day, 9, 1),
            resolved=at(day, 10),
            type="bug_report",
        )
        answered(
            data.org,
            kind="csat",
            score=3,
            when=at(day, 11),
            customer=ticket.customer,
            ticket=ticket,
            agent=extra,
        )
    assert count_queries(both) == before


def test_pages_run_a_fixed_number_of_queries(data, login, client):
    login(data.manager)
    params = {"start": "2026-03-01", "end": "2026-03-31"}
    pages = [reverse("support:reports"), reverse("support:report_agents"), reverse("support:report_comments")]
    counts = [count_queries(lambda u=u: client.get(u, params)) for u in pages]
    extra = factories.user(data.org, role="support_agent")
    for day in (2, 3, 4, 5):
        ticket = handled_ticket(
            data.org, agent=extra, created=at(day, 9), responded=at(day, 9, 1), resolved=at(day, 10)
        )
        answered(
            data.org,
            kind="csat",
            score=4,
            when=at(day, 11),
            customer=ticket.customer,
            ticket=ticket,
            agent=extra,
            comment="fine",
        )
    assert [count_queries(lambda u=u: client.get(u, params)) for u in pages] == counts
