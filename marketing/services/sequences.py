"""Writes of drip / nurture sequences: the sequence and its settings, its steps (add, edit, delete, move),
and enrollments (one customer, by hand, by form submission, or set-based by segment and lead score).

The engine that walks enrollments through the steps is marketing/sequences.py.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from uuid6 import uuid7

from compliance.models import ConsentPurpose
from compliance.selectors.consent import consent_sql, eligible_sql
from crm.models import Organization, User
from crm.permissions import Capability, require_capability
from customers.models import Customer, LifecycleStage, Segment
from customers.segments.membership import UUID7_SQL
from marketing.models import Campaign, EmailTemplate, Enrollment, Sequence, Step

SEQUENCE_FIELDS = frozenset(
    {
        "name",
        "description",
        "campaign",
        "enroll_segment",
        "enroll_min_score",
        "exit_on_unsubscribe",
        "exit_on_conversion",
        "exit_on_reply",
    }
)
STEP_FIELDS = frozenset(
    {"template", "wait_days", "condition", "else_position", "update", "task_subject", "task_due_days"}
)
# Which step fields each kind uses; the others are cleared so a stored step never carries stale settings.
KIND_FIELDS: dict[str, frozenset[str]] = {
    Step.Kind.SEND_EMAIL: frozenset({"template"}),
    Step.Kind.WAIT: frozenset({"wait_days"}),
    Step.Kind.BRANCH: frozenset({"condition", "else_position"}),
    Step.Kind.UPDATE_FIELD: frozenset({"update"}),
    Step.Kind.CREATE_TASK: frozenset({"task_subject", "task_due_days"}),
}
CONDITION_KINDS = ("score_at_least", "lifecycle_stage_in", "opened_previous", "clicked_previous")
UPDATE_FIELDS = ("lifecycle_stage", "tags_add", "vip_status", "owner")
MAX_WAIT_DAYS = 365
MAX_TASK_DUE_DAYS = 365
# Sequences that accept enrollments: a paused one keeps them waiting; draft and archived take none.
ENROLLING_STATUSES = (Sequence.Status.ACTIVE, Sequence.Status.PAUSED)


# --- Sequences -----------------------------------------------------------------------------------------------


def _check_sequence(sequence: Sequence) -> None:
    """Name free (case-insensitive), campaign and segment of the same organization, score 0..100."""
    sequence.name = (sequence.name or "").strip()
    if not sequence.name:
        raise ValidationError({"name": _("Give the sequence a name.")})
    org = sequence.organization_id
    taken = Sequence.objects.filter(organization_id=org, name__iexact=sequence.name).exclude(pk=sequence.pk)
    if taken.exists():
        raise ValidationError({"name": _("There is already a sequence with this name.")})
    if (
        sequence.campaign_id is None
        or not Campaign.objects.filter(organization_id=org, pk=sequence.campaign_id).exists()
    ):
        raise ValidationError({"campaign": _("Pick a campaign of this organization.")})
    if (
        sequence.enroll_segment_id
        and not Segment.objects.filter(organization_id=org, pk=sequence.enroll_segment_id).exists()
    ):
        raise ValidationError({"enroll_segment": _("Pick a segment of this organization.")})
    if sequence.enroll_min_score is not None and not 0 <= sequence.enroll_min_score <= 100:
        raise ValidationError({"enroll_min_score": _("A lead score from 0 to 100.")})


def _unknown(fields: dict, allowed: frozenset[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")


@transaction.atomic
def sequence_create(*, organization: Organization, actor: User | None, **fields) -> Sequence:
    """A new sequence, in draft: add its steps, then activate it."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    _unknown(fields, SEQUENCE_FIELDS)
    sequence = Sequence(organization=organization, created_by=actor, **fields)
    _check_sequence(sequence)
    sequence.save(force_insert=True)
    return sequence


