"""Support email going out: an agent's public reply, and the automated response to a new email ticket.

Both carry the ticket's reference two ways:
- in the subject, readable: "Re: <subject> [T-000042]";
- signed, in the Message-ID (and an `X-CRM-Ticket` header): "T-000042.<hmac>", where the HMAC (Django's
  `salted_hmac` with SECRET_KEY) covers the organization and the ticket's id. Mail clients copy our
  Message-ID into the In-Reply-To / References of the customer's answer, so an answer carries a token only
  someone who received our email can know. support/email_in.py trusts that token whoever the sender is;
  the readable subject token only when the sender is the ticket's customer (see docs/support.md).

Sending happens after the writing transaction commits (`transaction.on_commit` in the services), each in
its own tenant context. A reply's Message-ID is stored on the message in the same transaction as the send:
if sending fails, nothing is stored and the reply can be sent again; once stored, it is never sent twice.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from crm.models import Organization
from crm.tenancy import tenant_context
from support.models import Ticket, TicketMessage

logger = logging.getLogger(__name__)

# Customers answer above this line; support/email_in.py drops what is below it (our quoted email).
REPLY_MARKER = "##- Please type your reply above this line -##"
SIGNED_REFERENCE = re.compile(r"\bT-(\d{1,9})\.([0-9a-f]{24})\b", re.IGNORECASE)
_SALT = "support.mailing.ticket-reference"
MAX_REFERENCES = 20


def _signature(organization_id: uuid.UUID, ticket_id: uuid.UUID) -> str:
    return salted_hmac(_SALT, f"{organization_id}:{ticket_id}", algorithm="sha256").hexdigest()[:24]


def reference_token(ticket: Ticket) -> str:
    """ "T-000042.<hmac>": the ticket's number, signed for its organization and id."""
    return f"{ticket.ticket_number}.{_signature(ticket.organization_id, ticket.pk)}"


def signature_matches(ticket: Ticket, signature: str) -> bool:
    return constant_time_compare(_signature(ticket.organization_id, ticket.pk), (signature or "").lower())


def subject_token(ticket: Ticket) -> str:
    return f"[{ticket.ticket_number}]"


def _one_line(text: str) -> str:
    return " ".join((text or "").split())


def reply_subject(ticket: Ticket) -> str:
    return f"Re: {_one_line(ticket.subject)} {subject_token(ticket)}"


def support_address(organization: Organization) -> str:
    """Where customers write to: the organization's own setting, else SUPPORT_REPLY_TO, else the sender."""
    configured = (organization.settings or {}).get("support_email", "")
    return configured or settings.SUPPORT_REPLY_TO or settings.DEFAULT_FROM_EMAIL


def _domain() -> str:
    address = parseaddr(settings.SUPPORT_REPLY_TO or settings.DEFAULT_FROM_EMAIL)[1]
    return address.rpartition("@")[2] or "crm.invalid"


def new_message_id(ticket: Ticket) -> str:
    """A fresh Message-ID carrying the signed reference (replies quote it back in In-Reply-To)."""
    return f"<{reference_token(ticket)}.{secrets.token_hex(6)}@{_domain()}>"


def _sender(organization: Organization) -> str:
    return formataddr((f"{organization.name} Support", parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))


def _recipient(ticket: Ticket) -> str:
    customer = ticket.customer
    if not customer.email or customer.erased_at or customer.anonymized_at:
        return ""
    name = " ".join(part for part in (customer.first_name, customer.last_name) if part)
    return formataddr((name, customer.email))


def _thread_headers(ticket: Ticket, *, own_message_id: str) -> dict[str, str]:
    """In-Reply-To: the customer's last email; References: the thread's email ids, oldest first."""
    ids = list(
        TicketMessage.objects.filter(organization_id=ticket.organization_id, ticket=ticket)
        .exclude(email_message_id="")
        .order_by("-created_at", "-id")
        .values_list("email_message_id", "from_customer")[:MAX_REFERENCES]
    )
    headers = {"Message-ID": own_message_id, "X-CRM-Ticket": reference_token(ticket)}
    customer_ids = [message_id for message_id, from_customer in ids if from_customer]
    if customer_ids:
        headers["In-Reply-To"] = customer_ids[0]
    references = [message_id for message_id, _ in reversed(ids) if message_id != own_message_id]
    if references:
        headers["References"] = " ".join(references)
    return headers


