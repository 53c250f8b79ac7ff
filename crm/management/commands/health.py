"""Report PostgreSQL, Redis and Celery worker liveness; exit 1 if any is down."""

import json

from django.core.management.base import BaseCommand, CommandError

from crm import health


class Command(BaseCommand):
    help = "Check PostgreSQL, Redis and the Celery worker heartbeat."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, **options):
        report = health.check_all()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            for name, check in report["checks"].items():
                mark = self.style.SUCCESS("up  ") if check["ok"] else self.style.ERROR("DOWN")
                self.stdout.write(f"{mark} {name:<9} {check['ms']:>7} ms  {check['detail']}")
        if not report["ok"]:
            raise CommandError("Something is down.")
