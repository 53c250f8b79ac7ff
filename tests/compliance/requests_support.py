"""Helpers shared by the request workflow tests (test_requests, test_request_views, test_deadlines)."""

from __future__ import annotations

import re

from django.core import mail

from compliance.services.requests import request_create, request_send_verification, request_verify
from crm.tenancy import tenant_context

CODE = re.compile(r"\b([A-Z0-9]{4})-([A-Z0-9]{4})\b")


def create(org, *, actor=None, kind="gdpr", request_type="access", **fields):
    """A request through the service, as staff or the public form log it."""
    defaults = {"requester_name": "Dana Subject", "requester_email": "dana@example.org"}
    with tenant_context(org.pk, user=actor):
        return request_create(
            organization=org, kind=kind, request_type=request_type, actor=actor, **{**defaults, **fields}
        )


def last_code() -> str:
    match = CODE.search(mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1) + match.group(2)


def verified(org, privacy_request, capture):
    """Send a code (capturing the on-commit email) and type it in: the request is then processing."""
    with capture(execute=True), tenant_context(org.pk):
        request_send_verification(privacy_request=privacy_request)
    with tenant_context(org.pk):
        assert request_verify(privacy_request=privacy_request, code=last_code()) is True
    return privacy_request


def reload(org, privacy_request):
    """A fresh copy of a request (or any tenant row) from the database."""
    with tenant_context(org.pk):
        return type(privacy_request).objects.get(pk=privacy_request.pk)
