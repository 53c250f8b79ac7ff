"""The opportunity list (filters, keyset pages, export), the deal form, the opportunity page (actions, history),
visibility (own only / all, other organizations), the customer 360 panel, merge and global search."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.tenancy import tenant_context
from customers import merging
from sales.models import Opportunity, OpportunityChange, SalesSettings
from sales.selectors import opportunities as selectors
from sales.services.opportunities import opportunity_update, organization_today
from tests import factories


@pytest.fixture
def manager_a(org_a):
    return factories.user(org_a, role="sales_manager", first_name="Mona")


@pytest.fixture
def rep_a(org_a):
    return factories.user(org_a, role="sales_rep", first_name="Rita")


def _own_only(org):
    with tenant_context(org.pk):
        SalesSettings.objects.update_or_create(organization=org, defaults={"opportunity_visibility": "own"})


def _ids(response) -> set:
    return {row.pk for row in response.context["page"].items}


# --- List -----------------------------------------------------------------------------------------------------


def test_list_filters(client, login, org_a, manager_a, rep_a):
    today = organization_today(org_a)
    acme = factories.customer(org_a, company_name="Acme Rockets", first_name="Wile", last_name="Coyote")
    a = factories.opportunity(
        org_a, name="Rocket skates", customer=acme, stage="Proposal", amount=Decimal("500"), assigned_to=rep_a
    )
    b = factories.opportunity(
        org_a,
        name="Anvil",
        stage="Negotiation",
        amount=Decimal("5000"),
        assigned_to=manager_a,
        expected_close_date=today + datetime.timedelta(days=90),
    )
    c = factories.opportunity(
        org_a, name="Bird seed", stage="Closed won", amount=Decimal("50"), assigned_to=None
    )
    login(manager_a)
    url = reverse("sales:opportunity_list")
    assert _ids(client.get(url)) == {a.pk, b.pk, c.pk}
    assert _ids(client.get(url, {"q": "rocket"})) == {a.pk}  # name and company
    assert _ids(client.get(url, {"q": "coyote"})) == {a.pk}  # the customer's name
    assert _ids(client.get(url, {"stage": str(b.stage_id)})) == {b.pk}
    assert _ids(client.get(url, {"status": "won"})) == {c.pk}
    assert _ids(client.get(url, {"owner": "mine"})) == {b.pk}
    assert _ids(client.get(url, {"owner": "none"})) == {c.pk}
    assert _ids(client.get(url, {"owner": str(rep_a.pk)})) == {a.pk}
    assert _ids(client.get(url, {"amount_min": "100", "amount_max": "1000"})) == {a.pk}
    assert _ids(client.get(url, {"forecast_category": "commit"})) == {b.pk}
    far = (today + datetime.timedelta(days=60)).isoformat()
    assert _ids(client.get(url, {"close_after": far})) == {b.pk}
    assert _ids(client.get(url, {"close_before": far})) == {a.pk, c.pk}
    assert _ids(client.get(url, {"customer": str(acme.pk)})) == {a.pk}
    response = client.get(url, {"status": "open"})
    assert "2 deals match" in response.content.decode()


def test_list_sorts_and_pages_with_a_keyset(client, login, org_a, manager_a, monkeypatch):
    from sales.views import opportunities as views

    monkeypatch.setattr(views, "PER_PAGE", 4)
    customer = factories.customer(org_a)
    deals = [factories.opportunity(org_a, customer=customer, amount=Decimal(10 * i)) for i in range(1, 11)]
    login(manager_a)
    seen, params = [], {"sort": "-amount"}
    while True:
        response = client.get(reverse("sales:opportunity_list"), params)
        page = response.context["page"]
        seen += [row.amount for row in page.items]
        if not page.has_next:
            break
        params = {"sort": "-amount", "cursor": page.next_cursor}
    assert seen == sorted((d.amount for d in deals), reverse=True)


def test_list_query_count_does_not_grow_with_rows(client, login, org_a, manager_a):
    factories.opportunity(org_a)
    login(manager_a)
    client.get(reverse("sales:opportunity_list"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("sales:opportunity_list"))
    for _ in range(12):
        factories.opportunity(org_a, assigned_to=factories.user(org_a))
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("sales:opportunity_list"))
    assert len(response.context["page"].items) == 13
    assert len(many) == len(few)


# --- Export -----------------------------------------------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_export_is_the_filtered_list_and_formula_safe(client, login, org_a, manager_a):
    evil = factories.customer(org_a, company_name='=HYPERLINK("http://evil")', first_name="", last_name="")
    factories.opportunity(
        org_a,
        name="=cmd|' /C calc'!A0",
        customer=evil,
        stage="Proposal",
        amount=Decimal("1234.50"),
        next_step="+1 call",
        assigned_to=manager_a,
    )
    factories.opportunity(org_a, name="Won one", stage="Closed won", amount=Decimal("10"))
    login(manager_a)
    response = client.get(reverse("sales:opportunity_export"), {"status": "open"})
    assert response["Content-Type"].startswith("text/csv")
    rows = _csv(response)
    header, data = rows[0], rows[1:]
    assert len(data) == 1
    row = dict(zip(header, data[0], strict=True))
    assert row["Opportunity"] == "'=cmd|' /C calc'!A0"
    assert row["Customer"] == '\'=HYPERLINK("http://evil")'
    assert row["Next step"] == "'+1 call"
    assert (row["Stage"], row["Amount"], row["Probability (%)"], row["Weighted amount"]) == (
        "Proposal",
        "1234.50",
        "50",
        "617.25",
    )
    assert row["Owner"] == str(manager_a) and row["Status"] == "Open"


def test_export_needs_the_export_capability(client, login, org_a, rep_a):
    login(rep_a)
    assert client.get(reverse("sales:opportunity_export")).status_code == 403


# --- Form ------------------------------------------------------------------------------------------------------


def _form_data(customer, stage, **extra):
    data = {
        "name": "Big deal",
        "customer": str(customer.pk),
        "stage": str(stage.pk),
        "amount": "2500.00",
        "currency": "USD",
        "expected_close_date": "2031-03-31",
        "assigned_to": "",
        "probability": "",
        "forecast_category": "",
        "lost_reason": "",
        "next_step": "Send the proposal",
        "notes": "",
    }
    return {**data, **extra}


def test_create_from_the_customer_page_prefills_the_customer(client, login, org_a, rep_a, as_tenant):
    customer = factories.customer(org_a, first_name="Dana", last_name="Scully")
    login(rep_a)
    page = client.get(reverse("sales:opportunity_create"), {"customer": str(customer.pk)})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Dana Scully" in html and f'value="{customer.pk}"' in html
    proposal = factories.stage(org_a, "Proposal")
    response = client.post(
        reverse("sales:opportunity_create"),
        _form_data(customer, proposal, assigned_to=str(rep_a.pk), probability="60"),
    )
    with as_tenant(org_a):
        deal = Opportunity.objects.get(name="Big deal")
    assert response.status_code == 302 and response.url == reverse("sales:opportunity_detail", args=[deal.pk])
    assert (deal.customer_id, deal.stage_id, deal.amount, deal.assigned_to_id, deal.created_by_id) == (
        customer.pk,
        proposal.pk,
        Decimal("2500.00"),
        rep_a.pk,
        rep_a.pk,
    )
    assert (deal.probability, deal.probability_overridden, deal.forecast_category) == (60, True, "best_case")


def test_the_form_reports_field_errors(client, login, org_a, org_b, rep_a, as_tenant):
    customer = factories.customer(org_a)
    lost = factories.stage(org_a, "Closed lost")
    inactive = factories.user(org_a, is_active=False)
    other_org_customer = factories.customer(org_b)
    login(rep_a)
    url = reverse("sales:opportunity_create")
    response = client.post(
        url, _form_data(customer, lost, name="", amount="-5", assigned_to=str(inactive.pk))
    )
    errors = response.context["form"].errors
    assert set(errors) == {"name", "amount", "assigned_to", "lost_reason"}
    response = client.post(url, _form_data(other_org_customer, factories.stage(org_a, "Proposal")))
    assert "customer" in response.context["form"].errors
    with as_tenant(org_a):
        assert not Opportunity.objects.exists()


def test_edit_returns_probability_to_the_stage_default_and_keeps_history(
    client, login, org_a, rep_a, as_tenant
):
    customer = factories.customer(org_a)
    deal = factories.opportunity(
        org_a,
        customer=customer,
        stage="Qualification",
        amount=Decimal("100"),
        probability=40,
        assigned_to=rep_a,
    )
    login(rep_a)
    page = client.get(reverse("sales:opportunity_edit", args=[deal.pk]))
    assert page.context["form"].initial["probability"] == 40
    proposal = factories.stage(org_a, "Proposal")
    response = client.post(
        reverse("sales:opportunity_edit", args=[deal.pk]),
        _form_data(customer, proposal, name=deal.name, amount="150.00", assigned_to=str(rep_a.pk)),
    )
    assert response.status_code == 302
    with as_tenant(org_a):
        saved = Opportunity.objects.get(pk=deal.pk)
        fields = set(OpportunityChange.objects.filter(opportunity=deal).values_list("field", flat=True))
    assert (saved.probability, saved.probability_overridden, saved.amount) == (50, False, Decimal("150.00"))
    assert fields == {"stage", "amount", "expected_close_date", "probability"}


# --- Detail -----------------------------------------------------------------------------------------------------


def test_detail_shows_key_facts_and_history_with_names(client, login, org_a, manager_a, rep_a, as_tenant):
    deal = factories.opportunity(org_a, stage="Prospecting", amount=Decimal("1000.00"), assigned_to=rep_a)
    with as_tenant(org_a, manager_a):
        opportunity_update(
            opportunity=deal,
            actor=manager_a,
            stage=factories.stage(org_a, "Proposal"),
            amount=Decimal("1500.00"),
            assigned_to=manager_a,
        )
    login(manager_a)
    response = client.get(reverse("sales:opportunity_detail", args=[deal.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "1,500.00" in html and "750.00" in html  # amount and weighted (1,500 * 50 %)
    entry = response.context["history"][0]
    lines = {line.field: (line.old, line.new) for line in entry.lines}
    assert lines["stage"] == ("Prospecting", "Proposal")
    assert lines["amount"] == ("1,000.00 USD", "1,500.00 USD")
    assert lines["assigned_to"] == (str(rep_a), str(manager_a))
    assert lines["probability"] == ("10 %", "50 %")
    assert entry.by == manager_a
    assert "Prospecting" in html and "Proposal" in html
    # The sections of other areas are loaded with htmx.
    assert f'hx-get="{reverse("sales:opportunity_activities", args=[deal.pk])}"' in html
    assert f'hx-get="{reverse("sales:opportunity_quotes", args=[deal.pk])}"' in html


def test_detail_query_count_does_not_grow_with_history(client, login, org_a, manager_a, as_tenant):
    quiet = factories.opportunity(org_a, stage="Prospecting")
    busy = factories.opportunity(org_a, stage="Prospecting")
    stages = [factories.stage(org_a, n) for n in ("Qualification", "Proposal", "Negotiation")]
    with as_tenant(org_a, manager_a):
        opportunity_update(opportunity=quiet, actor=manager_a, stage=stages[0])
        for i in range(12):
            opportunity_update(
                opportunity=busy,
                actor=manager_a,
                stage=stages[i % 3],
                amount=Decimal(100 + i),
                assigned_to=manager_a,
            )
    login(manager_a)
    client.get(reverse("sales:opportunity_detail", args=[quiet.pk]))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("sales:opportunity_detail", args=[quiet.pk]))
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("sales:opportunity_detail", args=[busy.pk]))
    assert len(response.context["history"]) == 12
    assert len(many) <= len(few) + 1  # + the owners named in the history (one query)


def test_win_lose_and_reopen_from_the_page(client, login, org_a, rep_a, as_tenant):
    deal = factories.opportunity(org_a, stage="Negotiation", assigned_to=rep_a)
    login(rep_a)
    client.post(reverse("sales:opportunity_win", args=[deal.pk]))
    with as_tenant(org_a):
        assert Opportunity.objects.get(pk=deal.pk).status == "won"
    page = client.get(reverse("sales:opportunity_detail", args=[deal.pk]))
    assert page.context["reopen_stage"].name == "Negotiation"  # where it was before closing
    client.post(
        reverse("sales:opportunity_reopen", args=[deal.pk]), {"stage": str(page.context["reopen_stage"].pk)}
    )
    with as_tenant(org_a):
        reopened = Opportunity.objects.select_related("stage").get(pk=deal.pk)
    assert (reopened.status, reopened.actual_close_date, reopened.stage.name) == ("open", None, "Negotiation")
    response = client.post(reverse("sales:opportunity_lose", args=[deal.pk]), {"reason": ""}, follow=True)
    assert "Say why the deal was lost." in response.content.decode()
    client.post(reverse("sales:opportunity_lose", args=[deal.pk]), {"reason": "No budget"})
    with as_tenant(org_a):
        lost = Opportunity.objects.get(pk=deal.pk)
    assert (lost.status, lost.lost_reason) == ("lost", "No budget")


# --- Visibility -------------------------------------------------------------------------------------------------


def test_a_rep_in_own_only_mode_gets_404_on_a_colleagues_deal(client, login, org_a, rep_a, manager_a):
    colleague = factories.opportunity(org_a, assigned_to=manager_a)
    own = factories.opportunity(org_a, assigned_to=rep_a)
    _own_only(org_a)
    login(rep_a)
    for name in ("sales:opportunity_detail", "sales:opportunity_edit"):
        assert client.get(reverse(name, args=[colleague.pk])).status_code == 404
        assert client.get(reverse(name, args=[own.pk])).status_code == 200
    for name in ("sales:opportunity_move", "sales:opportunity_win", "sales:opportunity_lose"):
        assert client.post(reverse(name, args=[colleague.pk]), {"reason": "x"}).status_code == 404
    assert _ids(client.get(reverse("sales:opportunity_list"))) == {own.pk}
    # Managers see every deal whatever the setting.
    login(manager_a)
    assert client.get(reverse("sales:opportunity_detail", args=[own.pk])).status_code == 200


def test_in_all_mode_a_rep_sees_colleagues_deals(client, login, org_a, rep_a, manager_a):
    colleague = factories.opportunity(org_a, assigned_to=manager_a)
    login(rep_a)
    assert client.get(reverse("sales:opportunity_detail", args=[colleague.pk])).status_code == 200


def test_another_organizations_deal_is_404_everywhere(client, login, org_a, org_b, admin_a):
    foreign = factories.opportunity(org_b)
    login(admin_a)
    for name in ("sales:opportunity_detail", "sales:opportunity_edit"):
        assert client.get(reverse(name, args=[foreign.pk])).status_code == 404
    for name in (
        "sales:opportunity_move",
        "sales:opportunity_win",
        "sales:opportunity_lose",
        "sales:opportunity_reopen",
    ):
        assert client.post(reverse(name, args=[foreign.pk]), {"reason": "x"}).status_code == 404
    assert _ids(client.get(reverse("sales:opportunity_list"))) == set()


# --- Customer 360 panel, merge, search ----------------------------------------------------------------------


def test_customer_panel_lists_open_deals_with_count_and_total(org_a, rep_a, manager_a):
    customer = factories.customer(org_a)
    first = factories.opportunity(
        org_a, customer=customer, stage="Proposal", amount=Decimal("100.10"), name="One"
    )
    factories.opportunity(org_a, customer=customer, stage="Prospecting", amount=Decimal("200.20"), name="Two")
    factories.opportunity(org_a, customer=customer, stage="Closed won", amount=Decimal("999"))  # not open
    factories.opportunity(org_a, stage="Proposal", amount=Decimal("5"))  # another customer
    with tenant_context(org_a.pk, user=manager_a):
        data = selectors.open_opportunities_for_customer(customer=customer, actor=manager_a)
    assert (data["count"], data["total"], data["currency"]) == (2, "300.30", "USD")
    row = next(d for d in data["opportunities"] if d["name"] == "One")
    assert row == {
        "opportunity_id": str(first.pk),
        "name": "One",
        "stage": "Proposal",
        "value": "100.10",
        "currency": "USD",
        "probability": 50,
        "close_date": first.expected_close_date.isoformat(),
        "url": reverse("sales:opportunity_detail", args=[first.pk]),
    }
    # Own-only mode: a rep's panel counts only their own deals.
    _own_only(org_a)
    with tenant_context(org_a.pk, user=rep_a):
        assert selectors.open_opportunities_for_customer(customer=customer, actor=rep_a)["count"] == 0


def test_customer_panel_and_json_in_a_fixed_number_of_queries(client, login, org_a, manager_a):
    quiet, busy = factories.customer(org_a), factories.customer(org_a)
    factories.opportunity(org_a, customer=quiet)
    for i in range(15):
        factories.opportunity(org_a, customer=busy, amount=Decimal(i))
    with CaptureQueriesContext(connection) as few, tenant_context(org_a.pk, user=manager_a):
        selectors.open_opportunities_for_customer(customer=quiet, actor=manager_a)
    with CaptureQueriesContext(connection) as many, tenant_context(org_a.pk, user=manager_a):
        data = selectors.open_opportunities_for_customer(customer=busy, actor=manager_a)
    assert (
        len(many) == len(few) and data["count"] == 15 and len(data["opportunities"]) == selectors.PANEL_DEALS
    )
    login(manager_a)
    payload = client.get(reverse("customers:json360", args=[busy.pk])).json()
    assert payload["active_opportunities"]["count"] == 15
    html = client.get(reverse("customers:detail", args=[busy.pk])).content.decode()
    assert 'data-testid="open-opportunities-panel"' in html and "15 open deals" in html


def test_merging_customers_moves_their_deals(org_a, manager_a):
    source, target = factories.customer(org_a), factories.customer(org_a)
    deals = [factories.opportunity(org_a, customer=source) for _ in range(2)]
    entry = next(r for r in merging.reassigners() if r.key.endswith("opportunities_reassign"))
    with tenant_context(org_a.pk, user=manager_a):
        assert entry.count(organization_id=org_a.pk, customer_id=source.pk) == 2
        moved = entry.reassign(organization_id=org_a.pk, source_id=source.pk, target_id=target.pk)
        assert moved == 2
        assert set(Opportunity.objects.filter(customer=target).values_list("pk", flat=True)) == {
            d.pk for d in deals
        }


def test_global_search_finds_visible_deals(org_a, org_b, rep_a):
    own = factories.opportunity(org_a, name="Platinum renewal", assigned_to=rep_a)
    factories.opportunity(org_b, name="Platinum elsewhere")
    with tenant_context(org_a.pk, user=rep_a):
        results = selectors.search_opportunities(user=rep_a, query="platinum", limit=5)
    assert [r.url for r in results] == [reverse("sales:opportunity_detail", args=[own.pk])]
