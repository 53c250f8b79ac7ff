"""Drop the monthly log partitions that every organization with rows in them is done keeping (beat does it
daily); --dry-run prints the report only."""

from django.core.management.base import BaseCommand

from compliance.retention import apply_retention


class Command(BaseCommand):
    help = (
        "Retention of interaction_logs, crm_audit_log and data_access_log: drop each monthly partition past "
        "the retention of every organization with rows in it (never row-by-row deletes). Prints, per "
        "partition, its estimated rows and what keeps it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="report only; drop nothing")

    def handle(self, *args, dry_run=False, **options):
        result = apply_retention(dry_run=dry_run)
        dropped = {entry.partition for entry in result.dropped}
        skipped = {entry.partition: why for entry, why in result.skipped}
        if not result.plan:
            self.stdout.write("No partition of a month that ended over a month ago.")
        for entry in result.plan:
            rows = "?" if entry.rows_estimate is None else f"~{entry.rows_estimate:,}"
            if entry.partition in dropped:
                state = "DROPPED"
            elif entry.partition in skipped:
                state = f"skipped: {skipped[entry.partition]}"
            elif entry.droppable:
                state = "would drop"
            elif entry.organization_ids is None:
                state = f"kept until {entry.kept_until}: within every organization's retention"
            else:
                names = ", ".join(f"{b.name} (until {b.kept_until})" for b in entry.blocking)
                state = f"kept by {names}"
            orgs = "-" if entry.organizations_with_rows is None else entry.organizations_with_rows
            self.stdout.write(
                f"{entry.partition:<32} {entry.month:%Y-%m}  rows {rows:>10}  orgs {orgs!s:>3}  {state}"
            )
        droppable = sum(entry.droppable for entry in result.plan)
        if dry_run:
            summary = f"Dry run: {droppable} partition(s) would be dropped."
        else:
            summary = f"Dropped {len(result.dropped)} partition(s); {len(result.skipped)} skipped."
        self.stdout.write(self.style.SUCCESS(summary))
