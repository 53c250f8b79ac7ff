"""`manage.py ingest_email --org SLUG [FILE]`: one email (RFC 5322, as an MTA's pipe or a .eml file gives it)
into the organization's support queue, as a new ticket or a reply on its ticket (support/email_in.py).

Reads FILE, or standard input when FILE is omitted or "-". Prints what happened. A malformed message exits
with status 1 and writes nothing; a duplicate Message-ID is reported and changes nothing (status 0, so an
MTA that retries a delivery does not bounce it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crm.models import Organization
from crm.tenancy import system_context
from support.email_in import MalformedEmail, ingest_email


class Command(BaseCommand):
    help = "Turn one email (a .eml file or standard input) into a support ticket or a reply on its ticket."

    def add_arguments(self, parser):
        parser.add_argument(
            "file", nargs="?", default="-", help="the message file; '-' or none: standard input"
        )
        parser.add_argument("--org", required=True, help="slug of the organization the mailbox belongs to")

    def handle(self, *args, file, org, **options):
        if file == "-":
            raw = sys.stdin.buffer.read()
        else:
            path = Path(file)
            if not path.is_file():
                raise CommandError(f"No such file: {file}")
            raw = path.read_bytes()
        with system_context():
            organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with the slug {org!r}.")
        try:
            result = ingest_email(raw, organization=organization)
        except MalformedEmail as error:
            raise CommandError(f"Malformed message, nothing was created: {error}", returncode=1) from error
        style = self.style.SUCCESS if result.action in ("created", "replied", "noted") else self.style.WARNING
        self.stdout.write(style(result.summary()))
