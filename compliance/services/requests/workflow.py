"""Deadline extensions and rejections."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.models import OPEN_STATUSES, CcpaRequest, PrivacyRequest, RequestStatus
from compliance.services.requests.common import base_context, email_requester, lock, require_status
from crm.models import User
from crm.permissions import Capability, require_capability


@transaction.atomic
def request_extend(
    *, privacy_request: PrivacyRequest, actor: User | None, reason: str, days: int
) -> PrivacyRequest:
    """Move the deadline by `days`, with a reason. In total at most MAX_EXTENSION beyond the statutory
    deadline (GDPR: two more months, possibly in steps; CCPA: once, by up to 45 days). The requester is
    told (both laws require telling them, with the reason). The deadline reminders start over."""
    require_capability(actor, Capability.PROCESS_PRIVACY_REQUESTS)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for the extension.")})
    if not isinstance(days, int) or days < 1:
        raise ValidationError({"days": _("Extend by at least one day.")})
    lock(privacy_request)
    require_status(privacy_request, *OPEN_STATUSES)
    if isinstance(privacy_request, CcpaRequest) and privacy_request.extended_at is not None:
        raise ValidationError({"days": _("A CCPA deadline may be extended only once.")})
    statutory = privacy_request.received_at + privacy_request.DEADLINE
    new_due = privacy_request.due_at + timedelta(days=days)
    if new_due - statutory > privacy_request.MAX_EXTENSION:
        left = max(0, (privacy_request.MAX_EXTENSION - (privacy_request.due_at - statutory)).days)
        raise ValidationError(
            {"days": _("The deadline can be extended by %(left)d more days at most.") % {"left": left}}
        )
    privacy_request.due_at = new_due
    privacy_request.extended_at = timezone.now()
    previous = privacy_request.extension_reason
    privacy_request.extension_reason = (f"{previous}; {reason}" if previous else reason)[:500]
    privacy_request.reminded_at = None
    privacy_request.save(
        update_fields=["due_at", "extended_at", "extension_reason", "reminded_at", "updated_at"]
    )
    email_requester(
        to=privacy_request.requester_email,
        template="extended",
        context={**base_context(privacy_request), "reason": reason},
    )
    return privacy_request


@transaction.atomic
def request_reject(*, privacy_request: PrivacyRequest, actor: User | None, reason: str) -> PrivacyRequest:
    """Refuse an open request (identity not established, manifestly unfounded, ...), telling the requester
    why."""
    require_capability(actor, Capability.PROCESS_PRIVACY_REQUESTS)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for the rejection.")})
    lock(privacy_request)
    require_status(privacy_request, *OPEN_STATUSES)
    privacy_request.status = RequestStatus.REJECTED
    privacy_request.rejection_reason = reason[:500]
    privacy_request.completed_at = timezone.now()
    privacy_request.verification_code_hash = ""
    privacy_request.save(
        update_fields=["status", "rejection_reason", "completed_at", "verification_code_hash", "updated_at"]
    )
    email_requester(
        to=privacy_request.requester_email,
        template="rejected",
        context={**base_context(privacy_request), "reason": privacy_request.rejection_reason},
    )
    return privacy_request
