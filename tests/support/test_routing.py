"""Routing (support/routing.py): who gets a ticket, capacity, the team queue, release, manual assignment.

Every expectation is worked out by hand from the small data set each test builds; the agents' counters are
checked against an independent count of their active tickets.
"""

from __future__ import annotations

import datetime
import itertools

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from crm.models import Notification
from crm.tenancy import system_context, tenant_context
from support import routing
from support.models import AgentProfile, SlaPolicy, Status, Ticket, TicketEvent
from support.services import agents as agent_services
from tests import factories

_numbers = itertools.count(1)


# --- helpers (also used by the other routing test modules) ------------------------------------------------------


def agent(org, *, role="support_agent", department="", **fields):
    return factories.user(org, role=role, department=department, **fields)


def ticket(org, *, customer=None, category="", status=Status.NEW, **fields) -> Ticket:
    """A ticket written directly (no SLA, no routing), with the next number."""
    customer = customer or factories.customer(org)
    with system_context():
        return Ticket.objects.create(
            organization=org,
            number=next(_numbers),
            subject=fields.pop("subject", "Help"),
            customer=customer,
            category=category,
            status=status,
            **fields,
        )


def profile(org, user, **fields) -> AgentProfile:
    """The agent's profile with these fields set (created if missing)."""
    with tenant_context(org.pk):
        agent_services.profiles_ensure(organization_id=org.pk, user_ids=[user.pk])
        AgentProfile.objects.filter(user=user).update(**fields)
        return AgentProfile.objects.get(user=user)


def route(org, t, **kwargs) -> routing.RoutingDecision:
    with tenant_context(org.pk):
        return routing.route_ticket(ticket_id=t.pk, organization_id=org.pk, **kwargs)


def fresh(t) -> Ticket:
    with system_context():
        return Ticket.objects.get(pk=t.pk)


def counters(org) -> dict:
    with system_context():
        return dict(AgentProfile.objects.filter(organization=org).values_list("user_id", "open_tickets"))


def true_counts(org) -> dict:
    """Active tickets per assignee, counted in Python from the rows (independent of the SQL)."""
    counts: dict = {}
    with system_context():
        for t in Ticket.objects.filter(organization=org, assigned_to__isnull=False):
            if t.status not in ("resolved", "closed"):
                counts[t.assigned_to_id] = counts.get(t.assigned_to_id, 0) + 1
    return counts


def assert_counters_true(org) -> None:
    stored = {user: n for user, n in counters(org).items() if n}
    assert stored == true_counts(org)


def resolve(org, t) -> None:
    """Resolve around the services (as ticket_set_status does before it calls ticket_release)."""
    with system_context():
        Ticket.objects.filter(pk=t.pk).update(status=Status.RESOLVED, resolved_at=timezone.now())


def ago(**delta) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(**delta)


# --- the preference rules ----------------------------------------------------------------------------------------


def test_department_match_beats_a_lighter_load(org_a):
    specialist = agent(org_a, department="billing")
    generalist = agent(org_a)
    profile(org_a, specialist, open_tickets=0, capacity=10)
    for _ in range(4):
        route(org_a, ticket(org_a, category="billing"))
    # Four billing tickets: all to the specialist, although the generalist has none.
    assert counters(org_a)[specialist.pk] == 4
    assert counters(org_a).get(generalist.pk, 0) == 0
    decision = route(org_a, ticket(org_a, category="billing"))
    assert decision.agent_id == specialist.pk and not decision.queued
    assert "Billing specialist" in decision.reason and "(5 of 10 open tickets)" in decision.reason
    assert_counters_true(org_a)


def test_a_lighter_load_beats_a_longer_wait_since_the_last_assignment(org_a):
    waited_long = agent(org_a)
    busy_recently = agent(org_a)
    for user, load, last in ((waited_long, 2, ago(days=3)), (busy_recently, 1, ago(minutes=1))):
        for _ in range(load):
            ticket(org_a, assigned_to=user)
        profile(org_a, user, last_assigned_at=last)
    decision = route(org_a, ticket(org_a))
    assert decision.agent_id == busy_recently.pk
    assert counters(org_a) == {waited_long.pk: 2, busy_recently.pk: 2}


