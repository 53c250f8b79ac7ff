"""The customer 360 page and its JSON: what they show, in a fixed number of queries, and logging from it."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.permissions import Capability
from crm.tenancy import tenant_context
from customers import panels
from customers.models import Interaction
from tests import factories


@pytest.fixture
def rep_a(org_a):
    return factories.user(org_a, role="sales_rep", first_name="Rita")


def _history(customer, n: int) -> None:
    now = timezone.now()
    for i in range(n):
        factories.interaction(
            customer,
            interaction_type=["call", "email_opened", "website_visit"][i % 3],
            interaction_date=now - datetime.timedelta(days=i),
            outcome=f"Touch {i}",
        )


def test_360_page_query_count_does_not_grow_with_history(client, login, org_a, rep_a):
    quiet, busy = factories.customer(org_a, first_name="Quiet"), factories.customer(org_a, first_name="Busy")
    _history(quiet, 1)
    _history(busy, 60)
    login(rep_a)
    client.get(f"/customers/{quiet.pk}/")
    with CaptureQueriesContext(connection) as few:
        assert client.get(f"/customers/{quiet.pk}/").status_code == 200
    with CaptureQueriesContext(connection) as many:
        response = client.get(f"/customers/{busy.pk}/")
    assert len(many) == len(few)
    assert len(response.context["timeline"].items) == 20 and response.context["timeline"].has_next


def test_360_page_shows_profile_lifecycle_timeline_and_segments(client, login, org_a, rep_a):
    customer = factories.customer(
        org_a, first_name="Dana", last_name="Scully", company_name="FBI", lifecycle_stage="lead"
    )
    factories.interaction(customer, interaction_type="meeting", outcome="Met at the office")
    with tenant_context(org_a.pk, user=rep_a):
        from customers.models import Segment, SegmentMember
        from customers.services.customers import customer_update

        customer_update(customer=customer, actor=rep_a, lifecycle_stage="customer", reason="Signed the deal")
        segment = Segment.objects.create(organization=org_a, name="Government", kind="static")
        SegmentMember.objects.create(organization=org_a, segment=segment, customer=customer)
    login(rep_a)
    html = client.get(f"/customers/{customer.pk}/").content.decode()
    assert "Dana Scully" in html and "FBI" in html
    assert "Met at the office" in html
    assert "Signed the deal" in html and "Government" in html


def test_timeline_filters_by_type_and_pages(client, login, org_a, rep_a):
    customer = factories.customer(org_a)
    _history(customer, 45)  # 15 calls, 15 opens, 15 visits
    login(rep_a)
    calls = client.get(f"/customers/{customer.pk}/timeline/", {"kind": "call"}).context["timeline"]
    assert (
        {i.interaction_type for i in calls.items} == {"call"}
        and len(calls.items) == 15
        and not calls.has_next
    )
    seen, params = [], {}
    while True:
        page = client.get(f"/customers/{customer.pk}/timeline/", params).context["timeline"]
        seen += [i.pk for i in page.items]
        if not page.has_next:
            break
        params = {"cursor": page.next_cursor}
    with tenant_context(org_a.pk):
        expected = list(
            Interaction.objects.filter(customer_id=customer.pk)
            .order_by("-interaction_date", "-id")
            .values_list("pk", flat=True)
        )
    assert seen == expected


def test_logging_a_call_with_htmx_returns_the_new_timeline_and_score(client, login, org_a, rep_a):
    customer = factories.customer(org_a)
    login(rep_a)
    response = client.post(
        f"/customers/{customer.pk}/interactions/",
        {"interaction_type": "call", "outcome": "Booked a demo", "sentiment": "positive"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Booked a demo" in html
    assert 'id="score-panel" hx-swap-oob="true"' in html and 'id="last-contact"' in html
    assert 'data-testid="lead-score-total"' in html and 'id="log-interaction"' in html
    with tenant_context(org_a.pk):
        logged = Interaction.objects.get(customer_id=customer.pk)
    assert (logged.interaction_type, logged.logged_by_id, logged.sentiment) == ("call", rep_a.pk, "positive")


def test_a_note_without_text_is_refused_with_a_field_error(client, login, org_a, rep_a):
    customer = factories.customer(org_a)
    login(rep_a)
    response = client.post(
        f"/customers/{customer.pk}/interactions/", {"interaction_type": "note"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response.context["interaction_form"].errors["notes"]
    with tenant_context(org_a.pk):
        assert not Interaction.objects.filter(customer_id=customer.pk).exists()


def test_360_json_has_the_design_documents_shape_plus_the_lead_score(client, login, org_a, rep_a):
    customer = factories.customer(
        org_a, first_name="Ann", last_name="Lee", company_name="Initech", tags=["vip"], assigned_to=rep_a
    )
    old = timezone.now() - datetime.timedelta(days=120)
    factories.interaction(customer, interaction_type="call", interaction_date=old)
    for days in range(12):
        factories.interaction(
            customer,
            interaction_type="website_visit",
            interaction_date=timezone.now() - datetime.timedelta(days=days),
        )
    login(rep_a)
    data = client.get(f"/customers/{customer.pk}/360.json").json()
    assert set(data) >= {
        "customer_profile",
        "recent_interactions",
        "active_opportunities",
        "open_tickets",
        "lifetime_value_metrics",
        "engagement_score",
        "health_score",
        "lead_score",
    }
    profile = data["customer_profile"]
    assert (profile["name"], profile["company"], profile["tags"], profile["assigned_to"]) == (
        "Ann Lee",
        "Initech",
        ["vip"],
        str(rep_a),
    )
    # Last 90 days only, newest first, at most 10 (the 120-day-old call is out).
    assert len(data["recent_interactions"]) == 10
    assert {i["type"] for i in data["recent_interactions"]} == {"website_visit"}
    dates = [i["date"] for i in data["recent_interactions"]]
    assert dates == sorted(dates, reverse=True)
    assert set(data["lead_score"]) == {"total", "breakdown", "factors", "recommended_actions", "trend"}
    assert data["lead_score"]["factors"]["interaction_count"] == 13


def test_registered_panels_appear_on_the_page_and_in_the_json(client, login, org_a, rep_a):
    customer = factories.customer(org_a)
    panel = panels.Panel(
        key="open_tickets",
        title="Open tickets",
        template="customers/detail/_panel_list.html",
        capability=Capability.VIEW_CUSTOMERS,
        load=lambda customer, actor: [{"subject": "Printer"}],
    )
    registered = panels._PANELS.get("open_tickets")  # the support app's own, put back afterwards
    panels.register(panel)
    try:
        login(rep_a)
        assert client.get(f"/customers/{customer.pk}/360.json").json()["open_tickets"] == [
            {"subject": "Printer"}
        ]
        assert "Open tickets" in client.get(f"/customers/{customer.pk}/").content.decode()
    finally:
        panels._PANELS.pop("open_tickets")
        if registered is not None:
            panels.register(registered)
