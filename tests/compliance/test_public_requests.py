"""The public privacy request form and identity verification (compliance/views/public.py): validation, the
honeypot and rate limits, CCPA outside California, the code (wrong, limited, right, never stored), the
same answer whether or not the email matches a customer, and 404 across organizations."""

from __future__ import annotations

import re
import uuid

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client as DjangoClient
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from compliance.models import CcpaRequest, GdprRequest, PrivacyRequest, RequestSource, RequestStatus
from compliance.services.requests import request_process
from compliance.views import public
from tests import factories

pytestmark = pytest.mark.django_db


class Client(DjangoClient):
    """A test client whose requests commit: the on-commit side effects (the emails) run when the response
    is done, as they do after a real request's transaction (the test itself stays in one rolled-back
    transaction)."""

    def request(self, **request):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return super().request(**request)


CODE = re.compile(r"\b([A-Z0-9]{4})-([A-Z0-9]{4})\b")


def _form_url(org) -> str:
    return reverse("privacy_public:form", kwargs={"org_slug": org.slug})


def _verify_url(org, pk) -> str:
    return reverse("privacy_public:verify", kwargs={"org_slug": org.slug, "pk": pk})


def _resend_url(org, pk) -> str:
    return reverse("privacy_public:verify_resend", kwargs={"org_slug": org.slug, "pk": pk})


def _submit(org, ip="203.0.113.7", **fields):
    data = {
        "request": "gdpr:access",
        "requester_name": "Dana Subject",
        "requester_email": "dana@example.org",
        "resident_state": "",
        "details": "",
        **fields,
    }
    return Client(REMOTE_ADDR=ip).post(_form_url(org), data)


def _only_request(org, as_tenant, model=GdprRequest) -> PrivacyRequest:
    with as_tenant(org):
        return model.objects.get(organization_id=org.pk)


def _code_from(message) -> str:
    match = CODE.search(message.body)
    assert match, message.body
    return match.group(0)


def _submitted(org, as_tenant, **fields):
    response = _submit(org, **fields)
    assert response.status_code == 302, response.content.decode()[:2000]
    kind = (fields.get("request") or "gdpr:access").split(":")[0]
    privacy_request = _only_request(org, as_tenant, GdprRequest if kind == "gdpr" else CcpaRequest)
    assert response["Location"] == _verify_url(org, privacy_request.pk)
    return privacy_request


def test_the_form_names_the_organization_and_explains_every_request_type_with_a_hidden_honeypot(org_a):
    response = Client().get(_form_url(org_a))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Org A" in html
    for value in GdprRequest.Type.values:
        assert f'value="gdpr:{value}"' in html
    for value in CcpaRequest.Type.values:
        assert f'value="ccpa:{value}"' in html
    assert "machine-readable file" in html  # portability, in plain words
    assert "not to sell your personal information" in html
    assert re.search(r'<div class="visually-hidden" aria-hidden="true">\s*<label for="id_website"', html)
    assert 'tabindex="-1"' in html
    assert "csrfmiddlewaretoken" in html


def test_missing_fields_are_reported_beside_each_field_and_nothing_is_saved(org_a, as_tenant):
    response = _submit(org_a, request="", requester_name="", requester_email="not-an-email")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Choose what you would like us to do." in html
    assert 'id="id_requester_name-error"' in html
    assert 'id="id_requester_email-error"' in html
    assert "Please check the highlighted fields." in html
    with as_tenant(org_a):
        assert not GdprRequest.objects.exists() and not CcpaRequest.objects.exists()
    assert mail.outbox == []


def test_a_ccpa_request_needs_the_state_and_a_correction_needs_its_details(org_a, as_tenant):
    response = _submit(org_a, request="ccpa:access", resident_state="")
    assert response.status_code == 400
    assert "Choose the state you live in." in response.content.decode()
    response = _submit(org_a, request="gdpr:rectify", details="  ")
    assert response.status_code == 400
    assert "Tell us which data is wrong and what it should be." in response.content.decode()
    response = _submit(org_a, request="gdpr:erase_everything")
    assert response.status_code == 400
    with as_tenant(org_a):
        assert not GdprRequest.objects.exists() and not CcpaRequest.objects.exists()


def test_a_filled_honeypot_looks_like_success_and_saves_and_sends_nothing(org_a, as_tenant):
    response = _submit(org_a, website="http://spam.example")
    assert response.status_code == 200
    assert "Check your email" in response.content.decode()
    with as_tenant(org_a):
        assert not GdprRequest.objects.exists()
    assert mail.outbox == []


