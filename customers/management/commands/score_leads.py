"""Recompute lead, engagement and health scores now (beat does it nightly): one organization or all."""

import time

from django.core.management.base import BaseCommand, CommandError

from crm.models import Organization
from crm.tenancy import system_context, tenant_context
from customers.services.scoring import scores_recompute


class Command(BaseCommand):
    help = (
        "Score every customer of one organization (--org SLUG) or of every trial or active organization, "
        "set-based; prints each organization's count and time, then a summary."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Only this organization (any status).")

    def handle(self, *args, org=None, **options):
        with system_context():
            organizations = Organization.objects.order_by("name")
            if org:
                organizations = list(organizations.filter(slug=org).values_list("pk", "slug", "name"))
                if not organizations:
                    raise CommandError(f"No organization with the slug {org!r}.")
            else:
                active = [Organization.Status.TRIAL, Organization.Status.ACTIVE]
                organizations = list(
                    organizations.filter(status__in=active).values_list("pk", "slug", "name")
                )
        started = time.perf_counter()
        total = 0
        width = len(str(len(organizations)))
        for index, (pk, slug, name) in enumerate(organizations, start=1):
            org_started = time.perf_counter()
            # Each organization in its own transaction: a failure leaves the ones before it scored.
            with tenant_context(pk, request_id=f"score_leads-{slug}"):
                scored = scores_recompute(organization_id=pk)
            total += scored
            self.stdout.write(
                f"[{index:>{width}}/{len(organizations)}] {name} ({slug}): {scored:,} customers scored "
                f"in {time.perf_counter() - org_started:.2f} s"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Scored {total:,} customers in {len(organizations)} organization(s) "
                f"in {time.perf_counter() - started:.2f} s."
            )
        )
