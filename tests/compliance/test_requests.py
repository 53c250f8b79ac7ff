"""The GDPR and CCPA request workflow services (compliance/services/requests/): intake and deadlines, CCPA
outside California, identity verification (wrong code, attempt limit, expiry, success), staff verification,
extension limits, rejection, assignment, processing refused until verified, and what each type does."""

from __future__ import annotations

import datetime
import hashlib
import hmac

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from compliance.models import ConsentRecord, GdprRequest, RequestSource, RequestStatus
from compliance.services.requests import (
    request_assign,
    request_extend,
    request_link_customer,
    request_mark_verified,
    request_process,
    request_reject,
    request_send_verification,
    request_verify,
)
from compliance.tasks import requests as tasks
from crm.tenancy import tenant_context
from customers.models import Customer
from tests import factories
from tests.compliance.requests_support import create, last_code, reload, verified

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


@pytest.fixture
def queued(monkeypatch):
    """Background runs enqueued on commit, captured instead of sent to the broker."""
    calls = []
    monkeypatch.setattr(
        tasks.process_privacy_request, "delay_on_commit", lambda *args, **kwargs: calls.append((args, kwargs))
    )
    return calls


def _run_queued(queued, capture):
    """Run each captured task as the worker would (its tenant context comes from organization_id)."""
    with capture(execute=True):
        results = [
            tasks.process_privacy_request.apply(args=args, kwargs=kwargs).get() for args, kwargs in queued
        ]
    queued.clear()
    return results


# --- intake ----------------------------------------------------------------------------------------------


def test_a_gdpr_request_gets_the_next_number_and_a_30_day_deadline(org_a, admin_a):
    first = create(org_a, actor=admin_a)
    second = create(org_a, actor=admin_a, request_type="erase")
    assert (first.number, second.number) == (1, 2)
    assert str(first) == "GDPR-00001"
    assert first.due_at - first.received_at == datetime.timedelta(days=30)
    assert first.status == RequestStatus.RECEIVED
    assert first.source == RequestSource.STAFF
    assert first.created_by == admin_a


def test_numbers_are_per_organization_and_per_law(org_a, org_b):
    create(org_a)
    assert create(org_b).number == 1
    assert create(org_a, kind="ccpa", resident_state="CA").number == 1


def test_the_customer_is_matched_by_email_case_insensitively_within_the_organization(org_a, org_b):
    mine = factories.customer(org_a, email="dana@example.org")
    factories.customer(org_b, email="dana@example.org")
    privacy_request = create(org_a, requester_email="  Dana@Example.ORG ")
    assert privacy_request.requester_email == "dana@example.org"
    assert privacy_request.customer_id == mine.pk
    assert create(org_a, requester_email="nobody@example.org").customer_id is None


def test_a_customer_of_another_organization_is_refused(org_a, org_b):
    theirs = factories.customer(org_b)
    with pytest.raises(ValidationError):
        create(org_a, customer=theirs)


def test_invalid_type_and_email_are_refused(org_a):
    with pytest.raises(ValidationError):
        create(org_a, request_type="delete")  # a CCPA type, not GDPR
    with pytest.raises(ValidationError):
        create(org_a, requester_email="not-an-email")
    with pytest.raises(ValidationError):
        create(org_a, kind="hipaa")


def test_a_sales_rep_may_log_a_request(org_a):
    rep = factories.user(org_a, role="sales_rep")
    assert create(org_a, actor=rep).created_by == rep


def test_rectification_accepts_only_the_allow_listed_fields(org_a):
    with pytest.raises(ValidationError):
        create(org_a, request_type="rectify", rectification={"lead_score": "100"})
    with pytest.raises(ValidationError):
        create(org_a, request_type="access", rectification={"first_name": "X"})
    with pytest.raises(ValidationError):
        create(org_a, request_type="rectify")  # neither corrections nor details
    ok = create(org_a, request_type="rectify", rectification={"first_name": " Dana "})
    assert ok.rectification == {"first_name": "Dana"}


