"""Email to ticket: one inbound message (raw RFC 5322 bytes) becomes a new ticket or a reply on its ticket.

`ingest_email(raw, organization=...)` is what `manage.py ingest_email` and a future inbound webhook call.

1. Parse (stdlib `email`, policy.default): sender, subject, Message-ID, In-Reply-To / References, the text
   body (text/plain preferred, else the HTML reduced to text; what follows our "reply above this line"
   marker, i.e. the quoted history, is dropped) and the attachments. No usable From address, or bytes
   that are not an email, raise `MalformedEmail` before anything is written.
2. In one transaction in the organization's tenant context (all or nothing):
   - a Message-ID already stored on a ticket message is a duplicate: ignored (a re-delivered message, or
     our own outgoing email fed back);
   - threading, strongest evidence first: a *signed* reference (the HMAC token our outgoing Message-ID and
     X-CRM-Ticket header carry, support/mailing.py) found in X-CRM-Ticket, In-Reply-To or References is
     trusted whoever sends it (only a recipient of our email can know it); the readable "[T-000042]" in
     the subject, or an In-Reply-To / References equal to a stored message id, is trusted only when the
     sender is that ticket's customer and the message does not fail DMARC. Otherwise the message opens a
     new ticket for its sender, and a note says which reference was ignored: a stranger who guesses a
     ticket number can never write into someone else's ticket.
   - a reply goes through `ticket_reply(from_customer=True)` (which reopens a pending ticket and logs the
     interaction); a reply to a closed ticket opens a follow-up ticket instead; an automatic message
     (Auto-Submitted, bounces) that threads becomes an internal note (an out-of-office never reopens a
     ticket) and one that does not is ignored;
   - a new ticket goes through `ticket_create` (channel email; SLA, routing, interaction) for the customer
     with the sender's address, a new lead (source "email") if there is none; the email itself is kept as
     the ticket's first message (with its Message-ID and attachments).
   - attachments pass `support.attachments.validate_upload`; refused ones are listed in an internal note.
3. After commit, a new ticket gets the automated response (support/mailing.py).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from email import policy
from email.errors import HeaderParseError, MessageError
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from html.parser import HTMLParser

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from crm.models import Organization
from crm.tenancy import tenant_context
from customers.models import Customer, LifecycleStage
from support import mailing
from support.attachments import validate_upload
from support.models import Channel, Status, Ticket, TicketMessage

MAX_BODY_CHARS = 100_000
SUBJECT_TOKEN = re.compile(r"\[T-(\d{1,9})\]")
MESSAGE_ID = re.compile(r"<[^<>\s]{1,290}>")


class MalformedEmail(ValueError):
    """The bytes are not an email we can make a ticket of (no sender, not parsable, too large)."""


# --- parsing --------------------------------------------------------------------------------------------


class _TextFromHtml(HTMLParser):
    """HTML to readable text: block elements become line breaks, scripts and styles disappear."""

    BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol"}
    )
    SKIPPED = frozenset({"script", "style", "head", "title"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag):
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS and tag != "li":  # the next item (or the list's end) starts a line
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextFromHtml()
    parser.feed(html or "")
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_QUOTE_INTRO = re.compile(r"^\s*(On .{0,300}wrote:|-{2,}\s*Original Message\s*-{2,})\s*$", re.IGNORECASE)


def strip_quoted_history(text: str) -> str:
    """What the customer wrote above our marker, without the client's "On ... wrote:" and '>' lines."""
    if mailing.REPLY_MARKER in text:
        text = text.split(mailing.REPLY_MARKER, 1)[0]
    lines = text.rstrip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith(">")):
        lines.pop()
    if lines and _QUOTE_INTRO.match(lines[-1]):
        lines.pop()
    return "\n".join(lines).strip()


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedEmail:
    sender: str
    sender_name: str
    subject: str
    message_id: str
    references: list[str]  # In-Reply-To first, then References, newest first
    body: str
    attachments: list[ParsedAttachment]
    crm_ticket_header: str = ""
    auto_submitted: bool = False
    dmarc_failed: bool = False


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except (HeaderParseError, MessageError, ValueError, IndexError, TypeError, AttributeError):
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _sender(message: EmailMessage) -> tuple[str, str]:
    try:
        header = message.get("From")
        addresses = getattr(header, "addresses", ()) if header is not None else ()
        found = [(a.display_name or "", a.addr_spec or "") for a in addresses]
    except (HeaderParseError, MessageError, ValueError, IndexError, TypeError, AttributeError):
        found = []
    if not found and message.get("From") is not None:
        found = [parseaddr(_header(message, "From"))]
    name, address = found[0] if found else ("", "")
    address = (address or "").strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise MalformedEmail(
            _("The message has no usable From address (%(value)s).")
            % {"value": _header(message, "From") or _("missing")}
        ) from None
    return " ".join((name or "").split())[:200], address


