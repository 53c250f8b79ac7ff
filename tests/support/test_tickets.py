"""Ticket services as the workspace uses them (numbers, replies and first response, notes, reopening, status
events, reclassification), canned responses and their merge fields, the customer 360 panel, the merge
reassigners and global search. Every number is recomputed by hand on small data sets."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from crm.tenancy import system_context
from support import sla
from support.models import CannedResponse, Survey, Ticket, TicketEvent, TicketMessage
from support.selectors import tickets as selectors
from support.services import canned as canned_services
from support.services import tickets as services
from support.services.merging import surveys_reassign, tickets_reassign
from tests import factories


def fresh(ticket) -> Ticket:
    with system_context():
        return Ticket.objects.select_related("sla_policy__calendar").get(pk=ticket.pk)


def events(ticket, kind=None) -> list[TicketEvent]:
    with system_context():
        rows = TicketEvent.objects.filter(ticket_id=ticket.pk).order_by("at", "id")
        return list(rows.filter(kind=kind) if kind else rows)


# --- numbers -------------------------------------------------------------------------------------------------


def test_ticket_numbers_count_up_per_organization(org_a, org_b):
    a = [factories.ticket(org_a) for _ in range(3)]
    b = factories.ticket(org_b)
    assert [t.number for t in a] == [1, 2, 3]
    assert [t.ticket_number for t in a] == ["T-000001", "T-000002", "T-000003"]
    assert b.number == 1


def test_a_new_ticket_has_its_created_event_a_policy_and_deadlines(org_a):
    ticket = factories.ticket(org_a)
    assert [e.kind for e in events(ticket)][:1] == ["created"]
    assert ticket.sla_policy is not None
    assert ticket.first_response_due_at and ticket.resolution_due_at


# --- replies, notes, status ----------------------------------------------------------------------------------


def test_the_first_agent_reply_stops_the_first_response_clock_once_and_opens_the_ticket(org_a, admin_a):
    ticket = factories.ticket(org_a)
    with system_context():
        first = services.ticket_reply(ticket=ticket, actor=admin_a, body="Looking into it.")
        services.ticket_reply(ticket=fresh(ticket), actor=admin_a, body="Fixed.")
    stored = fresh(ticket)
    assert stored.first_response_at == first.created_at
    assert stored.status == "open"
    assert len(events(ticket, "first_response")) == 1
    assert events(ticket, "status")[0].new_value == "open"


def test_a_customer_reply_is_no_first_response(org_a):
    ticket = factories.ticket(org_a)
    with system_context():
        services.ticket_reply(ticket=ticket, actor=None, body="Any news?", from_customer=True)
    stored = fresh(ticket)
    assert stored.first_response_at is None
    assert stored.status == "new"
    assert not events(ticket, "first_response")


def test_a_note_is_never_sent_and_never_stops_a_clock(org_a, admin_a, django_capture_on_commit_callbacks):
    ticket = factories.ticket(org_a)
    with system_context(), django_capture_on_commit_callbacks(execute=True) as callbacks:
        note = services.ticket_note(ticket=ticket, actor=admin_a, body="Customer is on the old plan.")
    assert note.kind == TicketMessage.Kind.NOTE and not note.from_customer
    assert callbacks == []  # nothing scheduled: no email, no webhook
    assert mail.outbox == []
    stored = fresh(ticket)
    assert stored.first_response_at is None and stored.status == "new"
    assert not events(ticket, "first_response")


def test_a_customer_reply_reopens_a_pending_or_resolved_ticket(org_a, admin_a):
    pending = factories.ticket(org_a)
    resolved = factories.ticket(org_a)
    with system_context():
        services.ticket_reply(ticket=pending, actor=admin_a, body="Can you try again?", set_status="pending")
        assert fresh(pending).status == "pending" and fresh(pending).sla_paused_since is not None
        services.ticket_reply(ticket=fresh(pending), actor=None, body="Still broken.", from_customer=True)
        services.ticket_set_status(ticket=resolved, actor=admin_a, status="resolved")
        services.ticket_reply(ticket=fresh(resolved), actor=None, body="It is back.", from_customer=True)
    assert fresh(pending).status == "open" and fresh(pending).sla_paused_since is None
    again = fresh(resolved)
    assert (again.status, again.reopened_count, again.resolved_at) == ("open", 1, None)


def test_status_changes_leave_events_with_old_and_new_value_and_actor(org_a, admin_a):
    ticket = factories.ticket(org_a)
    with system_context():
        services.ticket_set_status(ticket=ticket, actor=admin_a, status="in_progress")
        services.ticket_set_status(
            ticket=fresh(ticket), actor=admin_a, status="on_hold", note="Waiting on vendor"
        )
        services.ticket_set_status(
            ticket=fresh(ticket), actor=admin_a, status="on_hold"
        )  # no change, no event
        services.ticket_set_status(ticket=fresh(ticket), actor=admin_a, status="resolved")
    rows = [(e.old_value, e.new_value, e.actor_id, e.note) for e in events(ticket, "status")]
    assert rows == [
        ("new", "in_progress", admin_a.pk, ""),
        ("in_progress", "on_hold", admin_a.pk, "Waiting on vendor"),
        ("on_hold", "resolved", admin_a.pk, ""),
    ]
    assert fresh(ticket).resolved_at is not None


def test_a_sales_rep_may_not_work_tickets(org_a):
    rep = factories.user(org_a, role="sales_rep")
    ticket = factories.ticket(org_a)
    with system_context(), pytest.raises(PermissionDenied):
        services.ticket_reply(ticket=ticket, actor=rep, body="Hi")


def test_reclassifying_a_ticket_reapplies_the_sla_policy(org_a, admin_a):
    ticket = factories.ticket(org_a, type="question")
    assert fresh(ticket).sla_policy.name == "Standard"
    with system_context():
        services.ticket_update(ticket=ticket, actor=admin_a, type="billing_issue", category="billing")
    stored = fresh(ticket)
    assert stored.sla_policy.name == "Billing and account issues"
    assert stored.priority == "high"  # the policy's set_priority
    policy_events = events(ticket, "policy")
    assert [(e.old_value, e.new_value) for e in policy_events][-1] == (
        "Standard",
        "Billing and account issues",
    )
    # Four business hours from creation on the organization's Mon-Fri 09-17 UTC calendar.
    with system_context():
        expected = sla.compute_deadlines(
            ticket=stored,
            policy=stored.sla_policy,
            events=events(ticket),
            calendar=stored.sla_policy.calendar,
            holidays=[],
            now=stored.updated_at,
        )
    assert stored.resolution_due_at == expected.resolution_due_at


def test_editing_only_the_subject_keeps_the_policy(org_a, admin_a):
    ticket = factories.ticket(org_a)
    before = len(events(ticket))
    with system_context():
        services.ticket_update(ticket=ticket, actor=admin_a, subject="New words", tags=["A", "b "])
    stored = fresh(ticket)
    assert (stored.subject, stored.tags) == ("New words", ["a", "b"])
    assert len(events(ticket)) == before


# --- SLA facts and countdowns ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0.5, "< 1 m"), (12, "12 m"), (80, "1 h 20 m"), (60 * 24 * 2 + 180 + 7, "2 d 3 h")],
)
def test_duration_text(minutes, text):
    assert selectors.duration_text(dt.timedelta(minutes=minutes)) == text


def test_countdown_text_before_and_after_the_deadline():
    now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    assert selectors.countdown_text(now + dt.timedelta(minutes=80), now) == "in 1 h 20 m"
    assert selectors.countdown_text(now - dt.timedelta(minutes=12), now) == "overdue 12 m"


def test_sla_facts_count_down_to_the_nearer_running_deadline(org_a):
    now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    ticket = Ticket(
        organization=org_a,
        number=1,
        status="open",
        first_response_due_at=now + dt.timedelta(minutes=30),
        resolution_due_at=now + dt.timedelta(hours=5),
        first_response_warn_at=now - dt.timedelta(minutes=1),
        resolution_warn_at=now + dt.timedelta(hours=2),
    )
    facts = selectors.sla_facts(ticket, now)
    assert (facts.state, facts.target, facts.countdown, facts.overdue) == (
        "at_risk",
        "First response",
        "in 30 m",
        False,
    )
    ticket.first_response_at = now - dt.timedelta(minutes=5)  # answered: only the resolution runs
    facts = selectors.sla_facts(ticket, now)
    assert (facts.state, facts.target, facts.countdown) == ("ok", "Resolution", "in 5 h 0 m")
    ticket.sla_paused_since, ticket.status = now, "pending"
    facts = selectors.sla_facts(ticket, now)
    assert (facts.state, facts.due, facts.countdown) == ("paused", None, "")


# --- canned responses --------------------------------------------------------------------------------------------


def test_merge_fields_are_replaced_from_a_whitelist_and_nothing_else(org_a):
    agent = factories.user(org_a, role="support_agent", first_name="Ann", last_name="Lee")
    customer = factories.customer(org_a, first_name="Grace", last_name="Hopper", company_name="Navy")
    ticket = factories.ticket(org_a, customer=customer, subject="Refund")
    body = (
        "Hi {{customer.first_name}} ({{ customer.name }}, {{customer.company}}), about {{ticket.number}} "
        "«{{ticket.subject}}». {{agent.first_name}} / {{agent.name}}. "
        "{{ settings.SECRET_KEY }} {{customer.email}} {% debug %} {{customer.first_name|upper}}"
    )
    with system_context():
        ticket = Ticket.objects.select_related("customer").get(pk=ticket.pk)
    text = canned_services.canned_render(body, ticket=ticket, agent=agent)
    assert text == (
        "Hi Grace (Grace Hopper, Navy), about T-000001 «Refund». Ann / Ann Lee. "
        "{{ settings.SECRET_KEY }} {{customer.email}} {% debug %} {{customer.first_name|upper}}"
    )


def test_canned_responses_are_edited_by_managers_only_and_titles_are_unique(org_a):
    manager = factories.user(org_a, role="support_manager")
    agent = factories.user(org_a, role="support_agent")
    with system_context():
        with pytest.raises(PermissionDenied):
            canned_services.canned_create(organization=org_a, actor=agent, title="Hi", body="Hello")
        canned = canned_services.canned_create(
            organization=org_a, actor=manager, title=" Refund ", body="On its way"
        )
        assert canned.title == "Refund"
        with pytest.raises(ValidationError) as error:
            canned_services.canned_create(organization=org_a, actor=manager, title="refund", body="Dup")
        assert "title" in error.value.message_dict
        canned_services.canned_update(canned=canned, actor=manager, title="Refunds", body="Soon")
        assert CannedResponse.objects.get(pk=canned.pk).title == "Refunds"
        canned_services.canned_delete(canned=canned, actor=manager)
        assert not CannedResponse.objects.filter(pk=canned.pk).exists()


# --- customer 360, merge, search ---------------------------------------------------------------------------------


def test_the_open_tickets_panel_lists_unsolved_tickets_most_urgent_first_in_two_queries(
    org_a, admin_a, as_tenant, django_assert_num_queries
):
    customer = factories.customer(org_a)
    other = factories.customer(org_a)
    tickets = [factories.ticket(org_a, customer=customer, subject=f"T{i}") for i in range(7)]
    factories.ticket(org_a, customer=other)
    now = dt.datetime.now(dt.UTC)
    with system_context():
        services.ticket_set_status(ticket=tickets[0], actor=None, status="resolved")
        # Hand-made deadlines: T3 is due first, T5 next, the others later in creation order.
        for i, t in enumerate(tickets[1:], start=1):
            due = now + dt.timedelta(hours={3: 1, 5: 2}.get(i, 10 + i))
            Ticket.objects.filter(pk=t.pk).update(
                first_response_due_at=due, resolution_due_at=due + dt.timedelta(hours=1)
            )
    with as_tenant(org_a), django_assert_num_queries(2):
        data = selectors.open_tickets_for_customer(customer=customer, actor=admin_a)
    assert data["count"] == 6  # seven, one resolved
    assert [t["subject"] for t in data["tickets"]] == ["T3", "T5", "T1", "T2", "T4"]
    first = data["tickets"][0]
    assert set(first) >= {"number", "subject", "status", "priority", "created", "sla_state"}
    assert first["number"] == tickets[3].ticket_number and first["sla_state"] == "ok"


def test_the_merge_moves_tickets_and_surveys_to_the_surviving_customer(org_a, org_b):
    source = factories.customer(org_a)
    target = factories.customer(org_a)
    kept = factories.ticket(org_b)
    moved = [factories.ticket(org_a, customer=source) for _ in range(2)]
    with system_context():
        Survey.objects.create(
            organization=org_a,
            kind="nps",
            customer=source,
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=7),
        )
        assert selectors.tickets_count(organization_id=org_a.pk, customer_id=source.pk) == 2
        assert selectors.surveys_count(organization_id=org_a.pk, customer_id=source.pk) == 1
        args = {"organization_id": org_a.pk, "source_id": source.pk, "target_id": target.pk}
        assert tickets_reassign(**args) == 2
        assert surveys_reassign(**args) == 1
        assert {t.customer_id for t in Ticket.objects.filter(pk__in=[t.pk for t in moved])} == {target.pk}
        assert Survey.objects.get(organization=org_a).customer_id == target.pk
        assert Ticket.objects.get(pk=kept.pk).customer_id == kept.customer_id


def test_the_customer_merge_runs_the_support_reassigners(org_a, admin_a):
    from customers.services.merging import customers_merge

    source = factories.customer(org_a, email="old@example.com")
    target = factories.customer(org_a, email="new@example.com")
    ticket = factories.ticket(org_a, customer=source)
    with system_context():
        customers_merge(actor=admin_a, source=source, target=target)
    assert fresh(ticket).customer_id == target.pk


@pytest.mark.parametrize("query", ["T-000002", "t000002", "#2", "2"])
def test_search_finds_a_ticket_by_its_number_first(org_a, admin_a, as_tenant, query):
    factories.ticket(org_a, subject="Printer jam")
    factories.ticket(org_a, subject="Login loop")
    factories.ticket(org_a, subject="2 invoices")
    with as_tenant(org_a):
        results = selectors.search_tickets(user=admin_a, query=query, limit=5)
    assert results[0].title == "T-000002 Login loop"


def test_search_by_subject_stays_in_the_organization(org_a, org_b, admin_a, as_tenant):
    factories.ticket(org_a, subject="Printer jam on floor 2")
    factories.ticket(org_b, subject="Printer on fire")
    with as_tenant(org_a):
        results = selectors.search_tickets(user=admin_a, query="printer", limit=5)
    assert [r.title for r in results] == ["T-000001 Printer jam on floor 2"]
