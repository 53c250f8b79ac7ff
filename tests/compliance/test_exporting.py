"""Subject exports (compliance/exporting.py) and their downloads (compliance/views/exports.py): every
registered field of the subject in data.json and the CSVs and nothing of anyone else, one row per row (no
fan-out), the signed link (tampered 404, expired 410, removed 410), and every download in the access log."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import uuid
import zipfile
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.contrib.postgres.fields import ArrayField
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import models
from django.urls import reverse
from django.utils import timezone

from compliance import exporting, registry
from compliance.models import AccessAction, AccessLogEntry, CcpaRequest, GdprRequest
from crm.encryption import EncryptedDateField
from crm.tenancy import system_context, tenant_context
from customers.models import Customer, Interaction
from support.models import Ticket
from tests import factories

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)


@pytest.fixture
def declarations():
    """Every declaration of every app (<app>/personal_data.py): the tests iterate them, never a fixed list."""
    return registry.personal_data()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def _subject(org, *, tickets=1, interactions=1, tag="Subject"):
    """A customer with tickets, interactions and a deal, through the services."""
    customer = factories.customer(org, first_name=tag, last_name="Person")
    for n in range(interactions):
        factories.interaction(customer, outcome=f"{tag} call {n}", notes=f"{tag} notes {n}")
    for n in range(tickets):
        factories.ticket(org, customer=customer, subject=f"{tag} ticket {n}", description="Help")
    factories.opportunity(org, customer=customer, name=f"{tag} deal")
    return customer


def _rich_subject(org, staff, *, tag):
    """A customer with rows in every table the apps declare (profile, history, deals, quotes, orders,
    tickets and their messages, marketing sends and sequences, consent, requests, the access log)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from compliance.access_log import record_access
    from compliance.models import ConsentRecord
    from crm.models import Notification
    from customers import models as cm
    from marketing import models as mm
    from support.models import Survey
    from support.services.tickets import ticket_note

    customer = factories.customer(
        org, first_name=tag, last_name="Person", email=f"{tag.lower()}@before.example"
    )
    factories.interaction(customer, outcome=f"{tag} call")
    opportunity = factories.opportunity(org, customer=customer, name=f"{tag} deal", stage="Prospecting")
    factories.activity(org, opportunity=opportunity, owner=staff, subject=f"{tag} call back")
    factories.quote(org, opportunity=opportunity, lines=[{"description": f"{tag} line", "unit_price": 5}])
    factories.order(org, customer=customer, lines=[{"quantity": 1, "unit_price": 5}])
    ticket = factories.ticket(org, customer=customer, subject=f"{tag} ticket")
    with system_context():
        from sales.models import Stage
        from sales.services.opportunities import opportunity_update

        opportunity_update(
            opportunity=opportunity,
            actor=None,
            stage=Stage.objects.get(organization=org, name="Proposal", pipeline__is_default=True),
        )
        ticket_note(
            ticket=ticket,
            actor=staff,
            body=f"{tag} note",
            attachments=[SimpleUploadedFile("note.txt", f"{tag} file".encode())],
        )
        cm.ScoreHistory.objects.create(
            organization=org, customer=customer, lead_score=40, engagement_score=10, health_score=50
        )
        segment = cm.Segment.objects.create(
            organization=org, name=f"{tag} segment", kind=cm.Segment.Kind.STATIC
        )
        cm.SegmentMember.objects.create(organization=org, segment=segment, customer=customer)
        cm.SegmentEvent.objects.create(
            organization=org, segment=segment, customer=customer, kind=cm.SegmentEvent.Kind.ADDED
        )
        now = timezone.now().replace(microsecond=0)
        template = mm.EmailTemplate.objects.create(
            organization=org, name=f"{tag} template", subject="Hi", html_body="<p>Hi</p>"
        )
        campaign = mm.Campaign.objects.create(
            organization=org,
            name=f"{tag} campaign",
            channels=["email"],
            template=template,
            send_at=now,
            send_state="done",
            send_started_at=now,
            send_finished_at=now,
            recipients_total=1,
            sent_count=1,
        )
        mm.EmailSend.objects.create(
            organization=org,
            campaign=campaign,
            customer=customer,
            blast_at=now,
            scheduled_send_time=now,
            email=customer.email,
            status="sent",
            sent_at=now,
        )
        mm.Suppression.objects.create(organization=org, email=customer.email, reason="manual")
        sequence = mm.Sequence.objects.create(organization=org, name=f"{tag} sequence", campaign=campaign)
        step = mm.Step.objects.create(
            organization=org, sequence=sequence, position=1, kind="wait", wait_days=1
        )
        enrollment = mm.Enrollment.objects.create(organization=org, sequence=sequence, customer=customer)
        mm.StepRun.objects.create(
            organization=org,
            enrollment=enrollment,
            step=step,
            due_at=now - dt.timedelta(days=1),
            outcome="waited",
        )
        form = mm.LeadForm.objects.create(
            organization=org, campaign=campaign, name=f"{tag} form", slug=f"{tag.lower()}-form", title="Hi"
        )
        mm.FormSubmission.objects.create(organization=org, form=form, customer=customer)
        Survey.objects.create(
            organization=org,
            kind="nps",
            customer=customer,
            ticket=ticket,
            expires_at=now + dt.timedelta(days=14),
        )
        ConsentRecord.objects.create(
            organization=org,
            customer=customer,
            purpose="profiling",
            granted=False,
            source="staff",
            proof=f"{tag} letter",
        )
        Notification.objects.create(
            organization=org,
            recipient=staff,
            title=f"{tag} needs a call",
            url=reverse("customers:detail", kwargs={"pk": customer.pk}),
        )
        for model in (GdprRequest, CcpaRequest):
            model.objects.create(
                organization=org,
                number=next(_numbers),
                customer=customer,
                requester_email=customer.email,
                requester_name=f"{tag} Person",
                due_at=now + dt.timedelta(days=30),
                request_type="access",
            )
    with tenant_context(org.pk, user=staff):
        record_access(
            request_or_none=None,
            user=staff,
            action="view_customer",
            customer=customer,
            description=f"{tag} viewed",
        )
    return customer