def _decoded(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AttributeError, KeyError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")
    return content if isinstance(content, str) else bytes(content).decode("utf-8", errors="replace")


def _body(message: EmailMessage) -> tuple[str, EmailMessage | None]:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return "", None
    text = _decoded(part)
    if part.get_content_type() == "text/html":
        text = html_to_text(text)
    return strip_quoted_history(text.replace("\r\n", "\n"))[:MAX_BODY_CHARS], part


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def _filename(part: EmailMessage, index: int) -> str:
    try:
        name = part.get_filename() or ""
    except (HeaderParseError, MessageError, ValueError, IndexError, TypeError):
        name = ""
    name = _UNSAFE_NAME.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" ._")
    if not name:
        extension = mimetypes.guess_extension(part.get_content_type()) or ".bin"
        name = f"attachment-{index}{extension}"
    return name[-255:]


def _attachment_bytes(part: EmailMessage) -> bytes:
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        return inner.as_bytes() if hasattr(inner, "as_bytes") else b""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AttributeError, KeyError):
        return part.get_payload(decode=True) or b""
    if isinstance(content, str):
        return content.encode("utf-8")
    return bytes(content) if isinstance(content, bytes | bytearray) else b""


def _attachments(message: EmailMessage, body_part: EmailMessage | None) -> list[ParsedAttachment]:
    found = []
    for part in message.walk():
        if part.is_multipart() or part is body_part:
            continue
        if part.get_content_maintype() == "message" and part.get_content_type() != "message/rfc822":
            continue  # delivery-status and the like: parts of a report, not files
        disposition = part.get_content_disposition()
        has_name = bool(part.get_param("filename", header="content-disposition") or part.get_param("name"))
        if (
            part.get_content_type() in ("text/plain", "text/html")
            and disposition != "attachment"
            and not has_name
        ):
            continue  # the other alternative of the body, not a file
        if part.get_content_type() == "message/rfc822":
            filename = _filename(part, len(found) + 1)
            if not filename.lower().endswith(".eml"):
                filename = f"{filename}.eml" if part.get_filename() else f"attachment-{len(found) + 1}.eml"
        else:
            filename = _filename(part, len(found) + 1)
        found.append(ParsedAttachment(filename, part.get_content_type(), _attachment_bytes(part)))
    return found


def _message_ids(value: str) -> list[str]:
    return MESSAGE_ID.findall(value or "")


def _auto_submitted(message: EmailMessage, sender: str) -> bool:
    auto = _header(message, "Auto-Submitted").lower()
    precedence = _header(message, "Precedence").lower()
    local = sender.split("@", 1)[0]
    return (
        (auto and auto != "no")
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or message.get_content_type() == "multipart/report"
        or local in ("mailer-daemon", "postmaster", "noreply", "no-reply", "do-not-reply", "donotreply")
        or bool(_header(message, "X-Autoreply") or _header(message, "X-Autorespond"))
    )


