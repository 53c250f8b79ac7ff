"""Erasure through the registry (compliance/erasure): the canary, idempotence, anonymization, receipts, and the
walls around the audit trail."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.urls import reverse
from django.utils import timezone

from compliance.erasure import erase_customer, erase_customers
from compliance.erasure.statements import is_encrypted
from compliance.models import CcpaRequest, ConsentRecord, GdprRequest
from compliance.registry import REDACTED, Erase, personal_data
from crm.models import Notification
from crm.tenancy import TenantContextError, system_context, tenant_context
from customers.models import Customer, LifecycleChange, SegmentEvent, SegmentMember
from marketing.models import Campaign, EmailSend, Enrollment, FormSubmission, StepRun, Suppression
from sales.models import Opportunity, OpportunityChange, Quote, QuoteEvent
from support.models import Survey, TicketAttachment, TicketEvent
from support.services.tickets import ticket_reply
from tests import factories
from tests.marketing import factories as mf

MARK = "CANARY-7f3a"
OTHER = "OTHERMARK-9b2c"
NOW = timezone.now()


def _populate(org, admin, mark: str) -> dict:
    """One customer with `mark` in every registered personal field across all apps, through the services
    where they exist (they also write the interactions, events and audit rows a real customer has)."""
    lower = mark.lower()
    cust = factories.customer(
        org,
        first_name=f"{mark} First",
        last_name=f"{mark} Last",
        email=f"{lower}@example.com",
        email_opt_in=True,
    )
    with tenant_context(org.pk):
        stored = Customer.objects.get(pk=cust.pk)
        for name in ("company_name", "job_title", "street", "city", "restriction_reason"):
            setattr(stored, name, f"{mark} {name}"[: stored._meta.get_field(name).max_length])
        stored.postal_code, stored.phone, stored.state = mark, "+1 555 010 7734", "CA"
        stored.tags, stored.education_level = [mark], "masters"
        stored.date_of_birth = datetime.date(1980, 2, 29)
        stored.save()
    factories.interaction(cust, outcome=f"{mark} outcome", notes=f"{mark} notes")
    opp = factories.opportunity(
        org, customer=cust, name=f"{mark} deal", notes=f"{mark} notes", next_step=mark
    )
    factories.activity(org, opportunity=opp, subject=f"{mark} call", description=mark, outcome=mark)
    factories.activity(org, customer=cust, subject=f"{mark} customer task")
    quote = factories.quote(
        org,
        opportunity=opp,
        title=f"{mark} quote",
        terms=f"{mark} terms",
        lines=[{"description": f"{mark} line", "quantity": Decimal("2"), "unit_price": Decimal("50")}],
    )
    factories.order(
        org,
        customer=cust,
        external_reference=mark,
        lines=[{"description": f"{mark} order line", "quantity": 1, "unit_price": 10}],
    )
    ticket = factories.ticket(
        org, customer=cust, subject=f"{mark} subject", description=f"{mark} description"
    )
    upload = SimpleUploadedFile(
        f"{mark}.txt", f"{mark} attachment content".encode(), content_type="text/plain"
    )
    with tenant_context(org.pk):
        ticket_reply(
            ticket=ticket,
            actor=None,
            body=f"{mark} body",
            from_customer=True,
            email_message_id=f"<{mark}@mail.example.com>",
            attachments=[upload],
        )
    campaign = mf.campaign(org, name=f"Campaign {mark[:5]}")
    send = mf.sent_email(
        org, campaign=campaign, customer=cust, open_count=2, opened_at=NOW, error=f"{mark} bounce"
    )
    form = mf.lead_form(org, campaign=campaign, slug=f"form-{cust.number}")
    sequence = mf.sequence(org, steps=[("wait", {"wait_days": 1})])
    with tenant_context(org.pk):
        from customers.models import Segment

        Customer.objects.filter(pk=cust.pk).update(tags=[mark])
        Quote.objects.filter(pk=quote.pk).update(decision_comment=f"{mark} approved")
        Opportunity.objects.filter(pk=opp.pk).update(lost_reason=f"{mark} lost")
        QuoteEvent.objects.create(organization=org, quote=quote, action="approved", comment=f"{mark} comment")
        OpportunityChange.objects.create(
            organization=org, opportunity=opp, field="amount", note=f"{mark} note"
        )
        LifecycleChange.objects.create(organization=org, customer=cust, to_stage="customer", reason=mark)
        TicketEvent.objects.create(organization=org, ticket=ticket, kind="status", note=f"{mark} note")
        from support.models import Ticket

        Ticket.objects.filter(pk=ticket.pk).update(tags=[mark])
        Survey.objects.create(
            organization=org,
            kind="csat",
            customer=cust,
            ticket=ticket,
            sent_at=NOW,
            expires_at=NOW + datetime.timedelta(days=7),
            responded_at=NOW,
            score=4,
            comment=f"{mark} comment",
        )
        segment = Segment.objects.create(organization=org, name=f"Segment {cust.number}", kind="static")
        SegmentMember.objects.create(
            organization=org, segment=segment, customer=cust, matched_rule=f"{mark} rule"
        )
        SegmentEvent.objects.create(organization=org, segment=segment, customer=cust, kind="added", rule=mark)
        Suppression.objects.create(organization=org, email=f"{lower}@example.com", reason="unsubscribed")
        FormSubmission.objects.create(
            organization=org, form=form, customer=cust, data={"first_name": mark, "message": f"{mark} hello"}
        )
        enrollment = Enrollment.objects.create(
            organization=org, sequence=sequence, customer=cust, next_position=1, next_run_at=NOW
        )
        StepRun.objects.create(
            organization=org,
            enrollment=enrollment,
            step=sequence.steps.get(),
            due_at=NOW,
            outcome="waited",
            detail=f"{mark} detail",
        )
        ConsentRecord.objects.create(
            organization=org,
            customer=cust,
            purpose="email_marketing",
            granted=True,
            source="form",
            proof=f"{mark} proof",
            ip_address="203.0.113.7",
        )
        common = {"organization": org, "customer": cust, "due_at": NOW + datetime.timedelta(days=30)}
        GdprRequest.objects.create(
            **common,
            number=1 if mark == MARK else 2,
            request_type="rectify",
            requester_name=f"{mark} Requester",
            requester_email=f"{lower}@example.com",
            details=f"{mark} details",
            rectification={"first_name": mark},
            export_file=f"privacy-exports/{org.pk}/{lower}-gdpr.zip",
        )
        CcpaRequest.objects.create(
            **common,
            number=1 if mark == MARK else 2,
            request_type="access",
            requester_name=f"{mark} Requester",
            requester_email=f"{lower}@example.com",
            details=f"{mark} details",
            resident_state="CA",
            export_file=f"privacy-exports/{org.pk}/{lower}.zip",
        )
        Notification.objects.create(
            organization=org,
            recipient=admin,
            title=f"{mark} assigned",
            body=f"{mark} subject",
            url=reverse("support:ticket_detail", kwargs={"pk": ticket.pk}),
        )
        attachment = TicketAttachment.objects.get(message__ticket=ticket)
    default_storage.save(f"privacy-exports/{org.pk}/{lower}.zip", SimpleUploadedFile("x.zip", mark.encode()))
    return {"customer": cust, "campaign": campaign, "send": send, "attachment": attachment, "ticket": ticket}


def _searchable_columns() -> list[tuple[str, str]]:
    """Every text, JSON, array and address column of every table and view the app role can read (partitions
    are read through their parent)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.table_name, c.column_name
            FROM information_schema.columns c
            JOIN pg_namespace n ON n.nspname = c.table_schema
            JOIN pg_class k ON k.relnamespace = n.oid AND k.relname = c.table_name
            WHERE c.table_schema = 'public' AND k.relkind IN ('r', 'p', 'v') AND NOT k.relispartition
              AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY', 'inet')
              AND has_table_privilege(k.oid, 'SELECT')
            ORDER BY 1, 2
            """
        )
        return cursor.fetchall()


def _hits(mark: str) -> dict[str, int]:
    """Where `mark` occurs in the database (case-insensitive), as the current tenant context sees it: one
    query per table, counting per column."""
    by_table: dict[str, list[str]] = {}
    for table, column in _searchable_columns():
        by_table.setdefault(table, []).append(column)
    hits = {}
    with connection.cursor() as cursor:
        for table, columns in by_table.items():
            counts = ", ".join(f'count(*) FILTER (WHERE "{column}"::text ILIKE %(p)s)' for column in columns)
            cursor.execute(f'SELECT {counts} FROM "{table}"', {"p": f"%{mark}%"})
            for column, count in zip(columns, cursor.fetchone(), strict=True):
                if count:
                    hits[f"{table}.{column}"] = count
    return hits


def _registered_values_missing_the_mark(cust, mark: str) -> list[str]:
    """Each erasable registered field that holds nothing of the canary (so the canary would prove nothing)."""
    from compliance.registry import SubjectIdentity

    identity = SubjectIdentity(
        customer_id=cust.pk,
        organization_id=cust.organization_id,
        email=cust.email,
        full_name=cust.display_name,
    )
    missing = []
    for declaration in personal_data():
        model = declaration.model
        rows = model.objects.filter(organization_id=cust.organization_id).filter(
            declaration.subject_filter(identity)
        )
        for personal in declaration.fields:
            if personal.erase == Erase.KEEP:
                continue
            values = list(rows.values_list(personal.name, flat=True))
            model_field = model._meta.get_field(personal.name)
            text = model_field.get_internal_type() in ("CharField", "TextField", "JSONField", "ArrayField")
            # Codes, files, encrypted values and hashes cannot hold the marker: they must hold something.
            opaque = model_field.choices or personal.stored_file or is_encrypted(model_field)
            if opaque or not text or personal.name == "phone_hash":
                holds = any(value not in (None, "", [], {}) for value in values)
            else:
                holds = any(mark.lower() in str(value).lower() for value in values)
            if not holds:
                missing.append(f"{model._meta.label}.{personal.name}")
    return missing


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def canary(org_a, admin_a, media):
    subject = _populate(org_a, admin_a, MARK)
    other = _populate(org_a, admin_a, OTHER)
    return subject, other


def _audit_rows(org) -> dict:
    with tenant_context(org.pk), connection.cursor() as cursor:
        cursor.execute("SELECT id, old_values, new_values FROM crm_audit_log")
        return {row[0]: row for row in cursor.fetchall()}


def test_erasure_leaves_no_trace_of_the_canary_in_any_column_of_any_table(
    org_a, admin_a, canary, django_capture_on_commit_callbacks
):
    subject, other = canary
    cust = subject["customer"]
    with tenant_context(org_a.pk):
        missing = _registered_values_missing_the_mark(cust, MARK)
        assert missing == [], missing
        before = _hits(MARK)
        other_before = _hits(OTHER)
        campaign_before = Campaign.objects.filter(pk=subject["campaign"].pk).values().get()
        sends_before = list(
            EmailSend.objects.order_by("id").values_list("id", "status", "open_count", "opened_at")
        )
    # The canary is spread across the apps and the audit trail before the erasure.
    assert {
        "customers.first_name",
        "interaction_logs.notes",
        "ticket_messages.body",
        "email_sends.email",
    } <= set(before)
    assert any(key.startswith("crm_audit_log.") for key in before)
    audit_before = _audit_rows(org_a)
    attachment_name = subject["attachment"].file.name
    assert default_storage.exists(attachment_name)

    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk, user=admin_a):
        receipt = erase_customer(customer=cust, actor=admin_a, reason="GDPR-00001")

    with tenant_context(org_a.pk):
        assert _hits(MARK) == {}
        # The other customer's data is all still there, where it was.
        assert _hits(OTHER) == other_before
        assert _registered_values_missing_the_mark(other["customer"], OTHER) == []
        # Counts and statistics survive: the campaign row and every send's status and opens are unchanged.
        assert Campaign.objects.filter(pk=subject["campaign"].pk).values().get() == campaign_before
        assert (
            list(EmailSend.objects.order_by("id").values_list("id", "status", "open_count", "opened_at"))
            == sends_before
        )
        erased = Customer.objects.get(pk=cust.pk)
    # The audit rows are all still there, redacted in place.
    audit_after = _audit_rows(org_a)
    assert set(audit_before) <= set(audit_after)
    assert receipt["audit_rows_redacted"] > 0
    # The stored files are gone.
    assert not default_storage.exists(attachment_name)
    assert not default_storage.exists(f"privacy-exports/{org_a.pk}/{MARK.lower()}.zip")
    assert default_storage.exists(f"privacy-exports/{org_a.pk}/{OTHER.lower()}.zip")
    assert erased.display_name == f"Erased customer {erased.customer_number}"
    assert erased.email == "" and erased.email_opt_in is False and erased.erased_at is not None
    assert erased.state == "CA"  # kept: why past CCPA requests applied


# --- idempotence, anonymization, receipts ---------------------------------------------------------------------


@pytest.fixture
def small(org_a, admin_a, media):
    """A hand-made subject: two interactions (one with nothing to erase), a ticket with a customer reply, two
    campaign sends (opened), a suppression; and a bystander with an interaction and a send."""
    subject = factories.customer(org_a, first_name="Dana", last_name="Subject", email="dana@example.com")
    bystander = factories.customer(org_a, first_name="Bea", last_name="Bystander", email="bea@example.com")
    factories.interaction(subject, notes="Called about pricing")
    factories.interaction(subject)
    factories.interaction(bystander, notes="Bystander notes")
    ticket = factories.ticket(org_a, customer=subject, subject="Broken login", description="Cannot sign in")
    with tenant_context(org_a.pk):
        ticket_reply(ticket=ticket, actor=None, body="Still broken", from_customer=True)
    campaign = mf.campaign(org_a)
    for who in (subject, bystander):
        mf.sent_email(org_a, campaign=campaign, customer=who, open_count=1, opened_at=NOW)
    with tenant_context(org_a.pk):
        Suppression.objects.create(organization=org_a, email="dana@example.com", reason="unsubscribed")
    return subject, bystander, ticket, campaign


def _expected_rows(subject) -> dict[str, int]:
    """Rows that hold something to erase, counted with plain queries (not through the registry)."""
    from customers.models import Interaction
    from support.models import Ticket, TicketMessage

    org = subject.organization_id
    with tenant_context(org):
        interactions = Interaction.objects.filter(organization_id=org, customer=subject).exclude(
            outcome="", notes=""
        )
        return {
            "profile": 1,
            "interactions": interactions.count(),
            "tickets": Ticket.objects.filter(organization_id=org, customer=subject).count(),
            "ticket_messages": TicketMessage.objects.filter(
                organization_id=org, ticket__customer=subject
            ).count(),
            "email_sends": EmailSend.objects.filter(organization_id=org, customer=subject).count(),
            "email_suppressions": Suppression.objects.filter(
                organization_id=org, email=subject.email
            ).count(),
        }


def test_the_receipt_counts_what_changed_and_a_second_erasure_changes_nothing(org_a, admin_a, small):
    subject, bystander, _ticket, campaign = small
    expected = _expected_rows(subject)
    assert expected == {
        "profile": 1,
        "interactions": 3,  # the note, and the two the ticket service logged (created, customer replied)
        "tickets": 1,
        "ticket_messages": 1,
        "email_sends": 1,
        "email_suppressions": 1,
    }
    audit_before = _audit_rows(org_a)
    with tenant_context(org_a.pk, user=admin_a):
        receipt = erase_customer(customer=subject, actor=admin_a, reason="GDPR-00007")
    audit_after = _audit_rows(org_a)

    assert receipt["mode"] == "erase"
    assert receipt["customers"] == [f"C-{subject.number:06d}"]
    assert receipt["by"] == str(admin_a.pk)
    assert receipt["reason"] == "GDPR-00007"
    assert datetime.datetime.fromisoformat(receipt["at"]) <= timezone.now()
    assert {label: receipt["tables"][label] for label in expected} == expected
    # Audit rows changed in place, plus the rows the erasure itself wrote and then redacted.
    changed_in_place = sum(1 for pk, row in audit_before.items() if audit_after[pk] != row)
    written_and_redacted = sum(
        1 for pk, row in audit_after.items() if pk not in audit_before and REDACTED in str(row[1])
    )
    assert changed_in_place > 0
    assert receipt["audit_rows_redacted"] == changed_in_place + written_and_redacted

    with tenant_context(org_a.pk):
        snapshot = (
            list(Customer.objects.order_by("pk").values()),
            list(EmailSend.objects.order_by("pk").values()),
            _audit_rows(org_a),
        )
        again = erase_customer(customer=subject, actor=admin_a)
        assert (
            list(Customer.objects.order_by("pk").values()),
            list(EmailSend.objects.order_by("pk").values()),
            _audit_rows(org_a),
        ) == snapshot
    assert again["tables"] == {}
    assert again["audit_rows_redacted"] == 0
    assert again["enrollments_exited"] == 0
    with tenant_context(org_a.pk):
        assert Customer.objects.get(pk=bystander.pk).display_name == "Bea Bystander"
        assert EmailSend.objects.get(customer=bystander).email == "bea@example.com"
        assert sum(EmailSend.objects.filter(campaign=campaign).values_list("open_count", flat=True)) == 2


def test_anonymize_mode_uses_the_anonymized_pseudonym_and_stamp(org_a, small):
    subject, bystander, _ticket, _campaign = small
    with tenant_context(org_a.pk):
        receipt = erase_customers(
            organization_id=org_a.pk,
            customer_ids=[subject.pk, bystander.pk],
            mode="anonymize",
            reason="retention",
        )
        rows = {c.pk: c for c in Customer.objects.filter(pk__in=[subject.pk, bystander.pk])}
    assert receipt["by"] is None
    assert receipt["customers"] == sorted([subject.customer_number, bystander.customer_number])
    assert receipt["tables"]["profile"] == 2
    for customer in rows.values():
        assert customer.display_name == f"Anonymized customer {customer.customer_number}"
        assert customer.anonymized_at is not None and customer.erased_at is None
        assert customer.email == ""


def test_erasure_exits_active_sequence_enrollments(org_a, small):
    subject = small[0]
    sequence = mf.sequence(org_a, steps=[("wait", {"wait_days": 1})])
    with tenant_context(org_a.pk):
        Enrollment.objects.create(
            organization=org_a, sequence=sequence, customer=subject, next_position=1, next_run_at=NOW
        )
        receipt = erase_customer(customer=subject, actor=None)
        enrollment = Enrollment.objects.get(customer=subject)
    assert receipt["enrollments_exited"] == 1
    assert enrollment.status == Enrollment.Status.EXITED
    assert enrollment.next_run_at is None and enrollment.finished_at is not None


def test_a_customer_of_another_organization_is_not_found_and_nothing_changes(org_a, org_b, small):
    subject = small[0]
    foreign = factories.customer(org_b, first_name="Foreign")
    with tenant_context(org_a.pk), pytest.raises(Customer.DoesNotExist):
        erase_customers(organization_id=org_a.pk, customer_ids=[subject.pk, foreign.pk], mode="erase")
    with tenant_context(org_a.pk):
        assert Customer.objects.get(pk=subject.pk).erased_at is None
    with tenant_context(org_b.pk):
        assert Customer.objects.get(pk=foreign.pk).first_name == "Foreign"


def test_erasure_needs_the_process_capability_and_the_organizations_context(org_a, small):
    subject = small[0]
    rep = factories.user(org_a, role="sales_rep")
    with tenant_context(org_a.pk, user=rep), pytest.raises(PermissionDenied):
        erase_customer(customer=subject, actor=rep)
    with system_context(), pytest.raises(TenantContextError):
        erase_customer(customer=subject, actor=None)
    with pytest.raises(ValueError):
        erase_customers(organization_id=org_a.pk, customer_ids=[subject.pk], mode="shred")


# --- the walls around the audit trail -------------------------------------------------------------------------


def _audit_row_of(org, customer) -> str:
    with tenant_context(org.pk), connection.cursor() as cursor:
        cursor.execute("SELECT id::text FROM crm_audit_log WHERE record_id = %s LIMIT 1", [str(customer.pk)])
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE crm_audit_log SET new_values = '{}'::jsonb WHERE id = %s::uuid",
        "DELETE FROM crm_audit_log WHERE id = %s::uuid",
    ],
)
def test_the_app_role_still_cannot_update_or_delete_audit_rows(org_a, small, statement):
    row = _audit_row_of(org_a, small[0])
    with pytest.raises(ProgrammingError, match="permission denied"), tenant_context(org_a.pk):
        with connection.cursor() as cursor:
            cursor.execute(statement, [row])


def test_crm_audit_redact_refuses_without_an_organization_context(small):
    subject = small[0]
    with pytest.raises(ProgrammingError, match="needs an organization context"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT crm_audit_redact('customers', ARRAY[%s], ARRAY['first_name'])", [str(subject.pk)]
            )


def test_crm_audit_redact_cannot_touch_another_organizations_rows(org_a, org_b, small):
    subject = small[0]  # of org A
    with tenant_context(org_b.pk), connection.cursor() as cursor:
        cursor.execute(
            "SELECT crm_audit_redact('customers', ARRAY[%s], ARRAY['first_name'])", [str(subject.pk)]
        )
        assert cursor.fetchone()[0] == 0
    with tenant_context(org_a.pk), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM crm_audit_log WHERE record_id = %s AND new_values ->> 'first_name' = 'Dana'",
            [str(subject.pk)],
        )
        assert cursor.fetchone()[0] == 1


def test_notifications_about_the_subject_are_found_by_link_and_by_name_but_no_others(org_a, admin_a, small):
    subject, bystander, ticket, _campaign = small
    opportunity = factories.opportunity(org_a, customer=subject, name="Renewal")
    links = {
        "ticket": reverse("support:ticket_detail", kwargs={"pk": ticket.pk}),
        "deal": reverse("sales:opportunity_detail", kwargs={"pk": opportunity.pk}) + "#activities-heading",
        "profile": reverse("customers:detail", kwargs={"pk": subject.pk}),
    }
    with tenant_context(org_a.pk):
        about = [
            Notification.objects.create(organization=org_a, recipient=admin_a, title=f"About {k}", url=url)
            for k, url in links.items()
        ]
        about.append(
            Notification.objects.create(
                organization=org_a, recipient=admin_a, title="Reminder: call", body="Task · Dana Subject"
            )
        )
        other = Notification.objects.create(
            organization=org_a,
            recipient=admin_a,
            title="Reminder: call",
            body="Task · Bea Bystander",
            url=reverse("customers:detail", kwargs={"pk": bystander.pk}),
        )
        erase_customer(customer=subject, actor=None)
        assert set(
            Notification.objects.filter(pk__in=[n.pk for n in about]).values_list("title", flat=True)
        ) == {REDACTED}
        assert Notification.objects.get(pk=other.pk).body == "Task · Bea Bystander"
