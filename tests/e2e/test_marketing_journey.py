"""A marketer's campaign in a real browser, with a real Celery worker: write a template with merge fields and
preview it as a real customer, create an email campaign for a segment, launch it and watch the progress bar
run to the end while the worker sends, then follow the tracked link of the email that arrived, and find the
click on the customer's timeline and in the campaign's funnel."""

from __future__ import annotations

import email
import re
import tempfile
import time
from email import policy
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from crm.tenancy import tenant_context
from customers.models import Interaction
from marketing.models import Campaign, EmailSend
from tests import factories
from tests.celery_worker import running_worker
from tests.marketing import factories as mf

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HTML = (
    '<p>Hi {{ customer.first_name|default:"there" }},</p>\n'
    "<p>Our spring webinar is on Thursday.</p>\n"
    '<p><a href="LINK">Save my seat</a></p>\n'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


def _sign_in(page, base: str, email_address: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email_address)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def _message_to(outbox: Path, address: str, timeout: float = 30.0) -> email.message.EmailMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in outbox.glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == address:
                return message
        time.sleep(0.2)
    raise AssertionError(f"no email to {address} in the outbox")


@pytest.fixture
def outbox():
    return Path(tempfile.mkdtemp(prefix="crm-e2e-outbox-"))


@pytest.fixture
def worker(live_server, outbox):
    """A real worker sending through a slow outbox (so the progress bar has something to show), building
    tracking links to the live server."""
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.marketing.send_worker_settings",
        "CRM_TEST_OUTBOX": str(outbox),
        "CRM_TEST_MAIL_DELAY": "0.5",
        "CRM_BASE_URL": live_server.url,
    }
    with running_worker(env=env, queue=settings.CELERY_TASK_DEFAULT_QUEUE) as started:
        yield started


def test_marketing_journey(live_server, worker, outbox, page, screenshot, settings):
    settings.CRM_BASE_URL = live_server.url
    org = factories.organization(slug="journey-mkt", name="Journey Marketing")
    factories.user(org, role="marketing_manager", first_name="Mia", email="mia@journey-mkt.test")
    ada = factories.customer(
        org, first_name="Ada", last_name="Lovelace", email="ada@engine.example", email_opt_in=True
    )
    guests = [ada] + [
        factories.customer(org, first_name=name, email=f"{name.lower()}@guests.example", email_opt_in=True)
        for name in ("Grace", "Alan", "Edsger", "Barbara", "Donald")
    ]
    mf.segment(org, *guests, name="Webinar guests")
    target = f"{live_server.url}/accounts/login/"
    page.set_default_timeout(20_000)
    _sign_in(page, live_server.url, "mia@journey-mkt.test")

    # 1. A template with merge fields, previewed as Ada would receive it.
    page.locator(".sidebar-nav").get_by_role("link", name="Email templates").click()
    page.get_by_test_id("new-template").click()
    page.locator("#id_name").fill("Webinar invitation")
    page.locator("#id_subject").fill("{{ customer.first_name }}, join us on Thursday")
    page.locator("#id_html_body").fill(HTML.replace("LINK", target))
    page.locator("#preview-customer-search").fill("Ada")
    page.locator(".preview-customer-option", has_text="Ada Lovelace").click()
    expect(page.get_by_test_id("preview-as")).to_contain_text("Ada Lovelace")
    expect(page.get_by_test_id("preview-subject")).to_have_text("Ada, join us on Thursday")
    expect(page.frame_locator("[data-testid=preview-html]").get_by_text("Hi Ada,")).to_be_visible()
    screenshot("marketing-1-template-preview")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".alert-success, .toast, [role=status]").first).to_be_visible()

    # 2. An email campaign to the segment, launched; the progress bar runs while the worker sends.
    page.locator(".sidebar-nav").get_by_role("link", name="Campaigns").click()
    page.get_by_test_id("new-campaign").click()
    page.locator("#id_name").fill("Spring webinar")
    page.locator("input[name=channels][value=email]").check()
    page.locator("#id_template").select_option(label="Webinar invitation")
    page.locator("#id_segments").select_option(label="Webinar guests")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("heading", name=re.compile("Spring webinar"))).to_be_visible()
    page.get_by_test_id("send-launch").click()
    expect(page.get_by_role("progressbar", name="Send progress")).to_be_visible()
    progress = page.get_by_test_id("send-progress-text")
    expect(progress).to_contain_text(re.compile(r"of 6 recipients"))
    screenshot("marketing-2-sending")
    expect(progress).to_contain_text("6 of 6 recipients handled (100%)", timeout=60_000)
    expect(page.get_by_test_id("count-sent")).to_have_text("6")
    screenshot("marketing-3-sent")
    with tenant_context(org.pk):
        campaign = Campaign.objects.get(name="Spring webinar")
        assert EmailSend.objects.filter(campaign_id=campaign.pk, status="sent").count() == 6

    # 3. Ada's email: her name merged in, a tracked link and a one-click unsubscribe header.
    message = _message_to(outbox, "ada@engine.example")
    assert message["Subject"] == "Ada, join us on Thursday"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Hi Ada," in html
    link = re.search(r'href="([^"]*/m/c/[^"]+)"', html).group(1)
    assert link.startswith(live_server.url) and target not in link
    page.goto(link)
    page.wait_for_url(re.compile(r"/(accounts/login/)?$"))

    # 4. The click is on Ada's timeline and in the campaign's funnel.
    with tenant_context(org.pk):
        clicked = Interaction.objects.filter(customer_id=ada.pk, interaction_type="email_clicked").get()
        assert clicked.campaign_id == campaign.pk
    page.goto(f"{live_server.url}/customers/{ada.pk}/")
    expect(page.get_by_test_id("timeline")).to_contain_text("Email clicked")
    screenshot("marketing-4-timeline")
    page.goto(f"{live_server.url}/marketing/campaigns/{campaign.pk}/")
    funnel = page.get_by_test_id("funnel-table")
    expect(funnel.locator("tr[data-stage=sent] [data-testid=stage-count]")).to_have_text("6")
    expect(funnel.locator("tr[data-stage=clicked] [data-testid=stage-count]")).to_have_text("1")

    expect(page.locator("canvas[data-chart=campaign-funnel]")).to_be_visible()
    screenshot("marketing-5-funnel")
    assert page.js_errors == []
