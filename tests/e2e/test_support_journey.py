"""A support ticket's life in a real browser: it arrives by email, is routed to the only eligible agent, who
opens it from "My tickets", replies, adds an internal note, sets it pending (the SLA clock pauses) and
resolves it; the customer answers the CSAT survey from the emailed link without signing in, and the support
manager finds the answer in the support reports."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from playwright.sync_api import expect

from crm.tenancy import tenant_context
from support.email_in import ingest_email
from support.models import AgentProfile, Ticket, TicketEvent, TicketMessage
from support.services.settings import policy_create
from tests import factories
from tests.e2e.conftest import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

INBOUND = b"""From: Pat Known <pat@customer.example>
To: support@journey-support.example
Subject: Cannot export my invoices
Date: Tue, 03 Mar 2026 10:15:00 +0000
Message-ID: <journey-1@mail.customer.example>
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 8bit

Hello,

The invoice export button does nothing since yesterday. I need the invoices
for my accountant by Friday.

Pat
"""
REPLY = "Thanks Pat, I can reproduce it and I'm on it."
NOTE = "Export worker queue is stuck since 08:00; restarted it."
COMMENT = "Quick and clear, thank you!"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def _stored(org, pk) -> Ticket:
    with tenant_context(org.pk):
        return Ticket.objects.select_related("sla_policy").get(pk=pk)


def _status_event_at(org, pk, status: str) -> dt.datetime:
    with tenant_context(org.pk):
        return TicketEvent.objects.get(ticket_id=pk, kind=TicketEvent.Kind.STATUS, new_value=status).at


def _watch_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def _survey_email(outbox, timeout: float = 10.0):
    """The CSAT email, sent by the server thread after the resolution commits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in outbox if m.subject.startswith("How did we do?")]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no survey email; outbox: {[m.subject for m in outbox]}")


