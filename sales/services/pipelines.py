"""Pipelines, stages and the organization's sales rules."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from crm.models import Organization, User
from crm.permissions import Capability, has_capability
from sales.models import ForecastCategory, Opportunity, OpportunityChange, Pipeline, SalesSettings, Stage

# The default pipeline: (name, probability %, forecast category, outcome).
DEFAULT_STAGES: tuple[tuple[str, int, str, str], ...] = (
    (_("Prospecting"), 10, ForecastCategory.PIPELINE, Stage.Outcome.OPEN),
    (_("Qualification"), 25, ForecastCategory.PIPELINE, Stage.Outcome.OPEN),
    (_("Proposal"), 50, ForecastCategory.BEST_CASE, Stage.Outcome.OPEN),
    (_("Negotiation"), 75, ForecastCategory.COMMIT, Stage.Outcome.OPEN),
    (_("Closed won"), 100, ForecastCategory.CLOSED, Stage.Outcome.WON),
    (_("Closed lost"), 0, ForecastCategory.OMITTED, Stage.Outcome.LOST),
)


def sales_settings_for(organization_id) -> SalesSettings:
    """The organization's sales rules, created with the defaults on first use (race-safe)."""
    found = SalesSettings.objects.filter(organization_id=organization_id).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return SalesSettings.objects.create(organization_id=organization_id)
    except IntegrityError:  # created by a concurrent request between our read and insert
        return SalesSettings.objects.get(organization_id=organization_id)


@transaction.atomic
def pipeline_ensure_default(*, organization: Organization, actor: User | None = None) -> Pipeline:
    """The organization's default pipeline, created with the standard stages if it has none."""
    pipeline = Pipeline.objects.filter(organization=organization, is_default=True).first()
    if pipeline is not None:
        return pipeline
    pipeline = Pipeline.objects.create(organization=organization, name=_("Sales pipeline"), is_default=True)
    Stage.objects.bulk_create(
        Stage(
            organization=organization,
            pipeline=pipeline,
            name=name,
            position=position,
            probability=probability,
            forecast_category=category,
            outcome=outcome,
        )
        for position, (name, probability, category, outcome) in enumerate(DEFAULT_STAGES)
    )
    return pipeline


# --- Pipeline and stage settings (the settings pages; MANAGE_PIPELINES) -------------------------------------


def _require_manage(actor: User | None) -> None:
    if actor is not None and not has_capability(actor, Capability.MANAGE_PIPELINES):
        raise PermissionDenied


def _clean_name(name: str, field: str = "name") -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({field: _("Give it a name.")})
    if len(name) > 100:
        raise ValidationError({field: _("At most 100 characters.")})
    return name


def _check_pipeline_name(*, organization_id, name: str, exclude_id=None) -> None:
    taken = Pipeline.objects.filter(organization_id=organization_id, name__iexact=name)
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise ValidationError({"name": _("There is already a pipeline with this name.")})


def _check_stage_name(*, pipeline: Pipeline, name: str, exclude_id=None) -> None:
    taken = Stage.objects.filter(
        organization_id=pipeline.organization_id, pipeline_id=pipeline.pk, name__iexact=name
    )
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise ValidationError({"name": _("This pipeline already has a stage with this name.")})


def _deal_count(**filters) -> int:
    return Opportunity.objects.filter(**filters).count()


@transaction.atomic
def pipeline_create(*, organization: Organization, actor: User | None, name: str) -> Pipeline:
    """A new pipeline with the standard stages (then renamed, re-weighted and reordered as needed). It is
    the default if the organization had none. Every pipeline starts with an open, a won and a lost stage,
    which the stage rules need (a deal can always be closed either way)."""
    _require_manage(actor)
    name = _clean_name(name)
    _check_pipeline_name(organization_id=organization.pk, name=name)
    has_default = Pipeline.objects.filter(organization=organization, is_default=True).exists()
    pipeline = Pipeline.objects.create(organization=organization, name=name, is_default=not has_default)
    Stage.objects.bulk_create(
        Stage(
            organization=organization,
            pipeline=pipeline,
            name=stage_name,
            position=position,
            probability=probability,
            forecast_category=category,
            outcome=outcome,
        )
        for position, (stage_name, probability, category, outcome) in enumerate(DEFAULT_STAGES)
    )
    return pipeline


