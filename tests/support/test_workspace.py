"""The agent workspace pages: queues (views, SLA order recomputed by hand, filters, keyset pages, counts, bulk
actions), a new ticket, the ticket page (one-step reply or note over htmx, actions, customer context,
history), canned responses, and fixed query counts. Another organization's ids answer 404."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest

from crm.tenancy import system_context
from customers.models import Customer
from support.models import CannedResponse, Ticket, TicketEvent, TicketMessage
from support.services import tickets as services
from support.views import tickets as ticket_views
from tests import factories

NOW = dt.datetime.now(dt.UTC)


def fresh(ticket) -> Ticket:
    with system_context():
        return Ticket.objects.select_related("sla_policy").get(pk=ticket.pk)


def numbers(response) -> list[str]:
    """The ticket numbers of the queue's rows, in order."""
    return re.findall(r'data-number="(T-\d{6})"', response.content.decode())


def set_clock(ticket, *, first=None, resolution=None, responded=None, paused=False, status=None):
    """Hand-made SLA fields (hours from NOW; None leaves no deadline)."""
    fields = {
        "first_response_due_at": NOW + dt.timedelta(hours=first) if first is not None else None,
        "resolution_due_at": NOW + dt.timedelta(hours=resolution) if resolution is not None else None,
        "first_response_at": NOW + dt.timedelta(hours=responded) if responded is not None else None,
        "sla_paused_since": NOW if paused else None,
    }
    if status:
        fields["status"] = status
    with system_context():
        Ticket.objects.filter(pk=ticket.pk).update(**fields)


def urgency_key(t: Ticket):
    """The SLA order computed independently: running before paused, then the nearer deadline still running
    (the first-response one only while unanswered), no deadline last, then the id."""
    candidates = [t.resolution_due_at] if t.resolution_due_at else []
    if t.first_response_at is None and t.first_response_due_at:
        candidates.append(t.first_response_due_at)
    due = min(candidates) if candidates else dt.datetime.max.replace(tzinfo=dt.UTC)
    return (t.sla_paused_since is not None, due, t.pk)


@pytest.fixture
def team(org_a):
    return {
        "manager": factories.user(org_a, role="support_manager", first_name="Maya"),
        "ann": factories.user(org_a, role="support_agent", first_name="Ann", department="billing"),
        "bob": factories.user(org_a, role="support_agent", first_name="Bob", department="technical"),
        "rep": factories.user(org_a, role="sales_rep", first_name="Rita"),
    }


# --- queues ----------------------------------------------------------------------------------------------------


def test_the_queue_is_ordered_by_sla_urgency_recomputed_by_hand(client, login, org_a, team):
    t = [factories.ticket(org_a, subject=f"S{i}") for i in range(7)]
    set_clock(t[0], first=5, resolution=20)  # due in 5 h (first response)
    set_clock(t[1], first=1, resolution=3, responded=-1)  # answered: the resolution, in 3 h, counts
    set_clock(t[2], first=-2, resolution=10)  # overdue by 2 h: first
    set_clock(t[3], first=0.5, resolution=8, paused=True, status="pending")  # paused: after running ones
    set_clock(t[4])  # no SLA: last of the running
    set_clock(t[5], first=2, resolution=2.5)
    set_clock(t[6], first=-5, resolution=1, paused=True, status="on_hold")
    login(team["manager"])
    response = client.get("/support/?view=all")
    with system_context():
        expected = [
            x.ticket_number for x in sorted(Ticket.objects.filter(organization=org_a), key=urgency_key)
        ]
    assert numbers(response) == expected
    assert expected == [t[i].ticket_number for i in (2, 5, 1, 0, 4, 6, 3)]


