"""The campaign list (filters, keyset pages, counts per status), the campaign form, and the campaign page
with its actions (status transitions, delete), its costs (htmx add / delete), its manual actuals and the
panels other areas lazy-load into it (send progress, A/B test, funnel).

Every campaign is read through `campaign_get(actor=...)`, which filters by the actor's organization, so a
campaign of another organization answers 404 here whatever the action."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from crm.pagination import keyset_page
from crm.permissions import Capability, has_capability, requires
from crm.views import _apply_errors, _back
from marketing.filters import CampaignFilter
from marketing.forms_campaigns import ActualsForm, CampaignForm, CostEntryForm, StatusForm
from marketing.models import Campaign, CampaignChannel
from marketing.selectors import campaigns as selectors
from marketing.services import campaigns as services
from marketing.services import costs as cost_services
from marketing.tables import CampaignTable

PER_PAGE = 50


def _errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# --- List ----------------------------------------------------------------------------------------------------


@require_GET
@requires(Capability.VIEW_CAMPAIGNS)
def campaign_list(request):
    user = request.user
    filterset = CampaignFilter(
        request.GET or None,
        queryset=selectors.campaign_list(actor=user),
        actor=user,
        owners=selectors.owner_choices(actor=user),
    )
    queryset = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    sort = request.GET.get("sort", "")
    if sort not in selectors.ORDERINGS:
        sort = selectors.DEFAULT_ORDERING
    page = keyset_page(
        queryset, ordering=selectors.ORDERINGS[sort], cursor=request.GET.get("cursor"), per_page=PER_PAGE
    )
    table = CampaignTable(page.items, request=request)
    RequestConfig(request, paginate=False).configure(table)
    table.order_by = sort
    count, capped = selectors.capped_count(queryset)
    query = request.GET.copy()
    query.pop("cursor", None)
    filtered = any(value for key, value in request.GET.items() if key not in ("sort", "cursor"))
    context = {
        "title": _("Campaigns"),
        "filter": filterset,
        "filtered": filtered,
        "table": table,
        "page": page,
        "count": count,
        "capped": capped,
        "status_counts": selectors.status_counts(actor=user),
        "current_status": request.GET.get("status", ""),
        "querystring": query.urlencode(),
        "can_manage": has_capability(user, Capability.MANAGE_CAMPAIGNS),
    }
    return render(request, "marketing/campaigns/list.html", context)


# --- Create and edit -----------------------------------------------------------------------------------------


def _campaign_form(request, *, campaign: Campaign | None = None, initial=None) -> CampaignForm:
    user = request.user
    return CampaignForm(
        request.POST or None,
        initial=initial,
        owners=selectors.owner_choices(actor=user),
        templates=selectors.template_choices(actor=user, include=campaign.template if campaign else None),
        segments=selectors.segment_choices(actor=user),
        campaign=campaign,
    )


@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_create(request):
    user = request.user
    initial = {
        "owner": str(user.pk),
        "currency": user.organization.currency,
        "status": Campaign.Status.DRAFT,
        "channels": [CampaignChannel.EMAIL],
        "from_name": user.organization.name,
    }
    form = _campaign_form(request, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_create(organization=user.organization, actor=user, **form.changes())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(name)s is created.") % {"name": campaign.name})
            return redirect("marketing:campaign_detail", pk=campaign.pk)
    context = {"title": _("New campaign"), "form": form, "campaign": None, "creating": True}
    return render(request, "marketing/campaigns/form.html", context)


@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_edit(request, pk):
    user = request.user
    campaign = selectors.campaign_get(actor=user, pk=pk)
    initial = {
        "name": campaign.name,
        "description": campaign.description,
        "channels": campaign.channels,
        "status": campaign.status,
        "owner": str(campaign.owner_id or ""),
        "start_date": campaign.start_date,
        "end_date": campaign.end_date,
        "currency": campaign.currency,
        "budget": campaign.budget,
        "goal_leads": campaign.goal_leads,
        "goal_conversions": campaign.goal_conversions,
        "goal_revenue": campaign.goal_revenue,
        "template": str(campaign.template_id or ""),
        "segments": [str(s.pk) for s in selectors.segments_of(campaign=campaign)],
        "from_name": campaign.from_name,
        "reply_to": campaign.reply_to,
        "send_at": campaign.send_at,
    }
    form = _campaign_form(request, campaign=campaign, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.campaign_update(campaign=campaign, actor=user, **form.changes())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(name)s is saved.") % {"name": form.cleaned_data["name"]})
            return redirect(_back(request, reverse("marketing:campaign_detail", args=[campaign.pk])))
    context = {
        "title": _("Edit %(name)s") % {"name": campaign.name},
        "form": form,
        "campaign": campaign,
        "creating": False,
        "next": _back(request, ""),
    }
    return render(request, "marketing/campaigns/form.html", context)


# --- Detail --------------------------------------------------------------------------------------------------


def _costs_context(request, campaign: Campaign, form: CostEntryForm | None = None) -> dict:
    return {
        "campaign": campaign,
        "costs": selectors.cost_entries(campaign=campaign),
        "cost_form": form or CostEntryForm(initial={"incurred_on": timezone.localdate()}),
        "budget_used": selectors.budget_used(campaign),
        "remaining": max(campaign.budget - campaign.actual_cost, 0),
        "overspent": max(campaign.actual_cost - campaign.budget, 0),
        "can_manage": has_capability(request.user, Capability.MANAGE_CAMPAIGNS),
    }


@require_GET
@requires(Capability.VIEW_CAMPAIGNS)
def campaign_detail(request, pk):
    user = request.user
    campaign = selectors.campaign_get(actor=user, pk=pk)
    can_manage = has_capability(user, Capability.MANAGE_CAMPAIGNS)
    context = {
        "title": campaign.name,
        **_costs_context(request, campaign),
        "segments": selectors.segments_of(campaign=campaign),
        "sequences": selectors.sequences_of(campaign=campaign),
        "forms": selectors.forms_of(campaign=campaign),
        "actuals": selectors.actuals_of(campaign=campaign, organization_currency=user.organization.currency),
        "channels": selectors.channel_labels(campaign),
        "is_email": CampaignChannel.EMAIL in campaign.channels,
        "has_other_channels": any(c != CampaignChannel.EMAIL for c in campaign.channels),
        "open_rate": selectors.open_rate(campaign),
        "click_rate": selectors.click_rate(campaign),
        "next_statuses": [(value, Campaign.Status(value).label) for value in services.next_statuses(campaign)]
        if can_manage
        else [],
        "can_delete": can_manage and campaign.status == Campaign.Status.DRAFT,
        "actuals_form": ActualsForm(
            initial={
                "impressions": campaign.impressions,
                "clicks": campaign.clicks,
                "conversions": campaign.conversions,
            }
        ),
    }
    return render(request, "marketing/campaigns/detail.html", context)


# --- Actions -------------------------------------------------------------------------------------------------


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_set_status(request, pk):
    campaign = selectors.campaign_get(actor=request.user, pk=pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Pick the status to move the campaign to."))
        return redirect("marketing:campaign_detail", pk=campaign.pk)
    try:
        moved = services.campaign_set_status(
            campaign=campaign, actor=request.user, status=form.cleaned_data["status"]
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("%(name)s is now %(status)s.") % {"name": moved.name, "status": moved.get_status_display()},
        )
    return redirect("marketing:campaign_detail", pk=campaign.pk)


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_delete(request, pk):
    campaign = selectors.campaign_get(actor=request.user, pk=pk)
    try:
        services.campaign_delete(campaign=campaign, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("marketing:campaign_detail", pk=campaign.pk)
    messages.success(request, _("%(name)s is deleted.") % {"name": campaign.name})
    return redirect("marketing:campaign_list")


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_actuals(request, pk):
    """Enter impressions, clicks and conversions of the channels not tracked here."""
    campaign = selectors.campaign_get(actor=request.user, pk=pk)
    form = ActualsForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
        return redirect("marketing:campaign_detail", pk=campaign.pk)
    try:
        services.campaign_record_actuals(campaign=campaign, actor=request.user, **form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("The actuals are saved."))
    return redirect("marketing:campaign_detail", pk=campaign.pk)


# --- Costs ---------------------------------------------------------------------------------------------------


def _costs_response(request, campaign: Campaign, form: CostEntryForm | None = None, *, changed: bool):
    """The budget-and-costs panel (htmx), or back to the campaign page."""
    if request.htmx:
        campaign.refresh_from_db(fields=["actual_cost", "budget"])
        context = {**_costs_context(request, campaign, form), "changed": changed}
        return render(request, "marketing/campaigns/_costs.html", context)
    return redirect(reverse("marketing:campaign_detail", args=[campaign.pk]) + "#costs")


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_cost_add(request, pk):
    campaign = selectors.campaign_get(actor=request.user, pk=pk)
    form = CostEntryForm(request.POST)
    if form.is_valid():
        try:
            cost_services.cost_add(campaign=campaign, actor=request.user, **form.changes())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            if not request.htmx:
                messages.success(request, _("The cost is added."))
            return _costs_response(request, campaign, changed=True)
    if not request.htmx:
        messages.error(request, _errors(form))
    # 200, not 422: htmx swaps only successful responses, and the form with its errors must be shown.
    return _costs_response(request, campaign, form, changed=False)


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def campaign_cost_delete(request, pk, cost_pk):
    campaign = selectors.campaign_get(actor=request.user, pk=pk)
    entry = selectors.cost_entry_get(campaign=campaign, pk=cost_pk)
    cost_services.cost_delete(entry=entry, actor=request.user)
    if not request.htmx:
        messages.success(request, _("The cost is removed."))
    return _costs_response(request, campaign, changed=True)
