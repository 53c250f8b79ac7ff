"""Background work of the sales app: thin tasks that take primary keys and call one service.

TenantTasks are called with `organization_id=` and run inside that organization's tenant context;
SystemTasks run as the platform. Every task is idempotent. Each area keeps its tasks in its own section.
"""

from __future__ import annotations

from celery import shared_task

from crm.celery import SystemTask, TenantTask
from crm.tenancy import current_organization_id

# --- dashboard (sales/dashboard.py) ------------------------------------------------------------------------


@shared_task(name="sales.tasks.refresh_sales_dashboard", base=SystemTask, ignore_result=True)
def refresh_sales_dashboard() -> str | None:
    """Every 30 minutes (and on "Refresh"): refresh the sales dashboard of every organization, CONCURRENTLY;
    returns when (None: another refresh was running)."""
    from sales.dashboard import dashboard_refresh

    refreshed_at = dashboard_refresh()
    return refreshed_at.isoformat() if refreshed_at else None


# --- activities: reminders and the no-activity rule (sales/services/activities.py) --------------------------


@shared_task(name="sales.tasks.deliver_activity_reminders", base=TenantTask, ignore_result=True)
def deliver_activity_reminders() -> int:
    """Deliver the organization's due reminders (each once: notification + email); returns how many."""
    from sales.services.activities import activity_reminders_deliver

    return activity_reminders_deliver(organization_id=current_organization_id())


@shared_task(name="sales.tasks.send_due_reminders", base=SystemTask, ignore_result=True)
def send_due_reminders() -> int:
    """Every minute: one delivery task per organization with a reminder due, each in its own tenant
    context and transaction; returns how many were enqueued."""
    from sales.selectors.activities import organizations_with_due_reminders

    organization_ids = organizations_with_due_reminders()
    for organization_id in organization_ids:
        deliver_activity_reminders.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)


@shared_task(name="sales.tasks.create_no_activity_followups", base=TenantTask, ignore_result=True)
def create_no_activity_followups() -> int:
    """Give the organization's idle open deals their follow-up task (once per idle spell)."""
    from sales.services.activities import no_activity_followups_create

    return no_activity_followups_create(organization_id=current_organization_id())


@shared_task(name="sales.tasks.no_activity_followups_all", base=SystemTask, ignore_result=True)
def no_activity_followups_all() -> int:
    """Hourly: one no-activity sweep per trial or active organization with open deals."""
    from sales.selectors.activities import organizations_for_no_activity_rule

    organization_ids = organizations_for_no_activity_rule()
    for organization_id in organization_ids:
        create_no_activity_followups.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)


# --- quotes: expiry (sales/services/quotes.py) --------------------------------------------------------------


@shared_task(name="sales.tasks.expire_organization_quotes", base=TenantTask, ignore_result=True)
def expire_organization_quotes() -> int:
    """Expire the organization's quotes whose valid-until date has passed (its own today); returns how many."""
    from sales.services.quotes import quotes_expire_due

    return quotes_expire_due(organization_id=current_organization_id())


@shared_task(name="sales.tasks.expire_quotes", base=SystemTask, ignore_result=True)
def expire_quotes() -> int:
    """Daily: one expiry task per organization that may have a quote past its date, each in its own tenant
    context and transaction; returns how many were enqueued."""
    from sales.selectors.quotes import organizations_with_expirable_quotes

    organization_ids = organizations_with_expirable_quotes()
    for organization_id in organization_ids:
        expire_organization_quotes.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)