def test_views_scope_the_queue_and_show_capped_counts(client, login, org_a, team):
    mine = [factories.ticket(org_a, category="billing") for _ in range(2)]
    unassigned = [factories.ticket(org_a, category="technical") for _ in range(3)]
    others = factories.ticket(org_a, category="billing")
    done = factories.ticket(org_a, category="billing")
    with system_context():
        for ticket in mine:
            Ticket.objects.filter(pk=ticket.pk).update(assigned_to=team["ann"])
        Ticket.objects.filter(pk=others.pk).update(assigned_to=team["bob"])
        Ticket.objects.filter(pk__in=[unassigned[0].pk]).update(queue_reason="No agent in Technical is free.")
        services.ticket_set_status(ticket=done, actor=None, status="resolved")
    login(team["ann"])
    page = client.get("/support/")
    assert sorted(numbers(page)) == sorted(t.ticket_number for t in mine)  # an agent starts on "My tickets"
    counts = dict(
        re.findall(r'data-view="([^"]+)"[^>]*>.*?data-testid="view-count">(\d+)', page.content.decode(), re.S)
    )
    assert counts == {"mine": "2", "unassigned": "3", "category:billing": "3"}  # Ann sees her department only
    queue = client.get("/support/?view=unassigned")
    assert sorted(numbers(queue)) == sorted(t.ticket_number for t in unassigned)
    assert "No agent in Technical is free." in queue.content.decode()
    # "All unsolved" is for MANAGE_TICKETS: an agent asking for it gets their default view.
    assert sorted(numbers(client.get("/support/?view=all"))) == sorted(t.ticket_number for t in mine)
    login(team["manager"])
    everything = client.get("/support/?view=all")
    assert len(numbers(everything)) == 6  # the resolved one is not in an unsolved view


def test_queue_filters(client, login, org_a, team):
    grace = factories.customer(org_a, email="grace@navy.example", company_name="Navy")
    a = factories.ticket(org_a, customer=grace, subject="Printer jam", channel="phone", tags=["hardware"])
    b = factories.ticket(org_a, subject="Refund please", type="billing_issue", category="billing")
    c = factories.ticket(org_a, subject="Old printer", channel="chat")
    with system_context():
        Ticket.objects.filter(pk=a.pk).update(assigned_to=team["manager"])
        Ticket.objects.filter(pk=c.pk).update(created_at=NOW - dt.timedelta(days=40))
        services.ticket_set_status(ticket=fresh(c), actor=None, status="resolved")
    login(team["manager"])

    def found(query):
        return sorted(numbers(client.get(f"/support/?view=all&{query}")))

    assert found("") == sorted([a.ticket_number, b.ticket_number])
    assert found("status=any") == sorted([a.ticket_number, b.ticket_number, c.ticket_number])
    assert found("status=resolved") == [c.ticket_number]
    assert found("priority=high") == [b.ticket_number]  # the billing policy raised it
    assert found("category=billing") == [b.ticket_number]
    assert found("channel=phone") == [a.ticket_number]
    assert found("assignee=me") == [a.ticket_number]
    assert found("assignee=none") == [b.ticket_number]
    assert found(f"assignee={team['manager'].pk}") == [a.ticket_number]
    assert found(f"customer={grace.pk}") == [a.ticket_number]
    assert found("customer=GRACE@navy.example") == [a.ticket_number]
    assert found("customer=navy") == [a.ticket_number]
    assert found("tag=Hardware") == [a.ticket_number]
    assert found("q=printer&status=any") == sorted([a.ticket_number, c.ticket_number])
    assert found(f"q={b.ticket_number}") == [b.ticket_number]
    assert found(f"q=%23{b.number}") == [b.ticket_number]
    before = (NOW - dt.timedelta(days=10)).date().isoformat()
    assert found(f"status=any&created_before={before}") == [c.ticket_number]
    assert found(f"status=any&created_after={before}") == sorted([a.ticket_number, b.ticket_number])


