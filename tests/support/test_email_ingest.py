"""Email to ticket (support/email_in.py): new tickets, threading by subject token, by In-Reply-To and by our
signed reference, unknown senders, attachments kept and refused, malformed messages, duplicates, spoofing
and automatic replies. The messages are the .eml files in tests/support/data/."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from customers.models import Customer, Interaction
from support import mailing
from support.email_in import MalformedEmail, html_to_text, ingest_email, parse_email
from support.models import Status, Ticket, TicketAttachment, TicketMessage
from tests import factories

DATA = Path(__file__).parent / "data"


def eml(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture
def pat(org_a):
    return factories.customer(
        org_a, first_name="Pat", last_name="Known", email="pat@customer.example", lifecycle_stage="customer"
    )


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _counts(as_tenant, org) -> dict[str, int]:
    with as_tenant(org):
        return {
            "tickets": Ticket.objects.count(),
            "messages": TicketMessage.objects.count(),
            "customers": Customer.objects.count(),
            "interactions": Interaction.objects.count(),
            "attachments": TicketAttachment.objects.count(),
        }


def test_an_email_from_a_known_customer_opens_an_email_ticket_with_the_mail_as_first_message(
    org_a, pat, as_tenant
):
    result = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)

    assert result.action == "created"
    assert result.customer == pat and not result.customer_created
    with as_tenant(org_a):
        ticket = Ticket.objects.get()
        assert ticket.ticket_number == "T-000001"
        assert ticket.customer_id == pat.pk
        assert ticket.channel == "email"
        assert ticket.subject == "Cannot export my invoices"
        assert "invoice export button does nothing" in ticket.description
        first = TicketMessage.objects.get(ticket=ticket)
        assert first.from_customer and first.kind == "reply"
        assert first.email_message_id == "<new-ticket-1@mail.customer.example>"
        # The interaction is on the customer's timeline (logged by the ticket service).
        logged = Interaction.objects.filter(customer=pat, interaction_type="support_ticket")
        assert logged.count() == 1
        assert logged.get().channel == "email"
    assert "Created ticket T-000001 for pat@customer.example." in result.summary()


def test_a_reply_with_the_subject_token_from_the_customer_threads_to_its_ticket_and_reopens_it(
    org_a, pat, as_tenant
):
    from support.services.tickets import ticket_set_status

    created = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)
    with as_tenant(org_a):
        ticket_set_status(ticket=created.ticket, actor=None, status=Status.PENDING)

    result = ingest_email(eml("reply_by_subject_token.eml"), organization=org_a)

    assert result.action == "replied"
    assert result.ticket.pk == created.ticket.pk
    with as_tenant(org_a):
        assert Ticket.objects.count() == 1
        reply = TicketMessage.objects.get(email_message_id="<reply-subject-1@mail.customer.example>")
        assert reply.from_customer and reply.ticket_id == created.ticket.pk
        # The quoted history below "On ... wrote:" and our marker is not kept.
        assert reply.body == "It works again after clearing the cache, thank you!"
        # The customer answered a pending ticket: it is open again.
        assert Ticket.objects.get().status == Status.OPEN


def test_a_reply_threads_by_in_reply_to_a_stored_message_id(org_a, pat, as_tenant):
    created = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)

    result = ingest_email(eml("reply_by_in_reply_to.eml"), organization=org_a)

    assert result.action == "replied"
    assert result.ticket.pk == created.ticket.pk
    with as_tenant(org_a):
        assert Ticket.objects.count() == 1
        assert TicketMessage.objects.filter(ticket=created.ticket, from_customer=True).count() == 2


def test_an_unknown_sender_becomes_a_lead_from_email_with_a_new_ticket(org_a, as_tenant):
    result = ingest_email(eml("unknown_sender.eml"), organization=org_a)

    assert result.action == "created" and result.customer_created
    with as_tenant(org_a):
        lead = Customer.objects.get(email="robin@newcomer.example")
        assert (lead.first_name, lead.last_name) == ("Robin", "Newcomer")
        assert lead.lifecycle_stage == "lead"
        assert lead.source == "email"
        assert Ticket.objects.get().customer_id == lead.pk
    assert "(new lead)" in result.summary()


def test_a_second_email_from_the_new_lead_reuses_the_customer(org_a, as_tenant):
    ingest_email(eml("unknown_sender.eml"), organization=org_a)
    again = eml("unknown_sender.eml").replace(
        b"<first-contact@newcomer.example>", b"<second@newcomer.example>"
    )
    again = again.replace(b"Subject: Do you", b"Subject: Also, do you")

    result = ingest_email(again, organization=org_a)

    assert result.action == "created" and not result.customer_created
    with as_tenant(org_a):
        assert Customer.objects.filter(email="robin@newcomer.example").count() == 1
        assert Ticket.objects.count() == 2


def test_attachments_are_kept_when_allowed_and_refused_ones_are_listed_in_an_internal_note(
    org_a, pat, as_tenant
):
    result = ingest_email(eml("with_attachments.eml"), organization=org_a)

    assert result.action == "created"
    assert result.attachments_kept == ["error-report.pdf"]
    assert [name for name, _ in result.attachments_refused] == ["fix-it.exe", "screenshot.png"]
    with as_tenant(org_a):
        kept = TicketAttachment.objects.get()
        assert kept.filename == "error-report.pdf"
        assert kept.content_type == "application/pdf"
        assert kept.message.email_message_id == "<with-attachments@mail.customer.example>"
        with kept.file.open("rb") as handle:
            assert handle.read().startswith(b"%PDF-1.4")
        note = TicketMessage.objects.get(kind="note")
        assert note.ticket_id == result.ticket.pk and not note.from_customer
        assert "fix-it.exe" in note.body and "not accepted" in note.body
        # The path in "../../screenshot.png" is dropped; the file is refused because it is not a PNG.
        assert "screenshot.png" in note.body and "does not look like a .png file" in note.body
        # The text/plain alternative is the body; the HTML alternative is not an attachment.
        assert result.ticket.description == "The export fails with the error in the attached report."


def test_an_html_only_email_is_reduced_to_text_without_scripts_or_styles(org_a, pat, as_tenant):
    result = ingest_email(eml("html_only.eml"), organization=org_a)

    body = result.ticket.description
    assert body == "How do I add a table to a report?\n\n- first\n- second"
    assert "alert" not in body and "color" not in body


def test_html_to_text_keeps_line_structure():
    assert html_to_text("<p>One<br>Two</p><div>Three &amp; four</div>") == "One\nTwo\n\nThree & four"


@pytest.mark.parametrize(
    "raw, message",
    [
        (eml("malformed_no_from.eml"), "no From header"),
        (b"", "empty"),
        (b"\x00\x01\x02 not an email at all", "not an email"),
        (b"From: not-an-address\r\nSubject: x\r\n\r\nbody", "no usable From address"),
    ],
)
def test_a_malformed_message_is_a_clear_error_and_creates_nothing(org_a, as_tenant, raw, message):
    before = _counts(as_tenant, org_a)
    with pytest.raises(MalformedEmail, match=message):
        ingest_email(raw, organization=org_a)
    assert _counts(as_tenant, org_a) == before


def test_a_failure_half_way_leaves_nothing_half_created(org_a, as_tenant, monkeypatch):
    """All or nothing: an error after the lead and the ticket were written rolls both back."""
    from support import email_in

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(email_in, "_attach", broken)
    before = _counts(as_tenant, org_a)
    with pytest.raises(RuntimeError):
        ingest_email(eml("unknown_sender.eml"), organization=org_a)
    assert _counts(as_tenant, org_a) == before


def test_the_same_message_id_twice_is_ignored(org_a, pat, as_tenant):
    first = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)
    after_first = _counts(as_tenant, org_a)

    second = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)

    assert first.action == "created"
    assert second.action == "duplicate"
    assert _counts(as_tenant, org_a) == after_first
    assert "already ingested" in second.summary()


def test_a_message_without_message_id_delivered_twice_is_one_ticket(org_a, pat, as_tenant):
    raw = eml("new_from_known_customer.eml").replace(
        b"Message-ID: <new-ticket-1@mail.customer.example>\n", b""
    )
    assert ingest_email(raw, organization=org_a).action == "created"
    assert ingest_email(raw, organization=org_a).action == "duplicate"
    assert _counts(as_tenant, org_a)["tickets"] == 1


def test_a_stranger_using_a_ticket_number_in_the_subject_gets_a_new_ticket_not_the_customers(
    org_a, pat, as_tenant
):
    original = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)

    result = ingest_email(eml("stranger_with_subject_token.eml"), organization=org_a)

    assert result.action == "created"
    assert result.ticket.pk != original.ticket.pk
    with as_tenant(org_a):
        assert TicketMessage.objects.filter(ticket=original.ticket).count() == 1  # untouched
        assert result.ticket.customer.email == "mallory@attacker.example"
        note = TicketMessage.objects.get(ticket=result.ticket, kind="note")
        assert "T-000001 was ignored" in note.body and "not that ticket's customer" in note.body


def test_a_dmarc_failure_stops_threading_by_sender(org_a, pat, as_tenant):
    ingest_email(eml("new_from_known_customer.eml"), organization=org_a)
    forged = b"Authentication-Results: mx.crm.example; dmarc=fail header.from=customer.example\n" + eml(
        "reply_by_subject_token.eml"
    )

    result = ingest_email(forged, organization=org_a)

    assert result.action == "created"
    assert any("DMARC" in note for note in result.notes)


def test_our_signed_reference_threads_a_reply_from_another_address_and_says_so(org_a, pat, as_tenant):
    created = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)
    with as_tenant(org_a):
        our_id = mailing.new_message_id(created.ticket)
    raw = (
        "From: colleague@customer.example\n"
        "Subject: Re: your question\n"
        "Message-ID: <colleague-1@customer.example>\n"
        f"In-Reply-To: {our_id}\n"
        f"References: <new-ticket-1@mail.customer.example> {our_id}\n"
        "Content-Type: text/plain\n\n"
        "I am Pat's colleague: the export works for me.\n"
    ).encode()

    result = ingest_email(raw, organization=org_a)

    assert result.action == "replied" and result.ticket.pk == created.ticket.pk
    with as_tenant(org_a):
        note = TicketMessage.objects.get(ticket=created.ticket, kind="note")
    assert "colleague@customer.example" in note.body


def test_a_tampered_signed_reference_does_not_thread(org_a, pat, as_tenant):
    created = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)
    with as_tenant(org_a):
        token = mailing.reference_token(created.ticket)
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    raw = (
        f"From: mallory@attacker.example\nSubject: hi\nMessage-ID: <t@attacker.example>\n"
        f"X-CRM-Ticket: {tampered}\nContent-Type: text/plain\n\nLet me in.\n"
    ).encode()

    result = ingest_email(raw, organization=org_a)

    assert result.action == "created" and result.ticket.pk != created.ticket.pk


def test_a_signed_reference_of_another_organization_does_not_thread(org_a, org_b, as_tenant):
    """The HMAC covers the organization: org A's token for its T-000001 means nothing in org B."""
    factories.customer(org_b, email="pat@customer.example")
    theirs = ingest_email(eml("new_from_known_customer.eml"), organization=org_b)
    factories.customer(org_a, email="other@customer.example")
    with as_tenant(org_b):
        token = mailing.reference_token(theirs.ticket)
    raw = (
        f"From: other@customer.example\nSubject: hello\nMessage-ID: <x-org@customer.example>\n"
        f"X-CRM-Ticket: {token}\nContent-Type: text/plain\n\nHello.\n"
    ).encode()
    ours = ingest_email(eml("new_from_known_customer.eml").replace(b"pat@", b"other@"), organization=org_a)

    result = ingest_email(raw, organization=org_a)

    assert result.action == "created" and result.ticket.pk != ours.ticket.pk


