"""Tasks of the sequences area (see marketing/tasks/__init__.py): advancing enrollments, and enrolling by
segment and lead score. Both fan out from a platform task to one tenant task per organization."""

from __future__ import annotations

from celery import shared_task

from crm.celery import SystemTask, TenantTask
from crm.tenancy import current_organization_id

__all__ = [
    "advance_organization_sequences",
    "advance_sequences",
    "enroll_organization_sequences",
    "enroll_sequences",
]


@shared_task(name="marketing.tasks.advance_organization_sequences", base=TenantTask, ignore_result=True)
def advance_organization_sequences() -> dict:
    """One pass over the organization's due enrollments (one batch, one transaction); when the batch was
    full another pass is enqueued, so a backlog drains without one long transaction."""
    from marketing.sequences import advance_due

    organization_id = current_organization_id()
    result = advance_due(organization_id=organization_id)
    if result.more:
        advance_organization_sequences.delay_on_commit(organization_id=str(organization_id))
    return {"enrollments": result.enrollments, "steps": result.steps, "failed": result.failed}


@shared_task(name="marketing.tasks.advance_sequences", base=SystemTask, ignore_result=True)
def advance_sequences() -> int:
    """Every minute: one advance task per organization with a due enrollment; returns how many were
    enqueued. Idempotent: a pass run twice advances each enrollment once (marketing/sequences.py)."""
    from marketing.sequences import organizations_with_due_enrollments

    organization_ids = organizations_with_due_enrollments()
    for organization_id in organization_ids:
        advance_organization_sequences.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)


@shared_task(name="marketing.tasks.enroll_organization_sequences", base=TenantTask, ignore_result=True)
def enroll_organization_sequences() -> int:
    """Enroll, set-based, the segment members and high scorers of the organization's active sequences;
    returns how many were enrolled (a second run enrolls nobody twice)."""
    from marketing.services.sequences import enrollments_by_triggers

    return enrollments_by_triggers(organization_id=current_organization_id())


@shared_task(name="marketing.tasks.enroll_sequences", base=SystemTask, ignore_result=True)
def enroll_sequences() -> int:
    """Every ten minutes: one enrollment task per organization with an active sequence that enrolls by
    segment or lead score; returns how many were enqueued."""
    from marketing.services.sequences import organizations_with_enrollment_triggers

    organization_ids = organizations_with_enrollment_triggers()
    for organization_id in organization_ids:
        enroll_organization_sequences.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)
