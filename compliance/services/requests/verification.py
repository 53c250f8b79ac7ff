"""Identity verification: a one-time code sent to the requester's email, or a staff check by other means.

The code comes from `secrets` (the design document's MD5 of random() is guessable) and is stored only as an
HMAC-SHA256 keyed with SECRET_KEY (Django's salted_hmac) and bound to the request, so the database never holds a usable code and
a hash from one request proves nothing for another. Codes die after MAX_VERIFICATION_ATTEMPTS wrong tries
or VERIFICATION_CODE_TTL.
"""

from __future__ import annotations

import hmac
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from compliance.models import PrivacyRequest, RequestStatus
from compliance.services.requests.common import base_context, email_requester, lock, require_status
from crm.models import User
from crm.permissions import Capability, require_capability

# No 0/O, 1/I/L: the code is read from an email and typed by hand.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def _code_hash(privacy_request: PrivacyRequest, code: str) -> str:
    message = f"{privacy_request._meta.db_table}:{privacy_request.pk}:{code}"
    return salted_hmac("compliance.verification", message, algorithm="sha256").hexdigest()


def _normalise_code(code: str) -> str:
    return "".join((code or "").split()).replace("-", "").upper()


@transaction.atomic
def request_send_verification(*, privacy_request: PrivacyRequest, actor: User | None = None) -> None:
    """Issue a fresh code (the previous one dies), email it to the requester, and wait for it: status
    verifying, attempts reset."""
    require_capability(actor, Capability.PROCESS_PRIVACY_REQUESTS)
    lock(privacy_request)
    require_status(privacy_request, RequestStatus.RECEIVED, RequestStatus.VERIFYING)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    privacy_request.verification_code_hash = _code_hash(privacy_request, code)
    privacy_request.verification_sent_at = timezone.now()
    privacy_request.verification_attempts = 0
    privacy_request.status = RequestStatus.VERIFYING
    privacy_request.save(
        update_fields=[
            "verification_code_hash",
            "verification_sent_at",
            "verification_attempts",
            "status",
            "updated_at",
        ]
    )
    email_requester(
        to=privacy_request.requester_email,
        template="verification_code",
        context={
            **base_context(privacy_request),
            "code": f"{code[:4]}-{code[4:]}",
            "valid_hours": int(PrivacyRequest.VERIFICATION_CODE_TTL.total_seconds() // 3600),
        },
    )


def verification_attempts_left(privacy_request: PrivacyRequest) -> int:
    return max(0, privacy_request.MAX_VERIFICATION_ATTEMPTS - privacy_request.verification_attempts)


def request_verify(*, privacy_request: PrivacyRequest, code: str) -> bool:
    """Check a code the requester typed. True: verified (status processing). False: wrong code, one
    attempt used. Raises ValidationError when no live code exists (never sent, expired, or too many wrong
    attempts): the requester must ask for a new one.

    Runs its own transaction, and a wrong code *returns* rather than raises, so the attempt counter's
    increment is committed even though the answer is "no" (a raise would roll it back and allow unlimited
    guesses). The caller must not turn False into an exception inside a transaction it rolls back.
    """
    with transaction.atomic():
        lock(privacy_request)
        if privacy_request.verified_at is not None and privacy_request.status != RequestStatus.VERIFYING:
            return True
        dead = (
            privacy_request.status != RequestStatus.VERIFYING
            or not privacy_request.verification_code_hash
            or privacy_request.verification_attempts >= privacy_request.MAX_VERIFICATION_ATTEMPTS
            or privacy_request.verification_sent_at is None
            or timezone.now() - privacy_request.verification_sent_at > privacy_request.VERIFICATION_CODE_TTL
        )
        if not dead:
            if hmac.compare_digest(
                privacy_request.verification_code_hash, _code_hash(privacy_request, _normalise_code(code))
            ):
                privacy_request.verified_at = timezone.now()
                privacy_request.status = RequestStatus.PROCESSING
                privacy_request.verification_code_hash = ""  # single use
                privacy_request.save(
                    update_fields=["verified_at", "status", "verification_code_hash", "updated_at"]
                )
                return True
            type(privacy_request).objects.filter(pk=privacy_request.pk).update(
                verification_attempts=F("verification_attempts") + 1, updated_at=timezone.now()
            )
            privacy_request.verification_attempts += 1
            return False
    raise ValidationError(
        _(
            "This verification code is no longer valid (expired or too many wrong attempts). Ask for a new code."
        ),
        code="code_dead",
    )


@transaction.atomic
def request_mark_verified(
    *, privacy_request: PrivacyRequest, actor: User | None, note: str
) -> PrivacyRequest:
    """Staff verified the requester's identity by other means (an ID check, a call back): processing may
    start. The note says how, and stays in the request's audit trail."""
    require_capability(actor, Capability.PROCESS_PRIVACY_REQUESTS)
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Say how the identity was verified.")})
    lock(privacy_request)
    require_status(privacy_request, RequestStatus.RECEIVED, RequestStatus.VERIFYING)
    privacy_request.verified_at = timezone.now()
    privacy_request.verified_by = actor
    privacy_request.status = RequestStatus.PROCESSING
    privacy_request.verification_code_hash = ""
    privacy_request.result = {**privacy_request.result, "verification_note": note[:500]}
    privacy_request.save(
        update_fields=[
            "verified_at",
            "verified_by",
            "status",
            "verification_code_hash",
            "result",
            "updated_at",
        ]
    )
    return privacy_request
