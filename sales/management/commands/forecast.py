"""Print an organization's revenue forecast (the forecast page's numbers): a table, or JSON with --json."""

from __future__ import annotations

import datetime
import json

from django.core.management.base import BaseCommand, CommandError

from crm.models import Organization, User
from crm.tenancy import system_context, tenant_context
from sales.forecasting import MAX_MONTHS, forecast_as_dict, forecast_for_organization

ROWS = (
    ("closed_won", "Closed won"),
    ("commit", "Commit"),
    ("best_case_deals", "Best-case deals"),
    ("pipeline_deals", "Pipeline deals"),
    ("expected", "Expected"),
    ("worst_case", "Worst case"),
    ("best_case", "Best case"),
    ("quota", "Quota"),
    ("pipeline", "Open pipeline"),
    ("coverage", "Coverage (x)"),
)


class Command(BaseCommand):
    help = (
        "Print the revenue forecast of one organization for the next N months (the forecast page's numbers): "
        "a table, or JSON with --json (money as decimal strings)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", required=True, help="The organization's slug.")
        parser.add_argument(
            "--months", type=int, default=3, help=f"Months to forecast, 1 to {MAX_MONTHS} (default 3)."
        )
        parser.add_argument("--owner", metavar="EMAIL", help="Only this owner's deals and quotas.")
        parser.add_argument(
            "--as-of",
            metavar="YYYY-MM-DD",
            help="Forecast as of this date (default: today in the organization's time zone).",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args, org, months, owner=None, as_of=None, **options):
        if not 1 <= months <= MAX_MONTHS:
            raise CommandError(f"--months must be between 1 and {MAX_MONTHS}.")
        as_of_date = None
        if as_of:
            try:
                as_of_date = datetime.date.fromisoformat(as_of)
            except ValueError as error:
                raise CommandError(f"--as-of: {error}") from error
        with system_context():
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"No organization with the slug {org!r}.")
            owner_id = None
            if owner:
                owner_id = (
                    User.objects.filter(organization=organization, email__iexact=owner)
                    .values_list("pk", flat=True)
                    .first()
                )
                if owner_id is None:
                    raise CommandError(f"No user {owner!r} in {organization.slug}.")
        with tenant_context(organization.pk, request_id=f"forecast-{organization.slug}"):
            forecast = forecast_for_organization(
                organization_id=organization.pk, months=months, owner_id=owner_id, as_of=as_of_date
            )
        if options["json"]:
            self._print_json(forecast)
        else:
            self._print_table(forecast, organization, owner)

    def _print_json(self, forecast) -> None:
        self.stdout.write(json.dumps(forecast_as_dict(forecast), indent=2))

    def _print_table(self, forecast, organization, owner) -> None:
        who = owner or "all owners"
        self.stdout.write(
            f"Forecast of {organization.name} ({who}), as of {forecast.as_of.isoformat()}, "
            f"in {forecast.currency}"
        )
        headers = [row.month.strftime("%Y-%m") for row in forecast.months] + ["Total"]
        columns = [*forecast.months, forecast.total]
        cells = [[self._cell(getattr(column, name)) for column in columns] for name, _label in ROWS]
        width = max(14, *(len(c) for row in cells for c in row))
        label_width = max(len(label) for _name, label in ROWS)
        self.stdout.write(" " * label_width + "".join(f"  {h:>{width}}" for h in headers))
        for (_name, label), row in zip(ROWS, cells, strict=True):
            self.stdout.write(f"{label:<{label_width}}" + "".join(f"  {c:>{width}}" for c in row))
        self.stdout.write("")
        self.stdout.write("Stage win rates (last 12 months):")
        for rate in forecast.stage_rates:
            source = f"{rate.won}/{rate.reached} won" if rate.from_history else "default probability"
            self.stdout.write(f"  {rate.name}: {rate.percent}% ({source})")
        if forecast.risks:
            self.stdout.write("")
            self.stdout.write("Risks:")
            for risk in forecast.risks:
                self.stdout.write(f"  {risk.label}: {risk.count} deal(s), {risk.amount:,.2f}")
        if forecast.actions:
            self.stdout.write("")
            self.stdout.write("Recommended actions:")
            for action in forecast.actions:
                self.stdout.write(f"  - {action.message}")

    @staticmethod
    def _cell(value) -> str:
        if value is None:
            return "-"
        return f"{value:,.2f}"
