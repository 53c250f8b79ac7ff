"""What the request services share: the kind <-> model mapping, state guards and the requester emails."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from compliance.models import CcpaRequest, GdprRequest, PrivacyRequest

KINDS: dict[str, type[PrivacyRequest]] = {"gdpr": GdprRequest, "ccpa": CcpaRequest}

# The customer fields a rectification may change (through customers' normal update service).
RECTIFIABLE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "city",
    "state",
    "postal_code",
    "country",
    "job_title",
    "company_name",
)

CALIFORNIA = frozenset({"ca", "california"})


def model_for(kind: str) -> type[PrivacyRequest]:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValidationError({"kind": _("Unknown request kind: %(kind)s.") % {"kind": kind}}) from None


def kind_of(privacy_request: PrivacyRequest) -> str:
    return "ccpa" if isinstance(privacy_request, CcpaRequest) else "gdpr"


def is_california(state: str) -> bool:
    return (state or "").strip().lower() in CALIFORNIA


def require_status(privacy_request: PrivacyRequest, *statuses: str) -> None:
    if privacy_request.status not in statuses:
        raise ValidationError(
            _("%(request)s is %(status)s: this step is not possible now.")
            % {"request": privacy_request, "status": privacy_request.get_status_display().lower()}
        )


def lock(privacy_request: PrivacyRequest) -> PrivacyRequest:
    """Re-read the row FOR UPDATE so two staff members (or a task) acting at once serialize; the caller's
    instance is refreshed from it."""
    locked = type(privacy_request).objects.select_for_update().get(pk=privacy_request.pk)
    privacy_request.__dict__.update(
        {f.attname: getattr(locked, f.attname) for f in type(privacy_request)._meta.concrete_fields}
    )
    return privacy_request


def email_requester(*, to: str, template: str, context: dict) -> None:
    """Send `compliance/email/<template>_subject.txt` / `<template>.txt` to `to` once the transaction
    commits (a rolled-back step sends nothing). Rendered now, so later changes (an erasure pseudonymizing
    the requester) cannot leak into or break the message."""
    if not to:
        return
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string(f"compliance/email/{template}_subject.txt", context).strip()
        body = render_to_string(f"compliance/email/{template}.txt", context)
    transaction.on_commit(lambda: send_mail(subject, body, None, [to]))


def base_context(privacy_request: PrivacyRequest) -> dict:
    return {
        "request": privacy_request,
        "reference": str(privacy_request),
        "kind": kind_of(privacy_request),
        "law": "CCPA" if kind_of(privacy_request) == "ccpa" else "GDPR",
        "requester_name": privacy_request.requester_name,
        "organization_name": privacy_request.organization.name,
        "type_label": privacy_request.get_request_type_display(),
        "due_at": privacy_request.due_at,
    }
