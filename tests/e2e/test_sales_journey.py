"""A deal from the board to the order, in a real browser: a rep drags a deal to the next stage, prices it
with a discount that needs approval and submits the quote; a sales manager approves it; the rep sends it
and records the customer's acceptance; the order shows on the customer's 360 page; the forecast draws its
chart."""

import datetime
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from crm.tenancy import tenant_context
from sales.models import Opportunity, Order, Quote
from tests import factories

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _sign_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def _sign_out(page, base_url: str) -> None:
    page.locator(".user-menu-toggle").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base_url}/accounts/login/")


def _column(page, stage):
    return page.locator(f"#column-{stage.pk}")


def _figures(page, stage) -> tuple[str, str, str]:
    column = _column(page, stage)
    return (
        column.get_by_test_id("column-count").inner_text().strip(),
        column.get_by_test_id("column-total").inner_text().strip(),
        column.get_by_test_id("column-weighted").inner_text().strip(),
    )


def test_sales_journey_from_the_board_to_the_order_and_the_forecast(live_server, page, screenshot):
    org = factories.organization(slug="sales-journey", name="Journey Sales", currency="USD")
    rep_email, manager_email = "sofia@sales.test", "marcus@sales.test"
    rep = factories.user(org, role="sales_rep", first_name="Sofia", last_name="Lopez", email=rep_email)
    factories.user(org, role="sales_manager", first_name="Marcus", last_name="Reid", email=manager_email)
    customer = factories.customer(
        org, first_name="Katherine", last_name="Johnson", company_name="NASA", customer_type="business"
    )
    qualification = factories.stage(org, "Qualification")
    proposal = factories.stage(org, "Proposal")
    close = datetime.date.today() + datetime.timedelta(days=20)
    deal = factories.opportunity(
        org,
        name="NASA — Annual licence",
        customer=customer,
        stage=qualification,
        assigned_to=rep,
        amount=Decimal("12000.00"),
        expected_close_date=close,
    )
    factories.opportunity(
        org,
        name="Bletchley — Pilot",
        stage=proposal,
        assigned_to=rep,
        amount=Decimal("8000.00"),
        expected_close_date=close,
    )
    factories.product(
        org,
        sku="LIC-PRO",
        name="Professional licence",
        unit_price=Decimal("480.00"),
        tax_rate=Decimal("6.25"),
    )
    page.set_default_timeout(15_000)
    base = live_server.url

    # 1. The rep drags the deal from Qualification (25 %) to Proposal (50 %): both columns are redrawn.
    _sign_in(page, base, rep_email)
    page.locator(".sidebar-nav").get_by_role("link", name="Pipeline").click()
    # The columns are sortable once board.js has found SortableJS (page.wait_for_function polls with eval,
    # which the CSP forbids: wait on what the script leaves in the DOM instead).
    page.wait_for_selector(f"#column-{proposal.pk} .board-cards[data-sortable='1']", state="attached")
    assert _figures(page, qualification) == ("1", "12,000.00", "3,000.00")
    assert _figures(page, proposal) == ("1", "8,000.00", "4,000.00")
    card = page.locator(f"[data-deal-id='{deal.pk}']")
    target = _column(page, proposal).locator("[data-testid=deal-card]").first
    card.hover()
    page.mouse.down()
    box = target.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=12)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + 6, steps=4)
    page.mouse.up()
    page.wait_for_selector("[data-testid=move-ok]")
    expect(_column(page, proposal).get_by_test_id("column-count")).to_have_text("2")
    assert _figures(page, qualification) == ("0", "0.00", "0.00")
    assert _figures(page, proposal) == ("2", "20,000.00", "10,000.00")
    with tenant_context(org.pk):
        moved = Opportunity.objects.get(pk=deal.pk)
    assert (moved.stage_id, moved.probability) == (proposal.pk, 50)
    screenshot("sales-1-board")

    # 2. The deal page: a new quote, a line of 25 licences at 20 % off (above the 15 % limit), submitted.
    card.get_by_role("link", name="NASA — Annual licence").click()
    page.wait_for_selector("[data-testid=opportunity-quotes]")
    page.get_by_test_id("new-quote").click()
    page.wait_for_selector("[data-testid=add-line-form]")
    add = page.get_by_test_id("add-line-form")
    add.get_by_label("Product").select_option(label="LIC-PRO — Professional licence (480.00 USD)")
    expect(page.get_by_test_id("add-line-form").get_by_label("Description")).to_have_value(
        "Professional licence"
    )
    add = page.get_by_test_id("add-line-form")
    add.get_by_label("Quantity").fill("25")
    add.get_by_label("Discount %").fill("20")
    add.get_by_test_id("add-line").click()
    expect(page.get_by_test_id("line-total")).to_have_text(
        "10,200.00"
    )  # 25 x 480 = 12,000; -20 % = 9,600; +6.25 % tax
    page.get_by_label("Note for the approver (optional)").fill("Two-year commitment.")
    page.get_by_test_id("submit-quote").click()
    page.wait_for_selector("[data-testid=approval-reasons]")
    assert "20 % discount" in page.get_by_test_id("approval-reasons").inner_text()
    with tenant_context(org.pk):
        quote = Quote.objects.get(opportunity_id=deal.pk)
    assert (quote.status, quote.total) == (Quote.Status.PENDING_APPROVAL, Decimal("10200.00"))
    quote_url = page.url
    screenshot("sales-2-quote-pending")
    _sign_out(page, base)

    # 3. The manager finds it in the approvals queue and approves it.
    _sign_in(page, base, manager_email)
    page.locator(".sidebar-nav").get_by_role("link", name="Approvals").click()
    page.get_by_role("link", name=quote.quote_number).first.click()
    page.get_by_label("Comment (needed to reject)").fill("Fine for two years.")
    page.get_by_test_id("approve-quote").click()
    page.wait_for_selector("[data-testid=approve-quote]", state="detached")
    expect(page.get_by_test_id("quote-flow")).to_contain_text("Approved by Marcus Reid")
    _sign_out(page, base)

    # 4. The rep marks it sent, then records the acceptance: the deal is won and its order made.
    _sign_in(page, base, rep_email)
    page.goto(quote_url)
    page.get_by_test_id("send-quote").click()
    page.wait_for_selector("[data-testid=accept-quote]")
    page.get_by_label("The customer's answer (optional note)").fill("Signed order form received.")
    page.get_by_test_id("accept-quote").click()
    page.wait_for_selector("[data-testid=quote-order]")
    screenshot("sales-3-quote-accepted")
    with tenant_context(org.pk):
        order = Order.objects.get(quote_id=quote.pk)
        won = Opportunity.objects.get(pk=deal.pk)
    assert (order.total, order.customer_id, won.status) == (Decimal("10200.00"), customer.pk, "won")

    # 5. The customer's 360 page: the lifetime value panel counts the order.
    page.get_by_role("link", name="Katherine Johnson").first.click()
    page.wait_for_selector("[data-testid=lifetime-value]")
    assert page.get_by_test_id("ltv-revenue").inner_text() == "10,200.00 USD"
    assert page.get_by_test_id("ltv-orders").inner_text() == "1"
    screenshot("sales-4-customer-360")

    # 6. The forecast page draws its chart (the won deal is closed won to date).
    page.locator(".sidebar-nav").get_by_role("link", name="Forecast").click()
    chart = page.locator("canvas#forecast-chart")
    expect(chart).to_have_attribute("style", re.compile(r"width: *[1-9]"))  # Chart.js sized it: drawn
    datasets = page.evaluate("Chart.getChart(document.getElementById('forecast-chart')).data.datasets.length")
    assert datasets >= 3
    screenshot("sales-5-forecast")
    assert re.search(r"Forecast", page.title())
    assert page.js_errors == []
