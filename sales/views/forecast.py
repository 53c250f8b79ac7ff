"""The forecast page (chart, table, risks, actions), its drill-down to the deals behind every number, and the
quota grid. Thin: the numbers come from `sales.forecasting`, the deals from `sales.selectors.forecast`, the
writes from `sales.services.quotas`."""

from __future__ import annotations

import datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.pagination import keyset_page
from crm.permissions import Capability, has_capability, requires
from sales import forecasting
from sales.forms_forecast import ALL_OWNERS, DrilldownForm, ForecastFilterForm, QuotaGridForm
from sales.selectors import forecast as selectors
from sales.services import quotas as quota_services
from sales.services.opportunities import organization_today

# The forecast table's rows: (figure, label, what it is).
ROWS = (
    ("closed_won", gettext_lazy("Closed won"), gettext_lazy("Won so far this month (up to today).")),
    ("commit", gettext_lazy("Commit"), gettext_lazy("Open deals in the commit category.")),
    (
        "best_case_deals",
        gettext_lazy("Best-case deals"),
        gettext_lazy("Open deals in the best-case category."),
    ),
    ("pipeline_deals", gettext_lazy("Pipeline deals"), gettext_lazy("Open deals in the pipeline category.")),
    (
        "expected",
        gettext_lazy("Expected"),
        gettext_lazy("Open deals weighted by their probability (omitted deals left out)."),
    ),
    (
        "worst_case",
        gettext_lazy("Worst case"),
        gettext_lazy("Closed won plus commit deals at their stage's historical win rate."),
    ),
    (
        "best_case",
        gettext_lazy("Best case"),
        gettext_lazy(
            "Closed won, commit and best-case deals, plus pipeline deals at their historical win rate."
        ),
    ),
    ("quota", gettext_lazy("Quota"), gettext_lazy("The sum of the quotas of the month.")),
    (
        "pipeline",
        gettext_lazy("Open pipeline"),
        gettext_lazy("Open deals closing in the month, at full value."),
    ),
    ("coverage", gettext_lazy("Coverage"), gettext_lazy("Open pipeline divided by the quota still to win.")),
)
SERIES = (
    ("closed_won", gettext_lazy("Closed won")),
    ("commit", gettext_lazy("Commit")),
    ("expected", gettext_lazy("Expected")),
    ("worst_case", gettext_lazy("Worst case")),
    ("best_case", gettext_lazy("Best case")),
    ("quota", gettext_lazy("Quota")),
)
HORIZONS = {"3": 3, "6": 6, "12": 12}
MEASURE_LABELS = {
    **{key: label for key, label, _help in ROWS},
    "low_coverage": gettext_lazy("Low coverage"),
    "slipped": gettext_lazy("Expected close date has passed"),
    "no_activity": gettext_lazy("No recent activity"),
    "close_date_moved": gettext_lazy("Close date moved more than once"),
    "other_currency": gettext_lazy("Deals in another currency"),
}


def _owner_param(owner_id) -> str:
    return str(owner_id) if owner_id else ALL_OWNERS


def drill_url(measure: str, *, owner_id, months: int, month: datetime.date | None = None) -> str:
    params = {"measure": measure, "owner": _owner_param(owner_id), "months": months}
    if month is not None:
        params["month"] = f"{month:%Y-%m}"
    return f"{reverse('sales:forecast_deals')}?{urlencode(params)}"


def _table(forecast: forecasting.Forecast, months: int, quotas_url: str | None) -> list[dict]:
    columns = [*forecast.months, forecast.total]
    rows = []
    for key, label, help_text in ROWS:
        cells = []
        for index, column in enumerate(columns):
            month = column.month if index < len(forecast.months) else None
            if key == "quota":
                url = quotas_url
            else:
                measure = "pipeline" if key == "coverage" else key
                url = drill_url(measure, owner_id=forecast.owner_id, months=months, month=month)
            cells.append({"value": getattr(column, key), "url": url, "total": month is None})
        rows.append({"key": key, "label": label, "help": help_text, "cells": cells})
    return rows


def _chart(forecast: forecasting.Forecast, months: int, quotas_url: str | None) -> dict:
    """What static/js/forecast-chart.js draws: labels, and per series the values (Decimal strings) and the
    drill-down URL of every point."""

    def url(key: str, month: datetime.date) -> str | None:
        if key == "quota":
            return quotas_url
        return drill_url(key, owner_id=forecast.owner_id, months=months, month=month)

    return {
        "labels": [date_format(row.month, "M Y") for row in forecast.months],
        "currency": forecast.currency,
        "series": [
            {
                "key": key,
                "label": str(label),
                "values": [str(getattr(row, key)) for row in forecast.months],
                "urls": [url(key, row.month) for row in forecast.months],
            }
            for key, label in SERIES
        ],
    }


