"""`flush`, run as the owner role: it truncates every table, the append-only audit log included, which the
app role may never do. Used by tests that commit (live server, Celery worker) to reset the database."""

from django.core.management.commands.flush import Command as DjangoFlush

from crm.db.owner import as_owner


class Command(DjangoFlush):
    def handle(self, **options):
        # CASCADE: partitioned tables (interaction_logs) are created by migration SQL, so Django does not
        # list them, yet they reference tables it truncates.
        options["allow_cascade"] = True
        with as_owner(options["database"]):
            return super().handle(**options)
