"""The customer list's filters (django-filter)."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _

from customers import selectors
from customers.models import Customer, LifecycleStage, SegmentMember


class CustomerFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="by_search", label=_("Search"))
    lifecycle_stage = django_filters.ChoiceFilter(
        choices=LifecycleStage.choices, label=_("Stage"), empty_label=_("Any stage")
    )
    owner = django_filters.ChoiceFilter(method="by_owner", label=_("Owner"), empty_label=_("Anyone"))
    tag = django_filters.CharFilter(method="by_tag", label=_("Tag"))
    score_min = django_filters.NumberFilter(field_name="lead_score", lookup_expr="gte", label=_("Score from"))
    score_max = django_filters.NumberFilter(field_name="lead_score", lookup_expr="lte", label=_("Score to"))
    segment = django_filters.ChoiceFilter(
        method="by_segment", label=_("Segment"), empty_label=_("Any segment")
    )
    vip = django_filters.BooleanFilter(
        field_name="vip_status",
        label=_("VIP"),
        widget=forms.Select(choices=[("", _("Any")), ("true", _("VIP only")), ("false", _("Not VIP"))]),
    )
    status = django_filters.ChoiceFilter(choices=Customer.Status.choices, empty_label=_("Any status"))
    created_after = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__gte",
        label=_("Created from"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    created_before = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__lte",
        label=_("Created to"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = Customer
        fields = [
            "q",
            "lifecycle_stage",
            "owner",
            "tag",
            "score_min",
            "score_max",
            "segment",
            "vip",
            "status",
            "created_after",
            "created_before",
        ]

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.filters["owner"].extra["choices"] = [("none", _("Unassigned"))] + [
            (str(u.pk), str(u)) for u in selectors.owner_choices(actor=actor)
        ]
        self.filters["segment"].extra["choices"] = selectors.segment_choices(actor=actor)

    def by_search(self, queryset, name, value):
        return selectors.search(queryset, value, organization_id=self.actor.organization_id)

    def by_owner(self, queryset, name, value):
        return (
            queryset.filter(assigned_to__isnull=True)
            if value == "none"
            else queryset.filter(assigned_to_id=value)
        )

    def by_tag(self, queryset, name, value):
        tags = [t.strip().lower() for t in value.split(",") if t.strip()]
        return queryset.filter(tags__contains=tags) if tags else queryset

    def by_segment(self, queryset, name, value):
        return queryset.filter(
            Exists(
                SegmentMember.objects.filter(
                    segment_id=value, customer_id=OuterRef("pk"), organization_id=OuterRef("organization_id")
                )
            )
        )
