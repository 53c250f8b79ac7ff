"""Reads of activities: who may see which, a deal's activity timeline, "My day", the customer 360 panel, and
the sweeps beat runs (which organizations have due reminders or open deals).

Every read starts from the deals the actor may see (`sales.selectors.visible_opportunities`): an activity of
a deal the actor may not see is invisible to them too, except their own (a task a manager gave them).
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass, field

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.formats import date_format

from crm.models import Organization, User
from crm.pagination import KeysetPage, keyset_page
from crm.permissions import Capability, has_capability
from sales.models import Activity, Opportunity
from sales.selectors import sees_all_opportunities, visible_opportunities

OPEN_LIMIT = 20  # open activities shown on a deal before "show all"
OPEN_LIMIT_ALL = 200  # ... and the cap of "show all"
DONE_PAGE = 10  # done activities per "show more"
MY_DAY_LIMIT = 50  # rows per My day bucket (the header counts say how many there are)
UPCOMING_DAYS = 7
PANEL_LIMIT = 5


def visible_activities(*, actor: User) -> QuerySet[Activity]:
    """The activities `actor` may see: those of deals they may see, those on a customer only, and their
    own. The deal rule is `visible_opportunities`' ("own only" mode narrows a rep to their deals), spelt
    out as a join so that a full-visibility read filters nothing more than the organization."""
    if not has_capability(actor, Capability.VIEW_OPPORTUNITIES):
        return Activity.objects.none()
    queryset = Activity.objects.filter(organization_id=actor.organization_id)
    if sees_all_opportunities(actor):
        return queryset
    return queryset.filter(
        Q(opportunity__isnull=True) | Q(opportunity__assigned_to_id=actor.pk) | Q(owner_id=actor.pk)
    )


def activity_get(*, actor: User, pk) -> Activity:
    """One activity the actor may see, or 404."""
    return get_object_or_404(
        visible_activities(actor=actor).select_related("opportunity", "customer", "owner"), pk=pk
    )


def opportunity_for_activities(*, actor: User, pk) -> Opportunity:
    """The deal whose activities are asked for, or 404 when the actor may not see it."""
    return get_object_or_404(visible_opportunities(actor=actor).select_related("customer"), pk=pk)


@dataclass
class DealTimeline:
    open: list[Activity]
    open_more: bool
    done: KeysetPage


def deal_timeline(
    *, opportunity: Opportunity, cursor: str | None = None, all_open: bool = False
) -> DealTimeline:
    """A deal's activities: the open ones first (soonest due first, undated last; bounded), then the done
    ones, newest first, a keyset page at a time ("show more"). Two queries, whatever the history."""
    base = Activity.objects.filter(
        organization_id=opportunity.organization_id, opportunity_id=opportunity.pk
    ).select_related("owner")
    limit = OPEN_LIMIT_ALL if all_open else OPEN_LIMIT
    open_rows = list(
        base.filter(completed_at__isnull=True).order_by(F("due_at").asc(nulls_last=True), "id")[: limit + 1]
    )
    done = keyset_page(
        base.filter(completed_at__isnull=False),
        ordering=("-completed_at", "-id"),
        cursor=cursor,
        per_page=DONE_PAGE,
    )
    return DealTimeline(open=open_rows[:limit], open_more=len(open_rows) > limit, done=done)


# --- My day ----------------------------------------------------------------------------------------------------


@dataclass
class MyDay:
    today: datetime.date
    overdue: list[Activity] = field(default_factory=list)
    due_today: list[Activity] = field(default_factory=list)
    upcoming: list[Activity] = field(default_factory=list)
    undated: list[Activity] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def day_bounds(
    now: datetime.datetime, zone: zoneinfo.ZoneInfo
) -> tuple[datetime.date, datetime.datetime, datetime.datetime, datetime.datetime]:
    """(today, start of today, start of tomorrow, end of the upcoming window) in `zone`: calendar days of
    the user, so a day is 23 or 25 hours long across a daylight-saving change."""
    today = now.astimezone(zone).date()

    def midnight(day: datetime.date) -> datetime.datetime:
        return datetime.datetime.combine(day, datetime.time.min, tzinfo=zone)

    return (
        today,
        midnight(today),
        midnight(today + datetime.timedelta(days=1)),
        midnight(today + datetime.timedelta(days=1 + UPCOMING_DAYS)),
    )


def my_open_activities(*, user: User) -> QuerySet[Activity]:
    return Activity.objects.filter(
        organization_id=user.organization_id, owner_id=user.pk, completed_at__isnull=True
    )


def my_day_counts(
    *, user: User, zone: zoneinfo.ZoneInfo, now: datetime.datetime | None = None
) -> dict[str, int]:
    """How many of the user's open activities are overdue, due today, upcoming (the next 7 days) or
    undated: one aggregate over the user's open activities (index: organization, owner, completed_at)."""
    _, start, tomorrow, horizon = day_bounds(now or timezone.now(), zone)
    return my_open_activities(user=user).aggregate(
        overdue=Count("id", filter=Q(due_at__lt=start)),
        today=Count("id", filter=Q(due_at__gte=start, due_at__lt=tomorrow)),
        upcoming=Count("id", filter=Q(due_at__gte=tomorrow, due_at__lt=horizon)),
        undated=Count("id", filter=Q(due_at__isnull=True)),
    )


