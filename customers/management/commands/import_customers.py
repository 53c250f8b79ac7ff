"""`manage.py import_customers FILE --org SLUG [--update]`: the web import's pipeline, run synchronously.

The file is read where it is (streaming, never loaded whole), validated row by row and applied all or
nothing in the organization's tenant context. Progress goes to standard error every N rows; the summary
to standard output. An invalid file exits with status 1 and the validation report (the first 50 errors
and how many more there are). The job is recorded like a web import, so it is listed on the Imports page.
The web caps (CRM_IMPORT_MAX_BYTES / CRM_IMPORT_MAX_ROWS) do not apply unless given as options.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.formats import number_format

from crm.models import Organization
from crm.tenancy import system_context, tenant_context
from customers.models import ImportJob
from customers.services.imports import import_job_create_from_file, import_job_run

REPORT_LINES = 50


def _n(value: int) -> str:
    return number_format(value, force_grouping=True)


def _counted(count: int, noun: str, nouns: str) -> str:
    return f"{_n(count)} {noun if count == 1 else nouns}"


def _rows(count: int) -> str:
    return _counted(count, "row", "rows")


class ImportCommand(BaseCommand):
    """What both import commands share; subclasses set `kind` and may add options."""

    kind: str = ImportJob.Kind.CUSTOMERS

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of the CSV file (UTF-8, header line first)")
        parser.add_argument("--org", required=True, help="slug of the organization to import into")
        parser.add_argument(
            "--progress-every", type=int, default=10_000, metavar="N", help="print progress every N rows"
        )
        parser.add_argument("--max-rows", type=int, default=None, help="refuse files with more data rows")
        parser.add_argument("--max-bytes", type=int, default=None, help="refuse larger files")

    def policy(self, options) -> str:
        return ImportJob.Policy.SKIP

    def handle(self, *args, file, org, progress_every, max_rows, max_bytes, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        with system_context():
            organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with the slug {org!r}.")
        # The job is committed first, so the progress written from the side connection finds it.
        with tenant_context(organization.pk):
            job = import_job_create_from_file(
                organization=organization, kind=self.kind, policy=self.policy(options), path=path
            )
        every = max(1, progress_every)

        def echo(phase: str, rows: int, total: int) -> None:
            if phase == "counted":
                self._progress(f"{path.name}: {_rows(rows)} to check")
            elif phase == ImportJob.Status.IMPORTING:
                self._progress(f"{_rows(rows)} checked, all valid; importing")
            elif rows % every == 0 or rows == total:
                percent = round(100 * rows / total) if total else 0
                self._progress(f"checked {_n(rows)} / {_n(total)} rows ({percent}%)")

        with tenant_context(organization.pk, request_id=f"cmd-import-{job.pk}"):
            job = import_job_run(
                job_id=job.pk, max_rows=max_rows, max_bytes=max_bytes, echo=echo, progress_every=every
            )
        if job.status == ImportJob.Status.DONE:
            self.stdout.write(self.style.SUCCESS(self.summary(job)))
            return
        self.stderr.write(self.style.ERROR(f"{job.file_name}: {job.message}"))
        for error in job.errors[:REPORT_LINES]:
            where = f"line {error['line']}" if error.get("line") else "file"
            column = f", {error['column']}" if error.get("column") else ""
            self.stderr.write(f"  {where}{column}: {error['message']}", style_func=str)
        more = len(job.errors) - REPORT_LINES
        if more > 0:
            self.stderr.write(f"  ... and {_n(more)} more listed on the import's page", style_func=str)
        raise CommandError("Nothing was imported.", returncode=1)

    def _progress(self, line: str) -> None:
        self.stderr.write(line, style_func=str)

    def summary(self, job: ImportJob) -> str:
        return (
            f"{job.file_name}: {_rows(job.total_rows)} imported into {job.organization.slug}: "
            f"{_n(job.created_count)} created, {_n(job.updated_count)} updated, {_n(job.skipped_count)} skipped."
        )


class Command(ImportCommand):
    help = "Import customers from a CSV file into an organization, all or nothing (dedupe by email)."
    kind = ImportJob.Kind.CUSTOMERS

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--update",
            action="store_true",
            help="update customers whose email is already there (default: skip them)",
        )

    def policy(self, options) -> str:
        return ImportJob.Policy.UPDATE if options.get("update") else ImportJob.Policy.SKIP
