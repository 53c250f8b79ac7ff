"""`manage.py import_orders FILE --org SLUG [--skip-existing]`: orders from the ERP, from a CSV file.

One row per order line, grouped into orders by `external_reference` (sales/importing_orders.py has the
format). The file is streamed, validated row by row and in SQL, and applied all or nothing in the
organization's tenant context. Progress goes to standard error; the summary to standard output. An invalid
file exits with status 1 and the validation report (line numbers; the first 50 errors and how many more).
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.formats import number_format

from crm.models import Organization
from crm.tenancy import system_context, tenant_context
from sales.importing_orders import PROGRESS_EVERY, import_orders

REPORT_LINES = 50


def _n(value: int) -> str:
    return number_format(value, force_grouping=True)


class Command(BaseCommand):
    help = "Import orders (one row per line, grouped by external_reference) from a CSV file, all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of the CSV file (UTF-8, header line first)")
        parser.add_argument("--org", required=True, help="slug of the organization to import into")
        parser.add_argument(
            "--skip-existing",
            action="store_true",
            help="skip orders whose external_reference is already imported (default: report them as errors)",
        )
        parser.add_argument(
            "--progress-every",
            type=int,
            default=PROGRESS_EVERY,
            metavar="N",
            help="print progress every N rows",
        )

    def handle(self, *args, file, org, skip_existing, progress_every, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        with system_context():
            organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with the slug {org!r}.")

        def echo(phase: str, rows: int, total: int) -> None:
            if phase == "counted":
                self.stderr.write(f"{path.name}: {_n(rows)} rows to check", style_func=str)
            elif phase == "importing":
                self.stderr.write(f"{_n(rows)} rows checked, all valid; importing", style_func=str)
            else:
                percent = round(100 * rows / total) if total else 0
                self.stderr.write(f"checked {_n(rows)} / {_n(total)} rows ({percent}%)", style_func=str)

        with tenant_context(organization.pk, request_id=f"cmd-import-orders-{path.name}"[:64]):
            outcome = import_orders(
                path=path,
                organization=organization,
                skip_existing=skip_existing,
                progress=echo,
                progress_every=progress_every,
            )
        if outcome.ok:
            skipped = f", {_n(outcome.orders_skipped)} already imported skipped" if skip_existing else ""
            self.stdout.write(
                self.style.SUCCESS(
                    f"{path.name}: {_n(outcome.total_rows)} rows imported into {organization.slug}: "
                    f"{_n(outcome.orders_created)} orders, {_n(outcome.lines_created)} lines{skipped}."
                )
            )
            return
        self.stderr.write(
            self.style.ERROR(f"{path.name}: {_n(outcome.error_count)} errors; nothing was imported.")
        )
        for error in outcome.errors[:REPORT_LINES]:
            where = f"line {error['line']}" if error.get("line") else "file"
            column = f", {error['column']}" if error.get("column") else ""
            self.stderr.write(f"  {where}{column}: {error['message']}", style_func=str)
        more = outcome.error_count - min(len(outcome.errors), REPORT_LINES)
        if more > 0:
            self.stderr.write(f"  ... and {_n(more)} more", style_func=str)
        raise CommandError("Nothing was imported.", returncode=1)