def test_the_rate_limit_per_ip_refuses_the_sixth_submission_with_a_429(org_a, as_tenant):
    allowed = public.SUBMIT_PER_IP[0]
    for n in range(allowed):
        assert _submit(org_a, requester_email=f"person{n}@example.org").status_code == 302
    response = _submit(org_a, requester_email="one-more@example.org")
    assert response.status_code == 429
    assert "Too many requests" in response.content.decode()
    # Another address is not affected.
    assert _submit(org_a, ip="198.51.100.9", requester_email="other@example.org").status_code == 302
    with as_tenant(org_a):
        assert GdprRequest.objects.count() == allowed + 1
    assert len(mail.outbox) == allowed + 1


def test_the_rate_limit_per_email_holds_across_ip_addresses(org_a, as_tenant):
    allowed = public.SUBMIT_PER_EMAIL[0]
    for n in range(allowed):
        assert _submit(org_a, ip=f"198.51.100.{n + 1}").status_code == 302
    assert _submit(org_a, ip="198.51.100.200", requester_email="DANA@example.org").status_code == 429
    with as_tenant(org_a):
        assert GdprRequest.objects.count() == allowed


def test_invalid_submissions_do_not_count_towards_the_limit(org_a):
    for _ in range(public.SUBMIT_PER_IP[0] + 2):
        assert _submit(org_a, requester_name="").status_code == 400
    assert _submit(org_a).status_code == 302


def test_a_request_sends_a_code_by_email_and_the_database_holds_no_code(org_a, as_tenant):
    privacy_request = _submitted(org_a, as_tenant)
    assert privacy_request.source == RequestSource.PUBLIC_FORM
    assert privacy_request.status == RequestStatus.VERIFYING
    assert privacy_request.requester_name == "Dana Subject"
    assert privacy_request.requester_email == "dana@example.org"
    assert privacy_request.verification_attempts == 0
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dana@example.org"]
    code = _code_from(mail.outbox[0])
    plain = code.replace("-", "")
    with as_tenant(org_a), connection.cursor() as cursor:
        for table in ("gdpr_requests", "crm_audit_log"):
            for needle in (code, plain, plain.lower()):
                cursor.execute(f"SELECT count(*) FROM {table} t WHERE t::text ILIKE %s", [f"%{needle}%"])
                assert cursor.fetchone()[0] == 0, (table, needle)
        cursor.execute("SELECT count(*) FROM gdpr_requests WHERE verification_code_hash <> ''")
        assert cursor.fetchone()[0] == 1


def test_the_answer_is_the_same_whether_or_not_the_email_matches_a_customer(org_a, as_tenant):
    factories.customer(org_a, first_name="Known", email="known@example.org")

    def page_after(email: str, ip: str) -> str:
        response = _submit(org_a, ip=ip, requester_email=email)
        assert response.status_code == 302
        html = Client().get(response["Location"]).content.decode()
        html = re.sub(r'value="[^"]{20,}"', "", html)  # CSRF tokens
        html = re.sub(r'"X-CSRFToken": "[^"]+"', "", html)
        return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", html)

    assert page_after("known@example.org", "192.0.2.1") == page_after("stranger@example.org", "192.0.2.2")
    assert [m.to for m in mail.outbox] == [["known@example.org"], ["stranger@example.org"]]

    def normal(text: str) -> str:
        return re.sub(r"GDPR-\d+", "REF", CODE.sub("CODE", text))

    known, stranger = mail.outbox
    assert normal(known.subject) == normal(stranger.subject)
    assert normal(known.body) == normal(stranger.body)