@pytest.mark.parametrize(
    ("request_type", "categories"),
    [
        (
            "access",
            ["personal_information", "commercial_information", "internet_activity", "geolocation_data"],
        ),
        ("delete", ["personal_information", "commercial_information", "internet_activity"]),
        ("opt_out_sale", ["commercial_information"]),
        ("opt_out_sharing", ["personal_information", "commercial_information"]),
    ],
)
def test_a_california_ccpa_request_has_a_45_day_deadline_and_the_design_documents_categories(
    org_a, request_type, categories
):
    privacy_request = create(org_a, kind="ccpa", request_type=request_type, resident_state="CA")
    assert privacy_request.status == RequestStatus.RECEIVED
    assert privacy_request.due_at - privacy_request.received_at == datetime.timedelta(days=45)
    assert privacy_request.data_categories == categories
    assert str(privacy_request) == "CCPA-00001"


def test_the_customers_state_on_file_decides_residence_over_the_given_one(org_a):
    factories.customer(org_a, email="dana@example.org", state="California")
    privacy_request = create(org_a, kind="ccpa", resident_state="NV")
    assert privacy_request.resident_state == "California"
    assert privacy_request.status == RequestStatus.RECEIVED


@pytest.mark.parametrize("state", ["NV", "", "Texas"])
def test_a_ccpa_request_from_outside_california_is_not_applicable_and_the_requester_is_told(
    org_a, state, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        privacy_request = create(org_a, kind="ccpa", resident_state=state)
    assert privacy_request.status == RequestStatus.NOT_APPLICABLE
    assert privacy_request.completed_at is not None
    assert "California residents only" in privacy_request.rejection_reason
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dana@example.org"]
    assert "not applicable" in mail.outbox[0].subject
    assert "California residents only" in mail.outbox[0].body
    assert not privacy_request.is_open


# --- verification ----------------------------------------------------------------------------------------


def test_sending_a_code_stores_only_its_keyed_hash_and_emails_it(org_a, django_capture_on_commit_callbacks):
    privacy_request = create(org_a)
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk):
        request_send_verification(privacy_request=privacy_request)
    stored = reload(org_a, privacy_request)
    code = last_code()
    assert stored.status == RequestStatus.VERIFYING
    assert stored.verification_sent_at is not None
    assert len(code) == 8 and not set(code) & set("01OIL")
    assert code not in stored.verification_code_hash
    # Django's salted_hmac: HMAC-SHA256 keyed with sha256(salt + SECRET_KEY).
    key = hashlib.sha256(("compliance.verification" + settings.SECRET_KEY).encode()).digest()
    expected = hmac.new(key, f"gdpr_requests:{stored.pk}:{code}".encode(), hashlib.sha256).hexdigest()
    assert stored.verification_code_hash == expected
    assert mail.outbox[-1].to == ["dana@example.org"]


def test_a_wrong_code_is_refused_and_counted(org_a, django_capture_on_commit_callbacks):
    privacy_request = create(org_a)
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk):
        request_send_verification(privacy_request=privacy_request)
    with tenant_context(org_a.pk):
        assert request_verify(privacy_request=privacy_request, code="WRONGCOD") is False
    stored = reload(org_a, privacy_request)
    assert stored.verification_attempts == 1
    assert stored.status == RequestStatus.VERIFYING
    assert stored.verified_at is None


def test_after_five_wrong_codes_even_the_right_one_is_refused_until_a_new_code(
    org_a, django_capture_on_commit_callbacks
):
    privacy_request = create(org_a)
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk):
        request_send_verification(privacy_request=privacy_request)
    code = last_code()
    with tenant_context(org_a.pk):
        for _ in range(GdprRequest.MAX_VERIFICATION_ATTEMPTS):
            assert request_verify(privacy_request=privacy_request, code="AAAAAAAA") is False
    with tenant_context(org_a.pk), pytest.raises(ValidationError, match="Ask for a new code"):
        request_verify(privacy_request=privacy_request, code=code)
    assert reload(org_a, privacy_request).verification_attempts == 5
    # A new code starts over.
    assert (
        verified(org_a, privacy_request, django_capture_on_commit_callbacks).status
        == RequestStatus.PROCESSING
    )


