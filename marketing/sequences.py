"""The drip / nurture sequence engine: walks due enrollments through their steps.

Every minute the beat task (`marketing.tasks.advance_sequences`) enqueues, per organization with due
enrollments, one `advance_due` pass. A pass, in one transaction:

1. locks a batch of due enrollments (status active, next_run_at <= now, sequence active) with
   `FOR UPDATE SKIP LOCKED`: two workers never take the same enrollment, and a worker never waits;
2. for each, checks the exits first (see `exit_reason`), then runs steps from `next_position` until a
   wait (next_run_at = now + N days) or the end (completed);
3. records each executed step as a StepRun, inserted with ON CONFLICT DO NOTHING on its unique
   (enrollment, step) key: a pass that runs twice (a retried task, two workers) advances once, and a
   sequence email, unique per step run, is queued at most once.

Each enrollment runs in its own savepoint: one that fails (a template that no longer renders) is logged,
retried an hour later, and does not stop the others. Every function takes the clock (`now=`), so tests run
waits on a fake clock.

Exit rules (checked before any step runs, in this order):
- restricted: the customer's processing is restricted, or they were erased or anonymized (always);
- unsubscribed (if the sequence exits on unsubscribe): the customer's address is on the suppression list,
  or they do not consent to email marketing (withdrawn or never given).
Both come from the one consent rule (compliance.selectors.consent); whatever the exits, a step's email goes
only to a customer `mailable_customers` still lists, so an objecting customer never gets one.
- converted (if it exits on conversion): an opportunity of the customer was won after the enrollment
  (status won, reaching its won stage after `enrolled_at`);
- replied (if it exits on reply): an inbound email from the customer after the enrollment, i.e. an
  interaction with channel "email" and type "support_ticket", which is what email to ticket
  (support/email_in.py) logs for every message a customer sends in, new ticket or reply.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import uuid

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from uuid6 import uuid7

from compliance.models import ConsentPurpose
from compliance.selectors.consent import consent_sql, eligible_sql
from crm.models import User
from customers.models import Customer, LifecycleStage
from marketing.models import EmailSend, Enrollment, Step, StepRun

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
RETRY_AFTER_ERROR = datetime.timedelta(hours=1)
# Inbound email, as support/email_in.py logs it (see the module docstring).
REPLY_CHANNEL = "email"
REPLY_INTERACTION_TYPE = "support_ticket"

_DUE_SQL = """
SELECT e.id
FROM sequence_enrollments e
JOIN marketing_sequences s ON s.organization_id = e.organization_id AND s.id = e.sequence_id
WHERE e.organization_id = %(org)s AND e.status = 'active' AND e.next_run_at <= %(now)s
  AND s.status = 'active'
ORDER BY e.next_run_at, e.id
LIMIT %(limit)s
FOR UPDATE OF e SKIP LOCKED
"""

_ORGANIZATIONS_SQL = """
SELECT DISTINCT e.organization_id
FROM sequence_enrollments e
JOIN marketing_sequences s ON s.organization_id = e.organization_id AND s.id = e.sequence_id
WHERE e.status = 'active' AND e.next_run_at <= %(now)s AND s.status = 'active'
"""

# Per enrollment: the first exit that applies (NULL: none). One query for the whole batch.
_EXITS_SQL = f"""
SELECT e.id,
  CASE
    WHEN NOT {eligible_sql("c")} THEN 'restricted'
    WHEN s.exit_on_unsubscribe AND (NOT {consent_sql(ConsentPurpose.EMAIL_MARKETING, "c")} OR EXISTS (
        SELECT 1 FROM email_suppressions x
        WHERE x.organization_id = e.organization_id AND c.email <> '' AND x.email = lower(c.email)))
      THEN 'unsubscribed'
    WHEN s.exit_on_conversion AND EXISTS (
        SELECT 1 FROM opportunities o
        WHERE o.organization_id = e.organization_id AND o.customer_id = e.customer_id
          AND o.status = 'won' AND o.stage_changed_at >= e.enrolled_at)
      THEN 'converted'
    WHEN s.exit_on_reply AND EXISTS (
        SELECT 1 FROM interaction_logs i
        WHERE i.organization_id = e.organization_id AND i.customer_id = e.customer_id
          AND i.channel = %(reply_channel)s AND i.interaction_type = %(reply_type)s
          AND i.interaction_date >= e.enrolled_at)
      THEN 'replied'
  END
