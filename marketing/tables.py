"""The campaign list table (django-tables2). The selector orders and pages in SQL (keyset); the table's own
ordering of the page uses the same keys, so it only draws the sort links and arrows. Every figure is read
from the campaign row (its counters), so the table adds no query per row."""

import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

from marketing.models import Campaign

RIGHT = {"td": {"class": "text-end"}, "th": {"class": "text-end"}}
CELLS = "marketing/campaigns/_cell_{}.html"


class CampaignTable(tables.Table):
    name = tables.TemplateColumn(
        template_name=CELLS.format("name"), verbose_name=_("Campaign"), order_by=("name",)
    )
    status = tables.TemplateColumn(
        template_name=CELLS.format("status"), verbose_name=_("Status"), orderable=False
    )
    start = tables.TemplateColumn(
        template_name=CELLS.format("dates"), verbose_name=_("Dates"), order_by=("start_key",)
    )
    owner = tables.TemplateColumn(
        template_name=CELLS.format("owner"), verbose_name=_("Owner"), orderable=False
    )
    budget = tables.TemplateColumn(
        template_name=CELLS.format("budget"), verbose_name=_("Budget"), order_by=("budget",), attrs=RIGHT
    )
    cost = tables.TemplateColumn(
        template_name=CELLS.format("cost"),
        verbose_name=_("Actual cost"),
        order_by=("actual_cost",),
        attrs=RIGHT,
    )
    sent = tables.TemplateColumn(
        template_name=CELLS.format("sent"), verbose_name=_("Sent"), order_by=("sent_count",), attrs=RIGHT
    )
    open_rate = tables.TemplateColumn(
        template_name=CELLS.format("open_rate"), verbose_name=_("Open rate"), orderable=False, attrs=RIGHT
    )
    click_rate = tables.TemplateColumn(
        template_name=CELLS.format("click_rate"), verbose_name=_("Click rate"), orderable=False, attrs=RIGHT
    )

    class Meta:
        model = Campaign
        fields = []
        sequence = ["name", "status", "start", "owner", "budget", "cost", "sent", "open_rate", "click_rate"]
        template_name = "crm/_table.html"
        attrs = {"class": "table table-hover align-middle mb-0 campaign-table"}
        order_by_field = "sort"
