"""The workload page: per-agent load against capacity, oldest ticket, at-risk and breached counts (each
recomputed independently on a hand-made data set), the team queue, inline capacity edits, rebalancing."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from crm import navigation
from crm.tenancy import system_context, tenant_context
from support import sla
from support.models import AgentProfile, Status, Ticket
from support.selectors import workload as selectors
from tests import factories
from tests.support.test_routing import agent, counters, fresh, profile, route, ticket, true_counts

HOUR = datetime.timedelta(hours=1)


def _now():
    return timezone.now()


@pytest.fixture
def manager(org_a):
    return agent(org_a, role="support_manager", first_name="Mona", last_name="Manager")


@pytest.fixture
def floor(org_a):
    """Two agents with hand-made tickets in every SLA state, and two tickets waiting in the queue."""
    now = _now()
    ann = agent(org_a, first_name="Ann", last_name="Agent", department="billing")
    bob = agent(org_a, first_name="Bob", last_name="Agent")
    profile(org_a, ann, capacity=8)
    profile(org_a, bob, capacity=2, accepting=False)
    customer = factories.customer(org_a)
    oldest = ticket(org_a, customer=customer, assigned_to=ann, subject="Oldest", created_at=now - 50 * HOUR)
    specs = [
        # at risk: half the resolution time passed
        {"resolution_warn_at": now - HOUR, "resolution_due_at": now + HOUR},
        # breached: past the resolution deadline
        {"resolution_warn_at": now - 3 * HOUR, "resolution_due_at": now - HOUR},
        # paused, half time passed: neither at risk nor breached
        {"resolution_warn_at": now - HOUR, "resolution_due_at": now + HOUR, "sla_paused_since": now - HOUR},
        # at risk on the first response
        {"first_response_warn_at": now - HOUR, "first_response_due_at": now + HOUR},
        # breached: no first response by its deadline
        {"first_response_warn_at": now - 3 * HOUR, "first_response_due_at": now - HOUR},
        # breached: answered, but late
        {
            "first_response_due_at": now - 5 * HOUR,
            "first_response_at": now - 4 * HOUR,
            "resolution_due_at": now + 9 * HOUR,
        },
        # ok
        {"resolution_warn_at": now + HOUR, "resolution_due_at": now + 3 * HOUR},
    ]
    for n, spec in enumerate(specs):
        ticket(org_a, customer=customer, assigned_to=ann, created_at=now - n * HOUR, **spec)
    ticket(org_a, customer=customer, assigned_to=ann, status=Status.RESOLVED, created_at=now - 90 * HOUR)
    for _ in range(3):
        ticket(org_a, customer=customer, assigned_to=bob, created_at=now - 2 * HOUR)  # over capacity
    ticket(org_a, customer=customer, category="billing")
    ticket(org_a, customer=customer)
    with tenant_context(org_a.pk):
        from support.routing import agents_reconcile

        agents_reconcile(organization_id=org_a.pk)
    return {"ann": ann, "bob": bob, "oldest": oldest}


def _expected(org, user) -> dict:
    """The row's numbers recomputed from the tickets with support/sla.py's own badge function."""
    now = _now()
    with system_context():
        active = [t for t in Ticket.objects.filter(organization=org, assigned_to=user) if t.is_active]
    states = [sla.sla_state(t, now) for t in active]
    return {
        "open": len(active),
        "at_risk": states.count("at_risk"),
        "breached": states.count("breached"),
        "oldest": min(active, key=lambda t: t.created_at).number if active else None,
    }


def test_each_agents_numbers_match_an_independent_count(org_a, manager, floor):
    with tenant_context(org_a.pk, user=manager):
        data = selectors.workload(actor=manager)
    rows = {load.user.pk: load for load in data.agents}
    ann, bob = rows[floor["ann"].pk], rows[floor["bob"].pk]
    assert _expected(org_a, floor["ann"]) == {
        "open": 8,
        "at_risk": 2,
        "breached": 3,
        "oldest": floor["oldest"].number,
    }
    assert (ann.open_tickets, ann.at_risk, ann.breached, ann.oldest.number) == (
        8,
        2,
        3,
        floor["oldest"].number,
    )
    assert (ann.capacity, ann.percent, ann.level) == (8, 100, "at_risk")
    assert (bob.open_tickets, bob.capacity, bob.accepting, bob.level) == (3, 2, False, "breached")
    assert _expected(org_a, floor["bob"])["open"] == 3
    # The team: the routing counters of the active agents (the manager has none: capacity 10 by default).
    assert (data.team_open, data.team_capacity) == (11, 8 + 2)
    assert sum(true_counts(org_a).values()) == 11
    assert (data.queued, data.queued_capped) == (2, False)
    assert sorted(data.queued_by_category) == [("", 1), ("Billing", 1)]


def test_the_page_shows_the_numbers_with_a_fixed_number_of_queries(
    org_a, manager, floor, login, client, django_assert_max_num_queries
):
    login(manager)
    url = reverse("support:workload")
    with django_assert_max_num_queries(15) as few:
        response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "8 / 8" in html and "3 / 2" in html and "Over capacity" in html
    assert "11 of 10 open tickets" in html
    for n in range(4):
        other = agent(org_a, first_name=f"Extra{n}")
        ticket(org_a, assigned_to=other)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).status_code == 200


def test_the_page_and_its_nav_item_are_for_support_leads(org_a, manager, floor, login, client):
    url = reverse("support:workload")
    for role, status in (("support_agent", 403), ("sales_manager", 403), ("admin", 200)):
        login(agent(org_a, role=role))
        assert client.get(url).status_code == status, role
    login(manager)
    assert client.get(url).status_code == 200
    labels = {str(e["item"].label) for e in navigation.items_for(manager)["support"]}
    assert "Workload" in labels
    assert "Workload" not in {str(e["item"].label) for e in navigation.items_for(floor["ann"])["support"]}


def test_capacity_is_edited_in_the_row_and_more_room_routes_the_queue(org_a, manager, floor, login, client):
    login(manager)
    bob = floor["bob"]
    url = reverse("support:workload_capacity", kwargs={"pk": bob.pk})
    response = client.post(url, {"capacity": "6", "accepting": "on"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'data-testid="agent-row"' in response.content.decode() and "Saved" in response.content.decode()
    with system_context():
        stored = AgentProfile.objects.get(user=bob)
    assert (stored.capacity, stored.accepting) == (6, True)
    # Bob has room for 3 more: both waiting tickets go to him (the billing one too: Ann, the billing
    # specialist, is full, and an agent without a department takes any category).
    assert counters(org_a)[bob.pk] == 5
    with system_context():
        assert not Ticket.objects.filter(organization=org_a, assigned_to__isnull=True).exists()
    bad = client.post(url, {"capacity": "-1"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 200 and "is-invalid" in bad.content.decode()
    agent_client = login(floor["ann"])
    assert agent_client.post(url, {"capacity": "50", "accepting": "on"}).status_code == 403


def test_rebalancing_moves_ticked_tickets_and_keeps_counts_right(org_a, manager, floor, login, client):
    login(manager)
    ann, bob = floor["ann"], floor["bob"]
    target = agent(org_a, first_name="Cid", last_name="Agent")
    profile(org_a, target, capacity=2)
    url = reverse("support:workload_agent", kwargs={"pk": ann.pk})
    page = client.get(url)
    assert page.status_code == 200 and page.content.decode().count('data-testid="ticket-row"') == 8
    with system_context():
        ann_tickets = list(Ticket.objects.filter(assigned_to=ann).exclude(status__in=["resolved", "closed"]))
    three = [str(t.pk) for t in ann_tickets[:3]]
    refused = client.post(url, {"tickets": three, "to_agent": str(target.pk)})
    assert refused.status_code == 200 and "already has 2 of 2 open tickets" in refused.content.decode()
    assert counters(org_a)[target.pk] == 0
    moved = client.post(url, {"tickets": three[:2], "to_agent": str(target.pk)})
    assert moved.status_code == 302
    # Ann's two freed slots went at once to the two tickets waiting in the queue (billing is her department;
    # the uncategorised one finds Bob not accepting and Cid full).
    assert counters(org_a)[ann.pk] == 8 and counters(org_a)[target.pk] == 2
    with system_context():
        assert not Ticket.objects.filter(organization=org_a, assigned_to__isnull=True).exists()
    forced = client.post(url, {"tickets": three[2:], "to_agent": str(target.pk), "force": "on"})
    assert forced.status_code == 302
    assert counters(org_a)[ann.pk] == 7 and counters(org_a)[target.pk] == 3
    assert {u: n for u, n in counters(org_a).items() if n} == true_counts(org_a)
    assert fresh(ann_tickets[2]).assigned_to_id == target.pk
    # A ticket of someone else (Bob's) cannot be moved from Ann's page.
    with system_context():
        bobs = Ticket.objects.filter(assigned_to=bob).first()
    sneaky = client.post(url, {"tickets": [str(bobs.pk)], "to_agent": str(target.pk)})
    assert sneaky.status_code == 200 and fresh(bobs).assigned_to_id == bob.pk


def test_route_waiting_now_routes_the_queue(org_a, manager, login, client):
    login(manager)
    waiting = ticket(org_a)
    assert route(org_a, waiting).queued
    agent(org_a)
    response = client.post(reverse("support:workload_route_waiting"), follow=True)
    assert "1 waiting ticket was routed." in response.content.decode()
    assert fresh(waiting).assigned_to_id is not None


def test_another_organizations_agent_is_not_found(org_a, org_b, manager, login, client):
    stranger = agent(org_b)
    login(manager)
    assert client.get(reverse("support:workload_agent", kwargs={"pk": stranger.pk})).status_code == 404
    url = reverse("support:workload_capacity", kwargs={"pk": stranger.pk})
    assert client.post(url, {"capacity": "1", "accepting": "on"}).status_code == 404
    rep = agent(org_a, role="sales_rep")  # not someone who takes tickets
    assert client.get(reverse("support:workload_agent", kwargs={"pk": rep.pk})).status_code == 404
