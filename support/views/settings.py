"""SLA settings (MANAGE_SUPPORT_SETTINGS): policies in matching order (reordered with up / down), created and
edited with errors beside each field; business-hours calendars with a weekly hours editor and holidays.
Saving anything that moves deadlines says how many active tickets were recomputed."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from crm.permissions import Capability, requires
from crm.views import _apply_errors
from support.forms_settings import (
    WEEKDAYS,
    CalendarForm,
    HolidayForm,
    PolicyForm,
    PolicyMoveForm,
    format_duration,
)
from support.models import Channel, Priority, TicketType
from support.selectors import settings as selectors
from support.services import settings as services

MANAGE = Capability.MANAGE_SUPPORT_SETTINGS
DASH = "\u2013"  # an en dash, for ranges of days and times


def _recomputed(count: int) -> str:
    if not count:
        return _("No active ticket's deadlines changed.")
    return ngettext(
        "The deadlines of %(count)d active ticket were recomputed.",
        "The deadlines of %(count)d active tickets were recomputed.",
        count,
    ) % {"count": count}


def _labels(values, choices) -> str:
    names = dict(choices)
    return ", ".join(str(names.get(value, value)) for value in values)


def policy_conditions(policy) -> list[str]:
    """What a policy matches, in words ("VIP customers", "Type: Billing issue", ...); empty: every ticket."""
    conditions = []
    if policy.match_vip:
        conditions.append(_("VIP customers"))
    if policy.match_types:
        conditions.append(_("Type: %(types)s") % {"types": _labels(policy.match_types, TicketType.choices)})
    if policy.match_priorities:
        conditions.append(
            _("Asked for: %(priorities)s")
            % {"priorities": _labels(policy.match_priorities, Priority.choices)}
        )
    if policy.match_channels:
        conditions.append(
            _("Channel: %(channels)s") % {"channels": _labels(policy.match_channels, Channel.choices)}
        )
    return conditions


def week_summary(hours: dict) -> list[str]:
    """The weekly hours in short: consecutive days with the same intervals grouped ("Mon-Fri 09:00-17:00",
    with en dashes)."""
    short = {1: _("Mon"), 2: _("Tue"), 3: _("Wed"), 4: _("Thu"), 5: _("Fri"), 6: _("Sat"), 7: _("Sun")}
    groups: list[tuple[int, int, list]] = []
    for day, _label in WEEKDAYS:
        intervals = hours.get(str(day), [])
        if groups and groups[-1][2] == intervals and groups[-1][1] == day - 1:
            groups[-1] = (groups[-1][0], day, intervals)
        else:
            groups.append((day, day, intervals))
    lines = []
    for first, last, intervals in groups:
        if not intervals:
            continue
        days = short[first] if first == last else f"{short[first]}{DASH}{short[last]}"
        lines.append(f"{days} " + ", ".join(f"{start}{DASH}{end}" for start, end in intervals))
    return lines


# --- policies -------------------------------------------------------------------------------------------------


@requires(MANAGE)
def policy_list(request):
    policies = selectors.policies_in_order(actor=request.user)
    rows = [
        {
            "policy": policy,
            "conditions": policy_conditions(policy),
            "first_response": format_duration(policy.first_response_minutes),
            "resolution": format_duration(policy.resolution_minutes),
            "first": index == 0,
            "last": index == len(policies) - 1,
        }
        for index, policy in enumerate(policies)
    ]
    return render(
        request,
        "support/settings/policies.html",
        {"title": _("SLA policies"), "rows": rows, "tab": "policies"},
    )


def _policy_form_page(request, form, *, policy=None):
    title = _("New SLA policy") if policy is None else _("Edit %(name)s") % {"name": policy.name}
    context = {"form": form, "policy": policy, "title": title, "tab": "policies"}
    return render(request, "support/settings/policy_form.html", context)


@requires(MANAGE)
def policy_create(request):
    organization = request.user.organization
    form = PolicyForm(request.POST or None, organization=organization, initial={"active": True})
    if request.method == "POST" and form.is_valid():
        try:
            policy = services.policy_create(organization=organization, actor=request.user, **form.changes())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(
                request,
                _("%(name)s is added last: it applies to tickets no earlier policy matches.")
                % {"name": policy.name},
            )
            return redirect("support:sla_policy_list")
    return _policy_form_page(request, form)


@requires(MANAGE)
def policy_edit(request, pk):
    policy = selectors.policy_get(actor=request.user, pk=pk)
    form = PolicyForm(request.POST or None, instance=policy, organization=request.user.organization)
    if request.method == "POST" and form.is_valid():
        try:
            saved, recomputed = services.policy_update(policy=policy, actor=request.user, **form.changes())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(
                request, _("%(name)s is saved.") % {"name": saved.name} + " " + _recomputed(recomputed)
            )
            return redirect("support:sla_policy_list")
    return _policy_form_page(request, form, policy=policy)


@require_POST
@requires(MANAGE)
def policy_move(request, pk):
    policy = selectors.policy_get(actor=request.user, pk=pk)
    form = PolicyMoveForm(request.POST)
    if form.is_valid():
        services.policy_move(policy=policy, actor=request.user, direction=form.cleaned_data["direction"])
        messages.success(request, _("The new order is saved."))
    else:
        messages.error(request, _("Move up or down."))
    return redirect(reverse("support:sla_policy_list") + f"#policy-{policy.pk}")


@require_POST
@requires(MANAGE)
def policy_delete(request, pk):
    policy = selectors.policy_get(actor=request.user, pk=pk)
    moved = services.policy_delete(policy=policy, actor=request.user)
    text = _("%(name)s is deleted.") % {"name": policy.name}
    if moved:
        text += " " + ngettext(
            "%(count)d active ticket moved to the next matching policy.",
            "%(count)d active tickets moved to the next matching policy.",
            moved,
        ) % {"count": moved}
    messages.success(request, text)
    return redirect("support:sla_policy_list")


@require_POST
@requires(MANAGE)
def policy_defaults(request):
    policies = services.policies_install_defaults(organization=request.user.organization, actor=request.user)
    messages.success(request, _("%(count)d policies are in place.") % {"count": len(policies)})
    return redirect("support:sla_policy_list")


# --- calendars ------------------------------------------------------------------------------------------------


@requires(MANAGE)
def calendar_list(request):
    calendars = selectors.calendars_with_use(actor=request.user)
    rows = [{"calendar": calendar, "week": week_summary(calendar.hours)} for calendar in calendars]
    context = {"title": _("Business hours"), "rows": rows, "tab": "calendars"}
    return render(request, "support/settings/calendars.html", context)


def _calendar_page(request, *, form, calendar=None, holiday_form=None):
    context = {
        "form": form,
        "calendar": calendar,
        "holidays": selectors.holidays_of(calendar=calendar) if calendar else [],
        "holiday_form": holiday_form or HolidayForm(),
        "title": _("New calendar") if calendar is None else calendar.name,
        "tab": "calendars",
    }
    return render(request, "support/settings/calendar_form.html", context)


@requires(MANAGE)
def calendar_create(request):
    organization = request.user.organization
    initial = {"time_zone": organization.time_zone or "UTC"}
    initial.update({f"day_{day}": "09:00-17:00" for day in range(1, 6)})
    form = CalendarForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            calendar = services.calendar_create(
                organization=organization, actor=request.user, **form.changes()
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(
                request, _("%(name)s is created. Add its holidays below.") % {"name": calendar.name}
            )
            return redirect("support:calendar_edit", pk=calendar.pk)
    return _calendar_page(request, form=form)


@requires(MANAGE)
def calendar_edit(request, pk):
    calendar = selectors.calendar_get(actor=request.user, pk=pk)
    form = CalendarForm(request.POST or None, calendar=calendar)
    if request.method == "POST" and form.is_valid():
        try:
            saved, recomputed = services.calendar_update(
                calendar=calendar, actor=request.user, **form.changes()
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(
                request, _("%(name)s is saved.") % {"name": saved.name} + " " + _recomputed(recomputed)
            )
            return redirect("support:calendar_edit", pk=saved.pk)
    return _calendar_page(request, form=form, calendar=calendar)


@require_POST
@requires(MANAGE)
def calendar_delete(request, pk):
    calendar = selectors.calendar_get(actor=request.user, pk=pk)
    try:
        services.calendar_delete(calendar=calendar, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("support:calendar_edit", pk=calendar.pk)
    messages.success(request, _("%(name)s is deleted.") % {"name": calendar.name})
    return redirect("support:calendar_list")


@require_POST
@requires(MANAGE)
def holiday_add(request, pk):
    calendar = selectors.calendar_get(actor=request.user, pk=pk)
    holiday_form = HolidayForm(request.POST)
    if holiday_form.is_valid():
        try:
            holiday, recomputed = services.holiday_add(
                calendar=calendar, actor=request.user, **holiday_form.cleaned_data
            )
        except ValidationError as error:
            _apply_errors(holiday_form, error)
        else:
            day = holiday.date.isoformat()
            messages.success(
                request, _("%(day)s is a holiday.") % {"day": day} + " " + _recomputed(recomputed)
            )
            return redirect(reverse("support:calendar_edit", kwargs={"pk": calendar.pk}) + "#holidays")
    form = CalendarForm(calendar=calendar)
    return _calendar_page(request, form=form, calendar=calendar, holiday_form=holiday_form)


@require_POST
@requires(MANAGE)
def holiday_delete(request, pk):
    holiday = selectors.holiday_get(actor=request.user, pk=pk)
    recomputed = services.holiday_delete(holiday=holiday, actor=request.user)
    day = holiday.date.isoformat()
    messages.success(
        request, _("%(day)s is a working day again.") % {"day": day} + " " + _recomputed(recomputed)
    )
    return redirect(reverse("support:calendar_edit", kwargs={"pk": holiday.calendar_id}) + "#holidays")