@transaction.atomic
def sequence_update(*, sequence: Sequence, actor: User | None, **fields) -> Sequence:
    """Change the name, campaign, enrollment triggers or exit rules. New triggers apply from the next
    enrollment run; customers already enrolled stay enrolled."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    _unknown(fields, SEQUENCE_FIELDS)
    stored = Sequence.objects.select_for_update().get(
        pk=sequence.pk, organization_id=sequence.organization_id
    )
    for name, value in fields.items():
        setattr(stored, name, value)
    _check_sequence(stored)
    stored.save()
    return stored


@transaction.atomic
def sequence_set_status(*, sequence: Sequence, actor: User | None, status: str) -> Sequence:
    """Activate, pause or archive a sequence. Activating needs at least one step; an archived sequence is
    done for good (its active enrollments exit), so it cannot come back."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    if status not in Sequence.Status.values or status == Sequence.Status.DRAFT:
        raise ValidationError(_("Activate, pause or archive the sequence."))
    stored = Sequence.objects.select_for_update().get(
        pk=sequence.pk, organization_id=sequence.organization_id
    )
    if stored.status == Sequence.Status.ARCHIVED:
        raise ValidationError(_("An archived sequence cannot change any more."))
    has_steps = Step.objects.filter(organization_id=stored.organization_id, sequence_id=stored.pk).exists()
    if status == Sequence.Status.ACTIVE and not has_steps:
        raise ValidationError(_("Add at least one step before activating the sequence."))
    if status == Sequence.Status.ARCHIVED:
        Enrollment.objects.filter(
            organization_id=stored.organization_id, sequence_id=stored.pk, status=Enrollment.Status.ACTIVE
        ).update(
            status=Enrollment.Status.EXITED,
            exit_reason=Enrollment.ExitReason.REMOVED,
            finished_at=timezone.now(),
            next_run_at=None,
        )
    stored.status = status
    stored.save(update_fields=["status", "updated_at"])
    return stored


@transaction.atomic
def sequence_delete(*, sequence: Sequence, actor: User | None) -> None:
    """Delete a sequence that never enrolled anyone (otherwise archive it: the paths stay readable)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    if Enrollment.objects.filter(organization_id=sequence.organization_id, sequence_id=sequence.pk).exists():
        raise ValidationError(_("Customers were enrolled in this sequence: archive it instead."))
    Sequence.objects.filter(organization_id=sequence.organization_id, pk=sequence.pk).delete()


# --- Steps ---------------------------------------------------------------------------------------------------


def _clean_condition(condition) -> dict:
    if not isinstance(condition, dict) or condition.get("kind") not in CONDITION_KINDS:
        raise ValidationError({"condition": _("Pick a condition.")})
    kind = condition["kind"]
    if kind == "score_at_least":
        try:
            value = int(condition.get("value"))
        except (TypeError, ValueError):
            value = -1
        if not 0 <= value <= 100:
            raise ValidationError({"condition": _("A lead score from 0 to 100.")})
        return {"kind": kind, "value": value}
    if kind == "lifecycle_stage_in":
        stages = condition.get("value") or []
        if isinstance(stages, str):
            stages = [stages]
        stages = [s for s in LifecycleStage.values if s in set(stages)]
        if not stages or len(stages) != len(set(condition.get("value") or [])):
            raise ValidationError({"condition": _("Pick one or more lifecycle stages.")})
        return {"kind": kind, "value": stages}
    return {"kind": kind}


def _clean_update(organization_id, update) -> dict:
    if not isinstance(update, dict) or update.get("field") not in UPDATE_FIELDS:
        raise ValidationError({"update": _("Pick the field to change.")})
    field, value = update["field"], update.get("value")
    if field == "lifecycle_stage":
        if value not in LifecycleStage.values:
            raise ValidationError({"update": _("Pick a lifecycle stage.")})
    elif field == "tags_add":
        value = (value or "").strip().lower()[:50]
        if not value or "," in value:
            raise ValidationError({"update": _("Give one tag to add.")})
    elif field == "vip_status":
        if not isinstance(value, bool):
            raise ValidationError({"update": _("Say whether the customer becomes a VIP.")})
    else:
        owner = None
        try:
            owner = User.objects.filter(organization_id=organization_id, is_active=True, pk=value).first()
        except (ValueError, ValidationError):
            owner = None
        if owner is None:
            raise ValidationError({"update": _("Pick an active user of this organization as the owner.")})
        value = str(owner.pk)
    return {"field": field, "value": value}


def _clean_step(step: Step, *, step_count: int) -> None:
    """Validate a step's settings for its kind (before it is saved); `step_count` is the number of steps
    the sequence will have, for branch targets."""
    if step.kind not in Step.Kind.values:
        raise ValidationError({"kind": _("Pick a kind of step.")})
    used = KIND_FIELDS[step.kind]
    for name in STEP_FIELDS - used:
        setattr(
            step, name, {} if name in ("condition", "update") else ("" if name == "task_subject" else None)
        )
    org = step.organization_id
    if step.kind == Step.Kind.SEND_EMAIL:
        if (
            step.template_id is None
            or not EmailTemplate.objects.filter(
                organization_id=org, pk=step.template_id, is_archived=False
            ).exists()
        ):
            raise ValidationError({"template": _("Pick the email template to send.")})
    elif step.kind == Step.Kind.WAIT:
        if step.wait_days is None or not 1 <= step.wait_days <= MAX_WAIT_DAYS:
            raise ValidationError({"wait_days": _("Wait from 1 to %(max)d days.") % {"max": MAX_WAIT_DAYS}})
    elif step.kind == Step.Kind.BRANCH:
        step.condition = _clean_condition(step.condition)
        if step.else_position is not None and not step.position < step.else_position <= step_count:
            raise ValidationError(
                {
                    "else_position": _(
                        "Branches jump forward only: pick a step after this one (%(first)d to %(last)d), "
                        "or none to end the sequence."
                    )
                    % {"first": step.position + 1, "last": step_count}
                    if step.position < step_count
                    else _("This is the last step: a branch can only end the sequence here.")
                }
            )
    elif step.kind == Step.Kind.UPDATE_FIELD:
        step.update = _clean_update(org, step.update)
    elif step.kind == Step.Kind.CREATE_TASK:
        step.task_subject = (step.task_subject or "").strip()
        if not step.task_subject:
            raise ValidationError({"task_subject": _("Give the task a subject.")})
        if step.task_due_days is None or not 0 <= step.task_due_days <= MAX_TASK_DUE_DAYS:
            raise ValidationError(
                {"task_due_days": _("Due in 0 to %(max)d days.") % {"max": MAX_TASK_DUE_DAYS}}
            )


def _locked_steps(sequence: Sequence) -> list[Step]:
    """The sequence's steps in order, with the sequence row locked first: step edits of one sequence are
    serialized (positions and branch targets are checked against a stable list). An archived sequence is
    final and its steps can no longer change."""
    stored = Sequence.objects.select_for_update().get(
        pk=sequence.pk, organization_id=sequence.organization_id
    )
    if stored.status == Sequence.Status.ARCHIVED:
        raise ValidationError(_("An archived sequence cannot change any more."))
    return list(
        Step.objects.select_for_update()
        .filter(organization_id=sequence.organization_id, sequence_id=sequence.pk)
        .order_by("position", "id")
    )


@transaction.atomic
def step_create(*, sequence: Sequence, actor: User | None, kind: str, **fields) -> Step:
    """Add a step at the end of the sequence (then move it up as needed)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    _unknown(fields, STEP_FIELDS)
    steps = _locked_steps(sequence)
    step = Step(
        organization_id=sequence.organization_id,
        sequence=sequence,
        kind=kind,
        position=len(steps) + 1,
        **fields,
    )
    _clean_step(step, step_count=len(steps) + 1)
    step.save(force_insert=True)
    return step