def test_an_expired_code_is_refused(org_a, django_capture_on_commit_callbacks):
    privacy_request = create(org_a)
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk):
        request_send_verification(privacy_request=privacy_request)
        GdprRequest.objects.filter(pk=privacy_request.pk).update(
            verification_sent_at=timezone.now()
            - GdprRequest.VERIFICATION_CODE_TTL
            - datetime.timedelta(minutes=1)
        )
    with tenant_context(org_a.pk), pytest.raises(ValidationError, match="no longer valid"):
        request_verify(privacy_request=privacy_request, code=last_code())


def test_the_right_code_verifies_once_and_moves_to_processing(org_a, django_capture_on_commit_callbacks):
    privacy_request = create(org_a)
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk):
        request_send_verification(privacy_request=privacy_request)
    code = last_code()
    typed = f" {code[:4].lower()}-{code[4:]} "  # as a person types it
    with tenant_context(org_a.pk):
        assert request_verify(privacy_request=privacy_request, code=typed) is True
    stored = reload(org_a, privacy_request)
    assert stored.status == RequestStatus.PROCESSING
    assert stored.verified_at is not None
    assert stored.verification_code_hash == ""


def test_a_code_cannot_be_checked_before_one_was_sent(org_a):
    privacy_request = create(org_a)
    with tenant_context(org_a.pk), pytest.raises(ValidationError):
        request_verify(privacy_request=privacy_request, code="ABCDEFGH")


def test_staff_verification_needs_a_note_and_the_processing_capability(org_a, admin_a):
    privacy_request = create(org_a)
    manager = factories.user(org_a, role="sales_manager")
    with tenant_context(org_a.pk), pytest.raises(ValidationError):
        request_mark_verified(privacy_request=privacy_request, actor=admin_a, note="  ")
    with tenant_context(org_a.pk), pytest.raises(PermissionDenied):
        request_mark_verified(privacy_request=privacy_request, actor=manager, note="ID seen")
    with tenant_context(org_a.pk, user=admin_a):
        request_mark_verified(
            privacy_request=privacy_request, actor=admin_a, note="Passport checked at the desk"
        )
    stored = reload(org_a, privacy_request)
    assert stored.status == RequestStatus.PROCESSING
    assert stored.verified_by_id == admin_a.pk
    assert stored.result == {"verification_note": "Passport checked at the desk"}


# --- processing refused until verified --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gdpr", "ccpa"])
def test_processing_is_refused_until_the_identity_is_verified(
    org_a, admin_a, kind, django_capture_on_commit_callbacks
):
    customer = factories.customer(org_a, email="dana@example.org", state="CA")
    privacy_request = create(org_a, kind=kind, request_type="access", customer=customer)
    with tenant_context(org_a.pk), pytest.raises(ValidationError, match="not verified"):
        request_process(privacy_request=privacy_request, actor=admin_a)
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk):
        request_send_verification(privacy_request=privacy_request)
    with tenant_context(org_a.pk), pytest.raises(ValidationError, match="not verified"):
        request_process(privacy_request=privacy_request, actor=admin_a)
    assert reload(org_a, privacy_request).status == RequestStatus.VERIFYING


def test_processing_needs_a_linked_customer(org_a, admin_a, django_capture_on_commit_callbacks):
    privacy_request = verified(
        org_a,
        create(org_a, requester_email="stranger@example.org", request_type="restrict"),
        django_capture_on_commit_callbacks,
    )
    with tenant_context(org_a.pk), pytest.raises(ValidationError, match="Link the request"):
        request_process(privacy_request=privacy_request, actor=admin_a)
    customer = factories.customer(org_a)
    with tenant_context(org_a.pk):
        request_link_customer(privacy_request=privacy_request, actor=admin_a, customer=customer)
        request_process(privacy_request=privacy_request, actor=admin_a)
    assert reload(org_a, privacy_request).status == RequestStatus.COMPLETED