FROM sequence_enrollments e
JOIN marketing_sequences s ON s.organization_id = e.organization_id AND s.id = e.sequence_id
JOIN customers c ON c.organization_id = e.organization_id AND c.id = e.customer_id
WHERE e.organization_id = %(org)s AND e.id = ANY(%(ids)s::uuid[])
"""

_RUN_SQL = """
INSERT INTO sequence_step_runs (id, organization_id, enrollment_id, step_id, due_at, ran_at, outcome, detail)
VALUES (%(id)s, %(org)s, %(enrollment)s, %(step)s, %(due_at)s, %(now)s, %(outcome)s, %(detail)s)
ON CONFLICT (organization_id, enrollment_id, step_id) DO NOTHING
RETURNING id
"""


@dataclasses.dataclass
class PassResult:
    """What one pass did: enrollments handled, steps run, exits, completions, failures; `more` is true when
    the batch was full (the task runs another pass)."""

    enrollments: int = 0
    steps: int = 0
    exited: int = 0
    completed: int = 0
    failed: int = 0
    more: bool = False


@dataclasses.dataclass
class StepResult:
    outcome: str
    detail: str
    next_position: int | None  # None: the sequence ends here
    wait_until: datetime.datetime | None = None


def organizations_with_due_enrollments(*, now: datetime.datetime | None = None) -> list[uuid.UUID]:
    """Organizations with an enrollment due in an active sequence (run as the platform: the beat task
    enqueues one pass per organization)."""
    with connection.cursor() as cursor:
        cursor.execute(_ORGANIZATIONS_SQL, {"now": now or timezone.now()})
        return [row[0] for row in cursor.fetchall()]


@transaction.atomic
def advance_due(
    *, organization_id, now: datetime.datetime | None = None, batch_size: int = BATCH_SIZE
) -> PassResult:
    """One pass over the organization's due enrollments (see the module docstring)."""
    now = now or timezone.now()
    result = PassResult()
    with connection.cursor() as cursor:
        cursor.execute(_DUE_SQL, {"org": organization_id, "now": now, "limit": batch_size})
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return result
    result.more = len(ids) == batch_size
    exits = _exit_reasons(organization_id, ids)
    enrollments = {
        e.pk: e
        for e in Enrollment.objects.filter(organization_id=organization_id, pk__in=ids).select_related(
            "sequence", "sequence__organization", "customer", "customer__assigned_to"
        )
    }
    steps_by_sequence: dict[uuid.UUID, dict[int, Step]] = {}
    for step in (
        Step.objects.filter(
            organization_id=organization_id, sequence_id__in={e.sequence_id for e in enrollments.values()}
        )
        .select_related("template")
        .order_by("position")
    ):
        steps_by_sequence.setdefault(step.sequence_id, {})[step.position] = step
    for enrollment_id in ids:
        enrollment = enrollments[enrollment_id]
        result.enrollments += 1
        try:
            with transaction.atomic():
                reason = exits.get(enrollment_id)
                if reason:
                    _finish(enrollment, now=now, exit_reason=reason)
                    result.exited += 1
                    continue
                ran = _advance(enrollment, steps=steps_by_sequence.get(enrollment.sequence_id, {}), now=now)
                result.steps += ran
                if enrollment.status == Enrollment.Status.COMPLETED:
                    result.completed += 1
        except Exception:  # one broken enrollment must not stop the others; it is retried later
            logger.exception("Sequence enrollment %s failed to advance", enrollment_id)
            result.failed += 1
            Enrollment.objects.filter(organization_id=organization_id, pk=enrollment_id).update(
                next_run_at=now + RETRY_AFTER_ERROR
            )
    return result


def _exit_reasons(organization_id, ids: list) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            _EXITS_SQL,
            {
                "org": organization_id,
                "ids": ids,
                "reply_channel": REPLY_CHANNEL,
                "reply_type": REPLY_INTERACTION_TYPE,
            },
        )
        return {row[0]: row[1] for row in cursor.fetchall() if row[1]}


def _finish(enrollment: Enrollment, *, now: datetime.datetime, exit_reason: str = "") -> None:
    enrollment.status = Enrollment.Status.EXITED if exit_reason else Enrollment.Status.COMPLETED
    enrollment.exit_reason = exit_reason
    enrollment.finished_at = now
    enrollment.next_run_at = None
    enrollment.next_position = None
    enrollment.save(update_fields=["status", "exit_reason", "finished_at", "next_run_at", "next_position"])


def _advance(enrollment: Enrollment, *, steps: dict[int, Step], now: datetime.datetime) -> int:
    """Run steps from the enrollment's next position until a wait or the end; returns how many ran."""
    ran = 0
    position = enrollment.next_position
    while position is not None:
        step = steps.get(position)
        if step is None:  # past the last step (or the steps were deleted meanwhile)
            _finish(enrollment, now=now)
            return ran
        result = _run_step(enrollment, step, now=now)
        ran += 1
        if result.wait_until is not None:
            enrollment.next_position = result.next_position
            enrollment.next_run_at = result.wait_until
            enrollment.save(update_fields=["next_position", "next_run_at"])
            return ran
        position = result.next_position
    _finish(enrollment, now=now)
    return ran