def test_an_emailed_ticket_is_routed_worked_paused_resolved_and_rated(
    live_server, browser, page, screenshot, settings, mailoutbox
):
    settings.CRM_BASE_URL = live_server.url  # the survey link in the email points at this server
    base = live_server.url
    org = factories.organization(slug="journey-support", name="Journey Support", time_zone="UTC")
    agent = factories.user(
        org, role="support_agent", first_name="Ann", last_name="Lee", email="ann@journey-support.test"
    )
    # Not eligible: a second agent who is not accepting tickets, and a support manager (managers supervise;
    # routing only picks support agents and admins). No admin in this organization.
    resting = factories.user(org, role="support_agent", first_name="Rob", last_name="Rest")
    factories.user(
        org, role="support_manager", first_name="Maya", last_name="Lind", email="maya@journey-support.test"
    )
    factories.customer(
        org, first_name="Pat", last_name="Known", email="pat@customer.example", lifecycle_stage="customer"
    )
    with tenant_context(org.pk):
        AgentProfile.objects.create(organization=org, user=resting, accepting=False)
        # A policy on calendar time, so the paused time counts whatever the hour the test runs at (on the
        # default business-hours calendar a night run would pause zero working minutes).
        policy_create(
            organization=org,
            actor=None,
            name="Around the clock",
            first_response_minutes=60,
            resolution_minutes=8 * 60,
        )

    # 1. The email arrives (what `manage.py ingest_email` and the inbound webhook call).
    result = ingest_email(INBOUND, organization=org)
    assert result.action == "created" and not result.customer_created
    ticket = _stored(org, result.ticket.pk)
    assert ticket.assigned_to_id == agent.pk
    assert ticket.sla_policy.name == "Around the clock"
    number = ticket.ticket_number

    # 2. The agent finds it in "My tickets" (the default view of someone who works tickets).
    page.set_default_timeout(15_000)
    _sign_in(page, base, "ann@journey-support.test")
    page.locator(".sidebar-nav").get_by_role("link", name="Tickets").click()
    page.wait_for_selector("[data-testid=ticket-queue]")
    expect(page.locator(".view-link.active")).to_have_attribute("data-view", "mine")
    row = page.locator("table tbody tr", has_text=number)
    expect(row).to_have_count(1)
    expect(row.locator("[data-testid=sla-state]")).to_have_attribute("data-state", "ok")
    screenshot("support-1-queue")
    row.get_by_role("link", name="Cannot export my invoices").click()
    page.wait_for_selector("[data-testid=ticket-page]")
    expect(page.locator("[data-testid=ticket-number]")).to_have_text(number)
    expect(page.locator("[data-testid=assignee]")).to_contain_text("Ann Lee")
    expect(page.locator("[data-testid=ticket-status]")).to_have_text("New")

    # 3. A public reply, then an internal note, each in one htmx step.
    page.locator("#composer-body").fill(REPLY)
    page.locator("[data-testid=send]").click()
    expect(page.locator("[data-testid=sent]")).to_have_text("Reply sent.")
    page.locator("label[for=kind-note]").click()
    page.locator("#composer-body").fill(NOTE)
    expect(page.locator("[data-testid=send]")).to_have_text("Add note")
    page.locator("[data-testid=send]").click()
    expect(page.locator("[data-testid=sent]")).to_have_text("Note added.")
    reply = page.locator("[data-testid=message][data-kind=reply]", has_text=REPLY)
    note = page.locator("[data-testid=message][data-kind=note]", has_text=NOTE)
    expect(reply).to_have_count(1)
    expect(note).to_have_count(1)
    expect(reply).to_have_class(re.compile(r"\bmsg-agent\b"))
    expect(reply.locator(".msg-label-public")).to_have_text("Public reply")
    expect(reply.locator("[data-testid=note-label]")).to_have_count(0)
    expect(note).to_have_class(re.compile(r"\bmsg-note\b"))
    expect(note.locator("[data-testid=note-label]")).to_have_text("Internal note")
    expect(page.locator("[data-testid=ticket-status]")).to_have_text("Open")  # the reply opened it
    with tenant_context(org.pk):
        kinds = dict(
            TicketMessage.objects.filter(ticket_id=ticket.pk, author=agent).values_list("body", "kind")
        )
    assert kinds == {REPLY: "reply", NOTE: "note"}
    emailed = "\n".join(m.body for m in mailoutbox)
    assert REPLY in emailed and NOTE not in emailed  # the customer gets the reply, never the note
    assert _stored(org, ticket.pk).first_response_at is not None

    # 4. Pending: the clock pauses, and the stored deadline stays put while it is paused.
    page.locator("#prop-status").select_option("pending")  # submits itself (data-autosubmit)
    expect(page.locator("[data-testid=ticket-status]")).to_have_text("Pending (waiting on customer)")
    badge = page.locator("[data-testid=sla-strip] [data-testid=sla-state]")
    expect(badge).to_have_attribute("data-state", "paused")
    paused = _stored(org, ticket.pk)
    assert paused.sla_paused_since is not None
    due_when_paused = paused.resolution_due_at
    page.wait_for_timeout(3_000)
    page.reload()
    expect(badge).to_have_attribute("data-state", "paused")
    resolution = page.locator("[data-testid=deadline]", has_text="Resolution")
    expect(resolution).to_contain_text("clock paused")
    assert dt.datetime.fromisoformat(resolution.locator("time").get_attribute("datetime")) == due_when_paused
    assert _stored(org, ticket.pk).resolution_due_at == due_when_paused
    screenshot("support-2-ticket")

    # 5. Resolved: the clock stops, the deadline moved by exactly the time spent paused.
    page.locator("[data-testid=resolve]").click()
    expect(page.locator("[data-testid=ticket-status]")).to_have_text("Resolved")
    expect(badge).to_have_attribute("data-state", "met")
    resolved = _stored(org, ticket.pk)
    paused_for = _status_event_at(org, ticket.pk, "resolved") - _status_event_at(org, ticket.pk, "pending")
    assert paused_for >= dt.timedelta(seconds=3)
    assert abs((resolved.resolution_due_at - due_when_paused) - paused_for) < dt.timedelta(seconds=1)
    assert resolved.sla_paused_since is None and resolved.resolved_at is not None
    assert page.js_errors == []

    # 6. The customer opens the survey link from the email, in a fresh browser without a session.
    survey_mail = _survey_email(mailoutbox)
    assert survey_mail.to == ["Pat Known <pat@customer.example>"]
    assert number in survey_mail.subject
    link = re.search(rf"{re.escape(base)}/survey/[^/\s?]+/", survey_mail.body).group(0)
    customer_context = browser.new_context(viewport={"width": 1024, "height": 760})
    survey_page = customer_context.new_page()
    survey_errors = _watch_errors(survey_page)
    survey_page.set_default_timeout(15_000)
    survey_page.goto(link)
    assert "/accounts/login/" not in survey_page.url
    expect(survey_page.locator("[data-testid=survey-ticket]")).to_contain_text(number)
    survey_page.locator("label[for=score-4]").click()
    survey_page.locator("textarea[name=comment]").fill(COMMENT)
    ARTIFACTS.mkdir(exist_ok=True)
    survey_page.screenshot(path=str(ARTIFACTS / "support-3-survey.png"), full_page=True)
    survey_page.get_by_role("button", name="Send my answer").click()
    expect(survey_page.locator("[data-testid=survey-done]")).to_contain_text("4 out of 5")
    assert survey_errors == []
    customer_context.close()
    assert _stored(org, ticket.pk).satisfaction_rating == 4

    # 7. The support manager sees the answer in the reports: counted, and its comment listed with the ticket.
    page.locator(".user-menu-toggle").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/accounts/login/")
    _sign_in(page, base, "maya@journey-support.test")
    page.locator(".sidebar-nav").get_by_role("link", name="Support reports").click()
    page.wait_for_selector("[data-testid=totals]")
    expect(page.locator("[data-testid=total-csat-responses]")).to_have_attribute("data-value", "1")
    expect(page.locator("[data-testid=total-csat] .stat-value")).to_contain_text("4.00")
    answer = page.locator("[data-testid=answer]")
    expect(answer).to_have_count(1)
    expect(answer.locator("[data-testid=answer-score]")).to_have_text("CSAT 4/5")
    expect(answer.locator("[data-testid=answer-ticket]")).to_contain_text(number)
    expect(answer).to_contain_text(COMMENT)
    expect(answer).to_contain_text("Ann Lee")
    screenshot("support-4-reports")
    assert page.js_errors == []