@transaction.atomic
def step_update(*, step: Step, actor: User | None, **fields) -> Step:
    """Change a step's settings (its kind stays: delete it and add another to change what it does)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    _unknown(fields, STEP_FIELDS)
    sequence = Sequence.objects.get(pk=step.sequence_id, organization_id=step.organization_id)
    steps = _locked_steps(sequence)
    stored = next(s for s in steps if s.pk == step.pk)
    for name, value in fields.items():
        setattr(stored, name, value)
    _clean_step(stored, step_count=len(steps))
    stored.save()
    return stored


def _save_order(steps: list[Step]) -> None:
    """Write new positions and branch targets. The position key is deferred (checked at commit), and each
    row's own forward-branch check holds for its new values, so one bulk update is enough."""
    changed = [s for s in steps if s.pk is not None]
    Step.objects.bulk_update(changed, ["position", "else_position"])


def _check_branches(steps: list[Step]) -> None:
    for step in steps:
        if step.else_position is not None and step.else_position <= step.position:
            raise ValidationError(
                _(
                    "Step %(step)d branches to step %(target)d, which would no longer be after it: "
                    "change that branch first."
                )
                % {"step": step.position, "target": step.else_position}
            )


@transaction.atomic
def step_delete(*, step: Step, actor: User | None) -> None:
    """Delete a step; the later ones move up. Branches that jumped to it now jump to the step that takes its
    place (or end the sequence if it was the last); later targets follow their steps."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    sequence = Sequence.objects.get(pk=step.sequence_id, organization_id=step.organization_id)
    steps = _locked_steps(sequence)
    removed = next(s for s in steps if s.pk == step.pk)
    rest = [s for s in steps if s.pk != removed.pk]
    Step.objects.filter(organization_id=removed.organization_id, pk=removed.pk).delete()
    count = len(rest)
    for index, s in enumerate(rest, start=1):
        s.position = index
        if s.else_position is not None:
            target = s.else_position - 1 if s.else_position > removed.position else s.else_position
            s.else_position = target if target <= count else None
    _check_branches(rest)
    _save_order(rest)


@transaction.atomic
def step_move(*, step: Step, actor: User | None, direction: str) -> list[Step]:
    """Move a step one place up or down (the buttons on each card: the keyboard path). Branch targets
    follow the steps they point at; a move that would make a branch jump backwards is refused."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    if direction not in ("up", "down"):
        raise ValidationError(_("Move up or down."))
    sequence = Sequence.objects.get(pk=step.sequence_id, organization_id=step.organization_id)
    steps = _locked_steps(sequence)
    at = next(i for i, s in enumerate(steps) if s.pk == step.pk)
    to = at - 1 if direction == "up" else at + 1
    if not 0 <= to < len(steps):
        return steps
    by_old_position = {s.position: s for s in steps}
    steps[at], steps[to] = steps[to], steps[at]
    for index, s in enumerate(steps, start=1):
        s.position = index
    for s in steps:
        if s.else_position is not None:
            target = by_old_position.get(s.else_position)
            s.else_position = target.position if target is not None else None
    _check_branches(steps)
    _save_order(steps)
    return steps