def test_a_reply_to_a_closed_ticket_opens_a_follow_up(org_a, pat, as_tenant):
    from support.services.tickets import ticket_set_status

    created = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)
    with as_tenant(org_a):
        ticket_set_status(ticket=created.ticket, actor=None, status=Status.CLOSED)

    result = ingest_email(eml("reply_by_subject_token.eml"), organization=org_a)

    assert result.action == "created" and result.ticket.pk != created.ticket.pk
    assert any("Follow-up to T-000001" in note for note in result.notes)


def test_an_out_of_office_reply_becomes_an_internal_note_and_changes_no_status(org_a, pat, as_tenant):
    from support.services.tickets import ticket_set_status

    created = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)
    with as_tenant(org_a):
        ticket_set_status(ticket=created.ticket, actor=None, status=Status.PENDING)

    result = ingest_email(eml("out_of_office.eml"), organization=org_a)

    assert result.action == "noted"
    with as_tenant(org_a):
        ticket = Ticket.objects.get()
        assert ticket.status == Status.PENDING
        note = TicketMessage.objects.get(kind="note")
        assert "out of the office" in note.body


def test_an_automatic_message_about_no_ticket_is_ignored(org_a, as_tenant):
    raw = eml("unknown_sender.eml").replace(b"MIME-Version", b"Auto-Submitted: auto-replied\nMIME-Version")
    result = ingest_email(raw, organization=org_a)
    assert result.action == "ignored"
    assert _counts(as_tenant, org_a)["tickets"] == 0


