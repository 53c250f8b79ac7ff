"""A rep's and a marketer's afternoon in a real browser, with a real Celery worker: create a customer, log a
call and watch the score and timeline move, import a CSV and watch its progress bar finish, build a
dynamic segment and read its live count."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crm.celery import app as celery_app
from crm.tenancy import tenant_context
from customers.models import Customer
from tests import factories
from tests.celery_worker import running_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CSV = (
    "first_name,last_name,email,phone,company_name,job_title,education_level,date_of_birth,annual_revenue,"
    "customer_type,lifecycle_stage,tags,vip_status,street,city,state,postal_code,country,source\n"
    "Grace,Hopper,grace@navy.example,,US Navy,Rear Admiral,phd,1906-12-09,20000000,business,lead,"
    "pioneer;navy,true,,Arlington,VA,,US,conference\n"
    "Alan,Turing,alan@bletchley.example,,Bletchley Park,Director of Research,phd,,500000,business,"
    "subscriber,,false,,Bletchley,,,GB,referral\n"
    "Ada,Lovelace,ada@engine.example,,Analytical Engines,Analyst,,,,individual,lead,math,false,,London,,,GB,\n"
)


@pytest.fixture
def worker():
    """A real worker on the queue the app (and its live server thread) enqueues onto."""
    with running_worker(queue=celery_app.conf.task_default_queue) as started:
        yield started


def test_customer_journey(live_server, worker, page, screenshot, tmp_path: Path):
    org = factories.organization(slug="journey", name="Journey Inc", seat_limit=10)
    factories.user(org, role="admin", first_name="Mara", email="mara@journey.test")
    page.set_default_timeout(15_000)

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("mara@journey.test")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")

    # 1. A new customer: a director at a $2M company; nothing logged yet.
    page.locator(".sidebar-nav").get_by_role("link", name="Customers").click()
    page.get_by_role("link", name="New customer").first.click()
    page.get_by_label("First name").fill("Katherine")
    page.get_by_label("Last name").fill("Johnson")
    page.get_by_label("Email", exact=True).fill("katherine@nasa.example")
    page.get_by_label("Company", exact=True).fill("NASA")
    page.get_by_label("Job title").fill("Director of Flight Research")
    page.locator("#id_customer_type").select_option("business")
    page.get_by_label("Annual revenue").fill("2000000")
    page.get_by_role("button", name="Add customer").click()
    page.wait_for_selector("[data-testid=score-panel]")
    assert page.get_by_role("heading", name="Katherine Johnson").is_visible()
    # Demographic 15 (director) + behavioural 5 (no interactions) + engagement 0 + firmographic 15 (> $1M).
    assert page.locator("[data-testid=lead-score-total]").inner_text().split()[0] == "35"
    assert page.locator("[data-testid=last-contact]").inner_text() == "Never"

    # 2. Log a call: the timeline and the score change in place (htmx), without a reload.
    page.get_by_label("What happened").select_option("call")
    page.get_by_label("Outcome").fill("Agreed to a pilot")
    page.get_by_role("button", name="Log it").click()
    page.wait_for_selector("[data-testid=timeline] >> text=Agreed to a pilot")
    # Behavioural now 5 (one interaction) + 15 (within 7 days): 15 + 20 + 0 + 15.
    expect(page.locator("[data-testid=lead-score-total]")).to_have_text(re.compile(r"^\s*50\b"))
    assert page.locator("[data-testid=last-contact]").inner_text() != "Never"
    screenshot("customer-1-360")

    # 3. Import a CSV: the job page's progress bar runs to the end, the worker does the work.
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(CSV)
    page.locator(".sidebar-nav").get_by_role("link", name="Imports").click()
    page.get_by_role("link", name="New import").first.click()
    page.locator("input[type=file]").set_input_files(str(csv_file))
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_selector("[data-testid=import-created]", timeout=30_000)
    assert page.locator("[data-testid=import-created]").first.inner_text() == "3"
    assert "pct-100" in page.locator("[data-testid=import-progress-bar]").get_attribute("class")
    screenshot("customer-2-import")
    with tenant_context(org.pk):
        assert Customer.objects.filter(organization=org).count() == 4
        grace = Customer.objects.get(organization=org, email="grace@navy.example")
    assert (grace.tags, grace.vip_status) == (["navy", "pioneer"], True)

    # 4. A dynamic segment and its live count.
    page.locator(".sidebar-nav").get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").first.click()
    page.locator("#id_name").fill("Big companies")
    _segment_rule(page, field="annual_revenue", op="gte", value="1000000")
    page.wait_for_selector("[data-testid=preview-count]")
    page.wait_for_function("document.querySelector('[data-testid=preview-count]').innerText.trim() === '2'")
    screenshot("customer-3-segment")
    page.get_by_role("button", name="Create segment").click()
    page.wait_for_selector("text=Big companies")
    assert page.js_errors == []


def _segment_rule(page, *, field: str, op: str, value: str) -> None:
    """Fill the first rule of the builder; each choice re-renders the builder server-side (htmx)."""
    page.locator("[data-testid=rule-field]").first.select_option(field)
    page.wait_for_selector("[data-testid=rule-op]")
    page.locator("[data-testid=rule-op]").first.select_option(op)
    page.wait_for_timeout(300)
    value_input = page.locator("#rule-builder input[name$='-value']").first
    value_input.fill(value)
    value_input.dispatch_event("change")