def test_the_longest_wait_since_the_last_assignment_breaks_a_tie_never_assigned_first(org_a):
    one_hour = agent(org_a)
    two_hours = agent(org_a)
    never = agent(org_a)
    profile(org_a, one_hour, last_assigned_at=ago(hours=1))
    profile(org_a, two_hours, last_assigned_at=ago(hours=2))
    profile(org_a, never)
    first, second, third, fourth = (route(org_a, ticket(org_a)).agent_id for _ in range(4))
    # Loads 0/0/0: never assigned first, then two hours ago, then one hour ago. All at load 1 again, the
    # longest wait is now the never-before-assigned agent's (their first ticket came first).
    assert (first, second, third) == (never.pk, two_hours.pk, one_hour.pk)
    assert fourth == never.pk


def test_the_user_id_breaks_the_last_tie(org_a):
    a, b = agent(org_a), agent(org_a)
    profile(org_a, a)
    profile(org_a, b)
    assert route(org_a, ticket(org_a)).agent_id == min(a.pk, b.pk)


def test_a_ticket_without_category_prefers_agents_without_department_then_anyone(org_a):
    specialist = agent(org_a, department="technical")
    generalist = agent(org_a)
    profile(org_a, generalist, capacity=1)
    assert route(org_a, ticket(org_a)).agent_id == generalist.pk
    # The generalist is full: a specialist takes the uncategorised ticket rather than leaving it waiting.
    decision = route(org_a, ticket(org_a))
    assert decision.agent_id == specialist.pk
    assert "Lightest load among all agents" in decision.reason


def test_a_categorised_ticket_falls_back_to_an_agent_without_department(org_a):
    billing = agent(org_a, department="billing")
    generalist = agent(org_a)
    profile(org_a, billing, capacity=1)
    route(org_a, ticket(org_a, category="billing"))
    decision = route(org_a, ticket(org_a, category="billing"))
    assert decision.agent_id == generalist.pk
    assert "No free Billing specialist" in decision.reason


# --- who is eligible -------------------------------------------------------------------------------------------------


def test_inactive_users_other_roles_other_departments_and_other_organizations_are_never_picked(org_a, org_b):
    agent(org_a, department="billing", is_active=False)
    agent(org_a, role="support_manager", department="billing")
    agent(org_a, role="support_manager")
    agent(org_a, role="sales_rep")
    agent(org_a, role="sales_manager", department="billing")
    agent(org_a, department="technical")
    agent(org_b, department="billing")
    agent(org_b)
    t = ticket(org_a, category="billing")
    decision = route(org_a, t)
    assert decision.queued and decision.agent_id is None
    stored = fresh(t)
    assert stored.assigned_to_id is None
    assert stored.queue_reason == "No active agent in Billing, and none without a department."
    assert decision.reason.endswith(stored.queue_reason)


def test_admins_are_routed_like_support_agents(org_a):
    admin = agent(org_a, role="admin", department="billing")
    assert route(org_a, ticket(org_a, category="billing")).agent_id == admin.pk


def test_an_agent_who_is_not_accepting_gets_no_new_tickets(org_a):
    paused = agent(org_a)
    profile(org_a, paused, accepting=False)
    t = ticket(org_a)
    assert route(org_a, t).queued
    assert fresh(t).queue_reason == "No agent is accepting tickets."


def test_profiles_are_created_on_first_use_with_capacity_ten_and_the_current_load(org_a):
    a = agent(org_a)
    b = agent(org_a, role="admin")
    manager = agent(org_a, role="support_manager")
    ticket(org_a, assigned_to=a)
    ticket(org_a, assigned_to=a)
    ticket(org_a, assigned_to=a, status=Status.CLOSED)
    route(org_a, ticket(org_a))
    with system_context():
        profiles = {p.user_id: p for p in AgentProfile.objects.filter(organization=org_a)}
    assert set(profiles) == {a.pk, b.pk}  # the manager is not routed to: no profile
    assert manager.pk not in profiles
    assert {p.capacity for p in profiles.values()} == {10}
    assert counters(org_a) == {a.pk: 2, b.pk: 1}