def _run_step(enrollment: Enrollment, step: Step, *, now: datetime.datetime) -> StepResult:
    """Record the step run first (the unique key claims it), then do what the step does. A run already
    recorded (the step ran before) is not repeated: the path follows its recorded outcome."""
    run_id = uuid7()
    with connection.cursor() as cursor:
        cursor.execute(
            _RUN_SQL,
            {
                "id": run_id,
                "org": enrollment.organization_id,
                "enrollment": enrollment.pk,
                "step": step.pk,
                "due_at": now,
                "now": now,
                "outcome": _PROVISIONAL[step.kind],
                "detail": "",
            },
        )
        claimed = cursor.fetchone() is not None
    if not claimed:
        previous = StepRun.objects.get(
            organization_id=enrollment.organization_id, enrollment_id=enrollment.pk, step_id=step.pk
        )
        return _replay(step, previous, now=now)
    run = StepRun.objects.get(organization_id=enrollment.organization_id, pk=run_id)
    run.enrollment = enrollment
    result = _EXECUTORS[step.kind](enrollment, step, run, now)
    if result.outcome != run.outcome or result.detail:
        run.outcome, run.detail = result.outcome, result.detail[:300]
        run.save(update_fields=["outcome", "detail"])
    return result


_PROVISIONAL = {
    Step.Kind.SEND_EMAIL: StepRun.Outcome.SENT,
    Step.Kind.WAIT: StepRun.Outcome.WAITED,
    Step.Kind.BRANCH: StepRun.Outcome.BRANCH_YES,
    Step.Kind.UPDATE_FIELD: StepRun.Outcome.UPDATED,
    Step.Kind.CREATE_TASK: StepRun.Outcome.TASK,
}


def _replay(step: Step, run: StepRun, *, now: datetime.datetime) -> StepResult:
    """Where the path goes after a step that already ran (never runs it again)."""
    following = step.position + 1
    if run.outcome == StepRun.Outcome.BRANCH_NO:
        return StepResult(run.outcome, run.detail, step.else_position)
    if run.outcome == StepRun.Outcome.WAITED:
        until = run.ran_at + datetime.timedelta(days=step.wait_days or 0)
        return StepResult(run.outcome, run.detail, following, wait_until=until if until > now else None)
    return StepResult(run.outcome, run.detail, following)


# --- The steps -----------------------------------------------------------------------------------------------


def _send_email(enrollment: Enrollment, step: Step, run: StepRun, now: datetime.datetime) -> StepResult:
    """Queue the template to the customer through the send pipeline (marketing/sending.py), which renders
    it, checks the address may be mailed and sends it; the email is unique per step run."""
    from marketing.selectors.audience import mailable_customers
    from marketing.sending import queue_sequence_email

    following = step.position + 1
    customer = enrollment.customer
    if not mailable_customers(enrollment.organization_id).filter(pk=customer.pk).exists():
        return StepResult(
            StepRun.Outcome.SKIPPED,
            _("Not sent: the customer may not be emailed (no address, no opt-in, or suppressed)."),
            following,
        )
    email = queue_sequence_email(step_run=run, customer=customer, template=step.template)
    if email is None:
        return StepResult(StepRun.Outcome.SKIPPED, _("Not sent: the send pipeline skipped it."), following)
    return StepResult(
        StepRun.Outcome.SENT,
        _("%(template)s to %(email)s") % {"template": step.template, "email": email.email},
        following,
    )


def _wait(enrollment: Enrollment, step: Step, run: StepRun, now: datetime.datetime) -> StepResult:
    """Hold the enrollment N days (the path page shows until when, in the reader's time zone)."""
    until = now + datetime.timedelta(days=step.wait_days)
    return StepResult(StepRun.Outcome.WAITED, "", step.position + 1, wait_until=until)


def previous_email(enrollment: Enrollment) -> EmailSend | None:
    """The latest sequence email of this enrollment ("the previous email" of a branch)."""
    run_ids = StepRun.objects.filter(organization_id=enrollment.organization_id, enrollment_id=enrollment.pk)
    return (
        EmailSend.objects.filter(
            organization_id=enrollment.organization_id, step_run_id__in=run_ids.values("pk")
        )
        .order_by("-scheduled_send_time", "-id")
        .first()
    )