@transaction.atomic
def pipeline_rename(*, pipeline: Pipeline, actor: User | None, name: str) -> Pipeline:
    _require_manage(actor)
    name = _clean_name(name)
    _check_pipeline_name(organization_id=pipeline.organization_id, name=name, exclude_id=pipeline.pk)
    pipeline.name = name
    pipeline.save(update_fields=["name"])
    return pipeline


@transaction.atomic
def pipeline_set_default(*, pipeline: Pipeline, actor: User | None) -> Pipeline:
    """Make `pipeline` the one new deals open in. The old default is cleared first, in the same transaction
    (a partial unique index allows one default per organization)."""
    _require_manage(actor)
    Pipeline.objects.filter(organization_id=pipeline.organization_id, is_default=True).exclude(
        pk=pipeline.pk
    ).update(is_default=False)
    if not pipeline.is_default:
        pipeline.is_default = True
        pipeline.save(update_fields=["is_default"])
    return pipeline


@transaction.atomic
def pipeline_delete(*, pipeline: Pipeline, actor: User | None) -> None:
    """Delete a pipeline with its stages. Refused for the default pipeline and for one holding deals."""
    _require_manage(actor)
    if pipeline.is_default:
        raise ValidationError(
            _("The default pipeline cannot be deleted: make another one the default first.")
        )
    deals = _deal_count(organization_id=pipeline.organization_id, pipeline_id=pipeline.pk)
    if deals:
        raise ValidationError(
            ngettext(
                "%(name)s still holds %(count)d deal: move or delete it first.",
                "%(name)s still holds %(count)d deals: move or delete them first.",
                deals,
            )
            % {"name": pipeline.name, "count": deals}
        )
    Stage.objects.filter(organization_id=pipeline.organization_id, pipeline_id=pipeline.pk).delete()
    pipeline.delete()


def _check_outcomes_remain(*, pipeline: Pipeline, without: Stage, new_outcome: str | None = None) -> None:
    """A pipeline keeps at least one open, one won and one lost stage: deals must be able to move on, and
    to close either way (quote acceptance wins a deal; 'mark lost' loses it)."""
    outcomes = set(
        Stage.objects.filter(organization_id=pipeline.organization_id, pipeline_id=pipeline.pk)
        .exclude(pk=without.pk)
        .values_list("outcome", flat=True)
    )
    if new_outcome:
        outcomes.add(new_outcome)
    missing = [label for value, label in Stage.Outcome.choices if value not in outcomes]
    if missing:
        raise ValidationError(
            _(
                "A pipeline needs at least one stage of each outcome; this would leave none that is: %(outcome)s."
            )
            % {"outcome": ", ".join(str(m) for m in missing)}
        )