# --- capacity and the queue --------------------------------------------------------------------------------------


def test_capacity_is_never_exceeded_and_the_rest_waits_with_the_reason(org_a):
    a = agent(org_a, department="billing")
    b = agent(org_a)
    profile(org_a, a, capacity=2)
    profile(org_a, b, capacity=1)
    tickets = [ticket(org_a, category="billing") for _ in range(5)]
    decisions = [route(org_a, t) for t in tickets]
    assert [d.agent_id for d in decisions] == [a.pk, a.pk, b.pk, None, None]
    assert counters(org_a) == {a.pk: 2, b.pk: 1}
    reason = "No agent in Billing (or without a department) with free capacity: all 2 are at capacity."
    assert [fresh(t).queue_reason for t in tickets] == ["", "", "", reason, reason]
    assert_counters_true(org_a)


def test_a_queued_ticket_is_routed_when_capacity_frees_up_most_urgent_first(org_a):
    a = agent(org_a)
    profile(org_a, a, capacity=1)
    held = ticket(org_a)
    route(org_a, held)
    later = ticket(org_a, resolution_due_at=timezone.now() + datetime.timedelta(hours=8))
    sooner = ticket(org_a, resolution_due_at=timezone.now() + datetime.timedelta(hours=1))
    assert route(org_a, later).queued and route(org_a, sooner).queued
    resolve(org_a, held)
    with tenant_context(org_a.pk):
        routing.ticket_release(ticket=fresh(held))
    # The one slot went to the ticket due first; the other still waits, with its reason.
    assert fresh(sooner).assigned_to_id == a.pk and fresh(sooner).queue_reason == ""
    assert fresh(later).assigned_to_id is None and fresh(later).queue_reason
    assert counters(org_a) == {a.pk: 1}
    assert_counters_true(org_a)


def test_route_waiting_routes_the_queue_when_an_agent_joins(org_a):
    waiting = [ticket(org_a, category="technical") for _ in range(3)]
    waiting.append(ticket(org_a, category="billing"))
    for t in waiting:
        assert route(org_a, t).queued
    newcomer = agent(org_a, department="technical")
    profile(org_a, newcomer, capacity=2)
    with tenant_context(org_a.pk):
        assert routing.route_waiting(organization_id=org_a.pk) == 2
    assert [fresh(t).assigned_to_id for t in waiting] == [newcomer.pk, newcomer.pk, None, None]
    with tenant_context(org_a.pk):
        assert routing.route_waiting(organization_id=org_a.pk) == 0


def test_a_queued_ticket_records_its_reason_once_however_often_it_is_retried(org_a):
    t = ticket(org_a)
    for _ in range(3):
        route(org_a, t)
        with tenant_context(org_a.pk):
            routing.route_waiting(organization_id=org_a.pk)
    with system_context():
        kinds = list(TicketEvent.objects.filter(ticket=t).values_list("kind", "new_value"))
    assert kinds == [("routing", "queued")]


def test_resolved_and_assigned_tickets_are_left_alone(org_a):
    a, b = agent(org_a), agent(org_a)
    done = ticket(org_a, status=Status.CLOSED)
    mine = ticket(org_a, assigned_to=b)
    assert route(org_a, done).agent_id is None and not route(org_a, done).queued
    assert route(org_a, mine).agent_id == b.pk
    assert fresh(done).assigned_to_id is None
    assert fresh(mine).assigned_to_id == b.pk
    assert counters(org_a) == {}  # nothing was claimed (no profile was even needed)
    assert a.pk not in true_counts(org_a)


# --- the decision --------------------------------------------------------------------------------------------------


