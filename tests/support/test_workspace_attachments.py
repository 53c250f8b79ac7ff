"""Attachments from the composer: type and size checked (a renamed executable is refused by its first bytes),
errors shown beside the composer with nothing half-created, and downloads served only as attachments to
people who may see the ticket."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from crm.tenancy import system_context
from support.models import TicketAttachment, TicketMessage
from support.services import tickets as services
from tests import factories

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.SUPPORT_ATTACHMENT_MAX_BYTES = 1024


@pytest.fixture
def agent(org_a):
    return factories.user(org_a, role="support_agent")


def _post(client, ticket, *files, kind="reply"):
    return client.post(
        f"/support/tickets/{ticket.pk}/reply/",
        {"kind": kind, "body": "See attached.", "attachments": list(files)},
        HTTP_HX_REQUEST="true",
    )


def _nothing_saved(ticket) -> bool:
    with system_context():
        return (
            not TicketMessage.objects.filter(ticket=ticket).exists() and not TicketAttachment.objects.exists()
        )


def test_allowed_files_are_kept_with_their_name_type_and_size(client, login, org_a, agent):
    ticket = factories.ticket(org_a)
    login(agent)
    response = _post(
        client,
        ticket,
        SimpleUploadedFile("invoice.pdf", PDF, content_type="application/pdf"),
        SimpleUploadedFile("Screen Shot.PNG", PNG, content_type="image/png"),
        kind="note",
    )
    assert response.status_code == 200 and 'data-testid="sent"' in response.content.decode()
    with system_context():
        files = sorted(TicketAttachment.objects.values_list("filename", "content_type", "size"))
    assert files == [("Screen Shot.PNG", "image/png", len(PNG)), ("invoice.pdf", "application/pdf", len(PDF))]
    assert response.content.decode().count('data-testid="attachment"') == 2


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("setup.exe", b"MZ\x90\x00" + b"\x00" * 60, "files of this type are not accepted"),
        ("page.html", b"<script>alert(1)</script>", "files of this type are not accepted"),
        ("logo.svg", b"<svg onload=alert(1)>", "files of this type are not accepted"),
        ("invoice.pdf", b"MZ\x90\x00" + b"\x00" * 60, "does not look like a .pdf file"),  # renamed executable
        ("photo.png", b"GIF89a" + b"\x00" * 10, "does not look like a .png file"),
        ("big.pdf", b"%PDF-" + b"x" * 2000, "attachments may be at most"),
        ("noextension", b"hello", "files of this type are not accepted"),
    ],
)
def test_refused_files_are_named_beside_the_composer_and_nothing_is_saved(
    client, login, org_a, agent, name, content, error
):
    ticket = factories.ticket(org_a)
    login(agent)
    response = _post(client, ticket, SimpleUploadedFile(name, content))
    text = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="attachment-errors"' in text and error in text and name in text
    assert "See attached." in text  # the text typed is kept for another try
    assert _nothing_saved(ticket)
    with system_context():
        ticket.refresh_from_db()
    assert ticket.first_response_at is None and ticket.status == "new"


def test_one_bad_file_among_good_ones_refuses_the_whole_message(client, login, org_a, agent):
    ticket = factories.ticket(org_a)
    login(agent)
    _post(
        client,
        ticket,
        SimpleUploadedFile("ok.pdf", PDF),
        SimpleUploadedFile("evil.pdf", b"MZ\x90\x00"),
    )
    assert _nothing_saved(ticket)


def test_the_service_checks_files_too(org_a, agent):
    ticket = factories.ticket(org_a)
    from django.core.exceptions import ValidationError

    with system_context(), pytest.raises(ValidationError):
        services.ticket_note(
            ticket=ticket, actor=agent, body="x", attachments=[SimpleUploadedFile("a.exe", b"MZ")]
        )


def _attachment(org, agent):
    ticket = factories.ticket(org)
    with system_context():
        message = services.ticket_note(
            ticket=ticket, actor=agent, body="Log", attachments=[SimpleUploadedFile("trace.txt", b"line 1\n")]
        )
        return TicketAttachment.objects.get(message=message)


def test_downloads_are_attachments_never_rendered_inline(client, login, org_a, agent):
    attachment = _attachment(org_a, agent)
    login(factories.user(org_a, role="sales_rep"))  # anyone who may see the ticket
    response = client.get(f"/support/attachments/{attachment.pk}/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="trace.txt"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "text/plain"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == b"line 1\n"


def test_another_organizations_attachment_answers_404(client, login, org_a, org_b, admin_a):
    foreign = _attachment(org_b, factories.user(org_b, role="support_agent"))
    login(admin_a)
    assert client.get(f"/support/attachments/{foreign.pk}/").status_code == 404


def test_a_missing_file_answers_404(client, login, org_a, agent):
    attachment = _attachment(org_a, agent)
    attachment.file.storage.delete(attachment.file.name)
    login(agent)
    assert client.get(f"/support/attachments/{attachment.pk}/").status_code == 404
