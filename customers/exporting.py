"""The customer list as CSV: columns, spreadsheet-safe cells, and rows streamed from a server-side cursor."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

EXPORT_COLUMNS = [
    ("customer_number", _("Customer number")),
    ("first_name", _("First name")),
    ("last_name", _("Last name")),
    ("email", _("Email")),
    ("phone", _("Phone")),
    ("company_name", _("Company")),
    ("job_title", _("Job title")),
    ("lifecycle_stage", _("Stage")),
    ("lead_score", _("Lead score")),
    ("owner", _("Owner")),
    ("tags", _("Tags")),
    ("vip_status", _("VIP")),
    ("status", _("Status")),
    ("city", _("City")),
    ("state", _("State")),
    ("country", _("Country")),
    ("source", _("Source")),
    ("last_contact_date", _("Last contact")),
    ("created_at", _("Created")),
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value) -> str:
    """A cell a spreadsheet will show as text: one that starts like a formula gets a leading apostrophe
    (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file-like object whose write() returns the line, so csv.writer can feed a generator."""

    def write(self, value):
        return value


def csv_lines(queryset: QuerySet) -> Iterator[str]:
    """The header, then one line per customer, read 2,000 at a time (the caller keeps the tenant context
    open for as long as it iterates)."""
    writer = csv.writer(_Echo())
    yield writer.writerow([str(label) for _, label in EXPORT_COLUMNS])
    for customer in queryset.order_by("number").iterator(chunk_size=2000):
        values = {
            "customer_number": customer.customer_number,
            "owner": str(customer.assigned_to) if customer.assigned_to_id else "",
            "tags": ";".join(customer.tags),
            "last_contact_date": customer.last_contact_date.isoformat() if customer.last_contact_date else "",
            "created_at": customer.created_at.isoformat(),
        }
        yield writer.writerow(
            [spreadsheet_safe(values[k] if k in values else getattr(customer, k)) for k, _ in EXPORT_COLUMNS]
        )
