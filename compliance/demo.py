"""Demo privacy data for `seed_demo`: consent histories (grants from lead forms and imports, withdrawals by
unsubscribe, a CCPA sale opt-out), three customers whose processing is restricted (each by a GDPR restriction
request with its reason), and GDPR and CCPA requests in every state: received, verifying, processing,
completed (an access export, an erasure that erased its customer), rejected, not applicable, one overdue
and one extended.

Everything goes through the services (compliance.services.consent, compliance.services.requests), so
numbers, deadlines, audit rows, consent mirrors and erasure receipts are what the app itself would leave;
only the received dates are moved into the past afterwards. Deterministic (seeded by the organization's
slug) and idempotent: an organization that already has consent records or requests is left alone.
"""

from __future__ import annotations

import datetime
import random

from django.utils import timezone

from compliance.models import CcpaRequest, ConsentPurpose, ConsentRecord, ConsentSource, GdprRequest
from compliance.services.consent import consent_record
from compliance.services.requests import (
    request_create,
    request_extend,
    request_mark_verified,
    request_process,
    request_reject,
    request_run,
    request_send_verification,
)
from customers.models import Customer
from customers.services.customers import customer_update

CONSENT_CUSTOMERS = 40
FORM_WORDING = "Yes, send me emails about products, events and offers. I can unsubscribe at any time."
RESTRICTIONS = [
    "The customer contests the accuracy of their address and order history; checking with billing.",
    "Objection to profiling under review by the data protection officer.",
    "Data kept only for a pending legal claim (invoice dispute).",
]


def seed_privacy(*, organization, now: datetime.datetime | None = None) -> int:
    """Seed the organization's privacy data; returns how many requests were made (0: already seeded)."""
    if (
        ConsentRecord.objects.filter(organization_id=organization.pk, source__in=_DEMO_SOURCES).exists()
        or GdprRequest.objects.filter(organization_id=organization.pk).exists()
        or CcpaRequest.objects.filter(organization_id=organization.pk).exists()
    ):
        return 0
    now = now or timezone.now()
    rng = random.Random(f"privacy:{organization.slug}")  # noqa: S311  (reproducible demo data)
    customers = list(
        Customer.objects.filter(
            organization_id=organization.pk,
            erased_at__isnull=True,
            anonymized_at__isnull=True,
            processing_restricted=False,
        )
        .exclude(email="")
        .order_by("number")
    )
    if len(customers) < 12:
        return 0
    _seed_consent(customers[:CONSENT_CUSTOMERS], rng, now)
    return _seed_requests(organization, customers[CONSENT_CUSTOMERS:] or customers, rng, now)


_DEMO_SOURCES = [ConsentSource.FORM, ConsentSource.IMPORT, ConsentSource.UNSUBSCRIBE, ConsentSource.REQUEST]


def _seed_consent(customers: list[Customer], rng: random.Random, now: datetime.datetime) -> None:
    """A grant for each (from a lead form or an import, months ago); a fifth later unsubscribe; a few
    withdraw profiling consent by telling staff."""
    for index, customer in enumerate(customers):
        granted_at = now - datetime.timedelta(days=rng.randint(60, 400), minutes=rng.randint(0, 1440))
        if rng.random() < 0.6:
            source = ConsentSource.FORM
            proof = f"form “Newsletter sign-up”, submission demo-{1000 + index}: “{FORM_WORDING}”"
            ip_address = f"198.51.100.{rng.randint(1, 254)}"
        else:
            source = ConsentSource.IMPORT
            proof = f"import trade-show-leads.csv, line {rng.randint(2, 900)}"
            ip_address = None
        consent_record(
            customer=customer,
            purpose=ConsentPurpose.EMAIL_MARKETING,
            granted=True,
            source=source,
            proof=proof,
            ip_address=ip_address,
            recorded_at=granted_at,
        )
        roll = rng.random()
        if roll < 0.2:
            consent_record(
                customer=customer,
                purpose=ConsentPurpose.EMAIL_MARKETING,
                granted=False,
                source=ConsentSource.UNSUBSCRIBE,
                proof="unsubscribe link in “Monthly newsletter”",
                recorded_at=granted_at + datetime.timedelta(days=rng.randint(5, 50)),
            )
        elif roll < 0.3:
            consent_record(
                customer=customer,
                purpose=ConsentPurpose.PROFILING,
                granted=False,
                source=ConsentSource.STAFF,
                proof="asked on a support call not to be scored or profiled",
                recorded_at=granted_at + datetime.timedelta(days=rng.randint(5, 50)),
            )


