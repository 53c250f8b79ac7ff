"""Create the coming months' partitions of every partitioned table now (beat does it daily)."""

from django.core.management.base import BaseCommand

from crm import services
from crm.tenancy import system_context


class Command(BaseCommand):
    help = "Create missing monthly partitions (CRM_PARTITION_MONTHS_AHEAD months ahead by default)."

    def add_arguments(self, parser):
        parser.add_argument("--months-ahead", type=int, default=None)

    def handle(self, *args, months_ahead=None, **options):
        with system_context():
            created = services.partitions_ensure(months_ahead=months_ahead)
        for table, count in created.items():
            self.stdout.write(f"{table}: {count} partition(s) created")
