"""What personal data the support app holds (compliance/registry.py): the subject's tickets, their events,
messages and attachments, and survey answers.

Tickets and messages stay (SLA and CSAT statistics, agents' workload) with their text redacted. An
attachment's stored file is deleted once the erasure commits and its column blanked: its name is random
(support.models.attachment_path), but its content is the subject's.
"""

from compliance.registry import Category, Erase, NotPersonal, PersonalData, PersonalField, register
from support import models

C = Category
KEEP = Erase.KEEP
CONFIG = "the organization's support configuration, no one's personal data"

register(
    PersonalData(
        model=models.Ticket,
        subject="customer",
        label="tickets",
        fields=(
            PersonalField("subject", Erase.REDACT),
            PersonalField("description", Erase.REDACT),
            PersonalField("tags", Erase.BLANK),
            PersonalField("channel", KEEP, C.INTERNET),
            PersonalField("type", KEEP),
            PersonalField("status", KEEP),
            PersonalField("priority", KEEP),
            PersonalField("created_at", KEEP),
            PersonalField("resolved_at", KEEP),
            PersonalField("satisfaction_rating", KEEP),
        ),
        not_personal={"queue_reason": "why routing left the ticket in the team queue (generated)"},
    ),
    PersonalData(
        model=models.TicketEvent,
        subject="ticket__customer",
        label="ticket_events",
        fields=(
            PersonalField("kind", KEEP),
            PersonalField("at", KEEP),
            PersonalField("note", Erase.REDACT),
        ),
        not_personal={
            "old_value": "a status, priority, assignee, policy or deadline code (see the model)",
            "new_value": "a status, priority, assignee, policy or deadline code (see the model)",
        },
    ),
    PersonalData(
        model=models.TicketMessage,
        subject="ticket__customer",
        label="ticket_messages",
        fields=(
            PersonalField("kind", KEEP),
            PersonalField("from_customer", KEEP),
            PersonalField("body", Erase.REDACT),
            PersonalField("created_at", KEEP),
            # The email's Message-ID names the sender's mail host.
            PersonalField("email_message_id", Erase.BLANK, C.INTERNET),
        ),
        not_personal={},
    ),
    PersonalData(
        model=models.TicketAttachment,
        subject="message__ticket__customer",
        label="ticket_attachments",
        fields=(
            PersonalField("filename", Erase.REDACT),
            PersonalField("file", Erase.BLANK, stored_file=True),
            PersonalField("size", KEEP),
            PersonalField("created_at", KEEP),
        ),
        not_personal={"content_type": "a media type"},
    ),
    PersonalData(
        model=models.Survey,
        subject="customer",
        label="surveys",
        fields=(
            PersonalField("kind", KEEP),
            PersonalField("responded_at", KEEP),
            PersonalField("score", KEEP),
            PersonalField("comment", Erase.REDACT),
        ),
    ),
    NotPersonal(model=models.BusinessCalendar, fields={"name": CONFIG, "time_zone": CONFIG, "hours": CONFIG}),
    NotPersonal(model=models.Holiday, fields={"name": CONFIG}),
    NotPersonal(
        model=models.SlaPolicy,
        fields={
            "name": CONFIG,
            "match_types": CONFIG,
            "match_priorities": CONFIG,
            "match_channels": CONFIG,
        },
    ),
    NotPersonal(model=models.AgentProfile, fields={}),
    NotPersonal(model=models.Escalation, fields={"notified": "the staff members told (user ids)"}),
    NotPersonal(model=models.CannedResponse, fields={"title": CONFIG, "body": CONFIG}),
    NotPersonal(
        model=models.Article,
        fields={
            "title": "a published help article",
            "slug": "a published help article",
            "body": "a published help article",
            "body_html": "a published help article",
            "category": "a published help article",
            "tags": "a published help article",
        },
    ),
)
