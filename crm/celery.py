"""The one Celery app, and the one beat schedule (documented in docs/operations.md)."""

import os

from celery import Celery
from celery.contrib.django.task import DjangoTask
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.dev")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "worker-heartbeat": {"task": "crm.tasks.heartbeat", "schedule": 60.0},
    "ensure-partitions": {"task": "crm.tasks.ensure_partitions", "schedule": crontab(hour=2, minute=0)},
    "score-leads": {
        "task": "customers.tasks.score_all_organizations",
        "schedule": crontab(hour=3, minute=30),
    },
    "refresh-segments": {"task": "customers.tasks.refresh_dynamic_segments", "schedule": crontab(minute=15)},
    "sla-escalations": {"task": "support.tasks.sweep_escalations", "schedule": crontab()},
    "route-waiting-tickets": {"task": "support.tasks.route_all_waiting", "schedule": crontab(minute="*/5")},
    "nps-surveys": {
        "task": "support.tasks.send_all_nps_surveys",
        "schedule": crontab(day_of_week="mon", hour=10, minute=0),
    },
    "reconcile-agent-load": {
        "task": "support.tasks.reconcile_all_agent_loads",
        "schedule": crontab(hour=2, minute=40),
    },
    "refresh-duplicates": {
        "task": "customers.tasks.refresh_all_duplicate_pairs",
        "schedule": crontab(minute=45),
    },
    "refresh-sales-dashboard": {
        "task": "sales.tasks.refresh_sales_dashboard",
        "schedule": crontab(minute="*/30"),
    },
    "activity-reminders": {"task": "sales.tasks.send_due_reminders", "schedule": 60.0},
    "no-activity-followups": {"task": "sales.tasks.no_activity_followups_all", "schedule": crontab(minute=5)},
    "expire-quotes": {"task": "sales.tasks.expire_quotes", "schedule": crontab(hour=0, minute=20)},
    "marketing-dispatch-sends": {"task": "marketing.tasks.dispatch_due_campaigns", "schedule": 60.0},
    "marketing-sweep-interrupted-sends": {
        "task": "marketing.tasks.sweep_interrupted_sends",
        "schedule": crontab(minute="*/10"),
    },
    "decide-ab-tests": {"task": "marketing.tasks.decide_due_ab_tests", "schedule": crontab(minute="*/5")},
    "advance-sequences": {"task": "marketing.tasks.advance_sequences", "schedule": 60.0},
    "enroll-sequences": {"task": "marketing.tasks.enroll_sequences", "schedule": crontab(minute="*/10")},
    # Hourly: exactly once per request and level is enforced by the service; the period only bounds lateness.
    "privacy-deadlines": {
        "task": "compliance.tasks.requests.remind_privacy_deadlines",
        "schedule": crontab(minute=5),
    },
    # Plain tasks (not tenant or system tasks): they commit per batch / per partition drop.
    "anonymize-stale-customers": {
        "task": "compliance.tasks.maintenance.anonymize_all_organizations",
        "schedule": crontab(hour=1, minute=30),
    },
    "apply-retention": {
        "task": "compliance.tasks.maintenance.apply_partition_retention",
        "schedule": crontab(hour=2, minute=20),  # after ensure-partitions (02:00); daily, idempotent
    },
}


class TenantTask(DjangoTask):
    """A task that runs its body inside `tenant_context(organization_id)`.

    Call it with `organization_id=` (a string or UUID) as a keyword argument; the body receives the
    remaining arguments (primary keys, never model instances). Without an organization id it raises: a
    task never quietly runs with no tenant. Enqueue with `.delay_on_commit(...)`.
    """

    abstract = True
    autoretry_for = ()
    # Celery's own argument check would refuse `organization_id`, which is for __call__, not the body;
    # apply_async checks the body's arguments without it instead.
    typing = False

    def apply_async(self, args=None, kwargs=None, *more, **options):
        header = getattr(self, "__header__", None)
        if header is not None:
            header(*(args or ()), **{k: v for k, v in (kwargs or {}).items() if k != "organization_id"})
        return super().apply_async(args, kwargs, *more, **options)

    def __call__(self, *args, **kwargs):
        from crm.tenancy import TenantContextError, tenant_context

        organization_id = kwargs.pop("organization_id", None)
        if not organization_id:
            raise TenantContextError(f"Task {self.name} needs organization_id=...")
        with tenant_context(organization_id, request_id=f"task-{self.request.id or 'eager'}"):
            return super().__call__(*args, **kwargs)


class SystemTask(DjangoTask):
    """A platform task (partitions, sweeps across organizations) that runs inside `system_context()`."""

    abstract = True

    def __call__(self, *args, **kwargs):
        from crm.tenancy import system_context

        with system_context(request_id=f"task-{self.request.id or 'eager'}"):
            return super().__call__(*args, **kwargs)
