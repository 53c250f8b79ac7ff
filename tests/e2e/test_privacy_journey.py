"""A data subject's privacy requests in a real browser, with a real Celery worker: an access request through
the organization's public form, confirmed with the emailed code, processed by a staff admin from the
privacy queue, and the export downloaded through the emailed link (a ZIP whose data.json holds the
subject's email); then an erasure request the same way, after which the customer's page shows the
pseudonym instead of the name."""

from __future__ import annotations

import email
import json
import re
import tempfile
import time
import zipfile
from email import policy
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from playwright.sync_api import expect

from compliance.models import GdprRequest, RequestStatus
from crm.tenancy import tenant_context
from customers.models import Customer
from tests import factories
from tests.celery_worker import running_worker

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CODE = re.compile(r"\b[A-Z0-9]{4}-[A-Z0-9]{4}\b")
SUBJECT_EMAIL = "ada@engine.example"
# Screenshots to look at (not committed): the public form, the queue, the erased customer.
SHOTS = Path(tempfile.gettempdir())


def _sign_in(page, base: str, email_address: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email_address)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def _messages_to(outbox: Path, address: str) -> list[tuple[str, str]]:
    """(subject, text) of every email to `address`: the live server's (Django's locmem outbox, this
    process) and the worker's (files in `outbox`), in the order they were sent within each."""
    found = [(m.subject, m.body) for m in mail.outbox if address in m.to]
    for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["To"] == address:
            found.append((str(message["Subject"]), message.get_body(preferencelist=("plain",)).get_content()))
    return found


def _bodies(outbox: Path, address: str) -> set[str]:
    return {body for _subject, body in _messages_to(outbox, address)}


def _wait_for_message(
    outbox: Path, address: str, pattern: re.Pattern, seen: set[str], timeout: float = 30.0
) -> str:
    """The first match of `pattern` in an email to `address` that is not one of the `seen` ones."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _subject, body in _messages_to(outbox, address):
            match = pattern.search(body) if body not in seen else None
            if match:
                return match.group(0)
        time.sleep(0.2)
    raise AssertionError(f"no new email to {address} matching {pattern.pattern}")


@pytest.fixture
def outbox():
    return Path(tempfile.mkdtemp(prefix="crm-e2e-privacy-outbox-"))


@pytest.fixture
def media_root(settings):
    root = Path(tempfile.mkdtemp(prefix="crm-e2e-privacy-media-"))
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def worker(live_server, outbox, media_root):
    """A real worker running the exports and erasures, mailing into `outbox`, storing exports where the
    live server reads them, and building links to the live server."""
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.marketing.send_worker_settings",
        "CRM_TEST_OUTBOX": str(outbox),
        "CRM_TEST_MAIL_DELAY": "0",
        "CRM_BASE_URL": live_server.url,
        "MEDIA_ROOT": str(media_root),
    }
    with running_worker(env=env, queue=settings.CELERY_TASK_DEFAULT_QUEUE) as started:
        yield started


def _submit_and_verify(subject_page, base: str, outbox: Path, *, choice: str, name: str) -> str:
    """Fill in the public form as the data subject, read the code from the email, confirm it; returns the
    page's text."""
    seen = _bodies(outbox, SUBJECT_EMAIL)
    subject_page.goto(f"{base}/privacy-request/journey-privacy/")
    subject_page.locator(f"input[name=request][value='{choice}']").check()
    subject_page.get_by_label("Your name").fill(name)
    subject_page.get_by_label("Your email address").fill(SUBJECT_EMAIL)
    subject_page.get_by_role("button", name="Send request").click()
    subject_page.wait_for_url(re.compile(r"/privacy-request/journey-privacy/verify/[0-9a-f-]+/$"))
    expect(subject_page.get_by_role("heading", name="Check your email")).to_be_visible()
    subject_page.get_by_label("Code from the email").fill("WRONG-CODE")
    subject_page.get_by_role("button", name="Confirm").click()
    expect(subject_page.get_by_test_id("privacy-code-error")).to_contain_text("4 attempts left")
    subject_page.screenshot(path=str(SHOTS / "privacy-verify.png"), full_page=True)
    code = _wait_for_message(outbox, SUBJECT_EMAIL, CODE, seen)
    subject_page.get_by_label("Code from the email").fill(code)
    subject_page.get_by_role("button", name="Confirm").click()
    confirmed = subject_page.get_by_test_id("privacy-verified")
    expect(confirmed).to_contain_text("Your email address is confirmed")
    subject_page.screenshot(path=str(SHOTS / "privacy-verified.png"), full_page=True)
    return confirmed.inner_text()


