"""Writes of the CSV import: a job from an upload (or a file on the server), and running a job.

The pipeline itself (validation, COPY into staging, set-based upsert) is `customers.importing`; this module
keeps the `ImportJob` row in step with it: its progress, written from a second connection while the import
transaction is open, and its outcome, written in the import transaction itself (so "done" and the data
commit together, and a crash leaves neither).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from crm import tenancy
from crm.models import Organization, User
from crm.permissions import Capability, has_capability
from customers import importing
from customers.models import ImportJob

logger = logging.getLogger(__name__)


UPLOAD_DIR = "imports"  # under MEDIA_ROOT, which is never served
FINISHED = frozenset({ImportJob.Status.DONE, ImportJob.Status.FAILED})

Echo = Callable[[str, int, int], None]  # (phase, rows processed, total rows): the commands print it


def _require(actor: User | None) -> None:
    """Commands pass no actor (the operator at the shell); a user needs the import capability."""
    if actor is not None and not has_capability(actor, Capability.IMPORT_CUSTOMERS):
        raise PermissionDenied


def upload_path(job: ImportJob) -> str:
    """Where an uploaded file is kept, relative to MEDIA_ROOT: imports/<organization>/<job>.csv."""
    return f"{UPLOAD_DIR}/{job.organization_id}/{job.pk}.csv"


def _absolute(file_path: str) -> Path:
    path = Path(file_path)
    return path if path.is_absolute() else Path(settings.MEDIA_ROOT) / path


def _is_upload(file_path: str) -> bool:
    """An uploaded copy (ours to delete), as opposed to a file the import command was pointed at."""
    root = (Path(settings.MEDIA_ROOT) / UPLOAD_DIR).resolve()
    return _absolute(file_path).resolve().is_relative_to(root)


@transaction.atomic
def import_job_create(
    *, organization: Organization, actor: User, kind: str, policy: str, upload
) -> ImportJob:
    """Keep the uploaded file under MEDIA_ROOT/imports/ and queue its import (once this transaction
    commits, so the worker finds the job)."""
    from customers.tasks import run_import

    _require(actor)
    job = ImportJob(
        organization=organization,
        kind=kind,
        policy=policy,
        file_name=os.path.basename(upload.name)[:255],
        created_by=actor,
    )
    job.file_path = upload_path(job)
    target = _absolute(job.file_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    try:
        job.save(force_insert=True)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    run_import.delay_on_commit(job_id=str(job.pk), organization_id=str(organization.pk))
    return job


@transaction.atomic
def import_job_create_from_file(
    *, organization: Organization, kind: str, policy: str, path: Path, actor: User | None = None
) -> ImportJob:
    """A job for a file already on the server (the import commands): it is read where it is, never
    copied or deleted."""
    _require(actor)
    return ImportJob.objects.create(
        organization=organization,
        kind=kind,
        policy=policy,
        file_name=path.name[:255],
        file_path=str(path.resolve())[:500],
        created_by=actor,
    )


class _JobProgress:
    """Writes a job's progress through the side connection, each write committed at once, so the polling
    page sees it while the import transaction is still open. Touches only the job row, which the import
    transaction leaves alone until it records the outcome (see SideConnection on why that matters)."""

    def __init__(self, job: ImportJob, side: importing.SideConnection, echo: Echo | None) -> None:
        self.job = job
        self.side = side
        self.echo = echo
        self.total = 0

    def _write(self, **fields) -> None:
        allowed = {"status", "started_at", "total_rows", "processed_rows"}
        assert set(fields) <= allowed, fields  # column names come from this list only
        assignments = ", ".join(f"{name} = %s" for name in fields)
        self.side.execute(
            f"UPDATE customer_import_jobs SET {assignments} WHERE id = %s AND organization_id = %s",
            [*fields.values(), self.job.pk, self.job.organization_id],
        )

    def start(self) -> None:
        self.job.started_at = timezone.now()
        self._write(status=ImportJob.Status.VALIDATING, started_at=self.job.started_at, processed_rows=0)

    def __call__(self, phase: str, rows: int) -> None:
        if phase == "counted":
            self.total = rows
            self._write(total_rows=rows)
        elif phase == ImportJob.Status.IMPORTING:
            self._write(status=ImportJob.Status.IMPORTING, processed_rows=rows)
        else:
            self._write(processed_rows=rows)
        if self.echo is not None:
            self.echo(phase, rows, self.total)


def _failure_message(outcome: importing.ImportOutcome) -> str:
    count = outcome.error_count
    message = ngettext(
        "%(count)s error was found; nothing was imported.",
        "%(count)s errors were found; nothing was imported.",
        count,
    ) % {"count": number_format(count, force_grouping=True)}
    if count > len(outcome.errors):
        message += " " + _("The first %(shown)s are listed.") % {
            "shown": number_format(len(outcome.errors), force_grouping=True)
        }
    return message


def _try_lock(job: ImportJob) -> bool:
    """One run of a job at a time (a redelivered task finds it taken), until this transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", [f"customers.import:{job.pk}"]
        )
        return cursor.fetchone()[0]


