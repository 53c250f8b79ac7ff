"""Processing a verified request: what each type does, and the background run of the long ones.

Exports and erasures run in a Celery task (compliance.tasks.requests.process_privacy_request): the request
stays "processing" with `result["job"]` saying queued (the page polls) or failed (with the error, for a
retry). The work happens inside one savepoint, so a failure leaves nothing half done (the erasure is one
transaction) and only the error is recorded.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.models import (
    CcpaRequest,
    ConsentPurpose,
    ConsentSource,
    GdprRequest,
    PrivacyRequest,
    RequestStatus,
)
from compliance.services.requests.common import (
    RECTIFIABLE_FIELDS,
    base_context,
    email_requester,
    kind_of,
    lock,
    require_status,
)
from crm.models import User
from crm.permissions import Capability, require_capability
from customers.models import Customer

EXPORT_TYPES = {
    ("gdpr", GdprRequest.Type.ACCESS),
    ("gdpr", GdprRequest.Type.PORTABILITY),
    ("ccpa", CcpaRequest.Type.ACCESS),
}
ERASE_TYPES = {("gdpr", GdprRequest.Type.ERASE), ("ccpa", CcpaRequest.Type.DELETE)}
BACKGROUND_TYPES = EXPORT_TYPES | ERASE_TYPES

# Objection to marketing withdraws these purposes; CCPA opt-outs withdraw one each.
OBJECTION_PURPOSES = (ConsentPurpose.EMAIL_MARKETING, ConsentPurpose.PROFILING)
OPT_OUT_PURPOSES = {
    CcpaRequest.Type.OPT_OUT_SALE: ConsentPurpose.SALE,
    CcpaRequest.Type.OPT_OUT_SHARING: ConsentPurpose.SHARING,
}


def _job(privacy_request: PrivacyRequest) -> dict:
    return privacy_request.result.get("job") or {}


def _kept(privacy_request: PrivacyRequest) -> dict:
    """What of the result survives completion (how identity was verified)."""
    return {k: v for k, v in privacy_request.result.items() if k == "verification_note"}


@transaction.atomic
def request_process(*, privacy_request: PrivacyRequest, actor: User | None) -> PrivacyRequest:
    """Carry out a verified request. Refused until the requester's identity is verified (by code or by
    staff) and while the request has no customer. Exports and erasures are queued for a worker (the
    request's page shows their progress); the other types are done at once."""
    require_capability(actor, Capability.PROCESS_PRIVACY_REQUESTS)
    lock(privacy_request)
    if privacy_request.verified_at is None and privacy_request.status in (
        RequestStatus.RECEIVED,
        RequestStatus.VERIFYING,
    ):
        raise ValidationError(_("The requester's identity is not verified yet: processing must wait for it."))
    require_status(privacy_request, RequestStatus.PROCESSING)
    if privacy_request.verified_at is None:
        raise ValidationError(_("The requester's identity is not verified yet: processing must wait for it."))
    if privacy_request.customer_id is None:
        raise ValidationError(_("Link the request to the customer it concerns first."))
    if _job(privacy_request).get("state") == "queued":
        raise ValidationError(_("%(request)s is already being processed.") % {"request": privacy_request})

    if (kind_of(privacy_request), privacy_request.request_type) in BACKGROUND_TYPES:
        from compliance.tasks.requests import process_privacy_request

        privacy_request.result = {
            **privacy_request.result,
            "job": {
                "state": "queued",
                "queued_at": timezone.now().isoformat(),
                "by": str(actor.pk) if actor else None,
            },
        }
        privacy_request.save(update_fields=["result", "updated_at"])
        process_privacy_request.delay_on_commit(
            kind_of(privacy_request),
            str(privacy_request.pk),
            str(actor.pk) if actor else None,
            organization_id=str(privacy_request.organization_id),
        )
        return privacy_request
    return _complete(privacy_request, actor=actor)


def request_run(*, privacy_request: PrivacyRequest, actor: User | None = None) -> PrivacyRequest:
    """The worker's part: run a queued export or erasure. Idempotent: a request no longer processing (done,
    rejected) or not queued is left as it is. A failure is recorded on the request (job state failed, the
    error) and everything else rolled back, so staff can retry."""
    with transaction.atomic():
        lock(privacy_request)
        if (
            privacy_request.status != RequestStatus.PROCESSING
            or _job(privacy_request).get("state") != "queued"
        ):
            return privacy_request
        try:
            with transaction.atomic():
                return _complete(privacy_request, actor=actor)
        except Exception as exc:  # any failure is recorded on the request, for a retry
            error = f"{type(exc).__name__}: {exc}"[:500]
        privacy_request.refresh_from_db()
        privacy_request.result = {
            **privacy_request.result,
            "job": {"state": "failed", "error": error, "failed_at": timezone.now().isoformat()},
        }
        privacy_request.save(update_fields=["result", "updated_at"])
        return privacy_request


def _complete(privacy_request: PrivacyRequest, *, actor: User | None) -> PrivacyRequest:
    """Do the request's work, then mark it completed. Runs inside the caller's transaction."""
    kind, request_type = kind_of(privacy_request), privacy_request.request_type
    customer = Customer.objects.select_for_update().get(pk=privacy_request.customer_id)
    # Captured before the work: an erasure pseudonymizes the request's own requester fields.
    context = base_context(privacy_request)
    to = privacy_request.requester_email
    if (kind, request_type) in EXPORT_TYPES:
        outcome, template = _export(privacy_request, customer), "export_ready"
    elif (kind, request_type) in ERASE_TYPES:
        outcome, template = _erase(privacy_request, customer, actor), "erased"
    elif request_type == GdprRequest.Type.RECTIFY:
        outcome, template = _rectify(privacy_request, customer, actor), "completed"
    elif request_type == GdprRequest.Type.RESTRICT:
        outcome, template = _restrict(privacy_request, customer), "completed"
    elif request_type == GdprRequest.Type.OBJECT:
        outcome, template = _withdraw(privacy_request, customer, actor, OBJECTION_PURPOSES), "completed"
    else:
        outcome = _withdraw(privacy_request, customer, actor, (OPT_OUT_PURPOSES[request_type],))
        template = "completed"
    privacy_request.refresh_from_db()
    privacy_request.status = RequestStatus.COMPLETED
    privacy_request.completed_at = timezone.now()
    privacy_request.result = {**_kept(privacy_request), **outcome}
    update = ["status", "completed_at", "result", "updated_at"]
    if "export_file" in outcome:
        from compliance.exporting import link_max_age

        privacy_request.export_file = outcome["export_file"]
        privacy_request.export_expires_at = privacy_request.completed_at + link_max_age()
        update += ["export_file", "export_expires_at"]
    privacy_request.save(update_fields=update)
    context = {**context, "result": privacy_request.result}
    if template == "export_ready":
        from compliance.exporting import export_download_url

        context.update(
            download_url=export_download_url(privacy_request), expires_at=privacy_request.export_expires_at
        )
    email_requester(to=to, template=template, context=context)
    return privacy_request


def _export(privacy_request: PrivacyRequest, customer: Customer) -> dict:
    from compliance.exporting import export_customer

    export = export_customer(customer=customer, request_label=str(privacy_request))
    return {
        "action": "export",
        "export_file": export.name,
        "counts": dict(export.counts),
        "size": export.size,
    }


def _erase(privacy_request: PrivacyRequest, customer: Customer, actor: User | None) -> dict:
    from compliance.erasure import erase_customer

    receipt = erase_customer(customer=customer, actor=actor, reason=str(privacy_request))
    return {"action": "erase", "receipt": receipt}


def _rectify(privacy_request: PrivacyRequest, customer: Customer, actor: User | None) -> dict:
    from customers.services.customers import customer_update

    corrections = {k: v for k, v in (privacy_request.rectification or {}).items() if k in RECTIFIABLE_FIELDS}
    if not corrections:
        raise ValidationError(
            _("The request lists no corrections to apply: edit the customer directly instead.")
        )
    changed = sorted(
        name for name, value in corrections.items() if str(getattr(customer, name) or "") != value
    )
    customer_update(customer=customer, actor=actor, reason=str(privacy_request), **corrections)
    labels = {name: str(Customer._meta.get_field(name).verbose_name) for name in changed}
    return {"action": "rectify", "fields": changed, "labels": labels}


def _restrict(privacy_request: PrivacyRequest, customer: Customer) -> dict:
    now = timezone.now()
    reason = (
        f"{privacy_request}: {privacy_request.details}" if privacy_request.details else str(privacy_request)
    )
    customer.processing_restricted = True
    customer.restriction_reason = reason[:300]
    customer.restricted_at = now
    customer.save(
        update_fields=["processing_restricted", "restriction_reason", "restricted_at", "updated_at"]
    )
    return {"action": "restrict", "restricted_at": now.isoformat()}


def _withdraw(privacy_request: PrivacyRequest, customer: Customer, actor: User | None, purposes) -> dict:
    from compliance.services.consent import consent_record

    for purpose in purposes:
        consent_record(
            customer=customer,
            purpose=purpose,
            granted=False,
            source=ConsentSource.REQUEST,
            proof=str(privacy_request),
            actor=actor,
        )
    return {"action": "withdraw_consent", "purposes": [str(p) for p in purposes]}