def test_a_ccpa_request_from_outside_california_is_not_applicable_with_its_page_and_email(org_a, as_tenant):
    privacy_request = _submitted(org_a, as_tenant, request="ccpa:access", resident_state="NV")
    assert privacy_request.status == RequestStatus.NOT_APPLICABLE
    assert privacy_request.completed_at is not None
    assert privacy_request.verification_code_hash == ""
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dana@example.org"]
    assert not CODE.search(mail.outbox[0].body)  # no code: nothing to verify
    page = Client().get(_verify_url(org_a, privacy_request.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="privacy-not-applicable"' in html
    assert "privacy-verify-form" not in html


def test_outside_the_united_states_is_not_california_either(org_a, as_tenant):
    privacy_request = _submitted(org_a, as_tenant, request="ccpa:delete", resident_state="outside_us")
    assert privacy_request.status == RequestStatus.NOT_APPLICABLE


def test_a_california_request_waits_for_its_code(org_a, as_tenant):
    privacy_request = _submitted(org_a, as_tenant, request="ccpa:opt_out_sale", resident_state="CA")
    assert privacy_request.status == RequestStatus.VERIFYING
    assert privacy_request.resident_state == "CA"
    assert privacy_request.data_categories == CcpaRequest.DATA_CATEGORIES[CcpaRequest.Type.OPT_OUT_SALE]
    assert CODE.search(mail.outbox[0].body)


def test_a_wrong_code_is_refused_with_the_attempts_left_and_the_fifth_kills_the_code(org_a, as_tenant):
    privacy_request = _submitted(org_a, as_tenant)
    right = _code_from(mail.outbox[0])
    wrong = "ZZZZ-ZZZZ" if right != "ZZZZ-ZZZZ" else "YYYY-YYYY"
    client = Client()
    url = _verify_url(org_a, privacy_request.pk)
    for attempt in range(1, PrivacyRequest.MAX_VERIFICATION_ATTEMPTS + 1):
        response = client.post(url, {"code": wrong})
        assert response.status_code == 400
        left = PrivacyRequest.MAX_VERIFICATION_ATTEMPTS - attempt
        html = response.content.decode()
        if left:
            assert f"That code is not right. {left} attempts left." in html
        else:
            assert "it was the last attempt. Ask for a new code below." in html
        assert _only_request(org_a, as_tenant).verification_attempts == attempt
    # The right code no longer helps: the code is dead.
    response = client.post(url, {"code": right})
    assert response.status_code == 400
    assert "Ask for a new code" in response.content.decode()
    refused = _only_request(org_a, as_tenant)
    assert refused.status == RequestStatus.VERIFYING and refused.verified_at is None
    assert 'data-testid="privacy-code-dead"' in client.get(url).content.decode()


def test_a_new_code_replaces_the_dead_one_and_verifies(org_a, as_tenant):
    privacy_request = _submitted(org_a, as_tenant)
    first = _code_from(mail.outbox[0])
    client = Client()
    url = _verify_url(org_a, privacy_request.pk)
    for _ in range(PrivacyRequest.MAX_VERIFICATION_ATTEMPTS):
        client.post(url, {"code": "ZZZZ-ZZZ2"})
    response = client.post(_resend_url(org_a, privacy_request.pk))
    assert response.status_code == 302 and response["Location"] == f"{url}?resent=1"
    assert "We have sent you a new code." in client.get(response["Location"]).content.decode()
    assert len(mail.outbox) == 2
    second = _code_from(mail.outbox[1])
    if second != first:
        assert client.post(url, {"code": first}).status_code == 400
    response = client.post(url, {"code": second.lower().replace("-", " ")})
    assert response.status_code == 302 and response["Location"] == url
    verified = _only_request(org_a, as_tenant)
    assert verified.status == RequestStatus.PROCESSING
    assert verified.verified_at is not None
    page = client.get(url).content.decode()
    assert 'data-testid="privacy-verified"' in page
    # The deadline: received + 30 days for GDPR, shown as a date.
    assert verified.due_at == verified.received_at + GdprRequest.DEADLINE
    assert date_format(timezone.localtime(verified.received_at + GdprRequest.DEADLINE), "DATE_FORMAT") in page
    assert str(verified) in page
    # Posting a code again changes nothing.
    assert client.post(url, {"code": "ZZZZ-ZZZZ"}).status_code == 302


def test_an_expired_code_is_refused_even_when_right(org_a, as_tenant):
    privacy_request = _submitted(org_a, as_tenant)
    code = _code_from(mail.outbox[0])
    with as_tenant(org_a):
        GdprRequest.objects.filter(pk=privacy_request.pk).update(
            verification_sent_at=timezone.now()
            - PrivacyRequest.VERIFICATION_CODE_TTL
            - timezone.timedelta(minutes=1)
        )
    response = Client().post(_verify_url(org_a, privacy_request.pk), {"code": code})
    assert response.status_code == 400
    assert "Ask for a new code" in response.content.decode()
    assert _only_request(org_a, as_tenant).status == RequestStatus.VERIFYING


def test_new_codes_are_rate_limited_per_request(org_a, as_tenant):
    privacy_request = _submitted(org_a, as_tenant)
    client = Client(REMOTE_ADDR="192.0.2.50")
    for _ in range(public.RESEND_PER_REQUEST[0]):
        assert client.post(_resend_url(org_a, privacy_request.pk)).status_code == 302
    assert client.post(_resend_url(org_a, privacy_request.pk)).status_code == 429
    assert len(mail.outbox) == 1 + public.RESEND_PER_REQUEST[0]


def test_processing_is_refused_until_the_code_is_verified(org_a, admin_a, as_tenant):
    for choice, state in (("gdpr:access", ""), ("ccpa:access", "CA")):
        _submit(org_a, ip=f"192.0.2.{len(choice)}", request=choice, resident_state=state)
    for model in (GdprRequest, CcpaRequest):
        with as_tenant(org_a, admin_a):
            privacy_request = model.objects.get(organization_id=org_a.pk)
            assert privacy_request.status == RequestStatus.VERIFYING
            with pytest.raises(ValidationError):
                request_process(privacy_request=privacy_request, actor=admin_a)
        assert _only_request(org_a, as_tenant, model).status == RequestStatus.VERIFYING


def test_another_organizations_request_and_unknown_slugs_answer_404(org_a, org_b, as_tenant):
    privacy_request = _submitted(org_a, as_tenant)
    client = Client()
    for method, url in (
        ("get", _verify_url(org_b, privacy_request.pk)),
        ("post", _verify_url(org_b, privacy_request.pk)),
        ("post", _resend_url(org_b, privacy_request.pk)),
        ("get", _verify_url(org_a, uuid.uuid4())),
        ("get", reverse("privacy_public:form", kwargs={"org_slug": "no-such-org"})),
        ("get", _verify_url(type("O", (), {"slug": "no-such-org"}), privacy_request.pk)),
    ):
        assert (
            getattr(client, method)(url, {"code": "AAAA-AAAA"} if method == "post" else None).status_code
            == 404
        )
    assert len(mail.outbox) == 1
    assert _only_request(org_a, as_tenant).verification_attempts == 0


def test_the_public_pages_are_csrf_protected(org_a, as_tenant):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        _form_url(org_a),
        {"request": "gdpr:access", "requester_name": "D", "requester_email": "d@example.org"},
    )
    assert response.status_code == 403
    with as_tenant(org_a):
        assert not GdprRequest.objects.exists()


def test_a_ccpa_answer_follows_the_declared_state_so_it_cannot_tell_whether_the_email_is_a_customer(
    org_a, as_tenant
):
    factories.customer(org_a, email="nevadan@example.org", state="NV")
    factories.customer(org_a, email="californian@example.org", state="CA")
    answers = {}
    for n, (email, state) in enumerate(
        (
            ("nevadan@example.org", "CA"),
            ("stranger-ca@example.org", "CA"),
            ("californian@example.org", "NV"),
            ("stranger-nv@example.org", "NV"),
        )
    ):
        response = _submit(
            org_a, ip=f"192.0.2.{100 + n}", request="ccpa:access", requester_email=email, resident_state=state
        )
        assert response.status_code == 302
        with as_tenant(org_a):
            answers[email] = CcpaRequest.objects.get(requester_email=email).status
    assert answers["nevadan@example.org"] == answers["stranger-ca@example.org"] == RequestStatus.VERIFYING
    assert (
        answers["californian@example.org"]
        == answers["stranger-nv@example.org"]
        == RequestStatus.NOT_APPLICABLE
    )


def test_a_closed_request_shows_no_code_form_and_takes_no_codes(org_a, admin_a, as_tenant):
    from compliance.services.requests import request_reject

    privacy_request = _submitted(org_a, as_tenant)
    with as_tenant(org_a, admin_a):
        request_reject(
            privacy_request=privacy_request, actor=admin_a, reason="Duplicate of an earlier request."
        )
    url = _verify_url(org_a, privacy_request.pk)
    html = Client().get(url).content.decode()
    assert 'data-testid="privacy-closed"' in html and "privacy-verify-form" not in html
    code = _code_from(mail.outbox[0])
    assert Client().post(url, {"code": code}).status_code == 302
    assert Client().post(_resend_url(org_a, privacy_request.pk)).status_code == 302
    assert _only_request(org_a, as_tenant).status == RequestStatus.REJECTED
    assert not any(CODE.search(m.body) for m in mail.outbox[1:])
