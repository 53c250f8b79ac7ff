"""The public tracking URLs under /m/ (no login): the open pixel, click redirects and the unsubscribe page.

How a request reaches one organization's rows under row-level security (as support/views/surveys.py): the
signed token is verified first (no database access); it names its organization, which is read in a short
`system_context()` (a suspended or cancelled organization's links answer 404); everything else runs in
`tenant_context(organization)`, so RLS confines the lookup of the email to the organization the signature
vouches for, on top of the explicit `organization_id=` filters. A token that does not verify, names no
email, or (for a click) names a URL that is not a literal link of the email's template: 404. Never an open
redirect.

Unsubscribing: GET shows a confirmation page and changes nothing (link scanners and mail previews follow
links). POST unsubscribes. The mail client's RFC 8058 one-click POST (body `List-Unsubscribe=One-Click`,
no cookies, no CSRF token) is accepted as it is: the signed token is the authorization. The confirmation
page's own form sends the same field, so it works in a browser that blocks cookies too. Any other POST
goes through the ordinary CSRF check.
"""

from __future__ import annotations

import base64

from django.core import signing
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_safe

from crm.models import Organization
from crm.tenancy import system_context, tenant_context
from marketing import events, tracking
from marketing.models import Campaign, EmailSend, Suppression

# A 1x1 GIF whose one pixel is the transparent colour (42 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
ONE_CLICK = ("List-Unsubscribe", "One-Click")


def _organization(token: str) -> tuple[Organization, tracking.TrackedSend]:
    try:
        tracked = tracking.read_token(token)
    except signing.BadSignature as error:
        raise Http404 from error
    with system_context():
        organization = (
            Organization.objects.filter(
                pk=tracked.organization_id,
                status__in=(Organization.Status.ACTIVE, Organization.Status.TRIAL),
            )
            .only("id", "name", "slug")
            .first()
        )
    if organization is None:
        raise Http404
    return organization, tracked


def _send(tracked: tracking.TrackedSend) -> EmailSend:
    """The email the token names (inside the organization's tenant context)."""
    send = EmailSend.objects.filter(
        organization_id=tracked.organization_id,
        pk=tracked.send_id,
        scheduled_send_time=tracked.scheduled_send_time,
    ).first()
    if send is None:
        raise Http404
    return send


@never_cache
@require_safe
def open_pixel(request, token):
    organization, tracked = _organization(token)
    with tenant_context(organization.pk):
        send = _send(tracked)
        # Link scanners and prefetchers probe with HEAD: only a real GET of the image counts as an open.
        if request.method == "GET":
            events.record_open(send=send)
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0"
    return response


@never_cache
@require_safe
def click(request, token):
    organization, tracked = _organization(token)
    if not tracked.url:
        raise Http404
    with tenant_context(organization.pk):
        send = _send(tracked)
        if tracked.url not in events.template_links(send):
            raise Http404
        if request.method == "GET":  # a HEAD probe (a link scanner) is answered but not counted
            events.record_click(send=send, url=tracked.url)
    # HttpResponseRedirect accepts only http(s) targets; the URL is a literal link of the template.
    return HttpResponseRedirect(tracked.url)


def _unsubscribe_page(request, token):
    organization, tracked = _organization(token)
    with tenant_context(organization.pk):
        send = _send(tracked)
        if request.method == "POST":
            events.record_unsubscribe(send=send)
            state = "done"
        elif send.unsubscribed_at or (
            Suppression.objects.filter(
                organization_id=organization.pk,
                email=send.email.strip().lower(),
                reason=Suppression.Reason.UNSUBSCRIBED,
            ).exists()
        ):
            state = "already"
        else:
            state = "confirm"
        campaign_name = (
            Campaign.objects.filter(organization_id=organization.pk, pk=send.campaign_id)
            .values_list("name", flat=True)
            .first()
        )
    context = {
        "title": _("Unsubscribe"),
        "organization": organization,
        "email": send.email,
        "campaign_name": campaign_name or "",
        "state": state,
        "one_click": ONE_CLICK,
    }
    return render(request, "marketing/tracking/unsubscribe.html", context)


_csrf_checked_page = csrf_protect(_unsubscribe_page)


@never_cache
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    if request.method == "POST" and request.POST.get(ONE_CLICK[0]) != ONE_CLICK[1]:
        return _csrf_checked_page(request, token)
    return _unsubscribe_page(request, token)