@pytest.mark.parametrize("sort", ["urgency", "priority", "newest", "oldest"])
def test_the_queue_pages_by_keyset_without_gaps_or_repeats(client, login, org_a, team, monkeypatch, sort):
    tickets = [factories.ticket(org_a, requested_priority=("low", "high", "normal")[i % 3]) for i in range(8)]
    for i, t in enumerate(tickets):
        set_clock(t, first=i % 3, resolution=10 + i)
    set_clock(tickets[7], first=1, resolution=2, paused=True, status="pending")
    login(team["manager"])
    whole = numbers(client.get(f"/support/?view=all&sort={sort}"))
    monkeypatch.setattr(ticket_views, "PER_PAGE", 3)
    seen, url = [], f"/support/?view=all&sort={sort}"
    while url:
        response = client.get(url)
        seen += numbers(response)
        match = re.search(r'href="\?([^"]*cursor=[^"]+)"[^>]*>\s*Next', response.content.decode())
        url = "/support/?" + match.group(1).replace("&amp;", "&") if match else None
    assert seen == whole and len(set(seen)) == 8
    with system_context():
        rows = list(Ticket.objects.filter(organization=org_a))
    rank = {"low": 1, "normal": 2, "high": 3, "urgent": 4}
    expected = {
        "urgency": sorted(rows, key=urgency_key),
        "priority": sorted(rows, key=lambda t: (-rank[t.priority], *urgency_key(t))),
        "newest": sorted(rows, key=lambda t: (t.created_at, t.pk), reverse=True),
        "oldest": sorted(rows, key=lambda t: (t.created_at, t.pk)),
    }[sort]
    assert seen == [t.ticket_number for t in expected]