# --- Enrollments ---------------------------------------------------------------------------------------------


def may_enroll(customer: Customer) -> bool:
    """A customer whose processing is restricted, or who was erased or anonymized, is never enrolled."""
    return not (customer.processing_restricted or customer.erased_at or customer.anonymized_at)


_ENROLL_ONE_SQL = """
INSERT INTO sequence_enrollments (id, organization_id, sequence_id, customer_id, status, source,
                                  next_position, next_run_at, enrolled_at, exit_reason)
VALUES (%(id)s, %(org)s, %(sequence)s, %(customer)s, 'active', %(source)s, 1, %(now)s, %(now)s, '')
ON CONFLICT (organization_id, sequence_id, customer_id) DO NOTHING
RETURNING id
"""


@transaction.atomic
def enrollment_create(
    *,
    sequence: Sequence,
    customer: Customer,
    source: str,
    actor: User | None = None,
    now: datetime.datetime | None = None,
) -> Enrollment | None:
    """Enroll one customer (by hand, or a form submission naming the sequence).

    Idempotent: a customer is enrolled in a sequence at most once (unique key), so enrolling again returns
    the existing enrollment. None when the customer may not be enrolled (processing restricted, erased or
    anonymized) or the sequence takes no enrollments (draft or archived). The first step runs on the
    engine's next pass (within a minute)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    if source not in Enrollment.Source.values:
        raise ValidationError(_("Unknown enrollment source."))
    if customer.organization_id != sequence.organization_id:
        raise ValidationError({"customer": _("The customer must belong to this organization.")})
    if sequence.status not in ENROLLING_STATUSES or not may_enroll(customer):
        return None
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _ENROLL_ONE_SQL,
            {
                "id": uuid7(),
                "org": sequence.organization_id,
                "sequence": sequence.pk,
                "customer": customer.pk,
                "source": source,
                "now": now,
            },
        )
        cursor.fetchone()
    return Enrollment.objects.get(
        organization_id=sequence.organization_id, sequence_id=sequence.pk, customer_id=customer.pk
    )


@transaction.atomic
def enrollments_create(
    *, sequence: Sequence, actor: User | None, customer_ids: Iterable, now: datetime.datetime | None = None
) -> tuple[int, int]:
    """Enroll the picked customers by hand; returns (newly enrolled, skipped: already enrolled, restricted
    or not of this organization)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    ids = list(dict.fromkeys(customer_ids))
    if sequence.status not in ENROLLING_STATUSES:
        raise ValidationError(_("Activate the sequence before enrolling customers."))
    sql = f"""
    INSERT INTO sequence_enrollments (id, organization_id, sequence_id, customer_id, status, source,
                                      next_position, next_run_at, enrolled_at, exit_reason)
    SELECT {UUID7_SQL}, c.organization_id, %(sequence)s, c.id, 'active', 'manual', 1, %(now)s, %(now)s, ''
    FROM customers c
    WHERE c.organization_id = %(org)s AND c.id = ANY(%(ids)s::uuid[]) AND {eligible_sql("c")}
    ON CONFLICT (organization_id, sequence_id, customer_id) DO NOTHING
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "sequence": sequence.pk,
                "org": sequence.organization_id,
                "ids": ids,
                "now": now or timezone.now(),
            },
        )
        created = cursor.rowcount
    return created, len(ids) - created


@transaction.atomic
def enrollment_remove(*, enrollment: Enrollment, actor: User | None) -> Enrollment:
    """Take a customer out of a sequence by hand (their path so far stays)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    stored = Enrollment.objects.select_for_update().get(
        pk=enrollment.pk, organization_id=enrollment.organization_id
    )
    if stored.status != Enrollment.Status.ACTIVE:
        raise ValidationError(_("This enrollment has already ended."))
    stored.status = Enrollment.Status.EXITED
    stored.exit_reason = Enrollment.ExitReason.REMOVED
    stored.finished_at = timezone.now()
    stored.next_run_at = None
    stored.save(update_fields=["status", "exit_reason", "finished_at", "next_run_at"])
    return stored


