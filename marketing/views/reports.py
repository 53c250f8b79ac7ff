"""Marketing reports: a campaign's funnel panel (lazy-loaded by the campaign page; a page of its own without
htmx) and the campaign comparison with its CSV export. The figures come from marketing/selectors/reports.py
in a fixed number of queries; definitions in docs/attribution.md."""

from __future__ import annotations

import csv
import json
import zoneinfo

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from crm.permissions import Capability, has_capability, requires
from customers.exporting import spreadsheet_safe
from marketing.attribution import AttributionModel
from marketing.forms_reports import ComparisonFilterForm, FunnelModelForm
from marketing.models import Campaign
from marketing.selectors import reports


def campaign_detail_url(campaign: Campaign) -> str:
    """The campaign's own page: the drill-down of every row and bar."""
    return reverse("marketing:campaign_detail", kwargs={"pk": campaign.pk})


def _funnel_chart(figures: reports.CampaignFigures) -> str:
    """The chart's figures as JSON for a data attribute: the panel arrives by htmx, which (scripts being
    off, allowScriptTags false) drops <script> elements, json_script's included, from swapped content."""
    return json.dumps(
        {
            "labels": [str(stage.label) for stage in figures.funnel],
            "counts": [stage.count for stage in figures.funnel],
        }
    )


@require_GET
@requires(Capability.VIEW_CAMPAIGNS)
def campaign_funnel_panel(request, pk):
    """The funnel (sent → delivered → opened → clicked → converted) with the rates between stages, leads,
    cost per lead, attributed revenue and ROI under the model chosen (`?model=`). Through htmx: the panel
    alone (the model switcher swaps it in place); otherwise a page around it."""
    campaign = get_object_or_404(Campaign.objects.filter(organization_id=request.user.organization_id), pk=pk)
    form = FunnelModelForm(request.GET or None)
    figures = reports.campaign_funnel(actor=request.user, campaign=campaign, model=form.chosen_model())
    context = {
        "campaign": campaign,
        "figures": figures,
        "models": AttributionModel.choices,
        "by_model": [
            (model, label, figures.revenue.for_model(model), figures.roi_for(model))
            for model, label in AttributionModel.choices
        ],
        "chart": _funnel_chart(figures),
        "can_compare": has_capability(request.user, Capability.VIEW_MARKETING_REPORTS),
        "as_of": timezone.now(),
    }
    if request.htmx:
        return render(request, "marketing/reports/_funnel_panel.html", context)
    context["title"] = _("Funnel and ROI of %(name)s") % {"name": campaign.name}
    context["detail_url"] = campaign_detail_url(campaign)
    return render(request, "marketing/reports/funnel_page.html", context)


def _comparison(request) -> tuple[ComparisonFilterForm, reports.Comparison]:
    form = ComparisonFilterForm(request.GET or None)
    organization = request.user.organization
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(organization.time_zone or "UTC")).date()
    period = form.chosen_period(today)
    comparison = reports.campaign_comparison(actor=request.user, period=period, **form.filters())
    return form, comparison


# The comparison's columns: sort key, header, numeric (right-aligned, sorted largest first on the first click).
COLUMNS = [
    ("name", gettext_lazy("Campaign"), False),
    ("cost", gettext_lazy("Cost"), True),
    ("sent", gettext_lazy("Sent"), True),
    ("open_rate", gettext_lazy("Open rate"), True),
    ("click_rate", gettext_lazy("Click rate"), True),
    ("leads", gettext_lazy("Leads"), True),
    ("cost_per_lead", gettext_lazy("Cost per lead"), True),
    ("conversions", gettext_lazy("Conversions"), True),
    ("revenue", gettext_lazy("Revenue"), True),
    ("roi", gettext_lazy("ROI"), True),
]


def _headers(request, current: str) -> list[dict]:
    """Per column: the link that sorts by it (a click on the sorted column flips the order) and its
    aria-sort state."""
    headers = []
    for key, label, numeric in COLUMNS:
        params = request.GET.copy()
        if current == key:
            state, params["sort"] = "ascending", f"-{key}"
        elif current == f"-{key}":
            state, params["sort"] = "descending", key
        else:
            state, params["sort"] = "none", (f"-{key}" if numeric else key)
        headers.append(
            {"key": key, "label": label, "numeric": numeric, "url": "?" + params.urlencode(), "state": state}
        )
    return headers


@require_GET
@requires(Capability.VIEW_MARKETING_REPORTS)
def campaign_comparison(request):
    """Campaigns that ran in a period side by side: cost, sends, rates, leads, cost per lead, conversions,
    attributed revenue and ROI, sortable, with totals, a cost-versus-revenue chart and a CSV export."""
    form, comparison = _comparison(request)
    rows = [(row, campaign_detail_url(row.campaign)) for row in comparison.rows]
    export_params = request.GET.copy()
    context = {
        "title": _("Campaign comparison"),
        "form": form,
        "comparison": comparison,
        "rows": rows,
        "headers": _headers(request, comparison.sort),
        "chart": comparison.chart(campaign_detail_url),
        "export_url": reverse("marketing:campaign_comparison_export")
        + ("?" + export_params.urlencode() if export_params else ""),
        "as_of": timezone.now(),
        "model_label": AttributionModel(comparison.model).label,
    }
    return render(request, "marketing/reports/comparison.html", context)


def _number(value) -> str:
    return "" if value is None else str(value)


@require_GET
@requires(Capability.VIEW_MARKETING_REPORTS)
def campaign_comparison_export(request):
    """The comparison table as CSV (the same filters and order), with the totals as the last line."""
    _form, comparison = _comparison(request)
    model_label = AttributionModel(comparison.model).label
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="campaign-comparison-{stamp}.csv"'
    response.write("\ufeff")  # a byte-order mark, so spreadsheet programs read it as UTF-8
    writer = csv.writer(response)
    writer.writerow(
        [
            _("Campaign"),
            _("Status"),
            _("Channels"),
            _("Start"),
            _("End"),
            _("Cost"),
            _("Cost currency"),
            _("Sent"),
            _("Delivered"),
            _("Opened"),
            _("Clicked"),
            _("Open rate (%)"),
            _("Click rate (%)"),
            _("Leads"),
            _("Cost per lead"),
            _("Conversions"),
            _("Revenue (%(model)s)") % {"model": model_label},
            _("Revenue currency"),
            _("ROI (%)"),
        ]
    )

    def figures(row: reports.CampaignFigures) -> list[str]:
        c = row.counts
        return [
            _number(row.cost),
            row.cost_currency if not row.partial_cost else "",
            c.sent,
            c.delivered,
            c.opened,
            c.clicked,
            _number(row.open_rate),
            _number(row.click_rate),
            c.leads,
            _number(row.cost_per_lead),
            c.conversions,
            _number(row.attributed),
            row.currency,
            _number(row.roi),
        ]

    for row in comparison.rows:
        campaign = row.campaign
        writer.writerow(
            [
                spreadsheet_safe(campaign.name),
                campaign.get_status_display(),
                " ".join(campaign.channels),
                _number(campaign.start_date),
                _number(campaign.end_date),
                *figures(row),
            ]
        )
    writer.writerow([_("Total"), "", "", "", "", *figures(comparison.total)])
    return response