def import_job_run(
    *,
    job_id: uuid.UUID | str,
    max_rows: int | None,
    max_bytes: int | None,
    echo: Echo | None = None,
    progress_every: int = importing.PROGRESS_EVERY,
) -> ImportJob | None:
    """Run an import job, all or nothing, in the current tenant context and transaction.

    Idempotent: a job that is done or failed is returned as it is, and a job another worker is running
    right now is left to it. `max_rows` / `max_bytes` are the caps (None: no cap). The outcome is written
    to the job in this transaction, so it commits together with the imported rows.
    """
    state = tenancy.require()
    if not connection.in_atomic_block:
        raise RuntimeError("import_job_run() runs inside a tenant context's transaction.")
    job = ImportJob.objects.select_related("organization", "created_by").filter(pk=job_id).first()
    if job is None:
        logger.warning("import job %s not found in organization %s", job_id, state.organization_id)
        return None
    if job.status in FINISHED or not _try_lock(job):
        return job
    actor = job.created_by
    # The rows are written as the person who uploaded the file, so the audit trail names them.
    with tenancy.tenant_context(job.organization_id, user=actor, request_id=state.request_id):
        with importing.SideConnection(job.organization_id) as side:
            progress = _JobProgress(job, side, echo)
            progress.start()
            try:
                with transaction.atomic():
                    outcome = importing.run_import(
                        path=_absolute(job.file_path),
                        kind=job.kind,
                        organization=job.organization,
                        actor_id=actor.pk if actor else None,
                        policy=job.policy,
                        max_rows=max_rows,
                        max_bytes=max_bytes,
                        progress=progress,
                        progress_every=progress_every,
                        side=side,
                        file_label=job.file_name,
                    )
            except FileNotFoundError:
                outcome = _single_error(_("The uploaded file is gone; upload it again."))
            except Exception:
                logger.exception("import job %s stopped on an unexpected error", job.pk)
                outcome = _single_error(_("The import stopped on an unexpected error; nothing was imported."))
        _record(job, outcome)
    if _is_upload(job.file_path):
        # Customer data is not kept on disk longer than the import needs it.
        path = _absolute(job.file_path)
        transaction.on_commit(lambda: path.unlink(missing_ok=True))
    return job


def _single_error(message: str) -> importing.ImportOutcome:
    return importing.ImportOutcome(errors=[{"line": None, "column": "", "message": message}], error_count=1)


def _record(job: ImportJob, outcome: importing.ImportOutcome) -> None:
    job.total_rows = outcome.total_rows
    job.processed_rows = outcome.processed_rows
    job.created_count = outcome.created
    job.updated_count = outcome.updated
    job.skipped_count = outcome.skipped
    job.errors = outcome.errors
    job.status = ImportJob.Status.DONE if outcome.ok else ImportJob.Status.FAILED
    job.message = "" if outcome.ok else _failure_message(outcome)[:500]
    job.finished_at = timezone.now()
    job.save(
        update_fields=[
            "total_rows", "processed_rows", "created_count", "updated_count", "skipped_count", "errors",
            "status", "message", "started_at", "finished_at",
        ]
    )  # fmt: skip