def test_a_ccpa_request_cannot_be_linked_to_a_customer_outside_california(org_a, admin_a):
    privacy_request = create(org_a, kind="ccpa", resident_state="CA", requester_email="x@example.org")
    nevada = factories.customer(org_a, state="NV")
    with tenant_context(org_a.pk), pytest.raises(ValidationError, match="California"):
        request_link_customer(privacy_request=privacy_request, actor=admin_a, customer=nevada)


# --- extension, rejection, assignment ------------------------------------------------------------------


def test_a_gdpr_deadline_extends_in_steps_up_to_two_months_with_a_reason(
    org_a, admin_a, django_capture_on_commit_callbacks
):
    privacy_request = create(org_a)
    statutory = privacy_request.due_at
    with tenant_context(org_a.pk), pytest.raises(ValidationError):
        request_extend(privacy_request=privacy_request, actor=admin_a, reason="", days=10)
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk):
        request_extend(privacy_request=privacy_request, actor=admin_a, reason="Many systems", days=30)
        request_extend(privacy_request=privacy_request, actor=admin_a, reason="Still collecting", days=30)
    with tenant_context(org_a.pk), pytest.raises(ValidationError, match="0 more days"):
        request_extend(privacy_request=privacy_request, actor=admin_a, reason="More", days=1)
    stored = reload(org_a, privacy_request)
    assert stored.due_at == statutory + 60 * DAY
    assert stored.extension_reason == "Many systems; Still collecting"
    assert [m.subject for m in mail.outbox] == [f"Your privacy request {stored}: deadline extended"] * 2
    assert "Many systems" in mail.outbox[0].body


def test_a_gdpr_extension_beyond_60_days_is_refused(org_a, admin_a):
    privacy_request = create(org_a)
    with tenant_context(org_a.pk), pytest.raises(ValidationError, match="60 more days"):
        request_extend(privacy_request=privacy_request, actor=admin_a, reason="Complex", days=61)


def test_a_ccpa_deadline_extends_once_by_at_most_45_days(org_a, admin_a):
    privacy_request = create(org_a, kind="ccpa", resident_state="CA")
    with tenant_context(org_a.pk), pytest.raises(ValidationError):
        request_extend(privacy_request=privacy_request, actor=admin_a, reason="Complex", days=46)
    with tenant_context(org_a.pk):
        request_extend(privacy_request=privacy_request, actor=admin_a, reason="Complex", days=20)
    with tenant_context(org_a.pk), pytest.raises(ValidationError, match="only once"):
        request_extend(privacy_request=privacy_request, actor=admin_a, reason="Again", days=5)
    stored = reload(org_a, privacy_request)
    assert stored.due_at - stored.received_at == 65 * DAY


def test_a_rejection_needs_a_reason_closes_the_request_and_tells_the_requester(
    org_a, admin_a, django_capture_on_commit_callbacks
):
    privacy_request = create(org_a)
    with tenant_context(org_a.pk), pytest.raises(ValidationError):
        request_reject(privacy_request=privacy_request, actor=admin_a, reason=" ")
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk):
        request_reject(
            privacy_request=privacy_request, actor=admin_a, reason="Identity could not be established"
        )
    stored = reload(org_a, privacy_request)
    assert stored.status == RequestStatus.REJECTED
    assert stored.completed_at is not None
    assert "Identity could not be established" in mail.outbox[-1].body
    # Closed: no further step.
    for step in (
        lambda: request_reject(privacy_request=stored, actor=admin_a, reason="again"),
        lambda: request_extend(privacy_request=stored, actor=admin_a, reason="late", days=5),
        lambda: request_send_verification(privacy_request=stored),
        lambda: request_process(privacy_request=stored, actor=admin_a),
    ):
        with tenant_context(org_a.pk), pytest.raises(ValidationError):
            step()