def _process_from_queue(page, base: str, reference: str) -> None:
    page.goto(f"{base}/")
    page.locator(".sidebar-nav").get_by_role("link", name="Privacy requests").click()
    row = page.locator(f"[data-testid=queue-row][data-reference='{reference}']")
    expect(row).to_be_visible()
    row.get_by_role("link", name=reference).click()
    expect(page.get_by_test_id("identity")).to_contain_text("Verified")
    page.get_by_test_id("process").click()
    # The worker runs the job; the page polls and reloads itself when it is done.
    expect(page.get_by_test_id("request-result")).to_be_visible(timeout=60_000)
    expect(page.locator("h1.page-title")).to_contain_text("Completed")


def test_privacy_journey(live_server, worker, outbox, browser, page, settings):
    settings.CRM_BASE_URL = live_server.url
    base = live_server.url
    org = factories.organization(slug="journey-privacy", name="Journey Privacy Ltd")
    factories.user(org, role="admin", first_name="Priya", email="priya@journey-privacy.test")
    ada = factories.customer(org, first_name="Ada", last_name="Lovelace", email=SUBJECT_EMAIL, city="London")
    page.set_default_timeout(20_000)
    subject_context = browser.new_context(viewport={"width": 1280, "height": 900})
    subject_page = subject_context.new_page()
    subject_page.set_default_timeout(20_000)
    subject_errors = []
    subject_page.on("pageerror", lambda error: subject_errors.append(str(error)))

    # 1. The data subject asks for a copy of their data and confirms the code from the email.
    subject_page.goto(f"{base}/privacy-request/journey-privacy/")
    expect(subject_page.get_by_role("heading", level=1)).to_contain_text("Journey Privacy Ltd")
    subject_page.screenshot(path=str(SHOTS / "privacy-public-form.png"), full_page=True)
    text = _submit_and_verify(subject_page, base, outbox, choice="gdpr:access", name="Ada Lovelace")
    with tenant_context(org.pk):
        access = GdprRequest.objects.get(request_type=GdprRequest.Type.ACCESS)
        assert access.status == RequestStatus.PROCESSING and access.customer_id == ada.pk
    assert str(access) in text

    # 2. A staff admin processes it from the privacy queue.
    _sign_in(page, base, "priya@journey-privacy.test")
    page.locator(".sidebar-nav").get_by_role("link", name="Privacy requests").click()
    expect(page.get_by_test_id("request-queue")).to_contain_text(str(access))
    page.screenshot(path=str(SHOTS / "privacy-queue.png"), full_page=True)
    seen = _bodies(outbox, SUBJECT_EMAIL)
    _process_from_queue(page, base, str(access))

    # 3. The subject follows the emailed link and gets a ZIP with their data.
    link = _wait_for_message(
        outbox, SUBJECT_EMAIL, re.compile(r"https?://\S+/privacy-request/download/\S+?/"), seen
    )
    assert link.startswith(base)
    subject_page.goto(f"{base}/privacy-request/journey-privacy/")  # an http(s) page to follow the link from
    subject_page.evaluate(
        "link => { const a = document.createElement('a'); a.href = link; a.textContent = 'download';"
        " a.id = 'export-link'; document.body.prepend(a); }",
        link,
    )
    with subject_page.expect_download() as download_info:
        subject_page.locator("#export-link").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(download.path()) as archive:
        names = archive.namelist()
        data = json.loads(archive.read("data.json"))
    assert "data.json" in names and any(name.endswith(".csv") for name in names)
    assert SUBJECT_EMAIL in json.dumps(data)
    assert "Lovelace" in json.dumps(data)

    # 4. Then an erasure request for the same customer, the same way.
    _submit_and_verify(subject_page, base, outbox, choice="gdpr:erase", name="Ada Lovelace")
    with tenant_context(org.pk):
        erase = GdprRequest.objects.get(request_type=GdprRequest.Type.ERASE)
        assert erase.customer_id == ada.pk
    _process_from_queue(page, base, str(erase))
    expect(page.get_by_test_id("erasure-receipt")).to_be_visible()

    # 5. The customer's page shows the pseudonym, not the name.
    with tenant_context(org.pk):
        erased = Customer.objects.get(pk=ada.pk)
    assert "Lovelace" not in erased.display_name and "Ada" not in erased.display_name
    page.goto(f"{base}/customers/{ada.pk}/")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(erased.display_name)
    expect(page.locator("main")).not_to_contain_text("Lovelace")
    expect(page.locator("main")).not_to_contain_text(SUBJECT_EMAIL)
    page.screenshot(path=str(SHOTS / "privacy-erased-customer.png"), full_page=True)

    subject_context.close()
    assert subject_errors == []
    assert page.js_errors == [], "\n".join(page.js_errors)
