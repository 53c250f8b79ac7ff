"""The campaign's email send: the progress panel (an htmx partial the campaign page loads, polling itself
while the send moves), the launch / pause / resume buttons (SEND_CAMPAIGNS), and the recipients list."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.permissions import Capability, has_capability, requires
from marketing.models import SendStatus
from marketing.selectors import sends as selectors
from marketing.services import sends as services


def _panel(request, pk, *, errors=None):
    progress = selectors.send_progress(actor=request.user, pk=pk)
    context = {
        "progress": progress,
        "campaign": progress.campaign,
        "can_send": has_capability(request.user, Capability.SEND_CAMPAIGNS),
        "errors": errors or [],
    }
    return render(request, "marketing/sends/_panel.html", context)


def _campaign_page(campaign) -> str:
    """The campaign's page (the campaigns area), or its recipients list while that page does not exist."""
    try:
        return reverse("marketing:campaign_detail", args=[campaign.pk])
    except NoReverseMatch:
        return reverse("marketing:campaign_recipients", args=[campaign.pk])


@require_GET
@requires(Capability.VIEW_CAMPAIGNS)
def campaign_send_panel(request, pk):
    return _panel(request, pk)


def _act(request, pk, service, done: str):
    """Run a launch / pause / resume service; htmx gets the panel back (with the errors, if any)."""
    campaign = selectors.campaign_for(actor=request.user, pk=pk)
    try:
        service(campaign=campaign, actor=request.user)
    except ValidationError as error:
        if request.htmx:
            return _panel(request, pk, errors=error.messages)
        for message in error.messages:
            messages.error(request, message)
        return redirect(_campaign_page(campaign))
    if request.htmx:
        return _panel(request, pk)
    messages.success(request, done)
    return redirect(_campaign_page(campaign))


@require_POST
@requires(Capability.SEND_CAMPAIGNS)
def campaign_send_launch(request, pk):
    return _act(request, pk, services.campaign_send_launch, _("The email send was launched."))


@require_POST
@requires(Capability.SEND_CAMPAIGNS)
def campaign_send_pause(request, pk):
    return _act(request, pk, services.campaign_send_pause, _("The email send was paused."))


@require_POST
@requires(Capability.SEND_CAMPAIGNS)
def campaign_send_resume(request, pk):
    return _act(request, pk, services.campaign_send_resume, _("The email send was resumed."))


@require_GET
@requires(Capability.VIEW_CAMPAIGNS)
def campaign_recipients(request, pk):
    """Who the campaign's email went to, page by page (keyset), optionally one status, with the times."""
    campaign = selectors.campaign_for(actor=request.user, pk=pk)
    status = request.GET.get("status", "")
    if status not in SendStatus.values:
        status = ""
    page = selectors.recipients_page(
        actor=request.user, campaign=campaign, status=status, cursor=request.GET.get("cursor")
    )
    context = {
        "title": _("Recipients of %(campaign)s") % {"campaign": campaign.name},
        "campaign": campaign,
        "campaign_url": _campaign_page(campaign),
        "page": page,
        "status": status,
        "statuses": SendStatus.choices,
        "querystring": urlencode({"status": status}) if status else "",
    }
    return render(request, "marketing/sends/recipients.html", context)
