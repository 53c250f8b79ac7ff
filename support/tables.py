"""The ticket queue table (django-tables2). The selector orders and pages in SQL (keyset, SLA urgency by
default); the table only draws the rows, so its columns are not sortable by clicking (the sort menu is)."""

import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

from support.models import Ticket


def _cell(name: str) -> str:
    return f"support/tickets/_cell_{name}.html"


class TicketTable(tables.Table):
    select = tables.TemplateColumn(
        template_name=_cell("select"),
        verbose_name="",
        orderable=False,
        attrs={"th": {"class": "col-select"}, "td": {"class": "col-select"}},
    )
    priority = tables.TemplateColumn(
        template_name=_cell("priority"), verbose_name=_("Priority"), orderable=False
    )
    subject = tables.TemplateColumn(
        template_name=_cell("subject"),
        verbose_name=_("Ticket"),
        orderable=False,
        attrs={"td": {"class": "ticket-cell"}, "th": {"class": "ticket-cell-head"}},
    )
    status = tables.TemplateColumn(template_name=_cell("status"), verbose_name=_("Status"), orderable=False)
    sla = tables.TemplateColumn(
        template_name=_cell("sla"), verbose_name=_("SLA"), orderable=False, empty_values=()
    )
    assignee = tables.TemplateColumn(
        template_name=_cell("assignee"), verbose_name=_("Assignee"), orderable=False, empty_values=()
    )
    category = tables.TemplateColumn(
        template_name=_cell("category"), verbose_name=_("Category"), orderable=False
    )
    updated = tables.TemplateColumn(
        template_name=_cell("updated"), verbose_name=_("Updated"), orderable=False, empty_values=()
    )

    class Meta:
        model = Ticket
        fields = []
        sequence = ["select", "priority", "subject", "status", "sla", "assignee", "category", "updated"]
        template_name = "crm/_table.html"
        attrs = {"class": "table table-hover align-middle mb-0 ticket-table"}
        row_attrs = {
            "data-testid": "ticket-row",
            "data-number": lambda record: record.ticket_number,
            "class": lambda record: f"ticket-row sla-row-{record.sla.state}",
        }