def test_mail_from_our_own_address_is_ignored_as_a_loop(org_a, settings, as_tenant):
    settings.SUPPORT_REPLY_TO = "support@crm.example"
    raw = eml("unknown_sender.eml").replace(
        b'"Robin Newcomer" <robin@newcomer.example>', b"support@crm.example"
    )
    assert ingest_email(raw, organization=org_a).action == "ignored"
    assert _counts(as_tenant, org_a)["tickets"] == 0


def test_each_organization_threads_only_to_its_own_tickets(org_a, org_b, pat, as_tenant):
    factories.customer(org_b, email="pat@customer.example")
    ingest_email(eml("new_from_known_customer.eml"), organization=org_a)

    # The same reply delivered to org B's mailbox: org B has no T-000001, so it is a new ticket there.
    result = ingest_email(eml("reply_by_subject_token.eml"), organization=org_b)

    assert result.action == "created"
    assert _counts(as_tenant, org_a)["tickets"] == 1
    assert _counts(as_tenant, org_b)["tickets"] == 1


def test_the_new_ticket_gets_an_automated_response_with_suggested_published_articles(
    org_a, pat, as_tenant, django_capture_on_commit_callbacks
):
    factories.article(
        org_a, title="Exporting invoices as PDF", body="Open Billing, choose the invoices, export."
    )
    factories.article(
        org_a, title="Invoice export troubleshooting", body="If the export button does nothing ..."
    )
    factories.article(org_a, title="Invoice export draft", body="export invoices", status="draft")
    factories.article(org_a, title="Changing your password", body="Go to your profile.")

    with django_capture_on_commit_callbacks(execute=True):
        result = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)

    assert result.auto_reply
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["Pat Known <pat@customer.example>"]
    assert sent.subject == "Re: Cannot export my invoices [T-000001]"
    assert sent.extra_headers["Auto-Submitted"] == "auto-replied"
    assert sent.extra_headers["In-Reply-To"] == "<new-ticket-1@mail.customer.example>"
    assert "T-000001" in sent.body
    assert "Exporting invoices as PDF" in sent.body
    assert "Invoice export troubleshooting" in sent.body
    assert "/kb/org-a/exporting-invoices-as-pdf/" in sent.body
    assert "draft" not in sent.body.lower().split("automated")[0]
    assert "Changing your password" not in sent.body
    # The customer's answer to the automated response threads to the ticket by its signed Message-ID.
    answer = (
        "From: pat@customer.example\nSubject: Re: thanks\nMessage-ID: <a-1@mail.customer.example>\n"
        f"In-Reply-To: {sent.extra_headers['Message-ID']}\nContent-Type: text/plain\n\nThanks, that article helped.\n"
    ).encode()
    assert ingest_email(answer, organization=org_a).ticket.pk == result.ticket.pk


