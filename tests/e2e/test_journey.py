"""A first day in the CRM, in a real browser: sign in, look around the shell, open settings, sign out."""

import pytest

from tests import factories

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_admin_signs_in_sees_the_shell_opens_settings_and_signs_out(live_server, page, screenshot):
    org = factories.organization(slug="acme-e2e", name="Acme E2E", seat_limit=5)
    admin = factories.user(org, role="admin", first_name="Alice", email="alice@acme-e2e.test")
    factories.user(org, role="sales_rep", first_name="Sofia", email="sofia@acme-e2e.test")
    factories.notification(admin, title="Welcome aboard")

    page.goto(f"{live_server.url}/")
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("ALICE@acme-e2e.test")
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", name="Good to see you, Alice").is_visible()
    assert page.locator(".sidebar-org .org-name").inner_text() == "Acme E2E"
    assert page.locator("[data-testid=stat-seats] .stat-value").inner_text().split() == ["2", "/", "5"]
    page.wait_for_selector("[data-testid=unread-count]")
    assert page.locator("[data-testid=unread-count]").inner_text() == "1"
    nav = [name.strip() for name in page.locator(".sidebar-nav .nav-link").all_inner_texts()]
    assert nav == [
        "Home",
        "Customers",
        "Segments",
        "Imports",
        "Duplicates",
        "My day",
        "Pipeline",
        "Opportunities",
        "Quotes",
        "Approvals",
        "Orders",
        "Forecast",
        "Quotas",
        "Sales dashboard",
        "Team performance",
        "Tickets",
        "Support reports",
        "Workload",
        "Knowledge base",
        "Canned responses",
        "Campaigns",
        "Email templates",
        "Sequences",
        "Lead forms",
        "Marketing ROI",
        "Suppressions",
        "Privacy requests",
        "Access log",
        "Organization",
        "Users",
        "Audit log",
        "Pipelines & rules",
        "Lead scoring",
        "Products",
        "Privacy & retention",
        "SLA policies",
        "Admin site",
    ]
    screenshot("journey-1-home")

    page.keyboard.press("/")
    page.keyboard.type("sofi")
    page.wait_for_selector(".search-result")
    assert "Sofia" in page.locator(".search-results").inner_text()
    page.keyboard.press("Escape")

    page.locator(".sidebar-nav").get_by_role("link", name="Organization").click()
    page.wait_for_url(f"{live_server.url}/settings/organization/")
    assert page.get_by_label("Name").input_value() == "Acme E2E"
    page.get_by_label("Name").fill("Acme Everywhere")
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector(".alert-success")
    assert page.locator(".sidebar-org .org-name").inner_text() == "Acme Everywhere"
    screenshot("journey-2-organization")

    page.locator(".user-menu-toggle").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    screenshot("journey-3-signed-out")
    page.goto(f"{live_server.url}/settings/organization/")
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    assert page.js_errors == []
