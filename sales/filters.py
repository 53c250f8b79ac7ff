"""The opportunity list's filters (django-filter)."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from sales.models import ForecastCategory, Opportunity

DATE = forms.DateInput(attrs={"type": "date"})
CLOSE_DATE = Coalesce("actual_close_date", "expected_close_date")


class OpportunityFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="by_search", label=_("Search"))
    stage = django_filters.ChoiceFilter(method="by_stage", label=_("Stage"), empty_label=_("Any stage"))
    status = django_filters.ChoiceFilter(
        choices=Opportunity.Status.choices, label=_("Status"), empty_label=_("Any status")
    )
    owner = django_filters.ChoiceFilter(method="by_owner", label=_("Owner"), empty_label=_("Anyone"))
    forecast_category = django_filters.ChoiceFilter(
        choices=ForecastCategory.choices, label=_("Forecast category"), empty_label=_("Any category")
    )
    # A deal's close date: when it closed, or, while open, when it is expected to (as on the board).
    close_after = django_filters.DateFilter(method="by_close_after", label=_("Closing from"), widget=DATE)
    close_before = django_filters.DateFilter(method="by_close_before", label=_("Closing to"), widget=DATE)
    customer = django_filters.UUIDFilter(field_name="customer_id", widget=forms.HiddenInput)
    amount_min = django_filters.NumberFilter(field_name="amount", lookup_expr="gte", label=_("Amount from"))
    amount_max = django_filters.NumberFilter(field_name="amount", lookup_expr="lte", label=_("Amount to"))

    class Meta:
        model = Opportunity
        fields = [
            "q",
            "stage",
            "status",
            "owner",
            "forecast_category",
            "close_after",
            "close_before",
            "amount_min",
            "amount_max",
            "customer",
        ]

    def __init__(self, *args, actor, stages_by_pipeline, owners, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        several = len(stages_by_pipeline) > 1
        self.filters["stage"].extra["choices"] = [
            (str(s.pk), f"{s.name} · {p.name}" if several else s.name)
            for p, stages in stages_by_pipeline
            for s in stages
        ]
        self.filters["owner"].extra["choices"] = [("mine", _("Mine")), ("none", _("Unassigned"))] + [
            (str(u.pk), str(u)) for u in owners
        ]

    def by_search(self, queryset, name, value):
        value = value.strip()[:100]
        if not value:
            return queryset
        return queryset.filter(
            Q(name__icontains=value)
            | Q(customer__company_name__icontains=value)
            | Q(customer__last_name__icontains=value)
            | Q(customer__first_name__icontains=value)
        )

    def by_stage(self, queryset, name, value):
        return queryset.filter(stage_id=value)

    def by_owner(self, queryset, name, value):
        if value == "mine":
            return queryset.filter(assigned_to_id=self.actor.pk)
        if value == "none":
            return queryset.filter(assigned_to__isnull=True)
        return queryset.filter(assigned_to_id=value)

    def by_close_after(self, queryset, name, value):
        return queryset.alias(close_date=CLOSE_DATE).filter(close_date__gte=value)

    def by_close_before(self, queryset, name, value):
        return queryset.alias(close_date=CLOSE_DATE).filter(close_date__lte=value)
