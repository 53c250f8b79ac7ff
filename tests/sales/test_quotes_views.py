"""The quote pages: the deal's quotes section, creation, the quote page and its htmx line editor, the flow's
buttons, compare, print, the list and the approval queue; 404 for other organizations and hidden deals; query
counts that do not grow with the data."""

from __future__ import annotations

from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.tenancy import system_context
from sales.models import Order, Quote, QuoteItem, SalesSettings
from sales.services import quotes as services
from sales.services.pipelines import sales_settings_for
from sales.views import quotes as quote_views
from tests import factories

S = Quote.Status


@pytest.fixture
def team(org_a):
    return SimpleNamespace(
        rep=factories.user(org_a, role="sales_rep", email="rep@a.test"),
        rep2=factories.user(org_a, role="sales_rep", email="rep2@a.test"),
        manager=factories.user(org_a, role="sales_manager", email="manager@a.test"),
        agent=factories.user(org_a, role="support_agent", email="agent@a.test"),
    )


def _quote(org, actor, *, lines=1, **fields):
    deal = fields.pop("opportunity", None) or factories.opportunity(org, assigned_to=actor)
    with system_context():
        quote = services.quote_create(opportunity=deal, actor=actor, **fields)
        for n in range(lines):
            services.quote_item_add(
                quote=quote,
                actor=actor,
                description=f"Line {n}",
                quantity=D("2"),
                unit_price=D("100.00"),
                tax_rate=D("10"),
            )
        return Quote.objects.get(pk=quote.pk)


def _own_only(org):
    with system_context():
        sales_settings_for(org.pk)
        SalesSettings.objects.filter(organization=org).update(
            opportunity_visibility=SalesSettings.Visibility.OWN
        )


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


# --- the deal's quotes section -----------------------------------------------------------------------------


