"""The workload page (MANAGE_TICKETS): each agent's open load against their capacity, their oldest ticket,
what is at risk, and the team queue; capacity edited in the row (MANAGE_SUPPORT_SETTINGS, htmx swaps the
row); rebalancing moves chosen tickets from one agent to another through the routing services, so the
capacity counters stay right."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.permissions import Capability, has_capability, requires
from crm.views import _apply_errors
from support import routing
from support.forms_agents import CapacityForm, RebalanceForm
from support.selectors import workload as selectors
from support.services import agents as services


def _row_context(request, load, *, form=None, saved=False) -> dict:
    return {
        "load": load,
        "can_edit_capacity": has_capability(request.user, Capability.MANAGE_SUPPORT_SETTINGS),
        "form": form or CapacityForm(initial={"capacity": load.capacity, "accepting": load.accepting}),
        "saved": saved,
    }


@require_GET
@requires(Capability.MANAGE_TICKETS)
def workload_page(request):
    data = selectors.workload(actor=request.user, cursor=request.GET.get("cursor"))
    context = {
        "title": _("Workload"),
        "data": data,
        "page": data.page,
        "rows": [_row_context(request, load) for load in data.agents],
    }
    return render(request, "support/workload/page.html", context)


@require_POST
@requires(Capability.MANAGE_SUPPORT_SETTINGS)
def agent_capacity(request, pk):
    """Save an agent's capacity and accepting flag; htmx gets the row back (with errors, if any)."""
    load = selectors.agent_for_workload(actor=request.user, pk=pk)
    form = CapacityForm(request.POST)
    saved = False
    if form.is_valid():
        try:
            services.agent_profile_update(
                organization=request.user.organization,
                actor=request.user,
                agent=load.user,
                capacity=form.cleaned_data["capacity"],
                accepting=form.cleaned_data["accepting"],
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            saved = True
            load = selectors.agent_for_workload(actor=request.user, pk=pk)
    if not request.htmx:
        if saved:
            messages.success(request, _("Saved %(name)s's capacity.") % {"name": load.user})
        else:
            messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(reverse("support:workload"))
    context = _row_context(request, load, form=None if saved else form, saved=saved)
    return render(request, "support/workload/_agent_row.html", context)


@require_POST
@requires(Capability.MANAGE_TICKETS)
def route_waiting_now(request):
    """Route the team queue now (the beat does it every few minutes)."""
    routed = routing.route_waiting(organization_id=request.user.organization_id, actor=request.user)
    if routed:
        messages.success(
            request,
            ngettext("%(count)d waiting ticket was routed.", "%(count)d waiting tickets were routed.", routed)
            % {"count": routed},
        )
    else:
        messages.info(request, _("No waiting ticket could be routed: no eligible agent has free capacity."))
    return redirect(reverse("support:workload"))


@require_http_methods(["GET", "POST"])
@requires(Capability.MANAGE_TICKETS)
def agent_rebalance(request, pk):
    """An agent's open tickets, to move some of them to someone else."""
    load = selectors.agent_for_workload(actor=request.user, pk=pk)
    targets = selectors.rebalance_targets(actor=request.user, exclude=load.user)
    form = RebalanceForm(request.POST or None, agent=load.user, targets=targets)
    if request.method == "POST" and form.is_valid():
        target = form.cleaned_data["to_agent"]
        try:
            moved = services.tickets_rebalance(
                organization=request.user.organization,
                actor=request.user,
                ticket_ids=[t.pk for t in form.cleaned_data["tickets"]],
                to_agent=target,
                force=form.cleaned_data["force"],
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(
                request,
                ngettext(
                    "%(count)d ticket moved from %(from)s to %(to)s.",
                    "%(count)d tickets moved from %(from)s to %(to)s.",
                    moved,
                )
                % {"count": moved, "from": load.user, "to": target},
            )
            return redirect(reverse("support:workload"))
    page = selectors.agent_tickets(actor=request.user, agent=load.user, cursor=request.GET.get("cursor"))
    chosen = {str(v) for v in request.POST.getlist("tickets")}
    context = {
        "title": _("Rebalance %(name)s's tickets") % {"name": load.user},
        "load": load,
        "page": page,
        "form": form,
        "chosen": chosen,
        "targets": targets,
    }
    return render(request, "support/workload/agent.html", context)
