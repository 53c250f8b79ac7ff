"""`migrate`, run as the owner role (DATABASE_OWNER_URL); afterwards the app role is granted its rights."""

from django.core.management.commands.migrate import Command as DjangoMigrate

from crm.db.owner import as_owner


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        with as_owner(options["database"]):
            return super().handle(*args, **options)