def test_the_decision_carries_priority_estimate_deadline_and_escalation_triggers(org_a):
    a = agent(org_a, department="billing")
    with system_context():
        policy = SlaPolicy.objects.create(
            organization=org_a,
            name="Billing or account issue",
            match_types=["billing_issue", "account_issue"],
            set_priority="high",
            first_response_minutes=60,
            resolution_minutes=240,
        )
    due = timezone.now() + datetime.timedelta(hours=4)
    warn = timezone.now() + datetime.timedelta(hours=2)
    t = ticket(
        org_a,
        category="billing",
        type="billing_issue",
        priority="high",
        sla_policy=policy,
        resolution_due_at=due,
        resolution_warn_at=warn,
    )
    decision = route(org_a, t)
    assert decision.agent_id == a.pk
    assert decision.priority == "high"
    assert decision.estimated_resolution == datetime.timedelta(hours=4)
    assert decision.sla_deadline == due
    assert decision.reason.startswith("SLA policy “Billing or account issue”, priority High.")
    assert decision.escalation_triggers == {
        "first_escalation": {
            "trigger_time": warn.isoformat(),
            "escalation_level": "supervisor_notification",
            "action": "Notify supervisor of approaching SLA breach",
        },
        "final_escalation": {
            "trigger_time": due.isoformat(),
            "escalation_level": "management_escalation",
            "action": "Escalate to management for SLA breach",
        },
    }
    stored = fresh(t)
    assert stored.assigned_to_id == a.pk and stored.assigned_at is not None
    assert stored.status == Status.NEW  # routing assigns; the agent's first reply opens it
    with system_context():
        events = list(
            TicketEvent.objects.filter(ticket=t).order_by("kind").values_list("kind", "new_value", "note")
        )
    assert events == [
        ("assigned", str(a.pk), "Routed automatically"),
        ("routing", str(a.pk), decision.reason),
    ]


def test_without_a_policy_the_estimate_is_the_design_documents_48_hours(org_a):
    agent(org_a)
    decision = route(org_a, ticket(org_a))
    assert decision.estimated_resolution == datetime.timedelta(hours=48)
    assert decision.sla_deadline is None and decision.escalation_triggers == {}


# --- release -------------------------------------------------------------------------------------------------------


def test_release_frees_the_slot_exactly_once(org_a):
    a = agent(org_a)
    tickets = [ticket(org_a) for _ in range(3)]
    for t in tickets:
        route(org_a, t)
    assert counters(org_a) == {a.pk: 3}
    resolve(org_a, tickets[0])
    with tenant_context(org_a.pk):
        for _ in range(3):  # retried, or a close after the resolve
            routing.ticket_release(ticket=fresh(tickets[0]))
    assert counters(org_a) == {a.pk: 2}
    assert fresh(tickets[0]).assigned_to_id == a.pk  # the assignee keeps the credit
    # Releasing an active ticket without unassigning it frees nothing.
    with tenant_context(org_a.pk):
        routing.ticket_release(ticket=fresh(tickets[1]))
    assert counters(org_a) == {a.pk: 2}
    assert_counters_true(org_a)


def test_a_reopened_ticket_counts_again_for_its_agent(org_a):
    a = agent(org_a)
    t = ticket(org_a)
    route(org_a, t)
    resolve(org_a, t)
    with tenant_context(org_a.pk):
        routing.ticket_release(ticket=fresh(t))
    assert counters(org_a) == {a.pk: 0}
    with system_context():
        Ticket.objects.filter(pk=t.pk).update(status=Status.OPEN)
    with tenant_context(org_a.pk):
        # What ticket_set_status does on a reopen: assign to the same agent, over capacity if need be.
        routing.ticket_assign(ticket=fresh(t), agent=a, actor=None, force=True)
        routing.ticket_assign(ticket=fresh(t), agent=a, actor=None, force=True)
    assert counters(org_a) == {a.pk: 1}