@requires(Capability.VIEW_FORECAST)
def forecast_page(request):
    user = request.user
    if user.organization_id is None:
        return render(request, "sales/forecast/page.html", {"title": _("Forecast"), "no_org": True})
    owners = list(selectors.forecast_owners(actor=user))
    scope = selectors.forecast_scope(actor=user, requested=request.GET.get("owner"), owners=owners)
    months = HORIZONS.get(request.GET.get("months", ""), 3)
    forecast = forecasting.forecast_for_organization(
        organization_id=user.organization_id, months=months, owner_id=scope.owner_id
    )
    form = ForecastFilterForm(
        {"owner": _owner_param(scope.owner_id), "months": months},
        owners=owners if scope.can_pick else [],
        can_pick=scope.can_pick,
    )
    quotas_url = reverse("sales:quotas") if has_capability(user, Capability.MANAGE_QUOTAS) else None
    risks = [
        {
            "risk": risk,
            "url": drill_url(
                risk.code,
                owner_id=scope.owner_id,
                months=months,
                month=risk.months[0] if risk.months else None,
            ),
            # low coverage: each month below the target, with its own deals
            "months": [
                (month, drill_url(risk.code, owner_id=scope.owner_id, months=months, month=month))
                for month in risk.months
            ],
        }
        for risk in forecast.risks
    ]
    actions = [
        {
            "action": action,
            "url": drill_url(action.measure, owner_id=scope.owner_id, months=months, month=action.month)
            if action.measure
            else (quotas_url if action.code == "set_quotas" else None),
        }
        for action in forecast.actions
    ]
    headline = [
        (key, label, getattr(forecast.total, key), drill_url(key, owner_id=scope.owner_id, months=months))
        for key, label in (
            ("expected", _("Expected")),
            ("worst_case", _("Worst case")),
            ("best_case", _("Best case")),
            ("commit", _("Commit")),
            ("closed_won", _("Closed won")),
        )
    ]
    context = {
        "title": _("Forecast"),
        "forecast": forecast,
        "scope": scope,
        "form": form,
        "months": months,
        "headline": headline,
        "table": _table(forecast, months, quotas_url),
        "chart": _chart(forecast, months, quotas_url),
        "risks": risks,
        "actions": actions,
        "quotas_url": quotas_url,
    }
    return render(request, "sales/forecast/page.html", context)


@requires(Capability.VIEW_FORECAST)
def forecast_deals(request):
    """The deals behind one number of the forecast page, largest first, a keyset page at a time."""
    user = request.user
    if user.organization_id is None:
        raise Http404
    if "measure" not in request.GET:  # a bare link: the figures to pick from are on the forecast page
        return redirect("sales:forecast")
    form = DrilldownForm(request.GET)
    if not form.is_valid():
        raise Http404
    measure, month, months = (
        form.cleaned_data["measure"],
        form.cleaned_data["month"],
        form.cleaned_data["months"],
    )
    owners = list(selectors.forecast_owners(actor=user))
    requested = form.cleaned_data["owner"]
    scope = selectors.forecast_scope(actor=user, requested=requested, owners=owners)
    organization = user.organization
    as_of = organization_today(organization)
    if month is not None and not (
        forecasting.month_start(as_of)
        <= month
        < forecasting.add_months(forecasting.month_start(as_of), months)
    ):
        raise Http404
    deals = selectors.forecast_deals(
        actor=user,
        measure=measure,
        as_of=as_of,
        months=months,
        month=month,
        owner_id=scope.owner_id,
        time_zone=organization.time_zone,
        currency=organization.currency,
    ).select_related("customer", "assigned_to", "stage")
    page = keyset_page(deals, ordering=("-amount", "-id"), cursor=request.GET.get("cursor"), per_page=50)
    base = {"measure": measure, "owner": _owner_param(scope.owner_id), "months": months}
    if month is not None:
        base["month"] = f"{month:%Y-%m}"
    context = {
        "title": _("Deals behind the forecast"),
        "measure": measure,
        "measure_label": MEASURE_LABELS[measure],
        "month": month if forecasting.MEASURES[measure] == "month" else None,
        "scope": scope,
        "months": months,
        "as_of": as_of,
        "page": page,
        "currency": organization.currency,
        "querystring": urlencode(base),
        "back_url": f"{reverse('sales:forecast')}?{urlencode({'owner': base['owner'], 'months': months})}",
    }
    return render(request, "sales/forecast/deals.html", context)


@requires(Capability.MANAGE_QUOTAS)
def quotas(request):
    """The quota grid: people who sell x the next 6 or 12 months; blank cells have no quota."""
    user = request.user
    if user.organization_id is None:
        return render(request, "sales/forecast/quotas.html", {"title": _("Quotas"), "no_org": True})
    months_count = 12 if request.GET.get("months") == "12" else 6
    first = forecasting.month_start(organization_today(user.organization))
    months = [forecasting.add_months(first, n) for n in range(months_count)]
    people = list(quota_services.quota_users(organization_id=user.organization_id, months=months))
    current = quota_services.quotas_for(organization_id=user.organization_id, months=months)
    form = QuotaGridForm(request.POST or None, users=people, months=months, current=current)
    if request.method == "POST" and form.is_valid():
        try:
            result = quota_services.quotas_set(
                organization_id=user.organization_id, actor=user, values=form.changed_values()
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("Quotas saved: %(saved)s set, %(cleared)s cleared.")
                % {"saved": result.saved, "cleared": result.cleared},
            )
            return redirect(f"{reverse('sales:quotas')}?months={months_count}")
    totals = [sum((current.get((person.pk, month), 0) for person in people), 0) for month in months]
    context = {
        "title": _("Quotas"),
        "form": form,
        "months": months,
        "months_count": months_count,
        "totals": totals,
        "currency": user.organization.currency,
    }
    return render(request, "sales/forecast/quotas.html", context)
