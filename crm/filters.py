"""Filter forms (django-filter) of the platform lists."""

import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.models import AuditLog, Department, User
from crm.permissions import Role


class UserFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label=_("Search"))
    role = django_filters.ChoiceFilter(choices=Role.choices, empty_label=_("Any role"))
    department = django_filters.ChoiceFilter(choices=Department.choices, empty_label=_("Any department"))
    status = django_filters.ChoiceFilter(
        method="by_status",
        choices=[("active", _("Active")), ("inactive", _("Inactive"))],
        empty_label=_("Any status"),
        label=_("Status"),
    )

    class Meta:
        model = User
        fields = ["q", "role", "department", "status"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
            | Q(email__icontains=value)
            | Q(job_title__icontains=value)
        )

    def by_status(self, queryset, name, value):
        return queryset.filter(is_active=(value == "active"))


class AuditLogFilter(django_filters.FilterSet):
    table_name = django_filters.ChoiceFilter(label=_("Table"), empty_label=_("Any table"))
    user_id = django_filters.ChoiceFilter(label=_("User"), empty_label=_("Anyone"))
    operation = django_filters.ChoiceFilter(choices=AuditLog.Operation.choices, empty_label=_("Any change"))
    record_id = django_filters.CharFilter(label=_("Record id"))
    since = django_filters.DateFilter(
        field_name="occurred_at",
        lookup_expr="date__gte",
        label=_("From"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = django_filters.DateFilter(
        field_name="occurred_at",
        lookup_expr="date__lte",
        label=_("To"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditLog
        fields = ["table_name", "user_id", "operation", "record_id", "since", "until"]

    def __init__(self, *args, tables=(), users=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["table_name"].extra["choices"] = [(t, t) for t in tables]
        self.filters["user_id"].extra["choices"] = [(str(u.pk), str(u)) for u in users]
