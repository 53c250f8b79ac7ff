"""The customer list table (django-tables2). The selector orders and pages in SQL (keyset); the table's
own ordering of the page uses the same keys, so it only draws the sort links and arrows."""

import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

from customers.models import Customer


class CustomerTable(tables.Table):
    select = tables.TemplateColumn(
        template_name="customers/list/_select_cell.html",
        verbose_name="",
        orderable=False,
        attrs={"th": {"class": "col-select"}, "td": {"class": "col-select"}},
    )
    name = tables.TemplateColumn(
        template_name="customers/list/_name_cell.html",
        verbose_name=_("Customer"),
        order_by=("last_name", "first_name"),
    )
    lifecycle_stage = tables.TemplateColumn(
        template_name="customers/list/_stage_cell.html", verbose_name=_("Stage"), orderable=False
    )
    score = tables.TemplateColumn(
        template_name="customers/list/_score_cell.html",
        verbose_name=_("Score"),
        order_by=("lead_score",),
        attrs={"td": {"class": "text-end"}, "th": {"class": "text-end"}},
    )
    owner = tables.TemplateColumn(
        template_name="customers/list/_owner_cell.html", verbose_name=_("Owner"), orderable=False
    )
    tags = tables.TemplateColumn(
        template_name="customers/list/_tags_cell.html", verbose_name=_("Tags"), orderable=False
    )
    last_contact_date = tables.DateTimeColumn(
        verbose_name=_("Last contact"), format="M j, Y", default="—", orderable=False
    )
    created = tables.DateTimeColumn(
        accessor="created_at", verbose_name=_("Created"), format="M j, Y", order_by=("created_at",)
    )

    class Meta:
        model = Customer
        fields = []
        sequence = [
            "select",
            "name",
            "lifecycle_stage",
            "score",
            "owner",
            "tags",
            "last_contact_date",
            "created",
        ]
        template_name = "crm/_table.html"
        attrs = {"class": "table table-hover align-middle mb-0 customer-table"}
        order_by_field = "sort"
