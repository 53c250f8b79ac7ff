"""Tasks of the maintenance area (see compliance/tasks/__init__.py): nightly anonymization of stale
customers and retention's partition drops.

Plain tasks, not TenantTask/SystemTask, on purpose: those run the whole body in one transaction, while
anonymization commits batch by batch (a crash loses one batch, wholly) and retention drops each partition
in its own short transaction (an ACCESS EXCLUSIVE lock held no longer than the drop). The functions they
call open their own tenant or system contexts.
"""

from __future__ import annotations

from celery import shared_task

__all__ = ["anonymize_all_organizations", "anonymize_stale_customers", "apply_partition_retention"]


@shared_task(name="compliance.tasks.maintenance.anonymize_stale_customers", ignore_result=True)
def anonymize_stale_customers(organization_id: str) -> int:
    """Anonymize one organization's stale customers; returns how many. Idempotent: a second run finds
    none (the selection excludes anonymized customers), a run after a crash continues."""
    from compliance.anonymization import anonymize_stale

    return anonymize_stale(organization_id=organization_id).anonymized


@shared_task(name="compliance.tasks.maintenance.anonymize_all_organizations", ignore_result=True)
def anonymize_all_organizations() -> int:
    """Nightly: one anonymization task per organization with it enabled (each its own task, so a failure in
    one leaves the others done); returns how many were enqueued."""
    from compliance.anonymization import organizations_to_anonymize

    organization_ids = organizations_to_anonymize()
    for organization_id in organization_ids:
        anonymize_stale_customers.delay(str(organization_id))
    return len(organization_ids)


@shared_task(name="compliance.tasks.maintenance.apply_partition_retention", ignore_result=True)
def apply_partition_retention() -> int:
    """Drop the monthly log partitions every organization with rows in them is done keeping; returns how
    many were dropped. Idempotent: what is dropped is gone from the next plan."""
    from compliance.retention import apply_retention

    return len(apply_retention().dropped)
