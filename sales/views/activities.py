"""Activities: the deal page's activity section (an htmx partial), "My day", the create and edit pages, and
the one-click actions (complete with an outcome, follow up, snooze, delete).

The actions answer htmx with the fragment they change: on My day the activity's row (and the header
counts, out of band), on the deal page the whole activity section. Without htmx they redirect back.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.permissions import Capability, has_capability, requires
from crm.views import _apply_errors, _back
from sales.forms_activities import ActivityEditForm, ActivityLogForm, CompleteForm, FollowUpForm, SnoozeForm
from sales.selectors import activities as selectors
from sales.services import activities as services

DEAL = "deal"
DAY = "day"


def _zone():
    return timezone.get_current_timezone()


def _now():
    """The current time (one place, so tests can set the clock of the pages)."""
    return timezone.now()


# --- the deal page's section ------------------------------------------------------------------------------------


def _deal_context(request, opportunity, *, form=None, offer=None, logged=False) -> dict:
    timeline = selectors.deal_timeline(opportunity=opportunity, all_open=request.GET.get("open") == "all")
    can_edit = has_capability(request.user, Capability.EDIT_OPPORTUNITIES)
    owners = selectors.owner_choices(actor=request.user) if can_edit else []
    return {
        "opportunity": opportunity,
        "timeline": timeline,
        "can_edit": can_edit,
        "form": form or (ActivityLogForm(owners=owners, actor=request.user) if can_edit else None),
        "offer": offer,
        "follow_up_form": FollowUpForm(),
        "snooze": services.snooze_choices(now=_now(), zone=_zone()),
        "logged": logged,
        "where": DEAL,
        "now": _now(),
        "next_url": reverse("sales:opportunity_detail", kwargs={"pk": opportunity.pk}),
    }


@require_GET
@requires(Capability.VIEW_OPPORTUNITIES)
def opportunity_activities(request, pk):
    """The deal page's activity section; `?part=done&cursor=...` is the next page of done activities."""
    opportunity = selectors.opportunity_for_activities(actor=request.user, pk=pk)
    if request.GET.get("part") == "done":
        page = selectors.deal_timeline(opportunity=opportunity, cursor=request.GET.get("cursor")).done
        context = {"opportunity": opportunity, "done": page, "where": DEAL, "now": _now()}
        return render(request, "sales/activities/_done_page.html", context)
    return render(request, "sales/activities/_deal_section.html", _deal_context(request, opportunity))