def _marker(model_field: models.Field, tag: str, n: int):
    """A distinctive value of the field's type (None: leave the field as it is)."""
    if model_field.is_relation:
        return None
    if model_field.choices:
        return None  # a code, not data: left as it is (and still exported, which the test checks)
    if isinstance(model_field, EncryptedDateField):
        return dt.date(1970 + n % 50, 1, 2)
    if isinstance(model_field, models.EmailField) or model_field.name.endswith("email"):
        # one address per subject: rows found by the subject's email (suppressions) must still match it
        return f"{tag.lower()}@marker.example"
    if isinstance(model_field, models.GenericIPAddressField):
        return f"203.0.113.{n % 250 + 1}"
    if isinstance(model_field, ArrayField):
        return [f"{tag}{n:03d}"]
    if isinstance(model_field, models.JSONField):
        return {"marker": f"{tag}{n:03d}"}
    if isinstance(model_field, models.CharField | models.TextField):
        return f"{tag}{n:03d}"[: model_field.max_length or 100]
    if isinstance(model_field, models.DateTimeField):
        # this month: partitioned tables (interactions) have partitions around now only
        return timezone.now().replace(day=1, hour=4, minute=5, second=n % 60, microsecond=0)
    if isinstance(model_field, models.DateField):
        return dt.date(1970 + n % 50, 1, 2)
    if isinstance(model_field, models.DecimalField):
        return Decimal(f"{n % 9 + 1}.25")
    if isinstance(model_field, models.BooleanField):
        return None  # a flag often tied to the row's state by a constraint: left as it is
    if isinstance(model_field, models.IntegerField):
        return 3  # within every score and rating range's check constraint
    if isinstance(model_field, models.UUIDField):
        return uuid.uuid4()
    return None


