"""The ticket queue's filters (django-filter). The queue shows unsolved tickets unless a status is chosen
("Any status" includes resolved and closed ones); the selector applies that default."""

from __future__ import annotations

import re
import uuid

import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.models import Department
from support.models import Channel, Priority, Status, Ticket

ANY_STATUS = "any"
# "T-000042", "#42", "42": a ticket number.
_NUMBER = re.compile(r"^\s*(?:t-?|#)?0*(\d{1,9})\s*$", re.IGNORECASE)


def ticket_number_in(text: str) -> int | None:
    """The ticket number `text` spells, if it is one."""
    match = _NUMBER.match(text or "")
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def _date_input():
    return forms.DateInput(attrs={"type": "date"})


class TicketFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="by_search", label=_("Search"))
    status = django_filters.ChoiceFilter(
        method="by_status",
        choices=[(ANY_STATUS, _("Any status")), *Status.choices],
        empty_label=_("Unsolved"),
        label=_("Status"),
    )
    priority = django_filters.ChoiceFilter(choices=Priority.choices, empty_label=_("Any priority"))
    category = django_filters.ChoiceFilter(choices=Department.choices, empty_label=_("Any category"))
    channel = django_filters.ChoiceFilter(choices=Channel.choices, empty_label=_("Any channel"))
    assignee = django_filters.ChoiceFilter(method="by_assignee", label=_("Assignee"), empty_label=_("Anyone"))
    customer = django_filters.CharFilter(method="by_customer", label=_("Customer"))
    tag = django_filters.CharFilter(method="by_tag", label=_("Tag"))
    created_after = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", label=_("Created from"), widget=_date_input()
    )
    created_before = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__lte", label=_("Created to"), widget=_date_input()
    )

    class Meta:
        model = Ticket
        fields = [
            "q",
            "status",
            "priority",
            "category",
            "channel",
            "assignee",
            "customer",
            "tag",
            "created_after",
            "created_before",
        ]

    def __init__(self, *args, actor, agents=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.filters["assignee"].extra["choices"] = [
            ("me", _("Me")),
            ("none", _("Unassigned")),
            *((str(u.pk), str(u)) for u in agents),
        ]

    @property
    def status_chosen(self) -> str:
        """The status asked for ("" = unsolved only, "any" = every status)."""
        if self.is_bound and self.form.is_valid():
            return self.form.cleaned_data.get("status") or ""
        return ""

    def by_search(self, queryset, name, value):
        number = ticket_number_in(value)
        condition = Q(subject__icontains=value.strip())
        if number is not None:
            condition |= Q(number=number)
        return queryset.filter(condition)

    def by_status(self, queryset, name, value):
        return queryset if value == ANY_STATUS else queryset.filter(status=value)

    def by_assignee(self, queryset, name, value):
        if value == "none":
            return queryset.filter(assigned_to__isnull=True)
        if value == "me":
            return queryset.filter(assigned_to_id=self.actor.pk)
        return queryset.filter(assigned_to_id=value)

    def by_customer(self, queryset, name, value):
        """A customer id (from a link), else their email, name or company."""
        value = value.strip()
        try:
            return queryset.filter(customer_id=uuid.UUID(value))
        except ValueError:
            pass
        condition = (
            Q(customer__email__iexact=value)
            | Q(customer__company_name__icontains=value)
            | Q(customer__last_name__icontains=value)
            | Q(customer__first_name__icontains=value)
        )
        return queryset.filter(condition)

    def by_tag(self, queryset, name, value):
        tags = [t.strip().lower() for t in value.split(",") if t.strip()]
        return queryset.filter(tags__contains=tags) if tags else queryset
