"""Nightly anonymization of stale customers (the design document's `anonymize_old_customer_data`).

A customer is stale when it is inactive, not already anonymized or erased, and nobody has been in contact
for longer than the organization's `PrivacySettings.customer_retention_days` (7 years by default): its
last contact (or, never contacted, its creation) is older than the cut-off AND no interaction is newer
than the cut-off (`last_contact_date` only moves forward through the services; an imported or back-dated
interaction is caught by the second test). One set-based query, served by two small partial indexes
(compliance migration 0002: inactive customers not yet anonymized, by last contact and, never contacted, by
creation) and, for the NOT EXISTS, by `interaction_logs_customer_idx` on the partitions newer than the
cut-off only (older partitions are pruned).

Anonymization goes through the personal-data registry (`compliance.erasure.erase_customers`, mode
"anonymize"), a batch at a time, each batch in its own transaction together with the run's counters: a
crash rolls back the batch it was in, so no customer is ever half anonymized, and the run row says exactly
how many were done. Re-running continues where it stopped, because the selection excludes anonymized
customers; a run with nothing to do anonymizes 0 (idempotent). Batches lock their customers with
`FOR UPDATE SKIP LOCKED`, so two runs at once (beat and a command) never process the same customer.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.models import AnonymizationRun, PrivacySettings
from crm.models import Organization, User
from crm.permissions import Capability, require_capability
from crm.tenancy import system_context, tenant_context
from customers.models import Customer, Interaction

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500  # ~500 customers' rows across all registered tables: well under a second a batch
SAMPLE_SIZE = 20  # customer numbers a dry run shows


@dataclass
class AnonymizationResult:
    """What a run did (or, in a dry run, would do)."""

    organization_id: uuid.UUID
    run: AnonymizationRun
    cutoff: datetime.datetime
    stale_found: int
    anonymized: int = 0
    batches: int = 0
    dry_run: bool = False
    sample_numbers: list[int] = field(default_factory=list)


def privacy_settings_for(organization_id) -> PrivacySettings:
    """The organization's settings, or the defaults (unsaved) while it has never saved any."""
    found = PrivacySettings.objects.filter(organization_id=organization_id).first()
    return found or PrivacySettings(organization_id=organization_id)


def stale_cutoff(retention_days: int, *, now: datetime.datetime | None = None) -> datetime.datetime:
    """Customers without contact since this moment are stale."""
    return (now or timezone.now()) - datetime.timedelta(days=retention_days)


def stale_customers(*, organization_id, cutoff: datetime.datetime) -> QuerySet[Customer]:
    """The stale customers of one organization, in id order (for keyset batching)."""
    recent_interaction = Interaction.objects.filter(
        organization_id=OuterRef("organization_id"), customer_id=OuterRef("pk"), interaction_date__gte=cutoff
    )
    return (
        Customer.objects.filter(
            organization_id=organization_id,
            status=Customer.Status.INACTIVE,
            anonymized_at__isnull=True,
            erased_at__isnull=True,
        )
        # coalesce(last_contact_date, created_at) < cutoff, spelt so that each branch is an index condition
        # on one of the partial indexes of migration 0002 (row-level security keeps the planner from using
        # a condition on the coalesce expression itself).
        .filter(Q(last_contact_date__lt=cutoff) | Q(last_contact_date__isnull=True, created_at__lt=cutoff))
        .filter(~Exists(recent_interaction))
        .order_by("pk")
    )


@dataclass(frozen=True)
class StalePreview:
    cutoff: datetime.datetime
    retention_days: int
    count: int
    sample_numbers: list[int]


def preview_stale(
    *, organization_id, settings: PrivacySettings | None = None, now: datetime.datetime | None = None
) -> StalePreview:
    """How many customers the next run would anonymize, and the first few numbers (reads only)."""
    settings = settings or privacy_settings_for(organization_id)
    cutoff = stale_cutoff(settings.customer_retention_days, now=now)
    rows = stale_customers(organization_id=organization_id, cutoff=cutoff)
    return StalePreview(
        cutoff=cutoff,
        retention_days=settings.customer_retention_days,
        count=rows.count(),
        sample_numbers=list(rows.values_list("number", flat=True)[:SAMPLE_SIZE]),
    )


def anonymize_batch(*, organization_id, customer_ids: list, run: AnonymizationRun) -> int:
    """Anonymize one batch through the registry (inside the batch's transaction); returns how many."""
    from compliance.erasure import erase_customers

    erase_customers(
        organization_id=organization_id,
        customer_ids=customer_ids,
        mode="anonymize",
        actor=None,
        reason=_("No contact for more than %(days)s days (anonymization run %(run)s)")
        % {"days": run.retention_days, "run": run.pk},
    )
    return len(customer_ids)


