"""`manage.py import_interactions FILE --org SLUG`: interactions from a CSV file, all or nothing.

Each row names an existing customer by email; an unknown email is an error on its line. Last contact
dates move forward to the newest imported interaction. Progress, summary and exit status as for
`import_customers`.
"""

from __future__ import annotations

from customers.management.commands.import_customers import ImportCommand, _counted
from customers.models import ImportJob


class Command(ImportCommand):
    help = "Import interactions from a CSV file into an organization, all or nothing."
    kind = ImportJob.Kind.INTERACTIONS

    def summary(self, job: ImportJob) -> str:
        interactions = _counted(job.created_count, "interaction", "interactions")
        customers = _counted(job.updated_count, "customer has", "customers have")
        return (
            f"{job.file_name}: {interactions} imported into {job.organization.slug}; "
            f"{customers} a newer last contact date."
        )
