"""Tasks of the abtests area (see marketing/tasks/__init__.py): deciding A/B tests once their time is up."""

from __future__ import annotations

from celery import shared_task

from crm.celery import SystemTask, TenantTask

__all__ = ["decide_ab_test", "decide_due_ab_tests"]


@shared_task(name="marketing.tasks.decide_ab_test", base=TenantTask, ignore_result=True)
def decide_ab_test(ab_test_id: str) -> str:
    """Decide one running test whose time is up and release its held recipients; returns its status.
    Idempotent: a test already decided (or gone) is left as it is."""
    from marketing.models import ABTest
    from marketing.services.abtests import abtest_decide

    ab_test = ABTest.objects.filter(pk=ab_test_id).first()
    if ab_test is None:
        return "missing"
    return abtest_decide(ab_test=ab_test, actor=None).status


@shared_task(name="marketing.tasks.decide_due_ab_tests", base=SystemTask, ignore_result=True)
def decide_due_ab_tests() -> int:
    """Every five minutes: one decision task per running test whose decision time has passed, each in its
    organization's tenant context and transaction; returns how many were enqueued."""
    from marketing.services.abtests import due_ab_tests

    due = due_ab_tests()
    for organization_id, ab_test_id in due:
        decide_ab_test.delay_on_commit(str(ab_test_id), organization_id=str(organization_id))
    return len(due)
