"""Background work of the support app: thin tasks that take primary keys and call one service.

TenantTasks are called with `organization_id=` and run inside that organization's tenant context;
SystemTasks run as the platform. Every task is idempotent. Each area keeps its tasks in its own section.
"""

from __future__ import annotations

from celery import shared_task

from crm.celery import SystemTask, TenantTask
from crm.tenancy import current_organization_id

# --- SLA escalation (support/escalation.py) ----------------------------------------------------------------


@shared_task(name="support.tasks.escalate_organization", base=TenantTask, ignore_result=True)
def escalate_organization() -> dict:
    """Escalate the organization's tickets past half their SLA time or their deadline (each once per level
    and target, however often it runs); returns how many warnings and breaches it recorded."""
    from support.escalation import escalation_sweep

    result = escalation_sweep(organization_id=current_organization_id())
    return {"warnings": result.warnings, "breaches": result.breaches}


@shared_task(name="support.tasks.sweep_escalations", base=SystemTask, ignore_result=True)
def sweep_escalations() -> int:
    """Every minute: one escalation task per organization with a ticket to escalate, each in its own tenant
    context and transaction; returns how many were enqueued."""
    from support.escalation import organizations_with_due_escalations

    organization_ids = organizations_with_due_escalations()
    for organization_id in organization_ids:
        escalate_organization.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)


# --- routing (support/routing.py) --------------------------------------------------------------------------


@shared_task(name="support.tasks.route_waiting_tickets", base=TenantTask, ignore_result=True)
def route_waiting_tickets() -> int:
    """Route the organization's queued tickets to agents with free capacity; returns how many were routed."""
    from support.routing import route_waiting

    return route_waiting(organization_id=current_organization_id())


@shared_task(name="support.tasks.route_all_waiting", base=SystemTask, ignore_result=True)
def route_all_waiting() -> int:
    """Every five minutes: one routing task per organization with a ticket waiting in the team queue (what a
    release skipped because an agent was busy, an agent who came back, a changed department); returns how
    many were enqueued."""
    from support.routing import organizations_with_waiting_tickets

    organization_ids = organizations_with_waiting_tickets()
    for organization_id in organization_ids:
        route_waiting_tickets.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)


@shared_task(name="support.tasks.reconcile_agent_load", base=TenantTask, ignore_result=True)
def reconcile_agent_load() -> int:
    """Recount every agent's open tickets; returns how many counters were wrong."""
    from support.routing import agents_reconcile

    return agents_reconcile(organization_id=current_organization_id())


@shared_task(name="support.tasks.reconcile_all_agent_loads", base=SystemTask, ignore_result=True)
def reconcile_all_agent_loads() -> int:
    """Nightly: one reconcile task per organization with agent profiles; returns how many were enqueued."""
    from support.routing import organizations_with_agents

    organization_ids = organizations_with_agents()
    for organization_id in organization_ids:
        reconcile_agent_load.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)


# --- surveys (support/surveys.py) --------------------------------------------------------------------------


@shared_task(name="support.tasks.send_nps_surveys", base=TenantTask, ignore_result=True)
def send_nps_surveys() -> int:
    """Survey the next batch of the organization's eligible customers for NPS (none surveyed twice within
    90 days, however often it runs); returns how many surveys went out."""
    from support.surveys import nps_surveys_send

    return nps_surveys_send(organization_id=current_organization_id())


@shared_task(name="support.tasks.send_all_nps_surveys", base=SystemTask, ignore_result=True)
def send_all_nps_surveys() -> int:
    """Weekly: one NPS task per trial or active organization; returns how many were enqueued."""
    from crm.models import Organization

    organization_ids = list(
        Organization.objects.filter(status__in=[Organization.Status.TRIAL, Organization.Status.ACTIVE])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for organization_id in organization_ids:
        send_nps_surveys.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)