def anonymize_stale(
    *,
    organization_id,
    actor: User | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
    now: datetime.datetime | None = None,
) -> AnonymizationResult:
    """Anonymize the organization's stale customers, `batch_size` at a time; record the run.

    Not one transaction on purpose: the run row is committed first, then each batch commits on its own
    (with the run's counters), so a crash loses at most the batch in flight, wholly. Call it outside a
    transaction (a task, a command); inside one, the batches are only savepoints of the caller's.
    `progress(done, total)` is called after each batch (the command's progress bar).
    """
    require_capability(actor, Capability.MANAGE_PRIVACY_SETTINGS)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = now or timezone.now()
    with tenant_context(organization_id, user=actor):
        settings = privacy_settings_for(organization_id)
        cutoff = stale_cutoff(settings.customer_retention_days, now=started)
        rows = stale_customers(organization_id=organization_id, cutoff=cutoff)
        found = rows.count()
        sample = list(rows.values_list("number", flat=True)[:SAMPLE_SIZE]) if dry_run else []
        run = AnonymizationRun.objects.create(
            organization_id=organization_id,
            dry_run=dry_run,
            retention_days=settings.customer_retention_days,
            cutoff=cutoff,
            stale_found=found,
            started_at=started,
            started_by=actor,
            status=AnonymizationRun.Status.COMPLETED if dry_run else AnonymizationRun.Status.RUNNING,
            finished_at=timezone.now() if dry_run else None,
        )
    result = AnonymizationResult(
        organization_id=organization_id,
        run=run,
        cutoff=cutoff,
        stale_found=found,
        dry_run=dry_run,
        sample_numbers=sample,
    )
    if dry_run:
        return result
    try:
        _run_batches(result, actor=actor, batch_size=batch_size, progress=progress)
    except BaseException as error:
        _finish(
            run, actor=actor, status=AnonymizationRun.Status.FAILED, error=f"{type(error).__name__}: {error}"
        )
        logger.exception("Anonymization run %s of organization %s failed", run.pk, organization_id)
        raise
    _finish(run, actor=actor, status=AnonymizationRun.Status.COMPLETED)
    return result


def _run_batches(result: AnonymizationResult, *, actor, batch_size: int, progress) -> None:
    run = result.run
    after: uuid.UUID | None = None
    while True:
        with tenant_context(result.organization_id, user=actor):
            rows = stale_customers(organization_id=result.organization_id, cutoff=result.cutoff)
            if after is not None:
                # Keyset: each batch starts past the last one, so the run ends even if a customer could
                # not leave the selection (locked by a concurrent run and skipped, for instance).
                rows = rows.filter(pk__gt=after)
            batch = list(
                rows.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True)[
                    :batch_size
                ]
            )
            if not batch:
                return
            after = batch[-1]
            done = anonymize_batch(organization_id=result.organization_id, customer_ids=batch, run=run)
            run.anonymized_count += done
            run.batches += 1
            run.save(update_fields=["anonymized_count", "batches"])
        result.anonymized, result.batches = run.anonymized_count, run.batches
        if progress is not None:
            progress(result.anonymized, result.stale_found)


def _finish(run: AnonymizationRun, *, actor, status: str, error: str = "") -> None:
    """Close the run in its own transaction (the failed batch's one is gone)."""
    with tenant_context(run.organization_id, user=actor):
        AnonymizationRun.objects.filter(pk=run.pk).update(
            status=status, error=error[:500], finished_at=timezone.now()
        )
    run.status, run.error = status, error[:500]


def organizations_to_anonymize() -> list[uuid.UUID]:
    """Every organization that has not switched nightly anonymization off (the default is on). Suspended
    ones too: an unpaid subscription does not extend how long personal data may be kept."""
    with system_context():
        disabled = PrivacySettings.objects.filter(anonymization_enabled=False).values("organization_id")
        return list(Organization.objects.exclude(pk__in=disabled).order_by("pk").values_list("pk", flat=True))


def recent_runs(*, organization_id, limit: int = 10) -> list[AnonymizationRun]:
    """The organization's latest runs, newest first (the settings page)."""
    return list(
        AnonymizationRun.objects.filter(organization_id=organization_id)
        .select_related("started_by")
        .order_by("-started_at", "-id")[:limit]
    )
