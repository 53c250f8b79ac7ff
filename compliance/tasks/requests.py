"""Tasks of the requests area (see compliance/tasks/__init__.py): running queued exports and erasures, and
the deadline-reminder sweep."""

from __future__ import annotations

from celery import shared_task

from crm.celery import SystemTask, TenantTask

__all__ = ["process_privacy_request", "remind_privacy_deadlines"]


@shared_task(name="compliance.tasks.requests.process_privacy_request", base=TenantTask, ignore_result=True)
def process_privacy_request(kind: str, request_id: str, actor_id: str | None = None) -> str:
    """Run one queued export or erasure; returns the request's status. Idempotent: a request already done
    (or gone, or no longer queued) is left as it is."""
    from compliance.services.requests import model_for, request_run
    from crm.models import User

    privacy_request = model_for(kind).objects.filter(pk=request_id).first()
    if privacy_request is None:
        return "missing"
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    return request_run(privacy_request=privacy_request, actor=actor).status


@shared_task(name="compliance.tasks.requests.remind_privacy_deadlines", base=SystemTask, ignore_result=True)
def remind_privacy_deadlines() -> int:
    """Hourly: notify handlers of requests 7 days from their deadline and of overdue ones, once per level."""
    from compliance.services.requests import privacy_deadlines_remind

    return privacy_deadlines_remind()