def parse_email(raw: bytes | str) -> ParsedEmail:
    """The parts of an inbound email a ticket needs. Raises MalformedEmail; touches no database."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="replace")
    limit = getattr(settings, "SUPPORT_INBOUND_MAX_BYTES", 30 * 1024 * 1024)
    if not raw or not raw.strip():
        raise MalformedEmail(_("The message is empty."))
    if len(raw) > limit:
        raise MalformedEmail(_("The message is larger than %(limit)d bytes.") % {"limit": limit})
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
    except (MessageError, ValueError, TypeError, IndexError) as error:
        raise MalformedEmail(_("The message could not be parsed: %(error)s") % {"error": error}) from error
    if not message.keys():
        raise MalformedEmail(_("The message has no headers: it is not an email."))
    if message.get("From") is None:
        raise MalformedEmail(_("The message has no From header."))
    sender_name, sender = _sender(message)
    try:
        body, body_part = _body(message)
        attachments = _attachments(message, body_part)
    except (MessageError, ValueError, TypeError, IndexError, KeyError, AttributeError) as error:
        raise MalformedEmail(_("The message could not be parsed: %(error)s") % {"error": error}) from error
    ids = _message_ids(_header(message, "Message-ID"))
    # No Message-ID: one derived from the bytes, so the same message delivered twice is still one.
    message_id = ids[0] if ids else f"<{hashlib.sha256(raw).hexdigest()[:40]}@no-message-id.invalid>"
    references = _message_ids(_header(message, "In-Reply-To")) + list(
        reversed(_message_ids(_header(message, "References")))
    )
    authentication = _header(message, "Authentication-Results").lower()  # the topmost: our own MTA's
    return ParsedEmail(
        sender=sender,
        sender_name=sender_name,
        subject=_header(message, "Subject")[:250],
        message_id=message_id[:300],
        references=list(dict.fromkeys(references))[:50],
        body=body,
        attachments=attachments,
        crm_ticket_header=_header(message, "X-CRM-Ticket")[:100],
        auto_submitted=bool(_auto_submitted(message, sender)),
        dmarc_failed="dmarc=fail" in authentication,
    )


# --- ingestion ------------------------------------------------------------------------------------------


@dataclass
class IngestResult:
    action: str  # created | replied | noted | duplicate | ignored
    message_id: str = ""
    ticket: Ticket | None = None
    message: TicketMessage | None = None
    customer: Customer | None = None
    customer_created: bool = False
    attachments_kept: list[str] = field(default_factory=list)
    attachments_refused: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    auto_reply: bool = False

    def summary(self) -> str:
        number = self.ticket.ticket_number if self.ticket else ""
        sentences = {
            "created": f"Created ticket {number}",
            "replied": f"Added the reply to ticket {number}",
            "noted": f"Added the automatic message to ticket {number} as an internal note",
            "duplicate": f"Ignored: message {self.message_id} was already ingested",
            "ignored": "Ignored",
        }
        line = sentences[self.action]
        if self.customer is not None and self.action in ("created", "replied"):
            who = self.customer.email
            line += f" for {who} (new lead)" if self.customer_created else f" for {who}"
        parts = [line + "."]
        if self.attachments_kept:
            parts.append(f"Attachments kept: {', '.join(self.attachments_kept)}.")
        if self.attachments_refused:
            parts.append(
                "Attachments refused: "
                + "; ".join(f"{n} ({why})" for n, why in self.attachments_refused)
                + "."
            )
        parts.extend(self.notes)
        if self.auto_reply:
            parts.append("An automated response will be sent.")
        return " ".join(parts)


def _lock(key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def _own_addresses(organization: Organization) -> set[str]:
    candidates = (
        settings.DEFAULT_FROM_EMAIL,
        settings.SUPPORT_REPLY_TO,
        mailing.support_address(organization),
    )
    return {parseaddr(value)[1].lower() for value in candidates if value}


def _ticket_by_number(organization: Organization, number: int) -> Ticket | None:
    return (
        Ticket.objects.select_related("customer")
        .filter(organization_id=organization.pk, number=number)
        .first()
    )


@dataclass
class _Thread:
    ticket: Ticket | None = None
    signed: bool = False
    ignored: list[str] = field(default_factory=list)


def _thread(organization: Organization, parsed: ParsedEmail) -> _Thread:
    """The ticket the message answers, and how sure we are (see the module docstring)."""
    # 1. A signed reference: ours, unforgeable.
    for source in (parsed.crm_ticket_header, *parsed.references):
        for number, signature in mailing.SIGNED_REFERENCE.findall(source or ""):
            ticket = _ticket_by_number(organization, int(number))
            if ticket is not None and mailing.signature_matches(ticket, signature):
                return _Thread(ticket=ticket, signed=True)
    # 2. Readable references: only for the ticket's own customer.
    candidates: list[Ticket] = []
    if parsed.references:
        stored = (
            TicketMessage.objects.filter(
                organization_id=organization.pk, email_message_id__in=parsed.references
            )
            .select_related("ticket", "ticket__customer")
            .order_by("-created_at", "-id")
            .first()
        )
        if stored is not None:
            candidates.append(stored.ticket)
    for number in SUBJECT_TOKEN.findall(parsed.subject):
        ticket = _ticket_by_number(organization, int(number))
        if ticket is not None:
            candidates.append(ticket)
    thread = _Thread()
    for ticket in candidates:
        if ticket.customer.email.lower() == parsed.sender and not parsed.dmarc_failed:
            thread.ticket = ticket
            return thread
        reason = (
            _("the sending domain failed DMARC")
            if parsed.dmarc_failed
            else _("the sender is not that ticket's customer")
        )
        note = _("The reference to %(number)s was ignored: %(reason)s.") % {
            "number": ticket.ticket_number,
            "reason": reason,
        }
        if note not in thread.ignored:
            thread.ignored.append(note)
    return thread


def _customer_for(organization: Organization, parsed: ParsedEmail) -> tuple[Customer, bool]:
    """The organization's customer with the sender's address, or a new lead. Serialized per address, so two
    messages from one new sender at once make one lead."""
    from customers.services.customers import customer_create

    _lock(f"customers.email:{organization.pk}:{parsed.sender}")
    existing = (
        Customer.objects.alias(email_lower=Lower("email"))
        .filter(organization_id=organization.pk, email_lower=parsed.sender)
        .first()
    )
    if existing is not None:
        return existing, False
    first, _space, last = parsed.sender_name.partition(" ")
    customer = customer_create(
        organization=organization,
        actor=None,
        reason=_("First email to support"),
        email=parsed.sender,
        first_name=first[:100],
        last_name=last[:100],
        lifecycle_stage=LifecycleStage.LEAD,
        source="email",
    )
    return customer, True


def _split_attachments(parsed: ParsedEmail, result: IngestResult) -> list[ContentFile]:
    limit = getattr(settings, "SUPPORT_INBOUND_MAX_ATTACHMENTS", 20)
    accepted = []
    for index, attachment in enumerate(parsed.attachments):
        if index >= limit:
            result.attachments_refused.append(
                (attachment.filename, _("more than %(limit)d attachments") % {"limit": limit})
            )
            continue
        upload = ContentFile(attachment.data, name=attachment.filename)
        try:
            validate_upload(upload)
        except ValidationError as error:
            reasons = (
                error.message_dict.get("attachments", error.messages)
                if hasattr(error, "error_dict")
                else error.messages
            )
            result.attachments_refused.append((attachment.filename, " ".join(str(r) for r in reasons)))
            continue
        accepted.append(upload)
        result.attachments_kept.append(attachment.filename)
    return accepted


def _attach(message: TicketMessage, uploads: list[ContentFile]) -> None:
    from support.services.tickets import _attach as attach_files

    attach_files(message, uploads)


def _internal_note(ticket: Ticket, result: IngestResult, extra: list[str]) -> None:
    from support.services.tickets import ticket_note

    lines = list(extra)
    if result.attachments_refused:
        lines.append(_("Attachments of this email that were not kept:"))
        lines.extend(f"- {name}: {reason}" for name, reason in result.attachments_refused)
    if lines:
        ticket_note(ticket=ticket, actor=None, body="\n".join(lines))


def _no_text() -> str:
    return _("(The email had no text.)")


def ingest_email(raw: bytes | str, *, organization: Organization) -> IngestResult:
    """Turn one inbound email into a new ticket or a reply on its ticket (module docstring). Raises
    MalformedEmail, with nothing written, for a message that cannot become a ticket."""
    from support.services.tickets import ticket_create, ticket_note, ticket_reply

    parsed = parse_email(raw)
    with tenant_context(organization.pk):
        organization = Organization.objects.get(pk=organization.pk)
        # Serialize deliveries of one Message-ID (a retrying MTA, two webhook calls) before the check.
        _lock(f"support.email:{organization.pk}:{parsed.message_id}")
        result = IngestResult(action="ignored", message_id=parsed.message_id)
        if TicketMessage.objects.filter(
            organization_id=organization.pk, email_message_id=parsed.message_id
        ).exists():
            result.action = "duplicate"
            return result
        if parsed.sender in _own_addresses(organization):
            result.notes.append(_("The message comes from our own address (a mail loop)."))
            return result
        thread = _thread(organization, parsed)
        ticket = thread.ticket
        notes = list(thread.ignored)
        if ticket is not None and ticket.status == Status.CLOSED:
            notes.append(_("Follow-up to %(number)s, which is closed.") % {"number": ticket.ticket_number})
            ticket = None
        body = parsed.body or _no_text()

        if ticket is not None and parsed.auto_submitted:
            # An out-of-office or a bounce about this ticket: for the agents' eyes, and it changes nothing.
            accepted = _split_attachments(parsed, result)
            message = ticket_note(
                ticket=ticket,
                actor=None,
                body=_("Automatic email from %(sender)s:") % {"sender": parsed.sender} + "\n\n" + body,
            )
            _attach(message, accepted)
            _internal_note(ticket, result, [])
            result.action, result.ticket, result.message = "noted", ticket, message
            return result

        if ticket is not None:
            accepted = _split_attachments(parsed, result)
            message = ticket_reply(
                ticket=ticket,
                actor=None,
                body=body,
                attachments=accepted,
                from_customer=True,
                channel=Channel.EMAIL,
                email_message_id=parsed.message_id,
            )
            if thread.signed and ticket.customer.email.lower() != parsed.sender:
                notes.append(
                    _(
                        "This reply came from %(sender)s, not from the customer's address; it carried the "
                        "signed reference of our email, so it was added to the conversation."
                    )
                    % {"sender": parsed.sender}
                )
            _internal_note(ticket, result, notes)
            ticket.refresh_from_db()
            result.action, result.ticket, result.message, result.customer = (
                "replied",
                ticket,
                message,
                ticket.customer,
            )
            result.notes.extend(notes)
            return result

        if parsed.auto_submitted:
            result.notes.append(_("An automatic message (auto-reply or bounce) about no ticket of ours."))
            return result

        customer, created = _customer_for(organization, parsed)
        ticket = ticket_create(
            organization=organization,
            actor=None,
            customer=customer,
            subject=parsed.subject or _("(no subject)"),
            description=parsed.body,
            channel=Channel.EMAIL,
        )
        # The email itself is the ticket's first message: it holds the Message-ID (threading, duplicates)
        # and the attachments.
        message = TicketMessage.objects.create(
            organization_id=organization.pk,
            ticket=ticket,
            kind=TicketMessage.Kind.REPLY,
            from_customer=True,
            body=body,
            channel=Channel.EMAIL,
            email_message_id=parsed.message_id,
            created_at=ticket.created_at,
        )
        _attach(message, _split_attachments(parsed, result))
        if parsed.dmarc_failed:
            notes.append(_("The sending domain failed DMARC: the From address may be forged."))
        _internal_note(ticket, result, notes)
        result.action, result.ticket, result.message = "created", ticket, message
        result.customer, result.customer_created = customer, created
        result.notes.extend(notes)
        if _auto_reply_enabled(organization):
            result.auto_reply = True
            ticket_id, organization_id, in_reply_to = ticket.pk, organization.pk, parsed.message_id
            transaction.on_commit(
                lambda: mailing.send_auto_reply(
                    ticket_id=ticket_id, organization_id=organization_id, in_reply_to=in_reply_to
                ),
                robust=True,
            )
        return result


def _auto_reply_enabled(organization: Organization) -> bool:
    configured = (organization.settings or {}).get("support_auto_reply")
    if configured is not None:
        return bool(configured)
    return getattr(settings, "SUPPORT_AUTO_REPLY", True)
