"""Reads of the SLA settings pages: policies in order with their active ticket counts, calendars with their
holidays and the policies that use them. Everything starts from the actor's organization (another
organization's id answers 404)."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Q
from django.http import Http404

from crm.models import User
from support.models import DONE_STATUSES, BusinessCalendar, Holiday, SlaPolicy, Ticket


def policies_in_order(*, actor: User) -> list[SlaPolicy]:
    """The organization's policies in matching order, each with `active_tickets` (its tickets that are not
    resolved or closed): two queries whatever the number of policies."""
    policies = list(
        SlaPolicy.objects.filter(organization_id=actor.organization_id)
        .select_related("calendar")
        .order_by("position", "id")
    )
    counts = dict(
        Ticket.objects.filter(organization_id=actor.organization_id, sla_policy__isnull=False)
        .exclude(status__in=DONE_STATUSES)
        .order_by()
        .values("sla_policy_id")
        .annotate(n=Count("id"))
        .values_list("sla_policy_id", "n")
    )
    for policy in policies:
        policy.active_tickets = counts.get(policy.pk, 0)
    return policies


def policy_get(*, actor: User, pk) -> SlaPolicy:
    policy = SlaPolicy.objects.filter(organization_id=actor.organization_id, pk=pk).first()
    if policy is None:
        raise Http404
    return policy


def calendars_with_use(*, actor: User) -> list[BusinessCalendar]:
    """The organization's calendars by name, each with `policy_names` (the policies on it, in order) and
    `holiday_count` (its holidays): two queries."""
    calendars = list(
        BusinessCalendar.objects.filter(organization_id=actor.organization_id)
        .annotate(holiday_count=Count("holidays", filter=Q(holidays__organization_id=actor.organization_id)))
        .order_by("name", "id")
    )
    names = defaultdict(list)
    for calendar_id, name in (
        SlaPolicy.objects.filter(organization_id=actor.organization_id, calendar__isnull=False)
        .order_by("position", "id")
        .values_list("calendar_id", "name")
    ):
        names[calendar_id].append(name)
    for calendar in calendars:
        calendar.policy_names = names.get(calendar.pk, [])
    return calendars


def calendar_get(*, actor: User, pk) -> BusinessCalendar:
    calendar = BusinessCalendar.objects.filter(organization_id=actor.organization_id, pk=pk).first()
    if calendar is None:
        raise Http404
    return calendar


def holidays_of(*, calendar: BusinessCalendar) -> list[Holiday]:
    return list(
        Holiday.objects.filter(organization_id=calendar.organization_id, calendar_id=calendar.pk).order_by(
            "date"
        )
    )


def holiday_get(*, actor: User, pk) -> Holiday:
    holiday = (
        Holiday.objects.filter(organization_id=actor.organization_id, pk=pk)
        .select_related("calendar")
        .first()
    )
    if holiday is None:
        raise Http404
    return holiday
