"""SLA policies on real tickets: the design document's defaults, first match wins, deadlines stored from the
event history, pauses, re-matching, and recomputation after calendar, holiday and policy edits.

Business-hours deadlines are checked against `brute_due`, an independent minute-by-minute count."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from crm.tenancy import system_context
from support import sla
from support.models import BusinessCalendar, SlaPolicy, Ticket, TicketEvent
from support.services import settings as services
from tests import factories

UTC = dt.UTC
MONDAY_9 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WEEKDAYS = {str(day): [["09:00", "17:00"]] for day in range(1, 6)}
_numbers = itertools.count(1)


def brute_due(start, minutes, *, tz="UTC", opens=9, closes=17, holidays=()):
    """The end of the `minutes`-th working minute after `start` (whole minutes), Monday to Friday from
    `opens` to `closes` o'clock local time, holidays excluded: counted one minute at a time."""
    zone, instant, left = ZoneInfo(tz), start, minutes
    while left:
        local = instant.astimezone(zone)
        if local.isoweekday() <= 5 and local.date() not in holidays and opens <= local.hour < closes:
            left -= 1
        instant += dt.timedelta(minutes=1)
    return instant


def make_ticket(org, *, created=MONDAY_9, customer=None, apply_at=None, **fields):
    """A ticket straight into the table with its CREATED event, then the SLA applied at `apply_at`."""
    customer = customer or factories.customer(org)
    with system_context():
        ticket = Ticket.objects.create(
            organization=org,
            number=next(_numbers),
            subject="Help",
            customer=customer,
            created_at=created,
            **fields,
        )
        TicketEvent.objects.create(
            organization=org, ticket=ticket, kind="created", new_value="new", at=created
        )
        return sla.ticket_apply_sla(ticket=ticket, now=apply_at or created)


def status_change(ticket, status, at):
    with system_context():
        TicketEvent.objects.create(
            organization_id=ticket.organization_id,
            ticket=ticket,
            kind="status",
            old_value=ticket.status,
            new_value=status,
            at=at,
        )
        ticket.status = status
        ticket.save(update_fields=["status"])


def reload(ticket) -> Ticket:
    with system_context():
        return Ticket.objects.select_related("sla_policy").get(pk=ticket.pk)


@pytest.fixture
def org(db):
    return factories.organization(time_zone="UTC")


@pytest.fixture
def manager(org):
    return factories.user(org, role="support_manager")


# --- default policies ---------------------------------------------------------------------------------------


def test_default_policies_are_the_design_documents_rules_in_its_order(org):
    with system_context():
        policies = sla.ensure_default_policies(org)
        again = sla.ensure_default_policies(org)
        calendars = list(BusinessCalendar.objects.filter(organization=org))
    assert [p.pk for p in again] == [p.pk for p in policies]
    assert [(p.name, p.set_priority, p.resolution_minutes, p.calendar_id is not None) for p in policies] == [
        ("VIP customers", "urgent", 120, False),
        ("Billing and account issues", "high", 240, True),
        ("Urgent (marked by the customer)", "urgent", 60, False),
        ("Bug reports", "high", 24 * 60, True),
        ("Standard", "", 48 * 60, True),
    ]
    assert len(calendars) == 1
    assert calendars[0].hours == WEEKDAYS and calendars[0].time_zone == "UTC"