@require_POST
@requires(Capability.EDIT_OPPORTUNITIES)
def opportunity_activity_create(request, pk):
    """Log or schedule an activity on a deal in one step; htmx gets the fresh section back."""
    opportunity = selectors.opportunity_for_activities(actor=request.user, pk=pk)
    owners = selectors.owner_choices(actor=request.user)
    form = ActivityLogForm(request.POST, owners=owners, actor=request.user)
    back = reverse("sales:opportunity_detail", kwargs={"pk": opportunity.pk})
    if form.is_valid():
        try:
            activity = services.activity_create(
                organization=request.user.organization,
                actor=request.user,
                opportunity=opportunity,
                **form.service_kwargs(),
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            if not request.htmx:
                messages.success(request, _("Saved."))
                return redirect(back)
            offer = activity if services.offers_follow_up(activity) else None
            return _deal_response(request, opportunity, offer=offer, logged=True)
    if not request.htmx:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(back)
    # 200, not 422: htmx swaps only successful responses, and the form with its errors must be shown.
    return render(
        request, "sales/activities/_deal_section.html", _deal_context(request, opportunity, form=form)
    )


def _deal_response(request, opportunity, **extra):
    response = render(
        request, "sales/activities/_deal_section.html", _deal_context(request, opportunity, **extra)
    )
    response["HX-Trigger"] = "opportunity-changed"
    return response


# --- My day ---------------------------------------------------------------------------------------------------------


@require_GET
@requires(Capability.EDIT_OPPORTUNITIES)
def my_day(request):
    now = _now()
    day = selectors.my_day(user=request.user, zone=_zone(), now=now)
    context = {
        "title": _("My day"),
        "day": day,
        "snooze": services.snooze_choices(now=now, zone=_zone()),
        "follow_up_form": FollowUpForm(),
        "where": DAY,
    }
    return render(request, "sales/activities/my_day.html", context)


def _day_row_response(request, activity, *, offer=None, follow_up=None):
    context = {
        "activity": activity,
        "where": DAY,
        "offer": offer,
        "follow_up": follow_up,
        "follow_up_form": FollowUpForm(),
        "snooze": services.snooze_choices(now=_now(), zone=_zone()),
        "counts": selectors.my_day_counts(user=request.user, zone=_zone(), now=_now()),
        "oob_counts": True,
    }
    return render(request, "sales/activities/_day_row.html", context)


def _after_action(request, activity, *, offer=None, follow_up=None, message=""):
    """The response of an action: the changed fragment for htmx, else back where the user came from."""
    where = request.POST.get("where")
    if not request.htmx:
        if message:
            messages.success(request, message)
        return redirect(_back(request, reverse("sales:my_day")))
    if where == DEAL and activity.opportunity_id:
        opportunity = selectors.opportunity_for_activities(actor=request.user, pk=activity.opportunity_id)
        return _deal_response(request, opportunity, offer=offer)
    return _day_row_response(request, activity, offer=offer, follow_up=follow_up)


def _refused(request, error: ValidationError):
    message = " ".join(error.messages)
    if not request.htmx:
        messages.error(request, message)
        return redirect(_back(request, reverse("sales:my_day")))
    response = render(request, "sales/activities/_error.html", {"message": message})
    # Shown in the page's alert area, leaving the activity as it was.
    response["HX-Retarget"] = "#activity-alerts"
    response["HX-Reswap"] = "innerHTML"
    return response


# --- actions --------------------------------------------------------------------------------------------------------


@require_POST
@requires(Capability.EDIT_OPPORTUNITIES)
def activity_complete(request, pk):
    activity = selectors.activity_get(actor=request.user, pk=pk)
    form = CompleteForm(request.POST)
    outcome = form.cleaned_data["outcome"] if form.is_valid() else ""
    done = services.activity_complete(activity=activity, actor=request.user, outcome=outcome)
    offer = done if services.offers_follow_up(done) and not done.follow_ups.exists() else None
    return _after_action(request, done, offer=offer, message=_("Done."))


@require_POST
@requires(Capability.EDIT_OPPORTUNITIES)
def activity_follow_up(request, pk):
    activity = selectors.activity_get(actor=request.user, pk=pk)
    form = FollowUpForm(request.POST)
    if not form.is_valid():
        return _refused(request, ValidationError(list(form.errors.get("days", [_("Check the days.")]))))
    try:
        task = services.activity_follow_up_create(
            activity=activity, actor=request.user, days=form.cleaned_data["days"]
        )
    except ValidationError as error:
        return _refused(request, error)
    return _after_action(request, activity, follow_up=task, message=_("Follow-up task created."))


@require_POST
@requires(Capability.EDIT_OPPORTUNITIES)
def activity_snooze(request, pk):
    activity = selectors.activity_get(actor=request.user, pk=pk)
    choices = services.snooze_choices(now=_now(), zone=_zone())
    form = SnoozeForm(request.POST, choices=choices)
    if not form.is_valid():
        return _refused(request, ValidationError(_("Choose when to be reminded again.")))
    try:
        snoozed = services.activity_snooze(
            activity=activity, actor=request.user, until=choices[form.cleaned_data["until"]][1]
        )
    except ValidationError as error:
        return _refused(request, error)
    return _after_action(request, snoozed, message=_("Snoozed."))


@require_POST
@requires(Capability.EDIT_OPPORTUNITIES)
def activity_delete(request, pk):
    activity = selectors.activity_get(actor=request.user, pk=pk)
    services.activity_delete(activity=activity, actor=request.user)
    if request.htmx and request.POST.get("where") == DEAL and activity.opportunity_id:
        opportunity = selectors.opportunity_for_activities(actor=request.user, pk=activity.opportunity_id)
        return _deal_response(request, opportunity)
    if request.htmx:
        context = {
            "counts": selectors.my_day_counts(user=request.user, zone=_zone(), now=_now()),
            "oob_counts": True,
        }
        return render(request, "sales/activities/_day_counts.html", context)
    messages.success(request, _("Deleted."))
    if activity.opportunity_id:
        return redirect(
            _back(request, reverse("sales:opportunity_detail", kwargs={"pk": activity.opportunity_id}))
        )
    return redirect(_back(request, reverse("sales:my_day")))


# --- pages ------------------------------------------------------------------------------------------------------------


@requires(Capability.EDIT_OPPORTUNITIES)
def activity_create(request):
    """A full-page form for an activity on a customer (`?customer=`) or a deal (`?opportunity=`)."""
    opportunity = customer = None
    params = request.POST if request.method == "POST" else request.GET
    try:
        if params.get("opportunity"):
            opportunity = selectors.opportunity_for_activities(actor=request.user, pk=params["opportunity"])
        elif params.get("customer"):
            from customers.selectors import customer_get

            customer = customer_get(actor=request.user, pk=params["customer"])
    except ValidationError as error:  # not a UUID
        raise Http404 from error
    if opportunity is None and customer is None:
        messages.info(request, _("Open a deal or a customer to plan an activity with them."))
        return redirect("sales:my_day")
    owners = selectors.owner_choices(actor=request.user)
    initial = {"action": "task"}
    form = ActivityLogForm(request.POST or None, owners=owners, actor=request.user, initial=initial)
    target = opportunity or customer
    if opportunity is not None:
        back = reverse("sales:opportunity_detail", kwargs={"pk": opportunity.pk})
    else:
        back = reverse("customers:detail", kwargs={"pk": customer.pk})
    if request.method == "POST" and form.is_valid():
        try:
            services.activity_create(
                organization=request.user.organization,
                actor=request.user,
                opportunity=opportunity,
                customer=customer,
                **form.service_kwargs(),
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(_back(request, back))
    context = {
        "title": _("New activity"),
        "form": form,
        "target": target,
        "opportunity": opportunity,
        "customer": customer,
        "back": _back(request, back),
    }
    return render(request, "sales/activities/form.html", context)


@requires(Capability.EDIT_OPPORTUNITIES)
def activity_edit(request, pk):
    activity = selectors.activity_get(actor=request.user, pk=pk)
    owners = selectors.owner_choices(actor=request.user)
    form = ActivityEditForm(request.POST or None, activity=activity, owners=owners)
    if activity.opportunity_id:
        fallback = reverse("sales:opportunity_detail", kwargs={"pk": activity.opportunity_id})
    else:
        fallback = reverse("sales:my_day")
    if request.method == "POST" and form.is_valid():
        try:
            services.activity_update(activity=activity, actor=request.user, **form.changes())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(_back(request, fallback))
    context = {
        "title": _("Edit %(subject)s") % {"subject": activity.subject},
        "form": form,
        "activity": activity,
        "back": _back(request, fallback),
        "can_delete": has_capability(request.user, Capability.VIEW_ALL_OPPORTUNITIES)
        or request.user.pk in (activity.owner_id, activity.created_by_id),
    }
    return render(request, "sales/activities/edit.html", context)
