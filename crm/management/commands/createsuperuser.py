"""`createsuperuser` inside `system_context()`: a platform operator belongs to no organization, and the
users policy would otherwise hide (and refuse) the row."""

from django.contrib.auth.management.commands.createsuperuser import Command as DjangoCreateSuperuser

from crm.tenancy import system_context


class Command(DjangoCreateSuperuser):
    def handle(self, *args, **options):
        with system_context():
            return super().handle(*args, **options)