def condition_met(enrollment: Enrollment, condition: dict) -> bool:
    """Whether a branch's condition holds for the enrollment's customer now."""
    customer = enrollment.customer
    kind = condition.get("kind")
    if kind == "score_at_least":
        return customer.lead_score >= int(condition.get("value", 0))
    if kind == "lifecycle_stage_in":
        return customer.lifecycle_stage in (condition.get("value") or [])
    if kind in ("opened_previous", "clicked_previous"):
        email = previous_email(enrollment)
        if email is None:
            return False
        return (email.opened_at if kind == "opened_previous" else email.clicked_at) is not None
    return False


def describe_condition(condition: dict) -> str:
    """The condition in words (the builder's cards and the path page)."""
    kind = condition.get("kind")
    if kind == "score_at_least":
        return _("Lead score is at least %(score)s") % {"score": condition.get("value")}
    if kind == "lifecycle_stage_in":
        labels = dict(LifecycleStage.choices)
        stages = ", ".join(str(labels.get(s, s)) for s in condition.get("value") or [])
        return _("Lifecycle stage is one of: %(stages)s") % {"stages": stages}
    if kind == "opened_previous":
        return _("Opened the previous email")
    if kind == "clicked_previous":
        return _("Clicked the previous email")
    return _("No condition")


def _branch(enrollment: Enrollment, step: Step, run: StepRun, now: datetime.datetime) -> StepResult:
    if condition_met(enrollment, step.condition):
        return StepResult(StepRun.Outcome.BRANCH_YES, describe_condition(step.condition), step.position + 1)
    detail = (
        _("Went to step %(step)d") % {"step": step.else_position}
        if step.else_position
        else _("The sequence ends here")
    )
    return StepResult(StepRun.Outcome.BRANCH_NO, detail, step.else_position)


def _update_field(enrollment: Enrollment, step: Step, run: StepRun, now: datetime.datetime) -> StepResult:
    """Change the customer through the customers service: validated, and audited by the database."""
    from customers.services.customers import customer_update

    customer = Customer.objects.select_for_update().get(
        organization_id=enrollment.organization_id, pk=enrollment.customer_id
    )
    field, value = step.update.get("field"), step.update.get("value")
    reason = _("Sequence: %(name)s") % {"name": enrollment.sequence.name}
    following = step.position + 1
    if field == "lifecycle_stage":
        changes, detail = (
            {"lifecycle_stage": value},
            _("Lifecycle stage: %(value)s") % {"value": dict(LifecycleStage.choices).get(value, value)},
        )
    elif field == "tags_add":
        changes, detail = {"tags": [*customer.tags, value]}, _("Tag added: %(value)s") % {"value": value}
    elif field == "vip_status":
        changes, detail = {"vip_status": bool(value)}, _("VIP: yes") if value else _("VIP: no")
    else:
        owner = User.objects.filter(
            organization_id=enrollment.organization_id, is_active=True, pk=value
        ).first()
        if owner is None:
            return StepResult(
                StepRun.Outcome.UPDATED, _("Not changed: the owner is no longer active."), following
            )
        changes, detail = (
            {"assigned_to": owner},
            _("Owner: %(name)s") % {"name": owner.get_full_name() or owner.email},
        )
    try:
        customer_update(customer=customer, actor=None, reason=reason, **changes)
    except ValidationError as error:
        return StepResult(
            StepRun.Outcome.UPDATED,
            _("Not changed: %(error)s") % {"error": " ".join(error.messages)},
            following,
        )
    enrollment.customer = customer
    return StepResult(StepRun.Outcome.UPDATED, detail, following)


def _create_task(enrollment: Enrollment, step: Step, run: StepRun, now: datetime.datetime) -> StepResult:
    """A task (sales activity) for the customer's owner, due in N days; unassigned if there is no active
    owner."""
    from sales.models import Activity
    from sales.services.activities import activity_create

    customer = enrollment.customer
    owner = customer.assigned_to if customer.assigned_to and customer.assigned_to.is_active else None
    activity = activity_create(
        organization=enrollment.sequence.organization,
        actor=None,
        kind=Activity.Kind.TASK,
        subject=step.task_subject,
        customer=customer,
        owner=owner,
        description=_("Created by the sequence %(name)s.") % {"name": enrollment.sequence.name},
        due_at=now + datetime.timedelta(days=step.task_due_days or 0),
    )
    detail = (
        _("%(subject)s, for %(owner)s")
        % {"subject": activity.subject, "owner": owner.get_full_name() or owner.email}
        if owner
        else _("%(subject)s, unassigned (the customer has no owner)") % {"subject": activity.subject}
    )
    return StepResult(StepRun.Outcome.TASK, detail, step.position + 1)


_EXECUTORS = {
    Step.Kind.SEND_EMAIL: _send_email,
    Step.Kind.WAIT: _wait,
    Step.Kind.BRANCH: _branch,
    Step.Kind.UPDATE_FIELD: _update_field,
    Step.Kind.CREATE_TASK: _create_task,
}