def kb_article_url(organization: Organization, article) -> str:
    path = reverse("kb:article", kwargs={"org_slug": organization.slug, "slug": article.slug})
    return f"{settings.CRM_BASE_URL}{path}"


def send_reply_email(*, message_id: uuid.UUID, organization_id: uuid.UUID) -> bool:
    """Email an agent's public reply to the ticket's customer, with its attachments. Returns whether an
    email went out (not for notes, customer messages, customers without an address, or replies sent
    already)."""
    with tenant_context(organization_id):
        message = (
            TicketMessage.objects.select_for_update(of=("self",))
            .select_related("ticket", "ticket__customer", "author")
            .filter(pk=message_id, organization_id=organization_id)
            .first()
        )
        if (
            message is None
            or message.kind != TicketMessage.Kind.REPLY
            or message.from_customer
            or message.email_message_id
        ):
            return False
        ticket = message.ticket
        recipient = _recipient(ticket)
        if not recipient:
            return False
        organization = Organization.objects.get(pk=organization_id)
        own_id = new_message_id(ticket)
        context = {
            "organization": organization,
            "ticket": ticket,
            "message": message,
            "agent_name": message.author.get_short_name() if message.author else organization.name,
            "marker": REPLY_MARKER,
        }
        email = EmailMultiAlternatives(
            subject=reply_subject(ticket),
            body=render_to_string("support/email/reply.txt", context),
            from_email=_sender(organization),
            to=[recipient],
            reply_to=[support_address(organization)],
            headers=_thread_headers(ticket, own_message_id=own_id),
        )
        email.attach_alternative(render_to_string("support/email/reply.html", context), "text/html")
        for attachment in message.attachments.all():
            with attachment.file.open("rb") as handle:
                email.attach(attachment.filename, handle.read(), attachment.content_type)
        # Stored first, sent second, one transaction: a failed send rolls the id back (sent again later),
        # a stored id means it went out (never sent twice).
        message.email_message_id = own_id
        message.save(update_fields=["email_message_id"])
        email.send()
    return True


def send_auto_reply(*, ticket_id: uuid.UUID, organization_id: uuid.UUID, in_reply_to: str = "") -> bool:
    """The automated response to a new ticket from email: the ticket number, and the three published
    articles most like the request, linked to the public knowledge base. Marked `Auto-Submitted:
    auto-replied` (RFC 3834) so well-behaved systems do not answer it."""
    from support.kb import suggest_articles

    with tenant_context(organization_id):
        ticket = (
            Ticket.objects.select_related("customer")
            .filter(pk=ticket_id, organization_id=organization_id)
            .first()
        )
        if ticket is None:
            return False
        recipient = _recipient(ticket)
        if not recipient:
            return False
        organization = Organization.objects.get(pk=organization_id)
        articles = [
            {"title": article.title, "url": kb_article_url(organization, article)}
            for article in suggest_articles(ticket=ticket, limit=3)
        ]
        context = {
            "organization": organization,
            "ticket": ticket,
            "customer_name": ticket.customer.first_name,
            "articles": articles,
            "marker": REPLY_MARKER,
            "help_center_url": f"{settings.CRM_BASE_URL}{reverse('kb:home', args=[organization.slug])}",
        }
        headers = {
            "Message-ID": new_message_id(ticket),
            "X-CRM-Ticket": reference_token(ticket),
            "Auto-Submitted": "auto-replied",
            "X-Auto-Response-Suppress": "All",
        }
        if in_reply_to:
            headers["In-Reply-To"] = in_reply_to
            headers["References"] = in_reply_to
        email = EmailMultiAlternatives(
            subject=reply_subject(ticket),
            body=render_to_string("support/email/auto_reply.txt", context),
            from_email=_sender(organization),
            to=[recipient],
            reply_to=[support_address(organization)],
            headers=headers,
        )
        email.attach_alternative(render_to_string("support/email/auto_reply.html", context), "text/html")
        email.send()
    return True
