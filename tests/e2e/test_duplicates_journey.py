"""Duplicates in a real browser with a real Celery worker: the list is empty until looked for, "Refresh now"
shows "refreshing…" while the worker computes the pairs, and the page reloads with them when it is done."""

import pytest
from playwright.sync_api import expect

from crm.celery import app as celery_app
from tests import factories
from tests.celery_worker import running_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    with running_worker(queue=celery_app.conf.task_default_queue) as started:
        yield started


def test_refresh_now_computes_the_pairs_in_the_background_and_the_page_shows_them(
    live_server, worker, page, screenshot
):
    org = factories.organization(slug="dups-e2e", name="Dups Inc")
    factories.user(org, role="admin", first_name="Dana", email="dana@dups.test")
    factories.customer(org, first_name="Grace", last_name="Hopper", company_name="Navy", phone="555 010 7777")
    factories.customer(
        org, first_name="Grace", last_name="Hoper", company_name="NAVY", phone="(555) 010-7777"
    )
    page.set_default_timeout(20_000)

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("dana@dups.test")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")

    page.locator(".sidebar-nav").get_by_role("link", name="Duplicates").click()
    page.wait_for_url(f"{live_server.url}/customers/duplicates/")
    expect(page.get_by_test_id("duplicates-not-computed")).to_be_visible()
    expect(page.get_by_test_id("as-of")).to_have_text("Not looked for yet")

    page.get_by_test_id("refresh-now").click()
    # Either the spinner while the worker runs, or (fast worker) the reloaded page already: both are honest.
    page.wait_for_selector("[data-testid=refreshing], .dup-pair")
    page.wait_for_selector(".dup-pair")  # htmx polled until the pairs were in, then reloaded the page
    expect(page.get_by_test_id("as-of")).to_contain_text("As of")
    expect(page.get_by_test_id("duplicate-count")).to_contain_text("1 likely duplicate pair")
    expect(page.locator(".dup-pair [data-reason=phone]")).to_be_visible()
    expect(page.get_by_test_id("refreshing")).to_have_count(0)
    screenshot("duplicates-1-refreshed")
    assert page.js_errors == []
