"""Writes to opportunities: create, update, move between stages, close won or lost, reopen.

Every change of stage, amount, expected close date, status, owner or probability is recorded in
`opportunity_changes` (from, to, when, who), which feeds cycle time, slippage and the opportunity's
history; the audit trail (a trigger) records the rest. Stage rules live here, so the board, the form, the
quote acceptance and the API apply the same ones:
- reaching a *won* stage sets status won and the actual close date (today, in the organization's zone);
- reaching a *lost* stage needs a lost reason, and sets status lost and the actual close date;
- going back to an open stage reopens the deal (status open, no actual close date);
- probability and forecast category follow the stage unless the owner overrode them.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import User
from crm.permissions import Capability, has_capability
from customers.models import Customer
from sales.models import Opportunity, OpportunityChange, Pipeline, Stage
from sales.services.pipelines import pipeline_ensure_default

EDITABLE_FIELDS = frozenset(
    {
        "name",
        "customer",
        "stage",
        "assigned_to",
        "amount",
        "currency",
        "probability",
        "forecast_category",
        "expected_close_date",
        "lost_reason",
        "source_campaign",
        "next_step",
        "notes",
    }
)
# Fields whose changes are kept in opportunity_changes, and how a value is written there.
TRACKED = {
    "stage": lambda o: str(o.stage_id or ""),
    "amount": lambda o: f"{o.amount:.2f}",
    "expected_close_date": lambda o: o.expected_close_date.isoformat() if o.expected_close_date else "",
    "status": lambda o: o.status,
    "assigned_to": lambda o: str(o.assigned_to_id or ""),
    "probability": lambda o: str(o.probability),
}


def _require(actor: User | None, capability: Capability) -> None:
    if actor is not None and not has_capability(actor, capability):
        raise PermissionDenied


def organization_today(organization) -> datetime.date:
    """Today's date in the organization's time zone (close dates are calendar dates of the business)."""
    import zoneinfo

    return timezone.now().astimezone(zoneinfo.ZoneInfo(organization.time_zone or "UTC")).date()


def _snapshot(opportunity: Opportunity) -> dict[str, str]:
    return {field: render(opportunity) for field, render in TRACKED.items()}


def _record_changes(
    opportunity: Opportunity, before: dict[str, str], *, actor: User | None, note: str = ""
) -> list[OpportunityChange]:
    after = _snapshot(opportunity)
    now = timezone.now()
    changes = [
        OpportunityChange(
            organization_id=opportunity.organization_id,
            opportunity=opportunity,
            field=field,
            old_value=before[field],
            new_value=after[field],
            changed_at=now,
            changed_by=actor,
            note=note[:300],
        )
        for field in TRACKED
        if before[field] != after[field]
    ]
    return OpportunityChange.objects.bulk_create(changes)


def _apply_stage(opportunity: Opportunity, stage: Stage, *, lost_reason: str, today: datetime.date) -> None:
    """Set the stage and everything that follows from it (status, close date, probability, category)."""
    if stage.pipeline_id != opportunity.pipeline_id:
        raise ValidationError({"stage": _("That stage belongs to another pipeline.")})
    changed = stage.pk != opportunity.stage_id
    opportunity.stage = stage
    if changed:
        opportunity.stage_changed_at = timezone.now()
    if stage.outcome == Stage.Outcome.LOST:
        reason = (lost_reason or opportunity.lost_reason or "").strip()
        if not reason:
            raise ValidationError({"lost_reason": _("Say why the deal was lost.")})
        opportunity.lost_reason = reason[:300]
    if stage.outcome == Stage.Outcome.OPEN:
        opportunity.status = Opportunity.Status.OPEN
        opportunity.actual_close_date = None
        opportunity.lost_reason = ""
    else:
        new_status = Opportunity.Status.WON if stage.outcome == Stage.Outcome.WON else Opportunity.Status.LOST
        if opportunity.status != new_status or opportunity.actual_close_date is None:
            opportunity.actual_close_date = today
        opportunity.status = new_status
    if not opportunity.probability_overridden or stage.outcome != Stage.Outcome.OPEN:
        opportunity.probability = stage.probability
        opportunity.probability_overridden = False
    if not opportunity.forecast_category_overridden or stage.outcome != Stage.Outcome.OPEN:
        opportunity.forecast_category = stage.forecast_category
        opportunity.forecast_category_overridden = False


def _check_references(opportunity: Opportunity) -> None:
    org = opportunity.organization_id
    if opportunity.customer_id and opportunity.customer.organization_id != org:
        raise ValidationError({"customer": _("The customer must belong to this organization.")})
    if opportunity.assigned_to_id and opportunity.assigned_to.organization_id != org:
        raise ValidationError({"assigned_to": _("The owner must be a user of this organization.")})


@transaction.atomic
def opportunity_create(
    *,
    organization,
    actor: User | None,
    name: str,
    customer: Customer,
    expected_close_date: datetime.date,
    amount: Decimal = Decimal("0"),
    stage: Stage | None = None,
    assigned_to: User | None = None,
    lost_reason: str = "",
    **fields,
) -> Opportunity:
    """Open a deal in `stage` (default: the first stage of the default pipeline), owned by `assigned_to`
    (default: the actor). Probability and forecast category come from the stage unless given."""
    _require(actor, Capability.EDIT_OPPORTUNITIES)
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    if stage is None:
        pipeline = pipeline_ensure_default(organization=organization, actor=actor)
        stage = pipeline.stages.order_by("position", "id").first()
    probability = fields.pop("probability", None)
    category = fields.pop("forecast_category", None)
    opportunity = Opportunity(
        organization=organization,
        name=name,
        customer=customer,
        pipeline_id=stage.pipeline_id,
        amount=amount,
        expected_close_date=expected_close_date,
        assigned_to=assigned_to if assigned_to is not None else actor,
        created_by=actor,
        currency=fields.pop("currency", None) or organization.currency,
        **fields,
    )
    _apply_stage(opportunity, stage, lost_reason=lost_reason, today=organization_today(organization))
    if probability is not None and stage.outcome == Stage.Outcome.OPEN and probability != stage.probability:
        opportunity.probability, opportunity.probability_overridden = probability, True
    if category is not None and stage.outcome == Stage.Outcome.OPEN and category != stage.forecast_category:
        opportunity.forecast_category, opportunity.forecast_category_overridden = category, True
    opportunity.full_clean(validate_unique=False, validate_constraints=False)
    _check_references(opportunity)
    opportunity.save(force_insert=True)
    return opportunity


@transaction.atomic
def opportunity_update(
    *, opportunity: Opportunity, actor: User | None, note: str = "", **fields
) -> Opportunity:
    """Change a deal. A new `stage` applies the stage rules; `probability` / `forecast_category` set to a
    value override the stage's, set to None return to the stage's. Returns the saved instance (a fresh one:
    `opportunity` itself is only read for its id)."""
    _require(actor, Capability.EDIT_OPPORTUNITIES)
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    # Lock the row: two people moving the same card at once are applied one after the other, each
    # recording the change from what the other left.
    stored = (
        Opportunity.objects.select_for_update()
        .select_related("stage", "organization")
        .get(pk=opportunity.pk, organization_id=opportunity.organization_id)
    )
    before = _snapshot(stored)
    stage = fields.pop("stage", None)
    lost_reason = fields.pop("lost_reason", None)
    probability = fields.pop("probability", ...)
    category = fields.pop("forecast_category", ...)
    for name, value in fields.items():
        setattr(stored, name, value)
    if lost_reason is not None:
        stored.lost_reason = lost_reason
    _apply_stage(
        stored,
        stage or stored.stage,
        lost_reason=lost_reason or "",
        today=organization_today(stored.organization),
    )
    current = stored.stage
    if probability is None:
        stored.probability, stored.probability_overridden = current.probability, False
    elif probability is not ... and current.outcome == Stage.Outcome.OPEN:
        stored.probability = probability
        stored.probability_overridden = probability != current.probability
    if category is None:
        stored.forecast_category, stored.forecast_category_overridden = current.forecast_category, False
    elif category is not ... and current.outcome == Stage.Outcome.OPEN:
        stored.forecast_category = category
        stored.forecast_category_overridden = category != current.forecast_category
    stored.full_clean(validate_unique=False, validate_constraints=False)
    _check_references(stored)
    stored.save()
    _record_changes(stored, before, actor=actor, note=note)
    return stored


def opportunity_move(
    *, opportunity: Opportunity, actor: User | None, stage: Stage, lost_reason: str = ""
) -> Opportunity:
    """Move a deal to another stage of its pipeline (the board's drag and drop, and its keyboard path)."""
    return opportunity_update(opportunity=opportunity, actor=actor, stage=stage, lost_reason=lost_reason)


def stage_for_outcome(pipeline: Pipeline | int | str, outcome: str) -> Stage:
    """The first stage of a pipeline with the given outcome (won / lost)."""
    pipeline_id = pipeline.pk if isinstance(pipeline, Pipeline) else pipeline
    stage = Stage.objects.filter(pipeline_id=pipeline_id, outcome=outcome).order_by("position", "id").first()
    if stage is None:
        raise ValidationError(_("This pipeline has no stage for that outcome."))
    return stage


def opportunity_win(*, opportunity: Opportunity, actor: User | None, note: str = "") -> Opportunity:
    """Close a deal as won (used by quote acceptance); a deal already won stays as it is."""
    if opportunity.status == Opportunity.Status.WON:
        return opportunity
    stage = stage_for_outcome(opportunity.pipeline_id, Stage.Outcome.WON)
    return opportunity_update(opportunity=opportunity, actor=actor, stage=stage, note=note)


def opportunity_lose(*, opportunity: Opportunity, actor: User | None, reason: str) -> Opportunity:
    stage = stage_for_outcome(opportunity.pipeline_id, Stage.Outcome.LOST)
    return opportunity_update(opportunity=opportunity, actor=actor, stage=stage, lost_reason=reason)


def opportunity_touch(*, opportunity_id, organization_id, at: datetime.datetime | None = None) -> None:
    """Note activity on a deal (an activity logged, a quote sent): feeds the no-activity follow-up rule.
    Never moves `last_activity_at` backwards."""
    from django.db.models import F, Value
    from django.db.models.functions import Coalesce, Greatest

    at = at or timezone.now()
    Opportunity.objects.filter(organization_id=organization_id, pk=opportunity_id).update(
        last_activity_at=Greatest(Coalesce(F("last_activity_at"), Value(at)), Value(at))
    )


def opportunities_reassign(*, organization_id, source_id, target_id) -> int:
    """Customer merge: the deals of the customer that goes away move to the one that stays (their orders
    and activities are moved by their own reassigners). Runs inside the merge's transaction."""
    return Opportunity.objects.filter(organization_id=organization_id, customer_id=source_id).update(
        customer_id=target_id
    )