def _stage_fields(fields: dict) -> dict:
    allowed = {"name", "probability", "forecast_category", "outcome"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    cleaned = dict(fields)
    if "name" in cleaned:
        cleaned["name"] = _clean_name(cleaned["name"])
    if "probability" in cleaned:
        probability = cleaned["probability"]
        if probability is None or not 0 <= int(probability) <= 100:
            raise ValidationError({"probability": _("A percentage from 0 to 100.")})
        cleaned["probability"] = int(probability)
    if "forecast_category" in cleaned and cleaned["forecast_category"] not in ForecastCategory.values:
        raise ValidationError({"forecast_category": _("Pick a forecast category.")})
    if "outcome" in cleaned and cleaned["outcome"] not in Stage.Outcome.values:
        raise ValidationError({"outcome": _("Pick an outcome.")})
    return cleaned


@transaction.atomic
def stage_create(
    *,
    pipeline: Pipeline,
    actor: User | None,
    name: str,
    probability: int = 10,
    forecast_category: str = ForecastCategory.PIPELINE,
    outcome: str = Stage.Outcome.OPEN,
) -> Stage:
    """Add a stage. An open stage goes after the pipeline's last open stage (before the closing ones), a
    closing stage at the end; reorder afterwards as needed."""
    _require_manage(actor)
    fields = _stage_fields(
        {"name": name, "probability": probability, "forecast_category": forecast_category, "outcome": outcome}
    )
    _check_stage_name(pipeline=pipeline, name=fields["name"])
    stages = list(
        Stage.objects.select_for_update()
        .filter(organization_id=pipeline.organization_id, pipeline_id=pipeline.pk)
        .order_by("position", "id")
    )
    if fields["outcome"] == Stage.Outcome.OPEN:
        open_positions = [i for i, s in enumerate(stages) if s.outcome == Stage.Outcome.OPEN]
        insert_at = open_positions[-1] + 1 if open_positions else 0
    else:
        insert_at = len(stages)
    stage = Stage(organization_id=pipeline.organization_id, pipeline=pipeline, **fields)
    stages.insert(insert_at, stage)
    stage.position = insert_at
    stage.save(force_insert=True)
    _renumber(stages)
    return stage


def _renumber(stages: list[Stage]) -> None:
    changed = []
    for position, stage in enumerate(stages):
        if stage.position != position or stage.pk is None:
            stage.position = position
            changed.append(stage)
    if changed:
        Stage.objects.bulk_update(changed, ["position"])


@transaction.atomic
def stage_update(*, stage: Stage, actor: User | None, **fields) -> Stage:
    """Rename a stage or change its default probability, forecast category or outcome.

    Open deals in the stage that follow its defaults (not overridden) take the new probability and category
    at once, so the board and the forecast never read a stale default; each probability change is kept in
    the deals' history. The outcome of a stage holding deals cannot change (their status would contradict
    it): move the deals out first."""
    _require_manage(actor)
    fields = _stage_fields(fields)
    stored = Stage.objects.select_for_update().get(pk=stage.pk, organization_id=stage.organization_id)
    pipeline = Pipeline.objects.get(pk=stored.pipeline_id, organization_id=stored.organization_id)
    if "name" in fields and fields["name"] != stored.name:
        _check_stage_name(pipeline=pipeline, name=fields["name"], exclude_id=stored.pk)
    if "outcome" in fields and fields["outcome"] != stored.outcome:
        deals = _deal_count(organization_id=stored.organization_id, stage_id=stored.pk)
        if deals:
            raise ValidationError(
                {
                    "outcome": ngettext(
                        "%(count)d deal is in this stage: move it to another stage before changing its outcome.",
                        "%(count)d deals are in this stage: move them to another stage before changing "
                        "its outcome.",
                        deals,
                    )
                    % {"count": deals}
                }
            )
        _check_outcomes_remain(pipeline=pipeline, without=stored, new_outcome=fields["outcome"])
    for name, value in fields.items():
        setattr(stored, name, value)
    stored.save()
    _follow_stage_defaults(stored, actor=actor)
    return stored


def _follow_stage_defaults(stage: Stage, *, actor: User | None) -> None:
    """Set-based: the stage's open, non-overridden deals take its probability and category; a probability
    change is recorded per deal (from, to, when, who) as any other."""
    deals = Opportunity.objects.filter(
        organization_id=stage.organization_id, stage_id=stage.pk, status=Opportunity.Status.OPEN
    )
    moving = list(
        deals.filter(probability_overridden=False)
        .exclude(probability=stage.probability)
        .values_list("pk", "probability")
    )
    if moving:
        now = timezone.now()
        OpportunityChange.objects.bulk_create(
            (
                OpportunityChange(
                    organization_id=stage.organization_id,
                    opportunity_id=pk,
                    field=OpportunityChange.Field.PROBABILITY,
                    old_value=str(old),
                    new_value=str(stage.probability),
                    changed_at=now,
                    changed_by=actor,
                    note=_("Stage default changed"),
                )
                for pk, old in moving
            ),
            batch_size=1000,
        )
        deals.filter(probability_overridden=False).exclude(probability=stage.probability).update(
            probability=stage.probability
        )
    deals.filter(forecast_category_overridden=False).exclude(
        forecast_category=stage.forecast_category
    ).update(forecast_category=stage.forecast_category)


@transaction.atomic
def stage_delete(*, stage: Stage, actor: User | None) -> None:
    """Delete a stage. Refused while deals are in it (say how many) or when it is the pipeline's last stage
    of its outcome."""
    _require_manage(actor)
    stored = Stage.objects.select_for_update().get(pk=stage.pk, organization_id=stage.organization_id)
    deals = _deal_count(organization_id=stored.organization_id, stage_id=stored.pk)
    if deals:
        raise ValidationError(
            ngettext(
                "%(count)d deal is in %(name)s: move it to another stage before deleting the stage.",
                "%(count)d deals are in %(name)s: move them to another stage before deleting it.",
                deals,
            )
            % {"count": deals, "name": stored.name}
        )
    pipeline = Pipeline.objects.get(pk=stored.pipeline_id, organization_id=stored.organization_id)
    _check_outcomes_remain(pipeline=pipeline, without=stored)
    stored.delete()
    _renumber(
        list(
            Stage.objects.filter(organization_id=pipeline.organization_id, pipeline_id=pipeline.pk).order_by(
                "position", "id"
            )
        )
    )


@transaction.atomic
def stage_reorder(*, pipeline: Pipeline, actor: User | None, stage_ids: list) -> list[Stage]:
    """Put the pipeline's stages in the given order (the drag and drop of the settings page). The ids must
    be exactly the pipeline's stages."""
    _require_manage(actor)
    stages = {
        str(s.pk): s
        for s in Stage.objects.select_for_update().filter(
            organization_id=pipeline.organization_id, pipeline_id=pipeline.pk
        )
    }
    wanted = [str(i) for i in stage_ids]
    if sorted(wanted) != sorted(stages) or len(set(wanted)) != len(wanted):
        raise ValidationError(_("The stages changed meanwhile: reload the page and try again."))
    ordered = [stages[i] for i in wanted]
    _renumber(ordered)
    return ordered


def stage_move(*, stage: Stage, actor: User | None, direction: str) -> list[Stage]:
    """Move a stage one place up or down (the buttons beside each stage: the keyboard path)."""
    if direction not in ("up", "down"):
        raise ValidationError(_("Move up or down."))
    pipeline = Pipeline.objects.get(pk=stage.pipeline_id, organization_id=stage.organization_id)
    ids = list(
        Stage.objects.filter(organization_id=stage.organization_id, pipeline_id=stage.pipeline_id)
        .order_by("position", "id")
        .values_list("pk", flat=True)
    )
    at = ids.index(stage.pk)
    to = at - 1 if direction == "up" else at + 1
    if 0 <= to < len(ids):
        ids[at], ids[to] = ids[to], ids[at]
    return stage_reorder(pipeline=pipeline, actor=actor, stage_ids=ids)


SETTINGS_FIELDS = frozenset(
    {
        "opportunity_visibility",
        "no_activity_days",
        "approval_discount_pct",
        "approval_total",
        "quote_valid_days",
    }
)


@transaction.atomic
def sales_settings_update(*, organization: Organization, actor: User | None, **fields) -> SalesSettings:
    """Change the organization's sales rules (visibility of deals, the no-activity follow-up, approval
    thresholds, quote validity)."""
    _require_manage(actor)
    unknown = set(fields) - SETTINGS_FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    current = sales_settings_for(organization.pk)
    stored = SalesSettings.objects.select_for_update().get(pk=current.pk, organization_id=organization.pk)
    for name, value in fields.items():
        setattr(stored, name, value)
    stored.full_clean(exclude=["organization"], validate_unique=False, validate_constraints=False)
    stored.save()
    return stored