def _expected_json(value):
    """What data.json holds for a marker, worked out by hand (not through the exporter's encoder)."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    return value


def _mark(org, customer, declarations, tag) -> dict:
    """Put a marker into every registered field of every row of `customer`: {label: {pk: {field: value}}}."""
    counter = itertools.count(1)
    identity = exporting.identity_of(customer)
    marked: dict[str, dict] = {}
    with system_context():
        for declaration in declarations:
            model = declaration.model
            rows = list(
                model._default_manager.filter(declaration.subject_filter(identity)).values_list(
                    "pk", flat=True
                )
            )
            marked[declaration.label] = {}
            for pk in rows:
                row = model._default_manager.get(pk=pk)
                values = {}
                for name in declaration.field_names():
                    model_field = model._meta.get_field(name)
                    text = isinstance(model_field, models.CharField | models.TextField | models.JSONField)
                    # Text gets a marker; another value only where one is set already (a NULL date or
                    # amount is what the row's state says it must be: an open deal has no close date).
                    if text or model_field.value_from_object(row) is not None:
                        value = _marker(model_field, tag, next(counter))
                        if value is not None:
                            values[name] = value
                if model is AccessLogEntry:
                    values = {}  # append-only for the app role: its row was written with the tag
                else:
                    model._default_manager.filter(pk=pk).update(**values)
                row = model._default_manager.get(pk=pk)
                # every field as the ORM reads it back: the markers, and the values left as they were
                marked[declaration.label][str(pk)] = {
                    name: model._meta.get_field(name).value_from_object(row)
                    for name in declaration.field_names()
                }
                assert all(marked[declaration.label][str(pk)][k] == v for k, v in values.items())
    return marked


def _export(org, customer, label="GDPR-00001"):
    with system_context():
        result = exporting.export_customer(customer=customer, request_label=label)
    with default_storage.open(result.name, "rb") as handle:
        return result, zipfile.ZipFile(io.BytesIO(handle.read()))


def _csv(archive, label) -> list[dict]:
    return list(csv.DictReader(io.StringIO(archive.read(f"{label}.csv").decode("utf-8"))))


def test_export_holds_every_registered_field_of_the_subject_and_nothing_of_another(org_a, declarations):
    staff = factories.user(org_a, role="admin")
    subject = _rich_subject(org_a, staff, tag="SUBJMARK")
    other = _rich_subject(org_a, staff, tag="OTHERMARK")
    marked = _mark(org_a, subject, declarations, "SUBJMARK")
    _mark(org_a, other, declarations, "OTHERMARK")
    with system_context():
        subject.refresh_from_db()

    result, archive = _export(org_a, subject)

    assert set(archive.namelist()) == {"data.json", "README.txt", *(f"{d.label}.csv" for d in declarations)}
    data = json.loads(archive.read("data.json"))
    assert data["subject"]["id"] == str(subject.pk)
    assert data["subject"]["request"] == "GDPR-00001"
    assert set(data["sections"]) == {d.label for d in declarations}
    for declaration in declarations:
        label = declaration.label
        expected = marked[label]
        assert expected, f"the subject has no {label} rows: give _subject() some so the export is tested"
        json_rows = {str(row["id"]): row for row in data["sections"][label]}
        csv_rows = {row["id"]: row for row in _csv(archive, label)}
        assert set(json_rows) == set(expected) == set(csv_rows)
        assert result.counts[label] == len(expected)
        for pk, values in expected.items():
            assert set(json_rows[pk]) == {"id", *declaration.field_names()}
            assert set(csv_rows[pk]) == {"id", *declaration.field_names()}
            for name, value in values.items():
                got, cell = json_rows[pk][name], csv_rows[pk][name]
                want = _expected_json(value)
                if isinstance(want, dt.datetime):
                    assert dt.datetime.fromisoformat(got.replace("Z", "+00:00")) == want, (label, name)
                    assert dt.datetime.fromisoformat(cell.replace("Z", "+00:00")) == want, (label, name)
                elif value is None:
                    assert (got, cell) == (None, ""), (label, name)
                elif isinstance(value, bool):
                    assert (got, cell) == (value, "true" if value else "false"), (label, name)
                elif isinstance(value, list | dict):
                    assert got == value and json.loads(cell) == value, (label, name)
                else:
                    assert got == want, (label, name)
                    assert cell == str(want), (label, name)
                model_field = declaration.model._meta.get_field(name)
                if (
                    isinstance(model_field, models.CharField | models.TextField)
                    and not model_field.choices
                    and not isinstance(model_field, EncryptedDateField)
                    and declaration.model is not AccessLogEntry
                ):
                    # the marker did land (cut to the column's length: a country code holds "SU")
                    assert "subjmark".startswith(str(value).lower()[:8]) or "subjmark" in str(value).lower()
    everything = b"".join(archive.read(name) for name in archive.namelist())
    assert b"OTHERMARK" not in everything
    assert str(other.pk).encode() not in everything
    assert b"SUBJMARK" in everything
    assert result.size == default_storage.size(result.name)
    assert result.name.startswith(f"privacy-exports/{org_a.pk}/")
    readme = archive.read("README.txt").decode()
    assert "data.json" in readme and all(f"{d.label}.csv" in readme for d in declarations)


def test_each_section_has_one_row_per_row_however_many_others_the_subject_has(org_a, declarations):
    subject = _subject(org_a, tickets=3, interactions=4)
    with system_context():
        tickets = Ticket.objects.filter(customer=subject).count()
        logged_by_tickets = Interaction.objects.filter(
            customer=subject, interaction_type__in=("support_ticket", "email_sent")
        ).count()
        interactions = Interaction.objects.filter(customer=subject).count()
    assert tickets == 3
    assert interactions == 4 + logged_by_tickets

    result, archive = _export(org_a, subject)

    data = json.loads(archive.read("data.json"))
    ticket_label = registry.declaration_for(Ticket).label
    interaction_label = registry.declaration_for(Interaction).label
    assert result.counts[ticket_label] == len(data["sections"][ticket_label]) == 3
    assert result.counts[interaction_label] == len(data["sections"][interaction_label]) == interactions
    assert len(_csv(archive, ticket_label)) == 3
    assert len(_csv(archive, interaction_label)) == interactions
    assert len({row["id"] for row in data["sections"][interaction_label]}) == interactions
    assert result.counts[registry.declaration_for(Customer).label] == 1


def test_export_runs_one_query_per_section(org_a, declarations, django_assert_max_num_queries):
    subject = _subject(org_a, tickets=3, interactions=5)
    with system_context():
        customer = Customer.objects.get(pk=subject.pk)
        # one per section, the organization's name for the README, the tenant context's set_config calls
        with django_assert_max_num_queries(len(declarations) + 4):
            exporting.export_customer(customer=customer, request_label="GDPR-00001")


def test_values_are_json_safe():
    assert exporting._json_safe(
        {
            "d": dt.date(2020, 1, 2),
            "n": Decimal("1.50"),
            "u": uuid.UUID(int=1),
            "t": dt.datetime(2020, 1, 2, tzinfo=dt.UTC),
        }
    ) == {
        "d": "2020-01-02",
        "n": "1.50",
        "u": "00000000-0000-0000-0000-000000000001",
        "t": "2020-01-02T00:00:00+00:00",
    }
    assert exporting._cell(["a", "b"]) == '["a", "b"]'
    assert exporting._cell("=SUM(A1)") == "'=SUM(A1)"
    assert exporting._cell(None) == ""


# --- Downloads ----------------------------------------------------------------------------------------------


def _request_with_export(org, customer, *, model=GdprRequest, expires_in=dt.timedelta(days=7)):
    name = default_storage.save(f"privacy-exports/{org.pk}/{uuid.uuid4()}.zip", ContentFile(b"PK\x03\x04zip"))
    extra = {"request_type": "access"}
    with system_context():
        return model.objects.create(
            organization=org,
            number=next(_numbers),
            customer=customer,
            requester_email=customer.email,
            due_at=timezone.now() + dt.timedelta(days=30),
            export_file=name,
            export_expires_at=timezone.now() + expires_in,
            **extra,
        )


def _path(url: str) -> str:
    return urlsplit(url).path


def _log(org) -> list[AccessLogEntry]:
    with system_context():
        return list(AccessLogEntry.objects.filter(organization_id=org.pk).order_by("occurred_at"))


def test_signed_link_downloads_the_zip_as_an_attachment_and_logs_it(org_a, client):
    customer = factories.customer(org_a)
    request_obj = _request_with_export(org_a, customer)

    url = exporting.export_download_url(request_obj)
    response = client.get(_path(url))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"PK\x03\x04zip"
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment;")
    assert f"{request_obj}-personal-data.zip" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    [entry] = _log(org_a)
    assert entry.action == AccessAction.DOWNLOAD_EXPORT
    assert entry.user_id is None
    assert entry.customer_id == customer.pk
    assert entry.description == f"{request_obj} via signed link"
    assert entry.description.startswith("GDPR-0")


def test_ccpa_requests_have_links_too(org_a, client):
    request_obj = _request_with_export(org_a, factories.customer(org_a), model=CcpaRequest)
    assert client.get(_path(exporting.export_download_url(request_obj))).status_code == 200
    assert _log(org_a)[0].description.startswith("CCPA-")


def test_a_tampered_or_foreign_token_is_404(org_a, org_b, client):
    request_obj = _request_with_export(org_a, factories.customer(org_a))
    token = exporting.make_token(request_obj)
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    other_salt = signing.TimestampSigner(salt="another").sign_object(
        {"o": org_a.pk.hex, "k": "gdpr", "r": request_obj.pk.hex}
    )
    # a genuine signature over another organization's id: RLS and the filter find no such request there
    wrong_org = exporting._signer().sign_object({"o": org_b.pk.hex, "k": "gdpr", "r": request_obj.pk.hex})
    wrong_kind = exporting._signer().sign_object({"o": org_a.pk.hex, "k": "ccpa", "r": request_obj.pk.hex})
    bad_kind = exporting._signer().sign_object({"o": org_a.pk.hex, "k": "other", "r": request_obj.pk.hex})
    for bad in (tampered, other_salt, wrong_org, wrong_kind, bad_kind, "nonsense"):
        response = client.get(reverse("privacy_public:download", kwargs={"token": bad}))
        assert response.status_code == 404, bad
    assert _log(org_a) == [] and _log(org_b) == []


class _PastSigner(signing.TimestampSigner):
    def __init__(self, *, days_ago: float, **kwargs):
        super().__init__(**kwargs)
        self.days_ago = days_ago

    def timestamp(self):
        return signing.b62_encode(int(timezone.now().timestamp() - self.days_ago * 86400))


def test_an_expired_link_is_410_and_the_age_follows_the_setting(org_a, client, settings):
    request_obj = _request_with_export(org_a, factories.customer(org_a), expires_in=dt.timedelta(days=30))
    payload = {"o": org_a.pk.hex, "k": "gdpr", "r": request_obj.pk.hex}
    old = _PastSigner(days_ago=7.1, salt=exporting.SALT).sign_object(payload)
    recent = _PastSigner(days_ago=6.9, salt=exporting.SALT).sign_object(payload)

    response = client.get(reverse("privacy_public:download", kwargs={"token": old}))
    assert response.status_code == 410
    assert b"no longer available" in response.content
    assert client.get(reverse("privacy_public:download", kwargs={"token": recent})).status_code == 200

    settings.PRIVACY_EXPORT_LINK_DAYS = 14
    assert client.get(reverse("privacy_public:download", kwargs={"token": old})).status_code == 200
    assert len(_log(org_a)) == 2


def test_a_link_past_the_requests_expiry_or_to_a_removed_file_is_410(org_a, client):
    customer = factories.customer(org_a)
    expired = _request_with_export(org_a, customer, expires_in=-dt.timedelta(minutes=1))
    removed = _request_with_export(org_a, customer)
    default_storage.delete(removed.export_file)
    for request_obj in (expired, removed):
        response = client.get(_path(exporting.export_download_url(request_obj)))
        assert response.status_code == 410
    assert _log(org_a) == []


def test_staff_download_from_the_request_page_is_logged_with_the_user(org_a, login, client):
    admin = factories.user(org_a, role="admin")
    customer = factories.customer(org_a)
    request_obj = _request_with_export(org_a, customer, expires_in=-dt.timedelta(days=1))
    login(admin)

    response = client.get(
        reverse("compliance:export_download", kwargs={"kind": "gdpr", "pk": request_obj.pk})
    )

    assert response.status_code == 200  # staff may still fetch a file whose public link has expired
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    [entry] = _log(org_a)
    assert (entry.user_id, entry.customer_id, entry.action) == (admin.pk, customer.pk, "download_export")
    assert entry.description == f"{request_obj} from the request page"


def test_staff_download_needs_the_capability_and_the_organization(org_a, org_b, login, client):
    request_obj = _request_with_export(org_a, factories.customer(org_a))
    url = reverse("compliance:export_download", kwargs={"kind": "gdpr", "pk": request_obj.pk})
    login(factories.user(org_a, role="sales_manager"))
    assert client.get(url).status_code == 403
    login(factories.user(org_b, role="admin"))
    assert client.get(url).status_code == 404
    assert (
        client.get(
            reverse("compliance:export_download", kwargs={"kind": "nope", "pk": request_obj.pk})
        ).status_code
        == 404
    )
    assert _log(org_a) == [] and _log(org_b) == []
