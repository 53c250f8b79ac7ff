"""Agent replies go out by email (support/mailing.py): the subject token, the signed Message-ID stored on the
message, In-Reply-To the customer's last email, Reply-To the support address, attachments; sent once, after
commit; notes never."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from support import mailing
from support.email_in import ingest_email
from support.models import TicketMessage
from support.services.tickets import ticket_note, ticket_reply
from tests import factories

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _mail_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.SUPPORT_REPLY_TO = "help@acme.example"
    settings.DEFAULT_FROM_EMAIL = "CRM <no-reply@acme.example>"
    settings.SUPPORT_AUTO_REPLY = False


@pytest.fixture
def emailed_ticket(org_a):
    factories.customer(org_a, first_name="Pat", last_name="Known", email="pat@customer.example")
    return ingest_email((DATA / "new_from_known_customer.eml").read_bytes(), organization=org_a).ticket


@pytest.fixture
def agent(org_a):
    return factories.user(org_a, role="support_agent", first_name="Alex", last_name="Agent")


def test_an_agents_reply_is_emailed_with_the_token_and_threading_headers(
    org_a, agent, emailed_ticket, as_tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with as_tenant(org_a, agent):
            reply = ticket_reply(
                ticket=emailed_ticket,
                actor=agent,
                body="Could you try clearing your browser cache?\nThen export again.",
                attachments=[
                    SimpleUploadedFile("steps.pdf", b"%PDF-1.4 steps", content_type="application/pdf")
                ],
            )

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.subject == "Re: Cannot export my invoices [T-000001]"
    assert sent.to == ["Pat Known <pat@customer.example>"]
    assert sent.reply_to == ["help@acme.example"]
    assert sent.from_email == "Org A Support <no-reply@acme.example>"
    headers = sent.extra_headers
    assert headers["In-Reply-To"] == "<new-ticket-1@mail.customer.example>"
    assert headers["References"] == "<new-ticket-1@mail.customer.example>"
    with as_tenant(org_a):
        stored = TicketMessage.objects.get(pk=reply.pk)
        token = mailing.reference_token(emailed_ticket)
    assert stored.email_message_id == headers["Message-ID"]
    assert headers["Message-ID"].startswith(f"<{token}.") and headers["Message-ID"].endswith("@acme.example>")
    assert headers["X-CRM-Ticket"] == token
    assert sent.body.startswith(mailing.REPLY_MARKER)
    assert "Could you try clearing your browser cache?" in sent.body
    assert "Alex, Org A" in sent.body
    assert sent.attachments == [("steps.pdf", b"%PDF-1.4 steps", "application/pdf")]
    html, kind = sent.alternatives[0]
    assert kind == "text/html" and "cache?<br>Then export again." in html


def test_the_customers_answer_to_the_reply_threads_back_to_the_ticket(
    org_a, agent, emailed_ticket, as_tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with as_tenant(org_a, agent):
            ticket_reply(ticket=emailed_ticket, actor=agent, body="Please try again.")
    our_id = mail.outbox[0].extra_headers["Message-ID"]
    answer = (
        "From: pat@customer.example\nSubject: Re: Re: Cannot export\nMessage-ID: <answer@mail.customer.example>\n"
        f"In-Reply-To: {our_id}\nReferences: {our_id}\nContent-Type: text/plain\n\n"
        f"Done, it works.\n\n{mailing.REPLY_MARKER}\nPlease try again.\n"
    ).encode()

    result = ingest_email(answer, organization=org_a)

    assert result.action == "replied" and result.ticket.pk == emailed_ticket.pk
    assert result.message.body == "Done, it works."


def test_a_reply_is_sent_once_however_often_the_sender_runs(
    org_a, agent, emailed_ticket, as_tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with as_tenant(org_a, agent):
            reply = ticket_reply(ticket=emailed_ticket, actor=agent, body="Hello")
    assert mailing.send_reply_email(message_id=reply.pk, organization_id=org_a.pk) is False
    assert len(mail.outbox) == 1


def test_nothing_is_sent_before_commit_or_for_internal_notes(
    org_a, agent, emailed_ticket, as_tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with as_tenant(org_a, agent):
            ticket_reply(ticket=emailed_ticket, actor=agent, body="Hello")
    assert mail.outbox == [] and callbacks  # queued for after the commit

    with django_capture_on_commit_callbacks(execute=True):
        with as_tenant(org_a, agent):
            note = ticket_note(ticket=emailed_ticket, actor=agent, body="Internal only")
    assert mail.outbox == []
    assert mailing.send_reply_email(message_id=note.pk, organization_id=org_a.pk) is False


def test_a_failed_send_stores_no_message_id_so_it_can_be_retried(
    org_a, agent, emailed_ticket, as_tenant, django_capture_on_commit_callbacks, monkeypatch
):
    with django_capture_on_commit_callbacks(execute=False):
        with as_tenant(org_a, agent):
            reply = ticket_reply(ticket=emailed_ticket, actor=agent, body="Hello")

    def refuse(self, fail_silently=False):
        raise OSError("SMTP down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", refuse)
    with pytest.raises(OSError):
        mailing.send_reply_email(message_id=reply.pk, organization_id=org_a.pk)
    with as_tenant(org_a):
        assert TicketMessage.objects.get(pk=reply.pk).email_message_id == ""
    monkeypatch.undo()
    assert mailing.send_reply_email(message_id=reply.pk, organization_id=org_a.pk) is True


def test_a_customer_without_an_email_address_gets_no_email(
    org_a, agent, as_tenant, django_capture_on_commit_callbacks
):
    ticket = factories.ticket(org_a, customer=factories.customer(org_a, email=""), channel="phone")
    with django_capture_on_commit_callbacks(execute=True):
        with as_tenant(org_a, agent):
            ticket_reply(ticket=ticket, actor=agent, body="We called you back.")
    assert mail.outbox == []


def test_the_reference_signature_is_bound_to_the_ticket(org_a, as_tenant):
    one, two = factories.ticket(org_a), factories.ticket(org_a)
    with as_tenant(org_a):
        signature = mailing.reference_token(one).split(".")[1]
        assert mailing.signature_matches(one, signature)
        assert not mailing.signature_matches(two, signature)
        found = mailing.SIGNED_REFERENCE.search(mailing.new_message_id(one))
    assert found.group(1) == f"{one.number:06d}"