def my_day(*, user: User, zone: zoneinfo.ZoneInfo, now: datetime.datetime | None = None) -> MyDay:
    """The user's open activities by when they are due, in the user's calendar days: overdue (before
    today), today, upcoming (the next 7 days) and undated. Five queries, whatever the volume."""
    now = now or timezone.now()
    today, start, tomorrow, horizon = day_bounds(now, zone)
    mine = my_open_activities(user=user).select_related("opportunity", "customer")
    by_due = ("due_at", "id")
    return MyDay(
        today=today,
        overdue=list(mine.filter(due_at__lt=start).order_by(*by_due)[:MY_DAY_LIMIT]),
        due_today=list(mine.filter(due_at__gte=start, due_at__lt=tomorrow).order_by(*by_due)[:MY_DAY_LIMIT]),
        upcoming=list(mine.filter(due_at__gte=tomorrow, due_at__lt=horizon).order_by(*by_due)[:MY_DAY_LIMIT]),
        undated=list(mine.filter(due_at__isnull=True).order_by("-created_at", "-id")[:MY_DAY_LIMIT]),
        counts=my_day_counts(user=user, zone=zone, now=now),
    )


# --- the customer 360 panel --------------------------------------------------------------------------------------


def upcoming_for_customer(*, customer, actor: User) -> list[dict]:
    """The customer 360 panel "Upcoming activities": the next open activities on the customer (soonest
    first, undated last), as plain data for the page and the JSON. Two queries at most."""
    from django.urls import reverse

    rows = (
        visible_activities(actor=actor)
        .filter(customer_id=customer.pk, completed_at__isnull=True)
        .select_related("opportunity", "owner")
        .order_by(F("due_at").asc(nulls_last=True), "id")[:PANEL_LIMIT]
    )
    now = timezone.now()
    data = []
    for activity in rows:
        due = timezone.localtime(activity.due_at) if activity.due_at else None
        data.append(
            {
                "id": str(activity.pk),
                "kind": activity.kind,
                "kind_label": str(activity.get_kind_display()),
                "subject": activity.subject,
                "due_at": activity.due_at.isoformat() if activity.due_at else None,
                "due": date_format(due, "D j M, H:i") if due else "",
                "overdue": bool(activity.due_at and activity.due_at < now),
                "owner": str(activity.owner) if activity.owner else "",
                "opportunity": activity.opportunity.name if activity.opportunity else "",
                "url": reverse("sales:opportunity_detail", kwargs={"pk": activity.opportunity_id})
                if activity.opportunity_id
                else reverse("sales:activity_edit", kwargs={"pk": activity.pk}),
            }
        )
    return data


# --- choices ------------------------------------------------------------------------------------------------------


def owner_choices(*, actor: User) -> list[User]:
    return list(
        User.objects.filter(organization_id=actor.organization_id, is_active=True)
        .only("id", "first_name", "last_name", "email")
        .order_by("first_name", "last_name", "email")
    )


# --- beat sweeps (run in the system context) --------------------------------------------------------------------


def organizations_with_due_reminders(*, now: datetime.datetime | None = None) -> list:
    """Organizations with at least one reminder due and not delivered (the partial index on reminder_at
    holds exactly the undelivered reminders of open activities)."""
    now = now or timezone.now()
    return list(
        Activity.objects.filter(reminder_at__lte=now, reminded_at__isnull=True, completed_at__isnull=True)
        .order_by()
        .values_list("organization_id", flat=True)
        .distinct()
    )


def organizations_for_no_activity_rule() -> list:
    """Trial and active organizations with at least one open deal: where the no-activity rule has work."""
    open_deals = Opportunity.objects.filter(organization_id=OuterRef("pk"), status=Opportunity.Status.OPEN)
    return list(
        Organization.objects.filter(status__in=[Organization.Status.TRIAL, Organization.Status.ACTIVE])
        .filter(Exists(open_deals))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
