"""Downloads of a privacy request's export (the ZIP built by compliance/exporting.py).

- `/privacy-request/download/<token>/` (public, no login): the data subject's signed link. The token is
  verified first (no database access): one that does not verify answers 404, one older than
  `PRIVACY_EXPORT_LINK_DAYS` 410. It names its organization, which must be active; the request is then read
  in `tenant_context(organization)`, so RLS confines the lookup to the organization the signature vouches
  for. A request whose export is past its `export_expires_at` or whose file is gone answers 410.
- `/privacy/exports/<kind>/<uuid:pk>/` (PROCESS_PRIVACY_REQUESTS): staff download from the request page.

Every download is recorded in the access log before the file is sent, and served only as an attachment
(`Content-Disposition: attachment`, `nosniff`, no caching).
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from compliance import exporting
from compliance.access_log import record_access
from compliance.models import AccessAction
from crm.models import Organization
from crm.permissions import Capability, requires
from crm.tenancy import system_context, tenant_context


def _gone(request):
    context = {"title": _("This download is no longer available")}
    return render(request, "compliance/exports/gone.html", context, status=410)


def _file_response(request_obj) -> FileResponse:
    try:
        handle = default_storage.open(request_obj.export_file, "rb")
    except (FileNotFoundError, OSError):
        raise Http404 from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"{request_obj}-personal-data.zip",
        content_type="application/zip",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


def _active_organization(organization_id) -> bool:
    with system_context():
        return Organization.objects.filter(
            pk=organization_id, status__in=(Organization.Status.ACTIVE, Organization.Status.TRIAL)
        ).exists()


@never_cache
@require_GET
def export_download_public(request, token):
    try:
        link = exporting.read_token(token)
    except exporting.LinkRefused as refused:
        if refused.reason == "expired":
            return _gone(request)
        raise Http404 from None
    if not _active_organization(link.organization_id):
        raise Http404
    with tenant_context(link.organization_id, request_id=getattr(request, "request_id", "")):
        request_obj = exporting.export_request_get(
            organization_id=link.organization_id, kind=link.kind, pk=link.request_id
        )
        if not exporting.export_available(request_obj, for_public_link=True):
            return _gone(request)
        response = _file_response(request_obj)
        record_access(
            request_or_none=request,
            user=None,
            action=AccessAction.DOWNLOAD_EXPORT,
            customer=request_obj.customer,
            description=f"{request_obj} via signed link",
        )
    return response


@never_cache
@require_GET
@requires(Capability.PROCESS_PRIVACY_REQUESTS)
def export_download(request, kind, pk):
    request_obj = exporting.export_request_get(organization_id=request.user.organization_id, kind=kind, pk=pk)
    if not exporting.export_available(request_obj, for_public_link=False):
        return _gone(request)
    response = _file_response(request_obj)
    record_access(
        request_or_none=request,
        user=request.user,
        action=AccessAction.DOWNLOAD_EXPORT,
        customer=request_obj.customer,
        description=f"{request_obj} from the request page",
    )
    return response
