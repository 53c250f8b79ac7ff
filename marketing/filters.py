"""The campaign list's filters (django-filter)."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from marketing.models import Campaign, CampaignChannel

DATE = forms.DateInput(attrs={"type": "date"})


class CampaignFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="by_search", label=_("Search"))
    status = django_filters.ChoiceFilter(
        choices=Campaign.Status.choices, label=_("Status"), empty_label=_("Any status")
    )
    channel = django_filters.ChoiceFilter(
        choices=CampaignChannel.choices, method="by_channel", label=_("Channel"), empty_label=_("Any channel")
    )
    owner = django_filters.ChoiceFilter(method="by_owner", label=_("Owner"), empty_label=_("Anyone"))
    # The period a campaign runs in: from its start date to its end date (its start date when it has no
    # end). A campaign overlapping the chosen range matches; one without dates does not.
    running_from = django_filters.DateFilter(method="by_running_from", label=_("Running from"), widget=DATE)
    running_to = django_filters.DateFilter(method="by_running_to", label=_("Running to"), widget=DATE)

    class Meta:
        model = Campaign
        fields = ["q", "status", "channel", "owner", "running_from", "running_to"]

    def __init__(self, *args, actor, owners, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.filters["owner"].extra["choices"] = [("mine", _("Mine")), ("none", _("Nobody"))] + [
            (str(u.pk), str(u)) for u in owners
        ]

    def by_search(self, queryset, name, value):
        value = value.strip()[:100]
        return queryset.filter(name__icontains=value) if value else queryset

    def by_channel(self, queryset, name, value):
        return queryset.filter(channels__contains=[value])

    def by_owner(self, queryset, name, value):
        if value == "mine":
            return queryset.filter(owner_id=self.actor.pk)
        if value == "none":
            return queryset.filter(owner__isnull=True)
        return queryset.filter(owner_id=value)

    def by_running_from(self, queryset, name, value):
        return queryset.filter(Q(end_date__gte=value) | Q(end_date__isnull=True, start_date__gte=value))

    def by_running_to(self, queryset, name, value):
        return queryset.filter(start_date__lte=value)