def test_only_colleagues_who_may_process_requests_can_be_assigned(org_a, org_b, admin_a):
    privacy_request = create(org_a)
    other_admin = factories.user(org_a, role="admin")
    rep = factories.user(org_a, role="sales_rep")
    stranger = factories.user(org_b, role="admin")
    for wrong in (rep, stranger):
        with tenant_context(org_a.pk), pytest.raises(ValidationError):
            request_assign(privacy_request=privacy_request, actor=admin_a, assignee=wrong)
    with tenant_context(org_a.pk):
        request_assign(privacy_request=privacy_request, actor=admin_a, assignee=other_admin)
    assert reload(org_a, privacy_request).assigned_to_id == other_admin.pk


def test_steps_other_than_logging_need_the_processing_capability(org_a):
    privacy_request = create(org_a)
    manager = factories.user(org_a, role="support_manager")
    for step in (
        lambda: request_reject(privacy_request=privacy_request, actor=manager, reason="x"),
        lambda: request_extend(privacy_request=privacy_request, actor=manager, reason="x", days=1),
        lambda: request_send_verification(privacy_request=privacy_request, actor=manager),
        lambda: request_process(privacy_request=privacy_request, actor=manager),
        lambda: request_assign(privacy_request=privacy_request, actor=manager, assignee=None),
    ):
        with tenant_context(org_a.pk), pytest.raises(PermissionDenied):
            step()


# --- what each type does ----------------------------------------------------------------------------------


def _ready(org, capture, **fields):
    customer = fields.pop("customer", None) or factories.customer(org, email="dana@example.org", state="CA")
    return verified(org, create(org, customer=customer, **fields), capture), customer


def test_restriction_flags_the_customer(org_a, admin_a, django_capture_on_commit_callbacks):
    privacy_request, customer = _ready(
        org_a, django_capture_on_commit_callbacks, request_type="restrict", details="Disputes accuracy"
    )
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk, user=admin_a):
        request_process(privacy_request=privacy_request, actor=admin_a)
    stored = reload(org_a, privacy_request)
    assert stored.status == RequestStatus.COMPLETED and stored.completed_at is not None
    assert stored.result["action"] == "restrict"
    row = reload(org_a, customer)
    assert row.processing_restricted is True
    assert row.restriction_reason == "GDPR-00001: Disputes accuracy"
    assert row.restricted_at is not None
    assert "complete" in mail.outbox[-1].subject


def test_an_objection_withdraws_email_marketing_and_profiling_consent(
    org_a, admin_a, django_capture_on_commit_callbacks
):
    customer = factories.customer(org_a, email="dana@example.org", email_opt_in=True)
    privacy_request, _ = _ready(
        org_a, django_capture_on_commit_callbacks, request_type="object", customer=customer
    )
    with tenant_context(org_a.pk, user=admin_a):
        request_process(privacy_request=privacy_request, actor=admin_a)
        records = list(
            ConsentRecord.objects.filter(customer=customer, source="request").values_list(
                "purpose", "granted", "source", "proof"
            )
        )
    assert sorted(records) == [
        ("email_marketing", False, "request", "GDPR-00001"),
        ("profiling", False, "request", "GDPR-00001"),
    ]
    row = reload(org_a, customer)
    assert (row.email_opt_in, row.profiling_allowed, row.sale_allowed) == (False, False, True)


@pytest.mark.parametrize(
    ("request_type", "column"), [("opt_out_sale", "sale_allowed"), ("opt_out_sharing", "sharing_allowed")]
)
def test_a_ccpa_opt_out_is_a_withdrawn_consent_record(
    org_a, admin_a, request_type, column, django_capture_on_commit_callbacks
):
    privacy_request, customer = _ready(
        org_a, django_capture_on_commit_callbacks, kind="ccpa", request_type=request_type
    )
    with tenant_context(org_a.pk, user=admin_a):
        request_process(privacy_request=privacy_request, actor=admin_a)
        record = ConsentRecord.objects.get(customer=customer)
    assert (record.purpose, record.granted, record.source, record.proof) == (
        column.removesuffix("_allowed"),
        False,
        "request",
        "CCPA-00001",
    )
    assert getattr(reload(org_a, customer), column) is False
    assert reload(org_a, privacy_request).status == RequestStatus.COMPLETED


