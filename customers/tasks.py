"""Background work of the customers app: thin tasks that take primary keys and call one service.

TenantTasks are called with `organization_id=` and run inside that organization's tenant context;
SystemTasks run as the platform. Every task is idempotent.
"""

from __future__ import annotations

from celery import shared_task
from django.db import IntegrityError

from crm.celery import SystemTask, TenantTask
from crm.tenancy import current_organization_id

# --- scoring (customers/scoring/) --------------------------------------------------------------------------


@shared_task(name="customers.tasks.rescore_customers", base=TenantTask, ignore_result=True)
def rescore_customers(customer_ids: list[str] | None = None) -> int:
    """Recompute the lead, engagement and health scores of these customers (None: the whole organization)."""
    from customers.services.scoring import scores_recompute

    return scores_recompute(organization_id=current_organization_id(), customer_ids=customer_ids)


@shared_task(name="customers.tasks.score_all_organizations", base=SystemTask, ignore_result=True)
def score_all_organizations() -> int:
    """Nightly: one rescoring task per trial or active organization, each in its own tenant context and
    transaction (a failure in one leaves the others scored); returns how many were enqueued."""
    from crm.models import Organization

    organization_ids = list(
        Organization.objects.filter(status__in=[Organization.Status.TRIAL, Organization.Status.ACTIVE])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for organization_id in organization_ids:
        rescore_customers.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)


# --- imports (customers/importing.py) ----------------------------------------------------------------------


@shared_task(name="customers.tasks.run_import", base=TenantTask, ignore_result=True)
def run_import(job_id: str) -> None:
    """Validate and apply an uploaded CSV, all or nothing (a job already done or failed is left as it is)."""
    from django.conf import settings

    from customers.services.imports import import_job_run

    import_job_run(
        job_id=job_id, max_rows=settings.CRM_IMPORT_MAX_ROWS, max_bytes=settings.CRM_IMPORT_MAX_BYTES
    )


# --- segments (customers/segments/) ------------------------------------------------------------------------


@shared_task(name="customers.tasks.refresh_organization_segments", base=TenantTask, ignore_result=True)
def refresh_organization_segments() -> dict[str, int]:
    """Refresh every dynamic segment of the organization (each in its own savepoint)."""
    from customers.services.segments import segments_refresh_dynamic

    return segments_refresh_dynamic(organization_id=current_organization_id())


@shared_task(name="customers.tasks.refresh_dynamic_segments", base=SystemTask, ignore_result=True)
def refresh_dynamic_segments() -> int:
    """Hourly: one refresh task per organization that has dynamic segments, each in its own tenant context
    and transaction; returns how many were enqueued."""
    from customers.segments.selectors import organizations_with_dynamic_segments

    organization_ids = organizations_with_dynamic_segments()
    for organization_id in organization_ids:
        refresh_organization_segments.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)


# --- duplicates (customers/duplicates/) --------------------------------------------------------------------


@shared_task(
    name="customers.tasks.refresh_duplicate_pairs",
    base=TenantTask,
    ignore_result=True,
    # A customer deleted while the refresh computed fails the new rows' foreign-key check: run again.
    autoretry_for=(IntegrityError,),
    retry_backoff=True,
    max_retries=3,
)
def refresh_duplicate_pairs() -> int:
    """Recompute the organization's likely duplicate pairs into the table the duplicates page reads;
    returns how many pairs there are."""
    from customers.duplicates.refresh import duplicate_pairs_refresh

    return duplicate_pairs_refresh(organization_id=current_organization_id()).pairs


@shared_task(name="customers.tasks.refresh_all_duplicate_pairs", base=SystemTask, ignore_result=True)
def refresh_all_duplicate_pairs() -> int:
    """Hourly: one duplicates refresh per trial or active organization, each in its own tenant context and
    transaction; returns how many were enqueued."""
    from customers.duplicates.refresh import organizations_to_refresh

    organization_ids = organizations_to_refresh()
    for organization_id in organization_ids:
        refresh_duplicate_pairs.delay_on_commit(organization_id=str(organization_id))
    return len(organization_ids)