def test_the_automated_response_can_be_switched_off_per_organization(
    org_a, pat, as_system, django_capture_on_commit_callbacks
):
    with as_system():
        org_a.settings = {"support_auto_reply": False}
        org_a.save(update_fields=["settings"])
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest_email(eml("new_from_known_customer.eml"), organization=org_a)
    assert result.action == "created" and not result.auto_reply
    assert mail.outbox == []


def test_parse_email_reads_references_newest_first_after_in_reply_to():
    raw = (
        b"From: a@b.example\nMessage-ID: <m@b>\nIn-Reply-To: <p3@x>\n"
        b"References: <p1@x> <p2@x>\n <p3@x>\nSubject: s\n\nbody\n"
    )
    parsed = parse_email(raw)
    assert parsed.references == ["<p3@x>", "<p2@x>", "<p1@x>"]
    assert parsed.message_id == "<m@b>"


# --- the command ------------------------------------------------------------------------------------------


def test_the_command_ingests_a_file_and_prints_what_happened(org_a, pat, as_tenant):
    out = StringIO()
    call_command("ingest_email", str(DATA / "new_from_known_customer.eml"), org="org-a", stdout=out)
    assert "Created ticket T-000001 for pat@customer.example." in out.getvalue()
    assert _counts(as_tenant, org_a)["tickets"] == 1


def test_the_command_reads_standard_input(org_a, pat, as_tenant, monkeypatch):
    import io
    import sys

    class Stdin:
        buffer = io.BytesIO(eml("unknown_sender.eml"))

    monkeypatch.setattr(sys, "stdin", Stdin())
    out = StringIO()
    call_command("ingest_email", org="org-a", stdout=out)
    assert "(new lead)" in out.getvalue()


def test_the_command_refuses_a_malformed_message_and_creates_nothing(org_a, as_tenant):
    with pytest.raises(CommandError, match="Malformed message, nothing was created: The message has no From"):
        call_command("ingest_email", str(DATA / "malformed_no_from.eml"), org="org-a", stdout=StringIO())
    assert _counts(as_tenant, org_a)["tickets"] == 0


def test_the_command_refuses_an_unknown_organization(db):
    with pytest.raises(CommandError, match="No organization"):
        call_command("ingest_email", str(DATA / "unknown_sender.eml"), org="nope", stdout=StringIO())
