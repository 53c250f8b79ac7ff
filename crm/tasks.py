"""Platform tasks: thin, idempotent, primary keys only."""

from celery import shared_task

from crm import health, services
from crm.celery import SystemTask


@shared_task(name="crm.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Proves a worker is consuming (read by /healthz and `manage.py health`)."""
    health.record_heartbeat()


@shared_task(name="crm.tasks.ensure_partitions", base=SystemTask, ignore_result=True)
def ensure_partitions() -> dict[str, int]:
    """Create the coming months' partitions of every partitioned table (idempotent)."""
    return services.partitions_ensure()
