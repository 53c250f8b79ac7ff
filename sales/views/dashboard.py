"""The sales dashboard (materialized, refreshed every 30 minutes) and team performance analytics (live)."""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from crm.permissions import Capability, requires
from sales import analytics
from sales import dashboard as sales_dashboard
from sales.services.opportunities import organization_today

# --- dashboard --------------------------------------------------------------------------------------------


def _status_context(request, board: sales_dashboard.Dashboard) -> dict:
    return {
        "dashboard": board,
        "since": board.refreshed_at.isoformat() if board.refreshed_at else "",
        "can_refresh": sales_dashboard.can_request_refresh(request.user),
    }


@requires(Capability.VIEW_SALES_DASHBOARD)
@require_http_methods(["GET", "HEAD", "POST"])
def dashboard(request):
    """KPIs, the open funnel per pipeline, monthly conversion and the 3-month weighted forecast, as of the
    last refresh. `?format=json` returns the same figures; `?currency=` picks the money shown.

    POST is "Refresh" (managers): enqueue a refresh. Through htmx it answers with the status panel, which
    polls (GET ?part=status) until the refresh has run, then has htmx reload the page (HX-Refresh)."""
    if request.method == "POST":
        if not sales_dashboard.can_request_refresh(request.user):
            raise PermissionDenied
        queued = sales_dashboard.dashboard_refresh_request(actor=request.user)
        if request.htmx:
            board = sales_dashboard.sales_dashboard(actor=request.user)
            context = _status_context(request, board)
            context["just_requested"] = True
            return render(request, "sales/dashboard/_status.html", context)
        if queued:
            messages.info(request, _("Refreshing the dashboard. The figures update in a minute or so."))
        else:
            messages.info(request, _("A refresh is already on its way."))
        return redirect("sales:dashboard")
    board = sales_dashboard.sales_dashboard(actor=request.user, currency=request.GET.get("currency"))
    if request.GET.get("format") == "json":
        return JsonResponse(sales_dashboard.dashboard_as_json(board))
    if request.htmx and request.GET.get("part") == "status":
        context = _status_context(request, board)
        if context["since"] != request.GET.get("since", "") and not board.refresh_pending:
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"  # new figures are in: show them
            return response
        return render(request, "sales/dashboard/_status.html", context)
    context = {
        **_status_context(request, board),
        "title": _("Sales dashboard"),
        "charts": sales_dashboard.chart_data(board),
    }
    return render(request, "sales/dashboard/dashboard.html", context)


# --- performance analytics --------------------------------------------------------------------------------

PRESETS = [
    ("this_month", gettext_lazy("This month")),
    ("last_month", gettext_lazy("Last month")),
    ("this_quarter", gettext_lazy("This quarter")),
    ("last_quarter", gettext_lazy("Last quarter")),
    ("this_year", gettext_lazy("This year")),
    ("last_year", gettext_lazy("Last year")),
    ("custom", gettext_lazy("Custom dates")),
]
MAX_PERIOD_DAYS = 3 * 366


def preset_period(preset: str, today: datetime.date) -> analytics.Period:
    """The calendar range a preset names, as of `today` (the organization's)."""
    add_months = sales_dashboard.add_months
    month = today.replace(day=1)
    quarter = month.replace(month=(month.month - 1) // 3 * 3 + 1)
    year = month.replace(month=1)
    starts = {
        "this_month": (month, add_months(month, 1)),
        "last_month": (add_months(month, -1), month),
        "this_quarter": (quarter, add_months(quarter, 3)),
        "last_quarter": (add_months(quarter, -3), quarter),
        "this_year": (year, add_months(year, 12)),
        "last_year": (add_months(year, -12), year),
    }
    start, next_start = starts[preset]
    return analytics.Period(start=start, end=next_start - datetime.timedelta(days=1))


class PeriodForm(forms.Form):
    period = forms.ChoiceField(label=gettext_lazy("Period"), choices=PRESETS, required=False)
    start = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        data = super().clean()
        if data.get("period") == "custom" or (
            not data.get("period") and (data.get("start") or data.get("end"))
        ):
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise forms.ValidationError(_("Give both dates of a custom period."))
            if end < start:
                raise forms.ValidationError(_("The period ends before it starts."))
            if (end - start).days > MAX_PERIOD_DAYS:
                raise forms.ValidationError(_("Choose a period of at most three years."))
            data["period"] = "custom"
        return data

    def chosen_period(self, today: datetime.date) -> analytics.Period:
        """The valid period asked for; this quarter when nothing (or nothing valid) was."""
        if self.is_valid():
            preset = self.cleaned_data.get("period") or "this_quarter"
            if preset == "custom":
                return analytics.Period(start=self.cleaned_data["start"], end=self.cleaned_data["end"])
            return preset_period(preset, today)
        return preset_period("this_quarter", today)


@requires(Capability.VIEW_SALES_ANALYTICS)
@require_GET
def team_analytics(request):
    """Per rep and per team over a period: win rate, deal size, cycle time, activities, quota attainment,
    slipped deals, and the leaderboard by closed-won revenue. `?format=json` returns the same figures."""
    form = PeriodForm(request.GET or None)
    today = organization_today(request.user.organization) if request.user.organization_id else None
    period = form.chosen_period(today) if today else None
    result = analytics.team_performance(actor=request.user, period=period)
    if request.GET.get("format") == "json":
        return JsonResponse(analytics.team_performance_as_json(result))
    if not form.is_bound or (form.is_valid() and form.cleaned_data.get("period") != "custom"):
        # Show the dates the preset stands for (not whatever dates came with it).
        preset = form.cleaned_data.get("period") if form.is_bound else ""
        form = PeriodForm(
            initial={"period": preset or "this_quarter", "start": period.start, "end": period.end}
        )
    leaders = result.leaderboard[:10]
    chart = {
        "currency": result.currency,
        "labels": [rep.label for rep in leaders],
        "revenue": [float(rep.revenue) for rep in leaders],
        "urls": [rep.links["won"] for rep in leaders],
    }
    context = {"title": _("Team performance"), "form": form, "result": result, "leaderboard_chart": chart}
    return render(request, "sales/dashboard/analytics.html", context)
