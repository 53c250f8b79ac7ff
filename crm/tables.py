"""django-tables2 tables of the platform lists."""

import django_tables2 as tables
from django.utils.translation import gettext_lazy as _

from crm.models import User


class UserTable(tables.Table):
    name = tables.TemplateColumn(
        template_name="crm/users/_name_cell.html",
        verbose_name=_("Name"),
        order_by=("first_name", "last_name"),
    )
    role = tables.TemplateColumn(template_name="crm/users/_role_cell.html", verbose_name=_("Role"))
    department = tables.Column(verbose_name=_("Department"))
    is_active = tables.TemplateColumn(template_name="crm/users/_status_cell.html", verbose_name=_("Status"))
    last_login = tables.DateTimeColumn(verbose_name=_("Last sign-in"), format="M j, Y H:i", default="—")
    actions = tables.TemplateColumn(
        template_name="crm/users/_actions_cell.html",
        verbose_name="",
        orderable=False,
        attrs={"td": {"class": "text-end"}},
    )

    class Meta:
        model = User
        fields = ["name", "role", "department", "is_active", "last_login", "actions"]
        template_name = "crm/_table.html"
        attrs = {"class": "table table-hover align-middle mb-0"}
        order_by = ("name",)