def test_a_reopened_ticket_of_an_agent_who_left_goes_back_to_the_team(org_a):
    gone, stays = agent(org_a), agent(org_a)
    profile(org_a, stays, last_assigned_at=ago(minutes=1))
    t = ticket(org_a)
    route(org_a, t)
    assert fresh(t).assigned_to_id == gone.pk
    resolve(org_a, t)
    with system_context():
        Ticket.objects.filter(pk=t.pk).update(status=Status.OPEN)
        type(gone).objects.filter(pk=gone.pk).update(is_active=False)
        gone.refresh_from_db()
    with tenant_context(org_a.pk):
        routing.ticket_assign(ticket=fresh(t), agent=gone, actor=None, force=True)
    assert fresh(t).assigned_to_id == stays.pk
    assert counters(org_a) == {gone.pk: 0, stays.pk: 1}


def test_unassigning_sends_the_ticket_back_to_the_queue_and_frees_the_slot(org_a):
    a = agent(org_a)
    manager = agent(org_a, role="support_manager")
    profile(org_a, a, capacity=1)
    t = ticket(org_a)
    route(org_a, t)
    with tenant_context(org_a.pk, user=manager):
        routing.ticket_release(ticket=fresh(t), actor=manager, unassign=True)
    stored = fresh(t)
    # Not routed straight back in the same step; the freed slot is the queue's (the next round routes it).
    assert stored.assigned_to_id is None
    assert stored.queue_reason == f"Unassigned by {manager}"
    assert counters(org_a) == {a.pk: 0}
    with system_context():
        kinds = list(
            TicketEvent.objects.filter(ticket=t, kind="assigned").values_list("old_value", "new_value")
        )
    assert kinds == [("", str(a.pk)), (str(a.pk), "")]
    with tenant_context(org_a.pk):
        assert routing.route_waiting(organization_id=org_a.pk) == 1
    assert fresh(t).assigned_to_id == a.pk


def test_an_agent_may_unassign_only_their_own_ticket(org_a):
    a, b = agent(org_a), agent(org_a)
    t = ticket(org_a, assigned_to=a)
    with tenant_context(org_a.pk, user=b), pytest.raises(PermissionDenied):
        routing.ticket_release(ticket=fresh(t), actor=b, unassign=True)


def test_reconcile_repairs_counters_changed_around_the_services(org_a):
    a, b = agent(org_a), agent(org_a)
    for _ in range(3):
        route(org_a, ticket(org_a))
    with system_context():
        Ticket.objects.filter(organization=org_a, assigned_to=a).update(
            status=Status.CLOSED
        )  # bulk, no release
        AgentProfile.objects.filter(user=b).update(open_tickets=7)
    with tenant_context(org_a.pk):
        assert routing.agents_reconcile(organization_id=org_a.pk) == 2
        assert routing.agents_reconcile(organization_id=org_a.pk) == 0
    assert_counters_true(org_a)


# --- manual assignment ----------------------------------------------------------------------------------------------


def test_manual_assignment_respects_capacity_unless_forced(org_a):
    a = agent(org_a)
    manager = agent(org_a, role="support_manager")
    profile(org_a, a, capacity=1)
    route(org_a, ticket(org_a))
    extra = ticket(org_a)
    with tenant_context(org_a.pk, user=manager), pytest.raises(ValidationError) as refused:
        routing.ticket_assign(ticket=extra, agent=a, actor=manager)
    assert "already has 1 of 1 open tickets" in str(refused.value)
    with tenant_context(org_a.pk, user=manager):
        routing.ticket_assign(ticket=extra, agent=a, actor=manager, force=True)
    assert fresh(extra).assigned_to_id == a.pk
    assert counters(org_a) == {a.pk: 2}
    with system_context():
        event = TicketEvent.objects.get(ticket=extra, kind="assigned")
        notice = Notification.objects.get(recipient=a)
    assert event.note.endswith("(over capacity: 2 of 1)")
    assert event.actor_id == manager.pk
    assert notice.title == f"{manager} assigned you {fresh(extra).ticket_number}"


