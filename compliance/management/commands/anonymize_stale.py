"""Anonymize stale customers now (beat does it nightly): one organization or every one with it enabled."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from compliance.anonymization import DEFAULT_BATCH_SIZE, anonymize_stale, organizations_to_anonymize
from crm.models import Organization
from crm.tenancy import system_context

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Anonymize customers inactive with no contact for longer than their organization's retention "
        "period, through the personal-data registry, in batches (each its own transaction: resumable, "
        "idempotent). --dry-run only counts them and shows a sample of customer numbers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count and sample only; change nothing")
        parser.add_argument(
            "--org", metavar="SLUG", help="only this organization (even if its nightly run is off)"
        )
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N")

    def handle(self, *args, dry_run=False, org=None, batch_size=DEFAULT_BATCH_SIZE, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        with system_context():
            organizations = Organization.objects.order_by("name")
            if org:
                organizations = organizations.filter(slug=org)
            else:
                organizations = organizations.filter(pk__in=organizations_to_anonymize())
            organizations = list(organizations.values_list("pk", "slug", "name"))
        if org and not organizations:
            raise CommandError(f"No organization with the slug {org!r}.")
        total = 0
        for pk, slug, name in organizations:
            result = anonymize_stale(
                organization_id=pk, dry_run=dry_run, batch_size=batch_size, progress=self._bar
            )
            cutoff = timezone.localtime(result.cutoff).strftime("%Y-%m-%d")
            if dry_run:
                sample = ", ".join(str(n) for n in result.sample_numbers) or "-"
                self.stdout.write(
                    f"{name} ({slug}): {result.stale_found:,} customer(s) without contact since {cutoff} "
                    f"would be anonymized. Sample of customer numbers: {sample}"
                )
            else:
                self.stdout.write(
                    f"{name} ({slug}): {result.anonymized:,} customer(s) without contact since {cutoff} "
                    f"anonymized in {result.batches} batch(es)."
                )
            total += result.stale_found if dry_run else result.anonymized
        verb = "would be anonymized" if dry_run else "anonymized"
        self.stdout.write(
            self.style.SUCCESS(f"{total:,} customer(s) {verb} in {len(organizations)} organization(s).")
        )

    def _bar(self, done: int, total: int) -> None:
        share = done / total if total else 1
        filled = min(BAR_WIDTH, round(share * BAR_WIDTH))
        line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done:,} / {total:,} ({share:.0%})"
        if self.stdout.isatty():
            self.stdout.write(f"\r{line}", ending="")
            if done >= total:
                self.stdout.write("")
        else:
            self.stdout.write(line)
