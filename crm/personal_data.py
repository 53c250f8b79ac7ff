"""What personal data the platform app holds (compliance/registry.py).

Staff accounts (`users`) are not CRM data subjects: the privacy requests this CRM handles are its customers'.
Employee data is the organization's HR matter, handled outside these workflows.

The audit trail is not a section of its own: erasure redacts, through `crm_audit_redact()`, the keys of every
personal field in the audit rows of every audited table it erases (compliance/erasure.py).

Notifications point at a subject only through their link and their text (a ticket's subject, an activity's
customer name), so they are found by value: a link to the subject's profile, tickets or opportunities, or a
title or body that quotes the subject's full name or email.
"""

from django.db.models import BooleanField, CharField, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Concat
from django.urls import reverse

from compliance.registry import Erase, NotPersonal, PersonalData, PersonalField, SubjectIdentity, register
from crm import models

STAFF = "staff account data: staff are not CRM data subjects"
_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
# A name or address shorter than this is too common a substring to find a subject's notifications by.
_MIN_QUOTED_LENGTH = 5


def _links_to(url_name: str, records, *suffixes: str) -> Q:
    """Notifications whose link opens one of `records` (optionally followed by one of `suffixes`, fragments)."""
    prefix, _, suffix = reverse(url_name, kwargs={"pk": _PLACEHOLDER}).partition(_PLACEHOLDER)
    found = Q(pk__in=[])
    for tail in ("", *suffixes):
        links = records.annotate(
            link=Concat(
                Value(prefix), Cast("pk", CharField()), Value(suffix + tail), output_field=CharField()
            )
        ).values("link")
        found |= Q(url__in=links)
    return found


def notifications_of_many(identities: list[SubjectIdentity]) -> Q:
    """Set-based: a link to one of the subjects' profiles, tickets or deals, or their name or email quoted."""
    from customers.models import Customer
    from sales.models import Opportunity
    from support.models import Ticket

    org = identities[0].organization_id
    ids = [identity.customer_id for identity in identities]
    found = (
        _links_to("customers:detail", Customer.objects.filter(organization_id=org, pk__in=ids))
        | _links_to("support:ticket_detail", Ticket.objects.filter(organization_id=org, customer_id__in=ids))
        | _links_to(
            "sales:opportunity_detail",
            Opportunity.objects.filter(organization_id=org, customer_id__in=ids),
            "#activities-heading",
        )
    )
    quoted = sorted(
        {
            text.strip()
            for identity in identities
            for text in (identity.full_name, identity.email)
            if len(text.strip()) >= _MIN_QUOTED_LENGTH
        }
    )
    if quoted:
        patterns = [
            "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for text in quoted
        ]
        found |= Q(RawSQL('"notifications"."title" ILIKE ANY (%s)', [patterns], output_field=BooleanField()))
        found |= Q(RawSQL('"notifications"."body" ILIKE ANY (%s)', [patterns], output_field=BooleanField()))
    return found


def notifications_of(identity: SubjectIdentity) -> Q:
    return notifications_of_many([identity])


register(
    PersonalData(
        model=models.Notification,
        subject=notifications_of,
        subject_many=notifications_of_many,
        label="notifications",
        fields=(
            PersonalField("title", Erase.REDACT),
            PersonalField("body", Erase.REDACT),
            PersonalField("created_at", Erase.KEEP),
        ),
        not_personal={"url": "a link to a record of the CRM (ids only)"},
    ),
    NotPersonal(
        model=models.Organization,
        fields={
            "name": "the tenant's name",
            "slug": "the tenant's address",
            "time_zone": "the tenant's time zone",
            "settings": "the tenant's preferences",
        },
    ),
    NotPersonal(
        model=models.User,
        fields={
            "password": STAFF,
            "email": STAFF,
            "first_name": STAFF,
            "last_name": STAFF,
            "job_title": STAFF,
            "email_signature": STAFF,
            "time_zone": STAFF,
            "preferences": STAFF,
        },
    ),
    NotPersonal(
        model=models.AuditLog,
        fields={
            "table_name": "a table name",
            "record_id": "a row id",
            "old_values": "redacted by erasure (crm_audit_redact) for the personal fields of each audited table",
            "new_values": "redacted by erasure (crm_audit_redact) for the personal fields of each audited table",
            "changed_fields": "column names",
            "request_id": "the id of the staff request that made the change",
            "ip_address": "the staff member's address, not the subject's",
            "user_agent": "the staff member's browser, not the subject's",
            "sensitivity": "a code",
        },
    ),
)
