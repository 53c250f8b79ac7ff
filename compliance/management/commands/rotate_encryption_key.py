"""Re-encrypt every encrypted column of every model with the primary key of CRM_ENCRYPTION_KEYS."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from crm.encryption import DecryptionError, encrypted_fields, rotate_batch
from crm.tenancy import system_context

BAR_WIDTH = 30
DEFAULT_BATCH_SIZE = 1000


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column (customers' phone, date of birth, street, postal code, ...) with the "
        "first key of CRM_ENCRYPTION_KEYS and bring the phone's keyed hash up to date, in batches (each its "
        "own transaction, keyset over the id: resumable, and a second run writes nothing). Procedure: put "
        "the new key first in CRM_ENCRYPTION_KEYS, deploy, run this, then remove the old key (docs/security.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N")
        parser.add_argument(
            "--dry-run", action="store_true", help="count the rows that would be rewritten; change nothing"
        )

    def handle(self, *args, batch_size=DEFAULT_BATCH_SIZE, dry_run=False, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        grand_total = 0
        for model, fields in encrypted_fields():
            label = f"{model._meta.db_table} ({', '.join(f.column for f in fields)})"
            with system_context(), connection.cursor() as cursor:
                # Once, for the progress bar only (a command, not a page: a full count is acceptable).
                cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(model._meta.db_table)}")
                (total,) = cursor.fetchone()
            read = rewritten = 0
            after = None
            while True:
                try:
                    with system_context():  # one transaction per batch: committed work survives a crash
                        batch = rotate_batch(model, fields, after=after, size=batch_size, dry_run=dry_run)
                except DecryptionError as error:
                    raise CommandError(
                        f"{label}: a row after id {after} cannot be decrypted with any configured key "
                        f"({error}). Batches before it are committed; put the missing key back and run again."
                    ) from None
                if batch is None:
                    break
                after, read, rewritten = batch.last_pk, read + batch.read, rewritten + batch.rewritten
                self._bar(label, read, total)
            verb = "would be re-encrypted" if dry_run else "re-encrypted"
            self.stdout.write(f"{label}: {rewritten:,} of {read:,} row(s) {verb}.")
            grand_total += rewritten
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        self.stdout.write(self.style.SUCCESS(f"Done: {grand_total:,} row(s) {verb}."))

    def _bar(self, label: str, done: int, total: int) -> None:
        total = max(total, done, 1)
        filled = round(BAR_WIDTH * done / total)
        self.stdout.write(
            f"{label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done:,}/{total:,} ({100 * done // total}%)"
        )