def test_rectification_goes_through_the_customer_service_and_lists_field_names_only(
    org_a, admin_a, django_capture_on_commit_callbacks
):
    customer = factories.customer(
        org_a, email="dana@example.org", first_name="Dana", last_name="Wrong", city="Paris"
    )
    privacy_request, _ = _ready(
        org_a,
        django_capture_on_commit_callbacks,
        request_type="rectify",
        customer=customer,
        rectification={"last_name": "Right", "city": "Paris", "phone": "+33 1 23 45 67 89"},
    )
    with tenant_context(org_a.pk, user=admin_a):
        request_process(privacy_request=privacy_request, actor=admin_a)
    row = reload(org_a, customer)
    assert (row.last_name, row.city, row.phone) == ("Right", "Paris", "+33 1 23 45 67 89")
    result = reload(org_a, privacy_request).result
    assert result["fields"] == ["last_name", "phone"]
    assert "Right" not in str(result)


def test_a_rectification_to_an_email_another_customer_uses_is_refused_and_changes_nothing(
    org_a, admin_a, django_capture_on_commit_callbacks
):
    factories.customer(org_a, email="taken@example.org")
    privacy_request, customer = _ready(
        org_a,
        django_capture_on_commit_callbacks,
        request_type="rectify",
        rectification={"email": "taken@example.org"},
    )
    with tenant_context(org_a.pk, user=admin_a), pytest.raises(ValidationError):
        request_process(privacy_request=privacy_request, actor=admin_a)
    assert reload(org_a, customer).email == "dana@example.org"
    assert reload(org_a, privacy_request).status == RequestStatus.PROCESSING


@pytest.mark.parametrize(
    ("kind", "request_type"), [("gdpr", "access"), ("gdpr", "portability"), ("ccpa", "access")]
)
def test_an_export_runs_in_the_background_and_emails_the_link(
    org_a, admin_a, kind, request_type, queued, django_capture_on_commit_callbacks
):
    privacy_request, _customer = _ready(
        org_a, django_capture_on_commit_callbacks, kind=kind, request_type=request_type
    )
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk, user=admin_a):
        request_process(privacy_request=privacy_request, actor=admin_a)
    waiting = reload(org_a, privacy_request)
    assert waiting.status == RequestStatus.PROCESSING
    assert waiting.result["job"]["state"] == "queued"
    assert len(queued) == 1 and queued[0][1] == {"organization_id": str(org_a.pk)}
    with tenant_context(org_a.pk), pytest.raises(ValidationError, match="already being processed"):
        request_process(privacy_request=waiting, actor=admin_a)
    mails_before = len(mail.outbox)
    assert _run_queued([queued[0]], django_capture_on_commit_callbacks) == ["completed"]
    done = reload(org_a, privacy_request)
    assert done.status == RequestStatus.COMPLETED
    assert done.export_file.endswith(".zip")
    assert done.export_expires_at == done.completed_at + datetime.timedelta(days=7)
    assert done.result["action"] == "export" and done.result["counts"]
    assert "job" not in done.result
    message = mail.outbox[mails_before]
    assert message.to == ["dana@example.org"]
    assert "/privacy-request/download/" in message.body


def test_running_a_finished_task_again_changes_nothing(
    org_a, admin_a, queued, django_capture_on_commit_callbacks
):
    privacy_request, _ = _ready(org_a, django_capture_on_commit_callbacks)
    with tenant_context(org_a.pk, user=admin_a):
        request_process(privacy_request=privacy_request, actor=admin_a)
    again = list(queued)
    _run_queued(queued, django_capture_on_commit_callbacks)
    first = reload(org_a, privacy_request)
    mails = len(mail.outbox)
    assert _run_queued(again, django_capture_on_commit_callbacks) == ["completed"]
    second = reload(org_a, privacy_request)
    assert (second.export_file, second.completed_at, second.result) == (
        first.export_file,
        first.completed_at,
        first.result,
    )
    assert len(mail.outbox) == mails