_ENROLL_BY_SEGMENT_SQL = f"""
INSERT INTO sequence_enrollments (id, organization_id, sequence_id, customer_id, status, source,
                                  next_position, next_run_at, enrolled_at, exit_reason)
SELECT {UUID7_SQL}, m.organization_id, %(sequence)s, m.customer_id, 'active', 'segment', 1, %(now)s, %(now)s, ''
FROM customer_segment_members m
JOIN customers c ON c.organization_id = m.organization_id AND c.id = m.customer_id
WHERE m.organization_id = %(org)s AND m.segment_id = %(segment)s AND {eligible_sql("c")}
ON CONFLICT (organization_id, sequence_id, customer_id) DO NOTHING
"""
_ENROLL_BY_SCORE_SQL = f"""
INSERT INTO sequence_enrollments (id, organization_id, sequence_id, customer_id, status, source,
                                  next_position, next_run_at, enrolled_at, exit_reason)
SELECT {UUID7_SQL}, c.organization_id, %(sequence)s, c.id, 'active', 'score', 1, %(now)s, %(now)s, ''
FROM customers c
WHERE c.organization_id = %(org)s AND c.lead_score >= %(score)s
  AND {consent_sql(ConsentPurpose.PROFILING, "c")}
ON CONFLICT (organization_id, sequence_id, customer_id) DO NOTHING
"""


def enrollments_by_triggers(*, organization_id, now: datetime.datetime | None = None) -> int:
    """Set-based: enroll, in every active sequence of the organization, the members of its enrollment
    segment and the customers at or above its lead score (restricted ones never; by score, only customers who
    allow profiling, since the score is a profile). Idempotent: the unique
    key makes a second run insert nothing. Returns how many were enrolled. One INSERT ... SELECT per trigger."""
    now = now or timezone.now()
    sequences = list(
        Sequence.objects.filter(organization_id=organization_id, status=Sequence.Status.ACTIVE)
        .exclude(enroll_segment__isnull=True, enroll_min_score__isnull=True)
        .values_list("pk", "enroll_segment_id", "enroll_min_score")
    )
    enrolled = 0
    for sequence_id, segment_id, min_score in sequences:
        params = {"org": organization_id, "sequence": sequence_id, "now": now}
        with connection.cursor() as cursor:
            if segment_id is not None:
                cursor.execute(_ENROLL_BY_SEGMENT_SQL, {**params, "segment": segment_id})
                enrolled += cursor.rowcount
            if min_score is not None:
                cursor.execute(_ENROLL_BY_SCORE_SQL, {**params, "score": min_score})
                enrolled += cursor.rowcount
    return enrolled


def organizations_with_enrollment_triggers() -> list[uuid.UUID]:
    """Organizations with an active sequence that enrolls by segment or score (run as the platform)."""
    return list(
        Sequence.objects.filter(status=Sequence.Status.ACTIVE)
        .exclude(enroll_segment__isnull=True, enroll_min_score__isnull=True)
        .order_by("organization_id")
        .values_list("organization_id", flat=True)
        .distinct()
    )
