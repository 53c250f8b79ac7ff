"""Small request middlewares: request id and client IP, the user's time zone, no-store caching."""

import re
import uuid
import zoneinfo

from django.conf import settings
from django.utils import timezone
from django.utils.cache import patch_cache_control

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Give every request an id (a well-formed incoming X-Request-ID is kept, for tracing across a proxy)
    and note the client IP; both go into the audit trail and back out in the X-Request-ID header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.client_ip = client_ip(request)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


def client_ip(request) -> str:
    """REMOTE_ADDR, or the proxy's X-Forwarded-For when (and only when) we are told to trust it."""
    if settings.CRM_TRUST_X_FORWARDED_FOR:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "")


class UserTimezoneMiddleware:
    """Show times in the user's time zone (falling back to the organization's, then UTC)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        name = ""
        if user.is_authenticated:
            name = user.time_zone or (user.organization.time_zone if user.organization_id else "")
        try:
            timezone.activate(zoneinfo.ZoneInfo(name or "UTC"))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class NoStoreForAuthenticatedMiddleware:
    """Pages shown to a signed-in user hold tenant data: no browser or proxy may keep a copy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.user.is_authenticated:
            patch_cache_control(response, no_store=True, no_cache=True, private=True, max_age=0)
        return response
