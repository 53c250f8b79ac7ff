"""Sales settings: pipelines and their stages (create, rename, default, delete; stages edited in place,
added, deleted, reordered by drag and drop or by the up/down buttons), and the organization's sales rules.

The stage actions answer htmx with the stages card redrawn; without htmx they redirect to the pipeline."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.permissions import Capability, requires
from crm.views import _apply_errors
from sales.forms import PipelineForm, SalesSettingsForm, StageForm, StageMoveForm
from sales.selectors import opportunities as selectors
from sales.services import pipelines as services


def _stage_prefix(stage) -> str:
    return f"stage-{stage.pk}"


def _stages_context(pipeline, *, bound: dict | None = None, new_form=None, focus: str = "") -> dict:
    """The stages card: one row per stage with its (possibly bound, with errors) form and its deal count."""
    bound = bound or {}
    counts = selectors.deal_counts_by_stage(pipeline=pipeline)
    stages = selectors.stages_of(pipeline=pipeline)
    rows = []
    for index, stage in enumerate(stages):
        form = bound.get(stage.pk) or StageForm(
            prefix=_stage_prefix(stage),
            initial={
                "name": stage.name,
                "probability": stage.probability,
                "forecast_category": stage.forecast_category,
                "outcome": stage.outcome,
            },
        )
        rows.append(
            {
                "stage": stage,
                "form": form,
                "deals": counts.get(stage.pk, 0),
                "first": index == 0,
                "last": index == len(stages) - 1,
                # After an action, the keyboard focus returns to the control that was used.
                "focus": focus.split(":")[0] if focus.endswith(f":{stage.pk}") else "",
            }
        )
    return {
        "pipeline": pipeline,
        "rows": rows,
        "new_form": new_form or StageForm(prefix="new", initial={"probability": 50, "outcome": "open"}),
        "focus": focus,
    }


def _stages_response(request, pipeline, *, status: int = 200, **kwargs):
    """htmx: the stages card redrawn (with this request's messages); otherwise back to the pipeline page."""
    if request.htmx:
        return render(
            request, "sales/pipelines/_stages.html", _stages_context(pipeline, **kwargs), status=status
        )
    if kwargs.get("bound") or kwargs.get("new_form"):
        return _pipeline_page(request, pipeline, **kwargs)
    return redirect("sales:pipeline_detail", pk=pipeline.pk)


def _pipeline_page(request, pipeline, *, rename_form=None, **kwargs):
    context = {
        "title": pipeline.name,
        "tab": "pipelines",
        "rename_form": rename_form or PipelineForm(initial={"name": pipeline.name}),
        "deal_count": sum(selectors.deal_counts_by_stage(pipeline=pipeline).values()),
        **_stages_context(pipeline, **kwargs),
    }
    return render(request, "sales/pipelines/detail.html", context)


@require_GET
@requires(Capability.MANAGE_PIPELINES)
def pipeline_list(request):
    user = request.user
    if not selectors.pipelines_of(actor=user):
        services.pipeline_ensure_default(organization=user.organization, actor=user)
    return _pipeline_list_page(request, PipelineForm())


def _pipeline_list_page(request, form):
    user = request.user
    counts = selectors.deal_counts_by_pipeline(actor=user)
    pipelines = [
        {"pipeline": p, "stages": stages, "deals": counts.get(p.pk, 0)}
        for p, stages in selectors.stages_by_pipeline(actor=user)
    ]
    context = {"title": _("Pipelines"), "tab": "pipelines", "pipelines": pipelines, "form": form}
    return render(request, "sales/pipelines/list.html", context)


@require_POST
@requires(Capability.MANAGE_PIPELINES)
def pipeline_create(request):
    form = PipelineForm(request.POST)
    if form.is_valid():
        try:
            pipeline = services.pipeline_create(
                organization=request.user.organization, actor=request.user, name=form.cleaned_data["name"]
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(
                request,
                _("%(name)s is created with the standard stages: rename and reorder them as you need.")
                % {"name": pipeline.name},
            )
            return redirect("sales:pipeline_detail", pk=pipeline.pk)
    return _pipeline_list_page(request, form)


@require_GET
@requires(Capability.MANAGE_PIPELINES)
def pipeline_detail(request, pk):
    return _pipeline_page(request, selectors.pipeline_get(actor=request.user, pk=pk))


@require_POST
@requires(Capability.MANAGE_PIPELINES)
def pipeline_rename(request, pk):
    pipeline = selectors.pipeline_get(actor=request.user, pk=pk)
    form = PipelineForm(request.POST)
    if form.is_valid():
        try:
            services.pipeline_rename(pipeline=pipeline, actor=request.user, name=form.cleaned_data["name"])
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("The pipeline is renamed."))
            return redirect("sales:pipeline_detail", pk=pipeline.pk)
    pipeline.refresh_from_db()
    return _pipeline_page(request, pipeline, rename_form=form)


@require_POST
@requires(Capability.MANAGE_PIPELINES)
def pipeline_set_default(request, pk):
    pipeline = selectors.pipeline_get(actor=request.user, pk=pk)
    services.pipeline_set_default(pipeline=pipeline, actor=request.user)
    messages.success(request, _("New deals now open in %(name)s.") % {"name": pipeline.name})
    return redirect("sales:pipeline_detail", pk=pipeline.pk)


@require_POST
@requires(Capability.MANAGE_PIPELINES)
def pipeline_delete(request, pk):
    pipeline = selectors.pipeline_get(actor=request.user, pk=pk)
    try:
        services.pipeline_delete(pipeline=pipeline, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("sales:pipeline_detail", pk=pipeline.pk)
    messages.success(request, _("%(name)s is deleted.") % {"name": pipeline.name})
    return redirect("sales:pipeline_list")


# --- Stages --------------------------------------------------------------------------------------------------


@require_POST
@requires(Capability.MANAGE_PIPELINES)
def stage_create(request, pk):
    pipeline = selectors.pipeline_get(actor=request.user, pk=pk)
    form = StageForm(request.POST, prefix="new")
    if form.is_valid():
        try:
            stage = services.stage_create(pipeline=pipeline, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(name)s is added.") % {"name": stage.name})
            return _stages_response(request, pipeline, focus=f"name:{stage.pk}")
    return _stages_response(request, pipeline, new_form=form)


@require_POST
@requires(Capability.MANAGE_PIPELINES)
def stage_update(request, pk):
    stage = selectors.stage_get(actor=request.user, pk=pk)
    form = StageForm(request.POST, prefix=_stage_prefix(stage))
    if form.is_valid():
        try:
            stage = services.stage_update(stage=stage, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(name)s is saved.") % {"name": stage.name})
            return _stages_response(request, stage.pipeline, focus=f"name:{stage.pk}")
    return _stages_response(request, stage.pipeline, bound={stage.pk: form})


@require_POST
@requires(Capability.MANAGE_PIPELINES)
def stage_move(request, pk):
    stage = selectors.stage_get(actor=request.user, pk=pk)
    form = StageMoveForm(request.POST)
    if form.is_valid():
        direction = form.cleaned_data["direction"]
        services.stage_move(stage=stage, actor=request.user, direction=direction)
        return _stages_response(request, stage.pipeline, focus=f"{direction}:{stage.pk}")
    messages.error(request, _("Move up or down."))
    return _stages_response(request, stage.pipeline)


@require_POST
@requires(Capability.MANAGE_PIPELINES)
def stage_delete(request, pk):
    stage = selectors.stage_get(actor=request.user, pk=pk)
    try:
        services.stage_delete(stage=stage, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("%(name)s is deleted.") % {"name": stage.name})
    return _stages_response(request, stage.pipeline)


@require_POST
@requires(Capability.MANAGE_PIPELINES)
def stage_reorder(request, pk):
    """The drag and drop of the stages: the ids in their new order."""
    pipeline = selectors.pipeline_get(actor=request.user, pk=pk)
    try:
        services.stage_reorder(pipeline=pipeline, actor=request.user, stage_ids=request.POST.getlist("order"))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("The new order is saved."))
    return _stages_response(request, pipeline)


# --- Sales rules ---------------------------------------------------------------------------------------------


@requires(Capability.MANAGE_PIPELINES)
def sales_rules(request):
    user = request.user
    current = services.sales_settings_for(user.organization_id)
    form = SalesSettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        try:
            services.sales_settings_update(
                organization=user.organization,
                actor=user,
                **{name: form.cleaned_data[name] for name in SalesSettingsForm.Meta.fields},
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("The sales rules are saved."))
            return redirect("sales:sales_rules")
    context = {"title": _("Sales rules"), "tab": "rules", "form": form}
    return render(request, "sales/pipelines/rules.html", context)
