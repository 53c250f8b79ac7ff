"""The opportunity list table (django-tables2). The selector orders and pages in SQL (keyset); the table's
own ordering of the page uses the same keys, so it only draws the sort links and arrows."""

import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

from sales.models import Opportunity

RIGHT = {"td": {"class": "text-end"}, "th": {"class": "text-end"}}


class OpportunityTable(tables.Table):
    name = tables.TemplateColumn(
        template_name="sales/opportunities/_name_cell.html", verbose_name=_("Opportunity"), order_by=("name",)
    )
    stage = tables.TemplateColumn(
        template_name="sales/opportunities/_stage_cell.html", verbose_name=_("Stage"), orderable=False
    )
    amount = tables.TemplateColumn(
        template_name="sales/opportunities/_amount_cell.html",
        verbose_name=_("Amount"),
        order_by=("amount",),
        attrs=RIGHT,
    )
    probability = tables.TemplateColumn(
        "{{ record.probability }} %", verbose_name=_("Prob."), order_by=("probability",), attrs=RIGHT
    )
    close = tables.TemplateColumn(
        template_name="sales/opportunities/_close_cell.html",
        verbose_name=_("Close date"),
        order_by=("expected_close_date",),
    )
    owner = tables.TemplateColumn(
        template_name="sales/opportunities/_owner_cell.html", verbose_name=_("Owner"), orderable=False
    )
    created = tables.DateTimeColumn(
        accessor="created_at", verbose_name=_("Created"), format="M j, Y", order_by=("created_at",)
    )

    class Meta:
        model = Opportunity
        fields = []
        sequence = ["name", "stage", "amount", "probability", "close", "owner", "created"]
        template_name = "crm/_table.html"
        attrs = {"class": "table table-hover align-middle mb-0 opportunity-table"}
        order_by_field = "sort"