def _request(organization, kind: str, request_type: str, customer: Customer, **fields):
    if fields.get("resident_state") and customer.state != fields["resident_state"]:
        # CCPA applicability is decided on the state on file: make the demo customer live where they say.
        customer = customer_update(customer=customer, actor=None, state=fields["resident_state"])
    return request_create(
        organization=organization,
        kind=kind,
        request_type=request_type,
        requester_name=f"{customer.first_name} {customer.last_name}".strip() or customer.email,
        requester_email=customer.email,
        customer=customer,
        **fields,
    )


def _run_now(privacy_request):
    """Process a verified request in-line (the demo has no worker to hand exports and erasures to)."""
    privacy_request = request_process(privacy_request=privacy_request, actor=None)
    if privacy_request.result.get("job", {}).get("state") == "queued":
        privacy_request = request_run(privacy_request=privacy_request, actor=None)
    return privacy_request


def _received(privacy_request, days_ago: int, now: datetime.datetime) -> None:
    """Move a request's receipt (and so its statutory deadline) into the past."""
    received = now - datetime.timedelta(days=days_ago)
    span = privacy_request.due_at - privacy_request.received_at  # the deadline, with any extension
    type(privacy_request).objects.filter(pk=privacy_request.pk).update(
        received_at=received, created_at=received, due_at=received + span
    )


def _seed_requests(organization, pool: list[Customer], rng: random.Random, now: datetime.datetime) -> int:
    people = pool[:]
    rng.shuffle(people)
    take = iter(people).__next__
    verified = "Identity checked against the customer record on a call back."
    made = []

    # GDPR: received, verifying, processing (overdue), extended, completed access, completed erasure, rejected
    made.append(
        _request(organization, "gdpr", GdprRequest.Type.ACCESS, take(), details="Please send my data.")
    )
    verifying = _request(organization, "gdpr", GdprRequest.Type.PORTABILITY, take())
    request_send_verification(privacy_request=verifying)
    made.append(verifying)
    overdue = _request(
        organization, "gdpr", GdprRequest.Type.RECTIFY, take(), rectification={"job_title": "CFO"}
    )
    overdue = request_mark_verified(privacy_request=overdue, actor=None, note=verified)
    _received(overdue, 34, now)
    made.append(overdue)
    extended = _request(
        organization, "gdpr", GdprRequest.Type.ACCESS, take(), details="Every email you sent me."
    )
    extended = request_mark_verified(privacy_request=extended, actor=None, note=verified)
    _received(extended, 20, now)
    extended.refresh_from_db()
    request_extend(
        privacy_request=extended,
        actor=None,
        days=30,
        reason="The archive of old email sends has to be restored.",
    )
    made.append(extended)
    access = _request(organization, "gdpr", GdprRequest.Type.ACCESS, take())
    made.append(_run_now(request_mark_verified(privacy_request=access, actor=None, note=verified)))
    erase = _request(organization, "gdpr", GdprRequest.Type.ERASE, take(), details="Delete everything.")
    made.append(_run_now(request_mark_verified(privacy_request=erase, actor=None, note=verified)))
    rejected = _request(
        organization, "gdpr", GdprRequest.Type.ERASE, take(), details="Delete my unpaid invoices."
    )
    made.append(
        request_reject(
            privacy_request=rejected,
            actor=None,
            reason="Records of open invoices must be kept (legal obligation, art. 17(3)(b)).",
        )
    )
    objection = _request(organization, "gdpr", GdprRequest.Type.OBJECT, take())
    made.append(_run_now(request_mark_verified(privacy_request=objection, actor=None, note=verified)))
    for reason in RESTRICTIONS:
        restrict = _request(organization, "gdpr", GdprRequest.Type.RESTRICT, take(), details=reason)
        made.append(_run_now(request_mark_verified(privacy_request=restrict, actor=None, note=verified)))

    # CCPA: received, not applicable (outside California), completed sale opt-out, processing access
    made.append(_request(organization, "ccpa", CcpaRequest.Type.ACCESS, take(), resident_state="CA"))
    made.append(_request(organization, "ccpa", CcpaRequest.Type.DELETE, take(), resident_state="NY"))
    opt_out = _request(organization, "ccpa", CcpaRequest.Type.OPT_OUT_SALE, take(), resident_state="CA")
    made.append(_run_now(request_mark_verified(privacy_request=opt_out, actor=None, note=verified)))
    processing = _request(organization, "ccpa", CcpaRequest.Type.ACCESS, take(), resident_state="CA")
    made.append(request_mark_verified(privacy_request=processing, actor=None, note=verified))
    for privacy_request in made[:2]:
        _received(privacy_request, rng.randint(1, 6), now)
    return len(made)