def test_an_erasure_runs_in_the_background_and_emails_the_receipt_to_the_address_captured_before(
    org_a, admin_a, queued, django_capture_on_commit_callbacks
):
    privacy_request, customer = _ready(org_a, django_capture_on_commit_callbacks, request_type="erase")
    with tenant_context(org_a.pk, user=admin_a):
        request_process(privacy_request=privacy_request, actor=admin_a)
    mails = len(mail.outbox)
    assert _run_queued(queued, django_capture_on_commit_callbacks) == ["completed"]
    done = reload(org_a, privacy_request)
    assert done.status == RequestStatus.COMPLETED
    assert done.result["action"] == "erase"
    assert done.result["receipt"]["customers"]
    row = reload(org_a, customer)
    assert row.erased_at is not None and row.email == ""
    message = mail.outbox[mails]
    assert message.to == ["dana@example.org"]
    assert "erased" in message.subject
    assert "Dana Subject" in message.body  # rendered before the erasure pseudonymized the request
    assert done.requester_email != "dana@example.org"


def test_a_ccpa_deletion_erases_the_customer(org_a, admin_a, queued, django_capture_on_commit_callbacks):
    privacy_request, customer = _ready(
        org_a, django_capture_on_commit_callbacks, kind="ccpa", request_type="delete"
    )
    with tenant_context(org_a.pk, user=admin_a):
        request_process(privacy_request=privacy_request, actor=admin_a)
    _run_queued(queued, django_capture_on_commit_callbacks)
    assert reload(org_a, customer).erased_at is not None
    assert reload(org_a, privacy_request).status == RequestStatus.COMPLETED


def test_a_failed_run_records_the_error_changes_nothing_else_and_can_be_retried(
    org_a, admin_a, queued, django_capture_on_commit_callbacks
):
    privacy_request, customer = _ready(org_a, django_capture_on_commit_callbacks, request_type="erase")
    with tenant_context(org_a.pk, user=admin_a):
        request_process(privacy_request=privacy_request, actor=admin_a)
        # The customer disappears between queueing and the run: the worker cannot erase it.
        GdprRequest.objects.filter(pk=privacy_request.pk).update(customer=None)
    _run_queued(list(queued), django_capture_on_commit_callbacks)
    failed = reload(org_a, privacy_request)
    assert failed.status == RequestStatus.PROCESSING
    assert failed.result["job"]["state"] == "failed"
    assert "DoesNotExist" in failed.result["job"]["error"]
    assert reload(org_a, customer).erased_at is None
    # Retry: staff link the customer again and process.
    queued.clear()
    with tenant_context(org_a.pk, user=admin_a):
        request_link_customer(privacy_request=failed, actor=admin_a, customer=customer)
        request_process(privacy_request=failed, actor=admin_a)
    assert _run_queued(queued, django_capture_on_commit_callbacks) == ["completed"]
    assert reload(org_a, customer).erased_at is not None


def test_the_task_is_a_no_op_for_a_missing_request(org_a):
    import uuid

    assert (
        tasks.process_privacy_request.apply(
            args=("gdpr", str(uuid.uuid4())), kwargs={"organization_id": str(org_a.pk)}
        ).get()
        == "missing"
    )


def test_a_customer_of_another_organization_is_never_reached(org_a, org_b, admin_a):
    """RLS: a request id of org B is not found from org A's context."""
    theirs = create(org_b)
    with tenant_context(org_a.pk):
        assert not GdprRequest.objects.filter(pk=theirs.pk).exists()
        assert not Customer.objects.filter(organization_id=org_b.pk).exists()


def test_the_public_form_goes_by_the_declared_state_not_the_one_on_file(org_a):
    factories.customer(org_a, email="dana@example.org", state="NV")
    privacy_request = create(org_a, kind="ccpa", resident_state="CA", source=RequestSource.PUBLIC_FORM)
    assert privacy_request.status == RequestStatus.RECEIVED
    assert privacy_request.resident_state == "CA"