def test_reassigning_moves_the_slot_from_one_agent_to_the_other(org_a):
    a, b = agent(org_a), agent(org_a)
    manager = agent(org_a, role="support_manager")
    profile(org_a, b, open_tickets=0)
    t = ticket(org_a)
    route(org_a, t)
    first = fresh(t).assigned_to_id
    other = b if first == a.pk else a
    with tenant_context(org_a.pk, user=manager):
        routing.ticket_assign(ticket=fresh(t), agent=other, actor=manager)
    assert fresh(t).assigned_to_id == other.pk
    assert counters(org_a) == {first: 0, other.pk: 1}
    assert_counters_true(org_a)


def test_agents_take_unassigned_tickets_for_themselves_but_do_not_assign_others(org_a):
    a, b = agent(org_a), agent(org_a)
    profile(org_a, a, accepting=False)
    t = ticket(org_a)
    with tenant_context(org_a.pk, user=a), pytest.raises(PermissionDenied):
        routing.ticket_assign(ticket=t, agent=b, actor=a)
    with tenant_context(org_a.pk, user=a), pytest.raises(PermissionDenied):
        routing.ticket_assign(ticket=t, agent=a, actor=a, force=True)
    with tenant_context(org_a.pk, user=a):
        routing.ticket_assign(ticket=t, agent=a, actor=a)  # not accepting routed tickets, but may take one
    assert fresh(t).assigned_to_id == a.pk
    with tenant_context(org_a.pk, user=b), pytest.raises(PermissionDenied):
        routing.ticket_assign(ticket=fresh(t), agent=b, actor=b)  # someone else's ticket
    assert counters(org_a) == {a.pk: 1}


def test_assignment_refuses_people_who_cannot_work_tickets_and_finished_tickets(org_a, org_b):
    manager = agent(org_a, role="support_manager")
    rep = agent(org_a, role="sales_rep")
    stranger = agent(org_b)
    t = ticket(org_a)
    for person in (rep, stranger):
        with tenant_context(org_a.pk, user=manager), pytest.raises(ValidationError):
            routing.ticket_assign(ticket=t, agent=person, actor=manager)
    closed = ticket(org_a, status=Status.CLOSED)
    with tenant_context(org_a.pk, user=manager), pytest.raises(ValidationError):
        routing.ticket_assign(ticket=closed, agent=manager, actor=manager)
    # A support manager is not routed to, but can be given a ticket by hand (a profile is made for them).
    with tenant_context(org_a.pk, user=manager):
        routing.ticket_assign(ticket=t, agent=manager, actor=manager)
    assert counters(org_a) == {manager.pk: 1}


def test_rebalancing_moves_the_chosen_tickets_all_or_none_and_keeps_counts_right(org_a):
    a, b = agent(org_a), agent(org_a)
    manager = agent(org_a, role="support_manager")
    profile(org_a, b, accepting=False, capacity=3)
    tickets = [ticket(org_a) for _ in range(5)]
    for t in tickets:
        route(org_a, t)
    assert counters(org_a) == {a.pk: 5, b.pk: 0}
    with tenant_context(org_a.pk, user=manager), pytest.raises(ValidationError):
        agent_services.tickets_rebalance(
            organization=org_a, actor=manager, ticket_ids=[t.pk for t in tickets[:4]], to_agent=b
        )
    assert counters(org_a) == {a.pk: 5, b.pk: 0}  # all or none
    with tenant_context(org_a.pk, user=manager):
        moved = agent_services.tickets_rebalance(
            organization=org_a, actor=manager, ticket_ids=[t.pk for t in tickets[:3]], to_agent=b
        )
    assert moved == 3
    assert counters(org_a) == {a.pk: 2, b.pk: 3}
    assert_counters_true(org_a)
    with system_context():
        assert Notification.objects.filter(recipient=b).count() == 1
    with tenant_context(org_a.pk, user=a), pytest.raises(PermissionDenied):
        agent_services.tickets_rebalance(organization=org_a, actor=a, ticket_ids=[tickets[4].pk], to_agent=a)