@pytest.mark.parametrize(
    ("fields", "vip", "policy", "priority", "first_response", "resolution"),
    [
        # VIP -> urgent, 2 h around the clock (first response 30 min).
        (
            {},
            True,
            "VIP customers",
            "urgent",
            MONDAY_9 + dt.timedelta(minutes=30),
            MONDAY_9 + dt.timedelta(hours=2),
        ),
        # VIP wins over billing: first match wins.
        ({"type": "billing_issue"}, True, "VIP customers", "urgent", None, MONDAY_9 + dt.timedelta(hours=2)),
        # Billing or account issue -> high, 4 working hours.
        ({"type": "billing_issue"}, False, "Billing and account issues", "high", 60, 240),
        ({"type": "account_issue"}, False, "Billing and account issues", "high", 60, 240),
        # Billing comes before the customer's "urgent" in the design document's order.
        (
            {"type": "billing_issue", "requested_priority": "urgent", "priority": "urgent"},
            False,
            "Billing and account issues",
            "high",
            60,
            240,
        ),
        # Customer-marked urgent -> 1 h around the clock.
        (
            {"requested_priority": "urgent", "priority": "urgent"},
            False,
            "Urgent (marked by the customer)",
            "urgent",
            MONDAY_9 + dt.timedelta(minutes=15),
            MONDAY_9 + dt.timedelta(hours=1),
        ),
        # Bug report -> at least high, 24 working hours (Monday, Tuesday, Wednesday 09-17).
        (
            {"type": "bug_report", "requested_priority": "low", "priority": "low"},
            False,
            "Bug reports",
            "high",
            240,
            24 * 60,
        ),
        # Everything else keeps its priority, 48 working hours (six working days).
        ({"requested_priority": "low", "priority": "low"}, False, "Standard", "low", 480, 48 * 60),
    ],
)
def test_default_policies_give_the_design_documents_targets(
    org, fields, vip, policy, priority, first_response, resolution
):
    customer = factories.customer(org, vip_status=vip)
    ticket = reload(make_ticket(org, customer=customer, **fields))
    assert ticket.sla_policy.name == policy
    assert ticket.priority == priority
    if isinstance(resolution, int):  # working minutes on the default calendar
        assert ticket.resolution_due_at == brute_due(MONDAY_9, resolution)
        assert ticket.resolution_warn_at == brute_due(MONDAY_9, resolution // 2)
        assert ticket.first_response_due_at == brute_due(MONDAY_9, first_response)
    else:
        assert ticket.resolution_due_at == resolution
        if first_response is not None:
            assert ticket.first_response_due_at == first_response
    if policy == "Standard":
        assert ticket.resolution_due_at == dt.datetime(2026, 3, 9, 17, tzinfo=UTC)
    if policy == "Bug reports":
        assert ticket.resolution_due_at == dt.datetime(2026, 3, 4, 17, tzinfo=UTC)


def test_applying_the_policy_is_recorded_on_the_timeline(org):
    ticket = make_ticket(org, type="bug_report")
    with system_context():
        events = list(TicketEvent.objects.filter(ticket=ticket).order_by("at", "kind"))
    kinds = {(e.kind, e.old_value, e.new_value) for e in events}
    assert ("policy", "", "Bug reports") in kinds
    assert ("priority", "normal", "high") in kinds


def test_the_ticket_service_applies_the_default_policies(org):
    vip = factories.customer(org, vip_status=True)
    ticket = reload(factories.ticket(org, customer=vip))
    assert (ticket.sla_policy.name, ticket.priority) == ("VIP customers", "urgent")
    assert ticket.resolution_due_at == ticket.created_at + dt.timedelta(hours=2)
    assert ticket.resolution_warn_at == ticket.created_at + dt.timedelta(hours=1)
    billing = reload(factories.ticket(org, type="billing_issue"))
    assert (billing.sla_policy.name, billing.priority) == ("Billing and account issues", "high")


def test_an_agent_creating_a_ticket_in_their_organization_gets_the_defaults(org, as_tenant):
    from support.services.tickets import ticket_create

    agent = factories.user(org, role="support_agent")
    customer = factories.customer(org)
    with as_tenant(org, agent):
        ticket = ticket_create(
            organization=org,
            actor=agent,
            customer=customer,
            subject="Card declined",
            channel="web_form",
            type="billing_issue",
            route=False,
        )
        assert ticket.sla_policy.name == "Billing and account issues"
        assert SlaPolicy.objects.filter(organization=org).count() == 5
    assert reload(ticket).first_response_due_at is not None


def test_an_organization_with_only_inactive_policies_has_no_sla(org):
    with system_context():
        SlaPolicy.objects.create(
            organization=org, name="Off", active=False, first_response_minutes=5, resolution_minutes=10
        )
    ticket = reload(make_ticket(org))
    assert ticket.sla_policy is None
    assert ticket.resolution_due_at is None and ticket.first_response_due_at is None
    with system_context():
        assert SlaPolicy.objects.filter(organization=org).count() == 1


def test_policies_match_on_channel_and_position_decides(org, manager, as_tenant):
    with as_tenant(org, manager):
        sla.ensure_default_policies(org)
        phone = services.policy_create(
            organization=org,
            actor=manager,
            name="Phone",
            match_channels=["phone"],
            first_response_minutes=10,
            resolution_minutes=20,
        )
        # Added last: "Standard" (no condition) catches the phone ticket first.
    assert reload(make_ticket(org, channel="phone")).sla_policy.name == "Standard"
    with as_tenant(org, manager):
        for _ in range(5):
            services.policy_move(policy=phone, actor=manager, direction="up")
    ticket = reload(make_ticket(org, channel="phone"))
    assert ticket.sla_policy.name == "Phone"
    assert ticket.resolution_due_at == MONDAY_9 + dt.timedelta(minutes=20)
    assert reload(make_ticket(org, channel="email")).sla_policy.name == "Standard"


# --- the stored clock ---------------------------------------------------------------------------------------


def test_a_pending_ticket_is_paused_and_its_deadline_moves_when_it_resumes(org):
    ticket = make_ticket(org, type="billing_issue")  # 4 working hours: due Monday 13:00
    assert reload(ticket).resolution_due_at == dt.datetime(2026, 3, 2, 13, tzinfo=UTC)
    status_change(ticket, "pending", dt.datetime(2026, 3, 2, 10, tzinfo=UTC))  # 1 h used
    with system_context():
        sla.ticket_apply_sla(ticket=reload(ticket), now=dt.datetime(2026, 3, 2, 11, tzinfo=UTC))
    paused = reload(ticket)
    assert paused.sla_paused_since == dt.datetime(2026, 3, 2, 10, tzinfo=UTC)
    status_change(ticket, "open", dt.datetime(2026, 3, 3, 15, tzinfo=UTC))
    with system_context():
        sla.ticket_apply_sla(ticket=reload(ticket), now=dt.datetime(2026, 3, 3, 15, tzinfo=UTC))
    resumed = reload(ticket)
    # 3 h left from Tuesday 15:00: 15-17 (2 h), Wednesday 09:00 + 1 h = 10:00.
    assert resumed.sla_paused_since is None
    assert resumed.resolution_due_at == dt.datetime(2026, 3, 4, 10, tzinfo=UTC)
    # Half (2 h): 1 h before the pause, 1 h after it.
    assert resumed.resolution_warn_at == dt.datetime(2026, 3, 3, 16, tzinfo=UTC)


def test_a_reclassified_ticket_moves_to_the_policy_that_now_matches(org):
    ticket = make_ticket(org)
    assert reload(ticket).sla_policy.name == "Standard"
    with system_context():
        stored = reload(ticket)
        stored.type = "billing_issue"
        stored.save(update_fields=["type"])
        sla.ticket_apply_sla(ticket=stored, now=dt.datetime(2026, 3, 2, 10, tzinfo=UTC))
    moved = reload(ticket)
    assert (moved.sla_policy.name, moved.priority) == ("Billing and account issues", "high")
    assert moved.resolution_due_at == dt.datetime(2026, 3, 2, 13, tzinfo=UTC)  # 4 h from creation


def test_an_agents_priority_change_does_not_move_the_ticket_to_another_policy(org):
    ticket = make_ticket(org, type="bug_report")
    with system_context():
        stored = reload(ticket)
        stored.priority = "urgent"
        stored.save(update_fields=["priority"])
        sla.ticket_apply_sla(ticket=stored, now=dt.datetime(2026, 3, 2, 10, tzinfo=UTC))
    after = reload(ticket)
    assert (after.sla_policy.name, after.priority) == ("Bug reports", "urgent")


# --- recomputation after edits ------------------------------------------------------------------------------


def test_a_calendar_edit_moves_the_deadlines_of_active_tickets_on_it(org, manager, as_tenant):
    with system_context():
        sla.ensure_default_policies(org)
        calendar = BusinessCalendar.objects.get(organization=org)
    late = make_ticket(org, type="billing_issue", created=dt.datetime(2026, 3, 2, 15, tzinfo=UTC))
    # 4 h from Monday 15:00 on 09-17: 15-17 (2 h), Tuesday 09:00 + 2 h = 11:00.
    assert reload(late).resolution_due_at == dt.datetime(2026, 3, 3, 11, tzinfo=UTC)
    vip = make_ticket(org, customer=factories.customer(org, vip_status=True))  # around the clock
    done = make_ticket(org, type="billing_issue", created=dt.datetime(2026, 3, 2, 15, tzinfo=UTC))
    status_change(done, "resolved", dt.datetime(2026, 3, 2, 16, tzinfo=UTC))
    with system_context():
        sla.ticket_apply_sla(ticket=reload(done), now=dt.datetime(2026, 3, 2, 16, tzinfo=UTC))
    done_due = reload(done).resolution_due_at
    vip_due = reload(vip).resolution_due_at

    longer = {str(day): [["08:00", "18:00"]] for day in range(1, 6)}
    with as_tenant(org, manager):
        saved, recomputed = services.calendar_update(
            calendar=calendar, actor=manager, name="Business hours", time_zone="UTC", hours=longer
        )
    assert recomputed == 1  # the active billing ticket; not the resolved one, not the VIP one
    # 08-18: Monday 15-18 (3 h), Tuesday 08:00 + 1 h = 09:00.
    assert reload(late).resolution_due_at == dt.datetime(2026, 3, 3, 9, tzinfo=UTC)
    assert reload(late).resolution_due_at == brute_due(
        dt.datetime(2026, 3, 2, 15, tzinfo=UTC), 240, opens=8, closes=18
    )
    assert reload(done).resolution_due_at == done_due
    assert reload(vip).resolution_due_at == vip_due

    with as_tenant(org, manager):
        _holiday, recomputed = services.holiday_add(
            calendar=saved, actor=manager, date=dt.date(2026, 3, 3), name="Closed"
        )
    assert recomputed == 1
    # Tuesday off: Monday 15-18 (3 h), Wednesday 08:00 + 1 h = 09:00.
    assert reload(late).resolution_due_at == dt.datetime(2026, 3, 4, 9, tzinfo=UTC)

    with as_tenant(org, manager):
        saved, recomputed = services.calendar_update(
            calendar=saved, actor=manager, name="Business hours", time_zone="America/New_York", hours=longer
        )
    # In New York (EST, UTC-5) the ticket was created Monday 10:00 local: 4 h -> 14:00 EST = 19:00 UTC.
    assert reload(late).resolution_due_at == dt.datetime(2026, 3, 2, 19, tzinfo=UTC)
    assert reload(late).resolution_due_at == brute_due(
        dt.datetime(2026, 3, 2, 15, tzinfo=UTC),
        240,
        tz="America/New_York",
        opens=8,
        closes=18,
        holidays={dt.date(2026, 3, 3)},
    )


def test_renaming_a_calendar_recomputes_nothing(org, manager, as_tenant):
    with system_context():
        sla.ensure_default_policies(org)
        calendar = BusinessCalendar.objects.get(organization=org)
    make_ticket(org, type="billing_issue")
    with as_tenant(org, manager):
        _saved, recomputed = services.calendar_update(
            calendar=calendar, actor=manager, name="Office hours", time_zone="UTC", hours=WEEKDAYS
        )
    assert recomputed == 0


def test_recomputation_goes_in_batches(org, manager, as_tenant, monkeypatch):
    monkeypatch.setattr(sla, "RECOMPUTE_BATCH", 2)
    with system_context():
        sla.ensure_default_policies(org)
        calendar = BusinessCalendar.objects.get(organization=org)
    tickets = [make_ticket(org, type="bug_report") for _ in range(5)]
    with as_tenant(org, manager):
        _saved, recomputed = services.calendar_update(
            calendar=calendar,
            actor=manager,
            name=calendar.name,
            time_zone="UTC",
            hours={"1": [["09:00", "17:00"]]},
        )
    assert recomputed == 5
    # Mondays only: 24 working hours are three Mondays: 03-02, 03-09, 03-16 (17:00).
    assert {reload(t).resolution_due_at for t in tickets} == {dt.datetime(2026, 3, 16, 17, tzinfo=UTC)}


def test_changing_a_policys_target_recomputes_its_tickets(org, manager, as_tenant):
    ticket = make_ticket(org, type="billing_issue")
    policy = reload(ticket).sla_policy
    with as_tenant(org, manager):
        _policy, recomputed = services.policy_update(policy=policy, actor=manager, resolution_minutes=6 * 60)
    assert recomputed == 1
    assert reload(ticket).resolution_due_at == dt.datetime(2026, 3, 2, 15, tzinfo=UTC)
    with as_tenant(org, manager):
        _policy, recomputed = services.policy_update(policy=policy, actor=manager, name="Money matters")
    assert recomputed == 0


def test_deleting_a_policy_moves_its_tickets_to_the_next_match(org, manager, as_tenant):
    ticket = make_ticket(org, type="billing_issue")
    with as_tenant(org, manager):
        moved = services.policy_delete(policy=reload(ticket).sla_policy, actor=manager)
    assert moved == 1
    assert reload(ticket).sla_policy.name == "Standard"


def test_settings_services_check_the_capability_and_validate(org, as_tenant):
    agent = factories.user(org, role="support_agent")
    manager = factories.user(org, role="support_manager")
    with as_tenant(org, agent), pytest.raises(PermissionDenied):
        services.calendar_create(organization=org, actor=agent, name="X", time_zone="UTC", hours=WEEKDAYS)
    with as_tenant(org, manager), pytest.raises(ValidationError) as error:
        services.calendar_create(organization=org, actor=manager, name="X", time_zone="UTC", hours={})
    assert "hours" in error.value.error_dict
    with as_tenant(org, manager), pytest.raises(ValidationError) as error:
        services.policy_create(
            organization=org, actor=manager, name="Odd", first_response_minutes=60, resolution_minutes=30
        )
    assert "first_response_minutes" in error.value.error_dict


def test_a_calendar_in_use_cannot_be_deleted(org, manager, as_tenant):
    with system_context():
        sla.ensure_default_policies(org)
        calendar = BusinessCalendar.objects.get(organization=org)
    with as_tenant(org, manager), pytest.raises(ValidationError):
        services.calendar_delete(calendar=calendar, actor=manager)