def test_the_deal_section_lists_current_versions_with_totals_and_offers_a_new_quote(org_a, team, login):
    deal = factories.opportunity(org_a, assigned_to=team.rep)
    first = _quote(org_a, team.rep, opportunity=deal, lines=1)  # 2 x 100 + 10 % = 220.00
    _quote(org_a, team.rep, opportunity=deal, lines=3)  # 660.00
    with system_context():
        services.quote_submit(quote=first, actor=team.rep)
        services.quote_revise(quote=first, actor=team.rep)
    client = login(team.rep)
    response = client.get(reverse("sales:opportunity_quotes", args=[deal.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('data-testid="deal-quote"') == 2  # version 1 of the revised quote is not listed
    assert "220.00 USD" in body and "660.00 USD" in body and "v2" in body
    assert 'data-testid="new-quote"' in body


def test_the_deal_section_takes_the_same_queries_for_one_quote_or_many(org_a, team, login):
    deal = factories.opportunity(org_a, assigned_to=team.rep)
    _quote(org_a, team.rep, opportunity=deal)
    client = login(team.rep)
    url = reverse("sales:opportunity_quotes", args=[deal.pk])
    one = _count_queries(client, url)
    for _n in range(4):
        _quote(org_a, team.rep, opportunity=deal)
    assert _count_queries(client, url) == one


def test_creating_from_the_deal_opens_the_new_quote(org_a, team, login):
    deal = factories.opportunity(org_a, assigned_to=team.rep, currency="GBP")
    client = login(team.rep)
    response = client.post(reverse("sales:quote_create", args=[deal.pk]))
    with system_context():
        quote = Quote.objects.get(opportunity=deal)
    assert response.status_code == 302 and response.url == reverse("sales:quote_detail", args=[quote.pk])
    assert (quote.currency, quote.created_by_id, quote.status) == ("GBP", team.rep.pk, S.DRAFT)


# --- 404 for other organizations and hidden deals -----------------------------------------------------------


def test_another_organizations_deal_and_quote_are_404(org_a, org_b, team, login):
    deal_b = factories.opportunity(org_b)
    quote_b = factories.quote(org_b, lines=[{"description": "B", "unit_price": D("1")}])
    with system_context():
        item_b = QuoteItem.objects.get(quote=quote_b)
    client = login(team.manager)
    for url in (
        reverse("sales:opportunity_quotes", args=[deal_b.pk]),
        reverse("sales:quote_create", args=[deal_b.pk]),
        reverse("sales:quote_detail", args=[quote_b.pk]),
        reverse("sales:quote_print", args=[quote_b.pk]),
        reverse("sales:quote_compare", args=[quote_b.pk]),
        reverse("sales:quote_line_form", args=[quote_b.pk]),
    ):
        assert client.get(url).status_code == 404, url
    for url in (
        reverse("sales:quote_line_add", args=[quote_b.pk]),
        reverse("sales:quote_line_update", args=[quote_b.pk, item_b.pk]),
        reverse("sales:quote_line_remove", args=[quote_b.pk, item_b.pk]),
        reverse("sales:quote_submit", args=[quote_b.pk]),
        reverse("sales:quote_approve", args=[quote_b.pk]),
        reverse("sales:quote_accept", args=[quote_b.pk]),
        reverse("sales:quote_revise", args=[quote_b.pk]),
    ):
        assert client.post(url, {"comment": "x"}).status_code == 404, url
    with system_context():
        assert (
            Quote.objects.get(pk=quote_b.pk).status == S.DRAFT
            and QuoteItem.objects.filter(quote=quote_b).count() == 1
        )


def test_a_quote_on_a_colleagues_deal_is_404_in_own_only_mode(org_a, team, login):
    deal = factories.opportunity(org_a, assigned_to=team.rep2)
    quote = _quote(org_a, team.rep2, opportunity=deal)
    _own_only(org_a)
    client = login(team.rep)
    assert client.get(reverse("sales:opportunity_quotes", args=[deal.pk])).status_code == 404
    assert client.get(reverse("sales:quote_detail", args=[quote.pk])).status_code == 404
    assert client.post(reverse("sales:quote_submit", args=[quote.pk])).status_code == 404
    assert quote.quote_number not in client.get(reverse("sales:quote_list")).content.decode()
    # The manager sees every deal.
    assert login(team.manager).get(reverse("sales:quote_detail", args=[quote.pk])).status_code == 200


def test_roles_without_quotes_get_403(org_a, team, login):
    quote = _quote(org_a, team.rep)
    client = login(team.agent)
    assert client.get(reverse("sales:quote_detail", args=[quote.pk])).status_code == 403
    assert client.get(reverse("sales:quote_list")).status_code == 403
    assert login(team.rep).get(reverse("sales:approval_queue")).status_code == 403


# --- the quote page and the line editor ---------------------------------------------------------------------


def test_the_quote_page_shows_lines_and_totals_and_takes_the_same_queries_for_more_lines(org_a, team, login):
    quote = _quote(org_a, team.rep, lines=1)
    client = login(team.rep)
    url = reverse("sales:quote_detail", args=[quote.pk])
    body = client.get(url).content.decode()
    # 2 x 100.00 = 200.00; 10 % tax = 20.00; total 220.00
    assert (
        'data-testid="quote-subtotal">200.00 USD' in body and 'data-testid="quote-total">220.00 USD' in body
    )
    one = _count_queries(client, url)
    with system_context():
        for n in range(5):
            services.quote_item_add(quote=quote, actor=None, description=f"More {n}", unit_price=D("1.00"))
    assert _count_queries(client, url) == one
    assert one <= 25


def test_the_line_editor_adds_changes_and_removes_lines_with_totals_from_the_server(org_a, team, login):
    product = factories.product(org_a, sku="W-1", name="Widget", unit_price=D("19.99"), tax_rate=D("20"))
    quote = _quote(org_a, team.rep, lines=0)
    client = login(team.rep)
    htmx = {"HTTP_HX_REQUEST": "true"}
    # The picker fills the new line from the product.
    picked = client.get(
        reverse("sales:quote_line_form", args=[quote.pk]), {"new-product": product.pk}, **htmx
    )
    assert 'value="Widget"' in picked.content.decode() and 'value="19.99"' in picked.content.decode()
    added = client.post(
        reverse("sales:quote_line_add", args=[quote.pk]),
        {"new-product": product.pk, "new-description": "", "new-quantity": "3", "new-discount_pct": "10"},
        **htmx,
    )
    body = added.content.decode()
    # 3 x 19.99 = 59.97; 10 % = 6.00; 53.97 x 20 % = 10.79; total 64.76
    assert added.status_code == 200 and 'id="quote-lines"' in body
    assert 'data-testid="quote-total">64.76 USD' in body
    with system_context():
        item = QuoteItem.objects.get(quote=quote)
    assert (item.description, item.product_id, item.line_total) == ("Widget", product.pk, D("64.76"))
    prefix = f"line-{item.pk}"
    changed = client.post(
        reverse("sales:quote_line_update", args=[quote.pk, item.pk]),
        {
            f"{prefix}-description": "Widget XL",
            f"{prefix}-quantity": "1",
            f"{prefix}-unit_price": "0.05",
            f"{prefix}-discount_pct": "10",
            f"{prefix}-tax_rate": "0",
        },
        **htmx,
    )
    # 1 x 0.05; 10 % = 0.005 -> 0.01; total 0.04
    assert 'data-testid="quote-total">0.04 USD' in changed.content.decode()
    invalid = client.post(
        reverse("sales:quote_line_update", args=[quote.pk, item.pk]),
        {f"{prefix}-description": "Widget XL", f"{prefix}-quantity": "0", f"{prefix}-unit_price": "1"},
        **htmx,
    )
    assert invalid.status_code == 200 and 'data-testid="line-error"' in invalid.content.decode()
    removed = client.post(reverse("sales:quote_line_remove", args=[quote.pk, item.pk]), **htmx)
    assert 'data-testid="quote-total">0.00 USD' in removed.content.decode()
    with system_context():
        assert not QuoteItem.objects.filter(quote=quote).exists()


def test_a_free_text_line_needs_a_description_and_a_price(org_a, team, login):
    quote = _quote(org_a, team.rep, lines=0)
    response = login(team.rep).post(
        reverse("sales:quote_line_add", args=[quote.pk]),
        {"new-product": "", "new-description": "", "new-quantity": "1"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200 and "Describe the line" in body and "Give a unit price" in body


def test_an_earlier_version_is_read_only_on_the_page_and_on_the_server(org_a, team, login):
    quote = _quote(org_a, team.rep, lines=1)
    with system_context():
        services.quote_submit(quote=quote, actor=team.rep)
        services.quote_revise(quote=quote, actor=team.rep)
        item = QuoteItem.objects.get(quote=quote)
    client = login(team.rep)
    page = client.get(reverse("sales:quote_detail", args=[quote.pk])).content.decode()
    assert 'data-testid="old-version"' in page and 'data-testid="add-line-form"' not in page
    response = client.post(
        reverse("sales:quote_line_update", args=[quote.pk, item.pk]),
        {
            f"line-{item.pk}-description": "Changed",
            f"line-{item.pk}-quantity": "9",
            f"line-{item.pk}-unit_price": "1",
        },
        HTTP_HX_REQUEST="true",
    )
    assert "read-only" in response.content.decode()
    with system_context():
        assert QuoteItem.objects.get(pk=item.pk).quantity == D("2")


# --- the flow's buttons -------------------------------------------------------------------------------------


def test_submit_approve_send_and_accept_through_the_pages(org_a, team, login):
    quote = _quote(org_a, team.rep, lines=0)
    with system_context():
        services.quote_item_add(
            quote=quote, actor=team.rep, description="Licence", unit_price=D("1000.00"), discount_pct=D("30")
        )
    rep, manager = login(team.rep, on=Client()), login(team.manager, on=Client())
    rep.post(reverse("sales:quote_submit", args=[quote.pk]), {"comment": "Competitive deal"})
    queue = manager.get(reverse("sales:approval_queue")).content.decode()
    assert 'data-testid="pending-count">1<' in queue and quote.quote_number in queue
    manager.post(reverse("sales:quote_approve", args=[quote.pk]), {"comment": "OK", "next": "queue"})
    rep.post(reverse("sales:quote_send", args=[quote.pk]))
    first = rep.post(reverse("sales:quote_accept", args=[quote.pk]))
    second = rep.post(reverse("sales:quote_accept", args=[quote.pk]))
    assert first.status_code == second.status_code == 302
    with system_context():
        assert Quote.objects.get(pk=quote.pk).status == S.ACCEPTED
        assert Order.objects.filter(quote=quote).count() == 1
    page = rep.get(reverse("sales:quote_detail", args=[quote.pk])).content.decode()
    assert 'data-testid="quote-order"' in page


def test_the_page_refuses_self_approval_with_a_message(org_a, team, login):
    quote = _quote(org_a, team.manager, lines=0)
    with system_context():
        services.quote_item_add(quote=quote, actor=None, description="Big", unit_price=D("90000.00"))
        services.quote_submit(quote=quote, actor=team.manager)
    client = login(team.manager)
    page = client.get(reverse("sales:quote_detail", args=[quote.pk])).content.decode()
    assert 'data-testid="approve-quote"' not in page
    response = client.post(reverse("sales:quote_approve", args=[quote.pk]), follow=True)
    assert "another manager must approve" in response.content.decode()
    with system_context():
        assert Quote.objects.get(pk=quote.pk).status == S.PENDING_APPROVAL


def test_accepting_an_expired_quote_is_refused_and_marks_it_expired(org_a, team, login):
    import datetime

    quote = _quote(org_a, team.rep, lines=1)
    with system_context():
        services.quote_submit(quote=quote, actor=team.rep)
        services.quote_mark_sent(quote=quote, actor=team.rep)
        Quote.objects.filter(pk=quote.pk).update(valid_until=datetime.date(2000, 1, 1))
    response = login(team.rep).post(reverse("sales:quote_accept", args=[quote.pk]), follow=True)
    assert "expired" in response.content.decode()
    with system_context():
        assert Quote.objects.get(pk=quote.pk).status == S.EXPIRED
        assert not Order.objects.filter(quote=quote).exists()


# --- compare, print, list ---------------------------------------------------------------------------------


def test_compare_shows_added_removed_and_changed_lines_and_total_differences(org_a, team, login):
    quote = _quote(org_a, team.rep, lines=2)  # Line 0, Line 1: 220.00 each
    with system_context():
        services.quote_submit(quote=quote, actor=team.rep)
        revision = services.quote_revise(quote=quote, actor=team.rep)
        items = {i.description: i for i in QuoteItem.objects.filter(quote=revision)}
        services.quote_item_update(item=items["Line 0"], actor=team.rep, quantity=D("3"))  # 330.00
        services.quote_item_remove(item=items["Line 1"], actor=team.rep)
        services.quote_item_add(quote=revision, actor=team.rep, description="Support", unit_price=D("50.00"))
    body = login(team.rep).get(reverse("sales:quote_compare", args=[revision.pk])).content.decode()
    assert "1 added · 1 removed · 1 changed" in body
    assert (
        body.count('data-testid="compare-changed"') == 1 and body.count('data-testid="compare-removed"') == 1
    )
    # totals: v1 440.00, v2 330.00 + 50.00 = 380.00: difference -60.00
    assert "440.00" in body and "380.00" in body and "-60.00" in body


def test_the_printable_quote_has_the_organization_customer_lines_totals_and_terms(org_a, team, login):
    customer = factories.customer(org_a, first_name="Ada", last_name="Lovelace", company_name="Engines Ltd")
    deal = factories.opportunity(org_a, customer=customer, assigned_to=team.rep)
    quote = _quote(org_a, team.rep, opportunity=deal, lines=2, terms="Payment within 30 days.")
    body = login(team.rep).get(reverse("sales:quote_print", args=[quote.pk])).content.decode()
    assert "Org A" in body and "Ada Lovelace" in body and "Engines Ltd" in body
    assert "Payment within 30 days." in body and 'data-testid="quote-total">440.00 USD' in body
    assert "<script>" not in body.replace('<script src="', "")


def test_the_list_filters_by_status_and_pages_by_keyset(org_a, team, login, monkeypatch):
    monkeypatch.setattr(quote_views, "PER_PAGE", 2)
    quotes = [_quote(org_a, team.rep, lines=1) for _n in range(3)]
    with system_context():
        services.quote_submit(quote=quotes[0], actor=team.rep)
    client = login(team.rep)
    first = client.get(reverse("sales:quote_list"))
    page = first.context["page"]
    assert [q.number for q in page.items] == [3, 2] and page.has_next
    second = client.get(reverse("sales:quote_list"), {"cursor": page.next_cursor})
    assert [q.number for q in second.context["page"].items] == [1]
    approved = client.get(reverse("sales:quote_list"), {"status": "approved"})
    assert [q.number for q in approved.context["page"].items] == [1]


def test_the_quote_pdf_is_a_pdf_with_the_quotes_figures(org_a, team, login):
    import io

    from pypdf import PdfReader

    customer = factories.customer(org_a, first_name="Ada", last_name="Lovelace")
    deal = factories.opportunity(org_a, customer=customer, assigned_to=team.rep)
    quote = _quote(org_a, team.rep, opportunity=deal, lines=2, terms="Payment within 30 days.")
    response = login(team.rep).get(reverse("sales:quote_pdf", args=[quote.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="Q-00001-v1.pdf"'
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    for expected in (
        "Org A",
        "Ada Lovelace",
        "Q-00001",
        "Line 0",
        "Line 1",
        "440.00 USD",
        "Payment within 30 days.",
    ):
        assert expected in text, expected