def test_more_capacity_routes_waiting_tickets_at_once(org_a):
    a = agent(org_a)
    manager = agent(org_a, role="support_manager")
    profile(org_a, a, capacity=1)
    tickets = [ticket(org_a) for _ in range(3)]
    for t in tickets:
        route(org_a, t)
    assert counters(org_a) == {a.pk: 1}
    with tenant_context(org_a.pk, user=manager):
        agent_services.agent_profile_update(
            organization=org_a, actor=manager, agent=a, capacity=3, accepting=True
        )
    assert counters(org_a) == {a.pk: 3}
    assert all(fresh(t).assigned_to_id == a.pk for t in tickets)
    with tenant_context(org_a.pk, user=a), pytest.raises(PermissionDenied):
        agent_services.agent_profile_update(organization=org_a, actor=a, agent=a, capacity=30, accepting=True)


# --- through the ticket services ---------------------------------------------------------------------------------


def test_the_ticket_services_route_on_creation_release_on_resolve_and_reclaim_on_reopen(org_a):
    from support.services.tickets import ticket_create, ticket_set_status

    a = agent(org_a, department="billing")
    manager = agent(org_a, role="support_manager")
    profile(org_a, a, capacity=1)
    customer = factories.customer(org_a)
    with tenant_context(org_a.pk, user=manager):
        first = ticket_create(
            organization=org_a, actor=manager, customer=customer, subject="Invoice", category="billing"
        )
        second = ticket_create(
            organization=org_a, actor=manager, customer=customer, subject="Refund", category="billing"
        )
    assert first.assigned_to_id == a.pk
    assert second.assigned_to_id is None and "free capacity" in second.queue_reason
    with tenant_context(org_a.pk, user=a):
        ticket_set_status(ticket=first, actor=a, status=Status.RESOLVED)
        ticket_set_status(ticket=fresh(first), actor=a, status=Status.CLOSED)  # a second "done" frees nothing
    # The freed slot went to the waiting ticket at once.
    assert fresh(second).assigned_to_id == a.pk
    assert counters(org_a) == {a.pk: 1}
    with tenant_context(org_a.pk, user=manager):
        ticket_set_status(
            ticket=fresh(first), actor=manager, status=Status.OPEN
        )  # reopened: back to its agent
    assert fresh(first).assigned_to_id == a.pk
    assert counters(org_a) == {a.pk: 2}  # over capacity by the reopen, as intended
    assert_counters_true(org_a)


# --- deactivation ------------------------------------------------------------------------------------------------


def test_deactivating_an_agent_reroutes_their_open_tickets_to_the_rest_of_the_team(org_a, admin_a):
    from crm.services import user_deactivate

    leaving, staying = agent(org_a), agent(org_a)
    profile(org_a, leaving, last_assigned_at=ago(days=2))
    profile(org_a, staying, last_assigned_at=ago(days=1))
    first, second = ticket(org_a), ticket(org_a)
    route(org_a, first)
    route(org_a, second)
    open_for_leaving = [t for t in (first, second) if fresh(t).assigned_to_id == leaving.pk]
    done = ticket(org_a, status=Status.RESOLVED, assigned_to=leaving)
    with tenant_context(org_a.pk, user=admin_a):
        user_deactivate(user=leaving, actor=admin_a)
    assert open_for_leaving, "the leaving agent held at least one open ticket"
    for t in (first, second):  # the admin is eligible too (the design document's rule)
        assert fresh(t).assigned_to_id in (staying.pk, admin_a.pk)
    assert fresh(done).assigned_to_id == leaving.pk  # resolved work keeps its credit
    with system_context():
        note = TicketEvent.objects.filter(
            ticket_id=open_for_leaving[0].pk, kind="assigned", new_value=""
        ).get()
    assert note.note == "Assigned agent was deactivated"
    assert_counters_true(org_a)