def test_the_queue_page_takes_a_fixed_number_of_queries(
    client, login, org_a, team, django_assert_max_num_queries
):
    login(team["manager"])
    factories.ticket(org_a)
    with django_assert_max_num_queries(14) as few:
        client.get("/support/?view=all&q=ticket")
    for i in range(15):
        customer = factories.customer(org_a, vip_status=i % 2 == 0)
        t = factories.ticket(org_a, customer=customer, tags=["x", "y"])
        with system_context():
            Ticket.objects.filter(pk=t.pk).update(assigned_to=team["ann"] if i % 2 else team["bob"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/support/?view=all&q=ticket")
    assert len(numbers(response)) == 16


def test_sales_reps_see_the_queue_but_cannot_work_it(client, login, org_a, team):
    factories.ticket(org_a)
    login(team["rep"])
    page = client.get("/support/")
    assert page.status_code == 200
    assert 'id="bulk-form"' not in page.content.decode()
    assert client.get("/support/tickets/new/").status_code == 403
    assert client.post("/support/tickets/bulk/", {"action": "status", "status": "open"}).status_code == 403


# --- bulk actions ----------------------------------------------------------------------------------------------


def test_bulk_status_and_priority_go_through_the_services(client, login, org_a, org_b, team):
    mine = [factories.ticket(org_a) for _ in range(2)]
    foreign = factories.ticket(org_b)
    login(team["ann"])
    ids = [str(t.pk) for t in mine] + [str(foreign.pk), "not-an-id"]
    client.post("/support/tickets/bulk/", {"ids": ids, "action": "status", "status": "pending"})
    client.post("/support/tickets/bulk/", {"ids": ids, "action": "priority", "priority": "urgent"})
    for t in mine:
        stored = fresh(t)
        assert (stored.status, stored.priority) == ("pending", "urgent")
        assert stored.sla_paused_since is not None
        with system_context():
            kinds = list(
                TicketEvent.objects.filter(ticket=t, actor=team["ann"]).values_list("kind", flat=True)
            )
        assert sorted(kinds) == ["priority", "status"]
    assert (fresh(foreign).status, fresh(foreign).priority) == ("new", "normal")


def test_bulk_assign_others_needs_manage_tickets_and_agents_may_take_unassigned_ones(
    client, login, org_a, team
):
    free, taken = factories.ticket(org_a), factories.ticket(org_a)
    with system_context():
        Ticket.objects.filter(pk=taken.pk).update(assigned_to=team["bob"])
    login(team["ann"])
    # An agent is offered only "me"; another person's id is refused by the form.
    response = client.post(
        "/support/tickets/bulk/", {"ids": [str(free.pk)], "action": "assign", "agent": str(team["bob"].pk)}
    )
    assert response.status_code == 302 and fresh(free).assigned_to_id is None
    response = client.post(
        "/support/tickets/bulk/",
        {"ids": [str(free.pk), str(taken.pk)], "action": "assign", "agent": "me"},
        follow=True,
    )
    assert fresh(free).assigned_to_id == team["ann"].pk
    assert fresh(taken).assigned_to_id == team["bob"].pk  # not hers to take: skipped and named
    text = response.content.decode()
    assert (
        "1 ticket updated." in text and f"{taken.ticket_number}: only unassigned tickets can be taken" in text
    )
    login(team["manager"])
    client.post(
        "/support/tickets/bulk/",
        {"ids": [str(free.pk), str(taken.pk)], "action": "assign", "agent": str(team["bob"].pk)},
    )
    assert fresh(free).assigned_to_id == team["bob"].pk == fresh(taken).assigned_to_id


# --- new ticket ------------------------------------------------------------------------------------------------


def test_a_new_ticket_for_a_known_email_reuses_the_customer(client, login, org_a, team):
    grace = factories.customer(org_a, email="grace@navy.example")
    login(team["ann"])
    data = {
        "email": "Grace@Navy.example",
        "subject": "Phone call: cannot print",
        "description": "Called at 10:00.",
        "channel": "phone",
        "type": "incident",
        "category": "technical",
        "requested_priority": "high",
        "tags": "printer, Floor-2",
    }
    response = client.post("/support/tickets/new/", data)
    with system_context():
        ticket = Ticket.objects.get(organization=org_a)
    assert response.status_code == 302 and response.url == f"/support/tickets/{ticket.pk}/"
    assert (ticket.customer_id, ticket.channel, ticket.tags, ticket.created_by_id) == (
        grace.pk,
        "phone",
        ["floor-2", "printer"],
        team["ann"].pk,
    )
    assert ticket.assigned_to_id is not None  # routed at once


def test_a_new_ticket_for_an_unknown_email_creates_the_customer(client, login, org_a, org_b, team):
    factories.customer(org_b, email="ada@engines.example")  # another organization's: not a match
    login(team["ann"])
    response = client.post(
        "/support/tickets/new/",
        {
            "email": "ada@engines.example",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "subject": "Question",
            "channel": "chat",
            "type": "question",
            "requested_priority": "normal",
        },
    )
    assert response.status_code == 302
    with system_context():
        customer = Customer.objects.get(organization=org_a)
        assert (customer.first_name, customer.email) == ("Ada", "ada@engines.example")
        assert Ticket.objects.get(organization=org_a).customer_id == customer.pk


def test_the_customer_lookup_says_whether_the_email_is_known(client, login, org_a, team):
    factories.customer(org_a, first_name="Grace", last_name="Hopper", email="grace@navy.example")
    login(team["ann"])
    assert (
        "Grace Hopper"
        in client.get("/support/tickets/new/customer/?email=grace@navy.example").content.decode()
    )
    assert "New customer" in client.get("/support/tickets/new/customer/?email=x@y.example").content.decode()


# --- the ticket page -------------------------------------------------------------------------------------------


def _thread(org, ticket, agent, n):
    with system_context():
        for i in range(n):
            services.ticket_reply(ticket=fresh(ticket), actor=None, body=f"Customer {i}", from_customer=True)
            services.ticket_reply(ticket=fresh(ticket), actor=agent, body=f"Agent {i}")
            services.ticket_note(ticket=fresh(ticket), actor=agent, body=f"Note {i}")
            services.ticket_set_status(ticket=fresh(ticket), actor=agent, status="pending")


def test_the_ticket_page_shows_replies_and_notes_distinctly_with_context(client, login, org_a, team):
    customer = factories.customer(org_a, first_name="Grace", last_name="Hopper", vip_status=True)
    ticket = factories.ticket(org_a, customer=customer, subject="Invoice twice")
    other = factories.ticket(org_a, customer=customer, subject="Older question")
    _thread(org_a, ticket, team["ann"], 1)
    with system_context():
        CannedResponse.objects.create(
            organization=org_a, title="Greeting", body="Hi {{customer.first_name}}, {{ticket.number}}"
        )
    login(team["ann"])
    page = client.get(f"/support/tickets/{ticket.pk}/").content.decode()
    assert page.count('data-kind="note"') == 1 and "Internal note" in page and "bi-lock-fill" in page
    assert page.count('data-kind="reply"') == 2
    assert 'data-testid="vip"' in page and "Older question" in page and other.ticket_number in page
    assert f'data-text="Hi Grace, {ticket.ticket_number}"' in page  # canned text rendered for this ticket
    assert "Status: Open → Pending" in page  # the history, in words
    assert 'data-testid="suggested-articles"' in page


def test_the_ticket_page_suggests_published_articles_with_a_public_link(client, login, org_a, team):
    ticket = factories.ticket(org_a, subject="Printer jams on every page", description="The printer jams.")
    published = factories.article(
        org_a, title="Fixing printer jams", body="Open the tray; the printer jams less."
    )
    factories.article(org_a, title="Printer jams (draft)", body="printer jams", status="draft")
    login(team["ann"])
    page = client.get(f"/support/tickets/{ticket.pk}/").content.decode()
    assert page.count('data-testid="suggested-article"') == 1
    assert f'href="/support/kb/{published.pk}/"' in page
    assert f"Fixing printer jams: http://testserver/kb/{org_a.slug}/{published.slug}/" in page


def test_the_ticket_page_takes_a_fixed_number_of_queries(
    client, login, org_a, team, django_assert_max_num_queries
):
    ticket = factories.ticket(org_a)
    _thread(org_a, ticket, team["ann"], 1)
    login(team["manager"])
    with django_assert_max_num_queries(30) as few:
        client.get(f"/support/tickets/{ticket.pk}/")
    _thread(org_a, ticket, team["ann"], 6)
    for _ in range(4):
        factories.ticket(org_a, customer=ticket.customer)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(f"/support/tickets/{ticket.pk}/")
    assert page.content.decode().count('data-testid="message"') == 1 + 6 * 3 + 3


def test_reply_and_set_pending_in_one_htmx_step(client, login, org_a, team):
    ticket = factories.ticket(org_a)
    login(team["ann"])
    response = client.post(
        f"/support/tickets/{ticket.pk}/reply/",
        {"kind": "reply", "body": "Could you send a screenshot?", "set_status": "pending"},
        HTTP_HX_REQUEST="true",
    )
    text = response.content.decode()
    assert response.status_code == 200 and 'data-testid="sent"' in text
    assert text.count('hx-swap-oob="true"') == 3  # header, properties and history refreshed out of band
    assert 'id="ticket-header"' in text and 'id="ticket-history"' in text
    stored = fresh(ticket)
    assert stored.status == "pending" and stored.sla_paused_since is not None
    assert stored.first_response_at is not None


def test_a_note_from_the_composer_is_internal_and_stops_no_clock(client, login, org_a, team):
    ticket = factories.ticket(org_a)
    login(team["ann"])
    client.post(
        f"/support/tickets/{ticket.pk}/reply/",
        {"kind": "note", "body": "Asked billing."},
        HTTP_HX_REQUEST="true",
    )
    with system_context():
        message = TicketMessage.objects.get(ticket=ticket)
    assert message.kind == "note" and fresh(ticket).first_response_at is None
    assert fresh(ticket).status == "new"


def test_an_empty_reply_shows_the_error_in_the_composer(client, login, org_a, team):
    ticket = factories.ticket(org_a)
    login(team["ann"])
    response = client.post(
        f"/support/tickets/{ticket.pk}/reply/", {"kind": "reply", "body": "  "}, HTTP_HX_REQUEST="true"
    )
    assert "Write a message." in response.content.decode()
    with system_context():
        assert not TicketMessage.objects.filter(ticket=ticket).exists()


def test_status_priority_take_and_unassign_from_the_ticket_page(client, login, org_a, team):
    ticket = factories.ticket(org_a)
    login(team["ann"])
    url = f"/support/tickets/{ticket.pk}/"
    client.post(url + "assign/", {"agent": "me"})
    assert fresh(ticket).assigned_to_id == team["ann"].pk
    client.post(url + "status/", {"status": "in_progress"})
    client.post(url + "priority/", {"priority": "high"})
    stored = fresh(ticket)
    assert (stored.status, stored.priority) == ("in_progress", "high")
    client.post(url + "unassign/")
    assert fresh(ticket).assigned_to_id is None
    # Assigning to someone else is for MANAGE_TICKETS: the agent's form offers only "me".
    client.post(url + "assign/", {"agent": str(team["bob"].pk)})
    assert fresh(ticket).assigned_to_id is None
    login(team["manager"])
    client.post(url + "assign/", {"agent": str(team["bob"].pk)})
    assert fresh(ticket).assigned_to_id == team["bob"].pk


def test_editing_the_type_moves_the_ticket_to_the_matching_policy(client, login, org_a, team):
    ticket = factories.ticket(org_a)
    login(team["ann"])
    client.post(
        f"/support/tickets/{ticket.pk}/edit/",
        {"subject": "Charged twice", "type": "billing_issue", "category": "billing", "tags": "refund"},
    )
    stored = fresh(ticket)
    assert (stored.subject, stored.sla_policy.name, stored.priority, stored.tags) == (
        "Charged twice",
        "Billing and account issues",
        "high",
        ["refund"],
    )


@pytest.mark.parametrize(
    "name",
    [
        "ticket_detail",
        "ticket_reply",
        "ticket_status",
        "ticket_priority",
        "ticket_assign",
        "ticket_unassign",
        "ticket_edit",
    ],
)
def test_another_organizations_ticket_answers_404(client, login, org_a, org_b, admin_a, name):
    from django.urls import reverse

    foreign = factories.ticket(org_b)
    login(admin_a)
    url = reverse(f"support:{name}", args=[foreign.pk])
    response = (
        client.get(url) if name in ("ticket_detail", "ticket_edit") else client.post(url, {"status": "open"})
    )
    assert response.status_code == 404
    assert client.get(f"/support/tickets/{uuid.uuid4()}/").status_code == 404


# --- canned responses ------------------------------------------------------------------------------------------


def test_agents_read_canned_responses_managers_edit_them(client, login, org_a, team):
    login(team["ann"])
    assert client.get("/support/canned/").status_code == 200
    assert client.post("/support/canned/new/", {"title": "Hi", "body": "Hello"}).status_code == 403
    login(team["manager"])
    assert (
        client.post(
            "/support/canned/new/", {"title": "Hi", "body": "Hello {{customer.first_name}}"}
        ).status_code
        == 302
    )
    with system_context():
        canned = CannedResponse.objects.get(organization=org_a)
    client.post(f"/support/canned/{canned.pk}/", {"title": "Hello", "body": "Hey"})
    with system_context():
        canned.refresh_from_db()
    assert (canned.title, canned.body) == ("Hello", "Hey")
    duplicate = client.post("/support/canned/new/", {"title": "hello", "body": "x"})
    assert "Another canned response already has this title." in duplicate.content.decode()
    client.post(f"/support/canned/{canned.pk}/delete/")
    with system_context():
        assert not CannedResponse.objects.filter(organization=org_a).exists()


def test_another_organizations_canned_response_answers_404(client, login, org_b, admin_a):
    with system_context():
        canned = CannedResponse.objects.create(organization=org_b, title="Theirs", body="x")
    login(admin_a)
    assert client.get(f"/support/canned/{canned.pk}/").status_code == 404
    assert client.post(f"/support/canned/{canned.pk}/delete/").status_code == 404


def test_the_customer_360_page_and_json_carry_the_open_tickets_panel(client, login, org_a, team):
    customer = factories.customer(org_a)
    tickets = [factories.ticket(org_a, customer=customer, subject=f"Q{i}") for i in range(2)]
    with system_context():
        services.ticket_set_status(ticket=tickets[1], actor=None, status="closed")
    login(team["rep"])
    page = client.get(f"/customers/{customer.pk}/").content.decode()
    panel = page[page.index('data-testid="open-tickets-panel"') :].split("</section>")[0]
    assert "Q0" in panel and "Q1" not in panel and "1 unsolved ticket" in panel
    data = client.get(f"/customers/{customer.pk}/360.json").json()["open_tickets"]
    assert data["count"] == 1
    assert [(t["number"], t["status"], t["sla_state"]) for t in data["tickets"]] == [
        (tickets[0].ticket_number, "new", "ok")
    ]
