"""Support reports (VIEW_SUPPORT_REPORTS): satisfaction (CSAT and NPS by period, agent and category), agent
performance, and the survey answers behind every figure. Every read starts from the viewer's organization;
the figures come from support/reports/ in a fixed number of queries."""

from __future__ import annotations

import zoneinfo
from urllib.parse import urlencode

from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm.models import User
from crm.pagination import keyset_page
from crm.permissions import MATRIX, Capability, has_capability, requires
from support import reports
from support.forms_reports import AnswersFilterForm, ReportPeriodForm

ANSWERS_PER_PAGE = 25
LATEST_COMMENTS = 5


def _period(request, form: ReportPeriodForm) -> reports.ReportPeriod:
    organization = request.user.organization
    time_zone = organization.time_zone or "UTC"
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(time_zone)).date()
    return form.period(today=today, time_zone=time_zone)


def _context(request, *, tab: str, form, period: reports.ReportPeriod) -> dict:
    return {
        "tab": tab,
        "form": form,
        "period": period,
        "period_query": urlencode(period.query()),
        "as_of": timezone.now(),
        "can_see_workload": has_capability(request.user, Capability.MANAGE_TICKETS),
    }


@require_GET
@requires(Capability.VIEW_SUPPORT_REPORTS)
def satisfaction(request):
    form = ReportPeriodForm(request.GET or None)
    period = _period(request, form)
    organization_id = request.user.organization_id
    report = reports.satisfaction_report(organization_id=organization_id, period=period)
    latest = list(
        reports.answers(organization_id=organization_id, period=period).order_by("-responded_at", "-id")[
            :LATEST_COMMENTS
        ]
    )
    context = {
        **_context(request, tab="satisfaction", form=form, period=period),
        "title": _("Customer satisfaction"),
        "report": report,
        "latest": latest,
        "chart": {"satisfaction": report.chart()},
    }
    return render(request, "support/reports/satisfaction.html", context)


@require_GET
@requires(Capability.VIEW_SUPPORT_REPORTS)
def performance(request):
    form = ReportPeriodForm(request.GET or None)
    period = _period(request, form)
    report = reports.agent_performance(organization_id=request.user.organization_id, period=period)
    context = {
        **_context(request, tab="agents", form=form, period=period),
        "title": _("Agent performance"),
        "report": report,
        "chart": {"performance": report.chart()},
    }
    return render(request, "support/reports/agents.html", context)


def _report_agents(actor: User) -> list[User]:
    """People answers may be credited to: active users who work tickets (for the agent filter)."""
    roles = [role for role, capabilities in MATRIX.items() if Capability.WORK_TICKETS in capabilities]
    return list(
        User.objects.filter(organization_id=actor.organization_id, is_active=True, role__in=roles).order_by(
            "first_name", "last_name", "email"
        )
    )


@require_GET
@requires(Capability.VIEW_SUPPORT_REPORTS)
def comments(request):
    form = AnswersFilterForm(request.GET or None, agents=_report_agents(request.user))
    period = _period(request, form)
    filters = form.filters()
    queryset = reports.answers(organization_id=request.user.organization_id, period=period, **filters)
    page = keyset_page(
        queryset,
        ordering=("-responded_at", "-id"),
        cursor=request.GET.get("cursor"),
        per_page=ANSWERS_PER_PAGE,
    )
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        **_context(request, tab="comments", form=form, period=period),
        "title": _("Survey answers") if not filters["with_comment"] else _("Survey comments"),
        "page": page,
        "querystring": query.urlencode(),
        "filters": filters,
    }
    return render(request, "support/reports/comments.html", context)
