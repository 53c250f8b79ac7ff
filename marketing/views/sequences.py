"""Sequence pages: the list, the settings form, the builder (steps as cards: add, edit, delete, move up and
down; htmx redraws the steps card, without htmx each action redirects back), enrolling customers by hand,
the enrollment list with counts per status and the per-step funnel, and an enrollment's path."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from crm.permissions import Capability, has_capability, requires
from crm.views import _apply_errors
from customers.models import LifecycleStage
from customers.selectors import valid_ids
from marketing.forms_sequences import (
    EnrollForm,
    EnrollmentFilterForm,
    SequenceForm,
    StatusForm,
    StepForm,
    StepMoveForm,
)
from marketing.models import Enrollment, Sequence, Step, StepRun
from marketing.selectors import sequences as selectors
from marketing.sequences import describe_condition
from marketing.services import sequences as services

SEQUENCE_FORM_FIELDS = (
    "name",
    "description",
    "campaign",
    "enroll_segment",
    "enroll_min_score",
    "exit_on_unsubscribe",
    "exit_on_conversion",
    "exit_on_reply",
)
KIND_ICONS = {
    Step.Kind.SEND_EMAIL: "envelope",
    Step.Kind.WAIT: "hourglass-split",
    Step.Kind.BRANCH: "signpost-split",
    Step.Kind.UPDATE_FIELD: "pencil-square",
    Step.Kind.CREATE_TASK: "check2-square",
}


# --- List and settings ---------------------------------------------------------------------------------------


@require_GET
@requires(Capability.VIEW_CAMPAIGNS)
def sequence_list(request):
    status = request.GET.get("status", "")
    context = {
        "title": _("Sequences"),
        "sequences": selectors.sequence_list(actor=request.user, status=status),
        "status": status if status in Sequence.Status.values else "",
        "statuses": Sequence.Status.choices,
        "can_manage": has_capability(request.user, Capability.MANAGE_CAMPAIGNS),
    }
    return render(request, "marketing/sequences/list.html", context)


def _sequence_form_page(request, form, *, sequence: Sequence | None = None):
    context = {
        "title": _("New sequence") if sequence is None else _("Edit %(name)s") % {"name": sequence.name},
        "form": form,
        "sequence": sequence,
        "creating": sequence is None,
    }
    return render(request, "marketing/sequences/form.html", context)


@requires(Capability.MANAGE_CAMPAIGNS)
def sequence_create(request):
    form = SequenceForm(
        request.POST or None,
        actor=request.user,
        initial={"exit_on_unsubscribe": True, "exit_on_conversion": True, "exit_on_reply": True},
    )
    if request.method == "POST" and form.is_valid():
        try:
            sequence = services.sequence_create(
                organization=request.user.organization,
                actor=request.user,
                **{name: form.cleaned_data[name] for name in SEQUENCE_FORM_FIELDS},
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(
                request, _("%(name)s is created: add its steps, then activate it.") % {"name": sequence.name}
            )
            return redirect("marketing:sequence_detail", pk=sequence.pk)
    return _sequence_form_page(request, form)


@requires(Capability.MANAGE_CAMPAIGNS)
def sequence_edit(request, pk):
    sequence = selectors.sequence_get(actor=request.user, pk=pk)
    initial = {name: getattr(sequence, name) for name in SEQUENCE_FORM_FIELDS}
    form = SequenceForm(request.POST or None, actor=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.sequence_update(
                sequence=sequence,
                actor=request.user,
                **{name: form.cleaned_data[name] for name in SEQUENCE_FORM_FIELDS},
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("The sequence is saved."))
            return redirect("marketing:sequence_detail", pk=sequence.pk)
    return _sequence_form_page(request, form, sequence=sequence)


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def sequence_status(request, pk):
    sequence = selectors.sequence_get(actor=request.user, pk=pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Activate, pause or archive the sequence."))
        return redirect("marketing:sequence_detail", pk=sequence.pk)
    try:
        sequence = services.sequence_set_status(
            sequence=sequence, actor=request.user, status=form.cleaned_data["status"]
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("%(name)s is now %(status)s.")
            % {"name": sequence.name, "status": sequence.get_status_display().lower()},
        )
    return redirect("marketing:sequence_detail", pk=sequence.pk)


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def sequence_delete(request, pk):
    sequence = selectors.sequence_get(actor=request.user, pk=pk)
    try:
        services.sequence_delete(sequence=sequence, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("marketing:sequence_detail", pk=sequence.pk)
    messages.success(request, _("%(name)s is deleted.") % {"name": sequence.name})
    return redirect("marketing:sequence_list")


# --- The builder and the enrollments -------------------------------------------------------------------------


def step_summary(step: Step, users: dict) -> str:
    """What a step does, in words (the builder's cards and the path page)."""
    if step.kind == Step.Kind.SEND_EMAIL:
        return _("Send “%(template)s”") % {"template": step.template.name if step.template else "—"}
    if step.kind == Step.Kind.WAIT:
        days = step.wait_days or 0
        return ngettext("Wait %(days)d day", "Wait %(days)d days", days) % {"days": days}
    if step.kind == Step.Kind.BRANCH:
        target = (
            _("if not, go to step %(step)d") % {"step": step.else_position}
            if step.else_position
            else _("if not, end the sequence")
        )
        return f"{describe_condition(step.condition)}? {target}"
    if step.kind == Step.Kind.UPDATE_FIELD:
        field, value = step.update.get("field"), step.update.get("value")
        if field == "lifecycle_stage":
            return _("Set the lifecycle stage to %(stage)s") % {
                "stage": dict(LifecycleStage.choices).get(value, value)
            }
        if field == "tags_add":
            return _("Add the tag “%(tag)s”") % {"tag": value}
        if field == "vip_status":
            return _("Mark as VIP") if value else _("Remove the VIP flag")
        owner = users.get(str(value))
        return _("Make %(name)s the owner") % {
            "name": (owner.get_full_name() or owner.email) if owner else "—"
        }
    days = step.task_due_days or 0
    return ngettext(
        "Task “%(subject)s” for the owner, due in %(days)d day",
        "Task “%(subject)s” for the owner, due in %(days)d days",
        days,
    ) % {"subject": step.task_subject, "days": days}


def _steps_context(
    request, sequence: Sequence, *, editor: StepForm | None = None, editing=None, focus: str = ""
) -> dict:
    """The steps card: one card per step (summary, funnel numbers, actions) and the open editor, if any."""
    user = request.user
    steps = selectors.steps_of(sequence=sequence)
    owner_ids = [
        s.update.get("value")
        for s in steps
        if s.kind == Step.Kind.UPDATE_FIELD and s.update.get("field") == "owner"
    ]
    users = selectors.users_by_id(actor=user, ids=owner_ids)
    funnel = selectors.step_funnel(sequence=sequence, steps=steps)
    rows = []
    for index, entry in enumerate(funnel):
        step = entry["step"]
        rows.append(
            {
                **entry,
                "summary": step_summary(step, users),
                "icon": KIND_ICONS[step.kind],
                "first": index == 0,
                "last": index == len(steps) - 1,
                "editing": editing is not None and editing.pk == step.pk,
                "focus": focus.split(":")[0] if focus.endswith(f":{step.pk}") else "",
            }
        )
    return {
        "sequence": sequence,
        "rows": rows,
        "kinds": [(value, label, KIND_ICONS[value]) for value, label in Step.Kind.choices],
        "editor": editor,
        "editing": editing,
        "can_manage": has_capability(user, Capability.MANAGE_CAMPAIGNS)
        and sequence.status != Sequence.Status.ARCHIVED,
    }


def _steps_response(request, sequence: Sequence, **kwargs):
    """htmx: the steps card redrawn (with this request's messages); otherwise back to the sequence page."""
    if request.htmx:
        return render(request, "marketing/sequences/_steps.html", _steps_context(request, sequence, **kwargs))
    return redirect("marketing:sequence_detail", pk=sequence.pk)


@require_GET
@requires(Capability.VIEW_CAMPAIGNS)
def sequence_detail(request, pk):
    sequence = selectors.sequence_get(actor=request.user, pk=pk)
    filters = EnrollmentFilterForm(request.GET or None)
    status = filters.cleaned_data["status"] if filters.is_valid() else ""
    page = selectors.enrollment_page(sequence=sequence, status=status, cursor=request.GET.get("cursor"))
    counts = selectors.status_counts(sequence=sequence)
    exits = selectors.exit_counts(sequence=sequence)
    context = {
        "title": sequence.name,
        "filters": filters,
        "status": status,
        "page": page,
        "querystring": f"status={status}" if status else "",
        "counts": counts,
        "exits": [(label, exits[value]) for value, label in Enrollment.ExitReason.choices if value in exits],
        "status_choices": Enrollment.Status.choices,
        **_steps_context(request, sequence),
    }
    return render(request, "marketing/sequences/detail.html", context)


def _step_form(request, *, sequence: Sequence, kind: str, step: Step | None, data=None) -> StepForm:
    count = Step.objects.filter(organization_id=sequence.organization_id, sequence_id=sequence.pk).count()
    position = step.position if step else count + 1
    return StepForm(
        data,
        actor=request.user,
        kind=kind,
        position=position,
        step_count=count if step else count + 1,
        initial=StepForm.initial_for(step) if step else None,
    )


def _step_editor(request, sequence: Sequence, form: StepForm, *, step: Step | None):
    """The step form: inside the steps card for htmx, a page of its own otherwise."""
    if request.htmx:
        return render(
            request,
            "marketing/sequences/_steps.html",
            _steps_context(request, sequence, editor=form, editing=step),
        )
    context = {
        "title": _("Add a step") if step is None else _("Edit step %(n)d") % {"n": step.position},
        "sequence": sequence,
        "editor": form,
        "editing": step,
    }
    return render(request, "marketing/sequences/step_form.html", context)


@requires(Capability.MANAGE_CAMPAIGNS)
def step_create(request, pk):
    sequence = selectors.sequence_get(actor=request.user, pk=pk)
    kind = request.POST.get("kind") or request.GET.get("kind")
    if kind not in Step.Kind.values:
        messages.error(request, _("Pick the kind of step to add."))
        return redirect("marketing:sequence_detail", pk=sequence.pk)
    form = _step_form(
        request,
        sequence=sequence,
        kind=kind,
        step=None,
        data=request.POST if request.method == "POST" else None,
    )
    if request.method == "POST" and form.is_valid():
        try:
            step = services.step_create(
                sequence=sequence, actor=request.user, kind=kind, **form.step_fields()
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Step %(n)d is added.") % {"n": step.position})
            return _steps_response(request, sequence, focus=f"edit:{step.pk}")
    return _step_editor(request, sequence, form, step=None)


@requires(Capability.MANAGE_CAMPAIGNS)
def step_edit(request, pk):
    step = selectors.step_get(actor=request.user, pk=pk)
    sequence = step.sequence
    form = _step_form(
        request,
        sequence=sequence,
        kind=step.kind,
        step=step,
        data=request.POST if request.method == "POST" else None,
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.step_update(step=step, actor=request.user, **form.step_fields())
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Step %(n)d is saved.") % {"n": step.position})
            return _steps_response(request, sequence, focus=f"edit:{step.pk}")
    return _step_editor(request, sequence, form, step=step)


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def step_move(request, pk):
    step = selectors.step_get(actor=request.user, pk=pk)
    form = StepMoveForm(request.POST)
    focus = ""
    if not form.is_valid():
        messages.error(request, _("Move up or down."))
    else:
        try:
            services.step_move(step=step, actor=request.user, direction=form.cleaned_data["direction"])
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        focus = f"{form.cleaned_data['direction']}:{step.pk}"
    return _steps_response(request, step.sequence, focus=focus)


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def step_delete(request, pk):
    step = selectors.step_get(actor=request.user, pk=pk)
    try:
        services.step_delete(step=step, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Step %(n)d is deleted.") % {"n": step.position})
    return _steps_response(request, step.sequence)


# --- Enrolling by hand, and an enrollment's path -------------------------------------------------------------


@requires(Capability.MANAGE_CAMPAIGNS)
def sequence_enroll(request, pk):
    """Pick customers (search, tick, enroll). GET with `q` searches; POST enrolls the ticked ones."""
    sequence = selectors.sequence_get(actor=request.user, pk=pk)
    query = request.GET.get("q", "")
    options = selectors.customer_options(actor=request.user, query=query)
    form = EnrollForm(request.POST or None, options=options)
    if request.method == "POST" and form.is_valid():
        try:
            created, skipped = services.enrollments_create(
                sequence=sequence, actor=request.user, customer_ids=valid_ids(form.cleaned_data["customers"])
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            message = _("%(created)d enrolled.") % {"created": created}
            if skipped:
                message += " " + _(
                    "%(skipped)d skipped (already enrolled, or their processing is restricted)."
                ) % {"skipped": skipped}
            messages.success(request, message)
            return redirect("marketing:sequence_detail", pk=sequence.pk)
    context = {
        "title": _("Enroll customers in %(name)s") % {"name": sequence.name},
        "sequence": sequence,
        "form": form,
        "options": options,
        "query": query,
    }
    template = (
        "marketing/sequences/_enroll_options.html"
        if request.htmx and request.method == "GET"
        else "marketing/sequences/enroll.html"
    )
    return render(request, template, context)


@require_GET
@requires(Capability.VIEW_CAMPAIGNS)
def enrollment_detail(request, pk):
    enrollment = selectors.enrollment_get(actor=request.user, pk=pk)
    sequence = enrollment.sequence
    steps = selectors.steps_of(sequence=sequence)
    owner_ids = [
        s.update.get("value")
        for s in steps
        if s.kind == Step.Kind.UPDATE_FIELD and s.update.get("field") == "owner"
    ]
    users = selectors.users_by_id(actor=request.user, ids=owner_ids)
    path = selectors.enrollment_path(enrollment=enrollment)
    for entry in path:
        entry["summary"] = step_summary(entry["step"], users)
        entry["icon"] = KIND_ICONS[entry["step"].kind]
        if entry["run"].outcome == StepRun.Outcome.WAITED:
            entry["until"] = entry["run"].ran_at + datetime.timedelta(days=entry["step"].wait_days or 0)
    upcoming = next((s for s in steps if s.position == enrollment.next_position), None)
    context = {
        "title": _("%(customer)s in %(sequence)s")
        % {"customer": enrollment.customer, "sequence": sequence.name},
        "enrollment": enrollment,
        "sequence": sequence,
        "path": path,
        "upcoming": upcoming,
        "upcoming_summary": step_summary(upcoming, users) if upcoming else "",
        "step_count": len(steps),
        "can_manage": has_capability(request.user, Capability.MANAGE_CAMPAIGNS),
    }
    return render(request, "marketing/sequences/enrollment.html", context)


@require_POST
@requires(Capability.MANAGE_CAMPAIGNS)
def enrollment_remove(request, pk):
    enrollment = selectors.enrollment_get(actor=request.user, pk=pk)
    try:
        services.enrollment_remove(enrollment=enrollment, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("%(customer)s is taken out of the sequence.") % {"customer": enrollment.customer}
        )
    return redirect("marketing:enrollment_detail", pk=enrollment.pk)
