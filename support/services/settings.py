"""Writes to the SLA settings: policies (ordered, first match wins), business-hours calendars and their
holidays. Each change that moves deadlines recomputes the active tickets it affects in the same transaction
(support/sla.py), so a stored deadline never disagrees with the calendar it was computed on; the services
that do so return how many tickets were recomputed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from crm.models import Organization, User
from crm.permissions import Capability, has_capability
from support import sla
from support.models import DONE_STATUSES, BusinessCalendar, Holiday, SlaPolicy, Ticket

POLICY_FIELDS = (
    "name",
    "active",
    "match_vip",
    "match_types",
    "match_priorities",
    "match_channels",
    "set_priority",
    "first_response_minutes",
    "resolution_minutes",
    "calendar",
)
# A change of these moves the deadlines of the policy's tickets; the others only decide which tickets match.
_CLOCK_FIELDS = ("first_response_minutes", "resolution_minutes", "calendar")


def _require(actor: User | None) -> None:
    if actor is not None and not has_capability(actor, Capability.MANAGE_SUPPORT_SETTINGS):
        raise PermissionDenied


# --- calendars ----------------------------------------------------------------------------------------------


def _validated_calendar(calendar: BusinessCalendar) -> None:
    try:
        week = sla.parse_week(calendar.hours)
    except ValueError as error:
        raise ValidationError(
            {"hours": _("Working hours are not valid: %(error)s") % {"error": error}}
        ) from error
    if not week:
        raise ValidationError({"hours": _("Give at least one day with working hours.")})
    calendar.full_clean(exclude=["organization"], validate_unique=False)
    others = BusinessCalendar.objects.filter(organization_id=calendar.organization_id, name=calendar.name)
    if others.exclude(pk=calendar.pk).exists():
        raise ValidationError({"name": _("Another calendar has this name.")})


@transaction.atomic
def calendar_create(
    *, organization: Organization, actor: User | None, name: str, time_zone: str, hours: dict
) -> BusinessCalendar:
    _require(actor)
    calendar = BusinessCalendar(
        organization=organization, name=name.strip(), time_zone=time_zone, hours=hours
    )
    _validated_calendar(calendar)
    calendar.save(force_insert=True)
    return calendar


@transaction.atomic
def calendar_update(
    *, calendar: BusinessCalendar, actor: User | None, name: str, time_zone: str, hours: dict
) -> tuple[BusinessCalendar, int]:
    """Save the calendar and recompute the active tickets on policies that use it; returns the calendar and
    how many tickets were recomputed (0 when only the name changed)."""
    _require(actor)
    stored = BusinessCalendar.objects.select_for_update().get(
        organization_id=calendar.organization_id, pk=calendar.pk
    )
    clock_changed = stored.time_zone != time_zone or stored.hours != hours
    stored.name, stored.time_zone, stored.hours = name.strip(), time_zone, hours
    _validated_calendar(stored)
    stored.save()
    recomputed = 0
    if clock_changed:
        recomputed = sla.recompute_for_calendar(calendar_id=stored.pk, organization_id=stored.organization_id)
    return stored, recomputed


@transaction.atomic
def calendar_delete(*, calendar: BusinessCalendar, actor: User | None) -> None:
    """Delete a calendar no policy uses (a policy's calendar is chosen on the policy first)."""
    _require(actor)
    users = list(
        SlaPolicy.objects.filter(organization_id=calendar.organization_id, calendar_id=calendar.pk)
        .order_by("position")
        .values_list("name", flat=True)
    )
    if users:
        raise ValidationError(
            _("%(calendar)s is used by %(policies)s: choose another calendar there first.")
            % {"calendar": calendar.name, "policies": ", ".join(users)}
        )
    calendar.delete()


@transaction.atomic
def holiday_add(
    *, calendar: BusinessCalendar, actor: User | None, date: dt.date, name: str = ""
) -> tuple[Holiday, int]:
    """Add a holiday (a local date of the calendar) and recompute the calendar's tickets; returns the holiday
    and how many tickets were recomputed."""
    _require(actor)
    BusinessCalendar.objects.select_for_update().get(organization_id=calendar.organization_id, pk=calendar.pk)
    if Holiday.objects.filter(
        organization_id=calendar.organization_id, calendar=calendar, date=date
    ).exists():
        raise ValidationError({"date": _("This day is already a holiday.")})
    try:
        with transaction.atomic():
            holiday = Holiday.objects.create(
                organization_id=calendar.organization_id,
                calendar=calendar,
                date=date,
                name=name.strip()[:100],
            )
    except IntegrityError as error:  # added at the same moment by someone else
        raise ValidationError({"date": _("This day is already a holiday.")}) from error
    recomputed = sla.recompute_for_calendar(calendar_id=calendar.pk, organization_id=calendar.organization_id)
    return holiday, recomputed


@transaction.atomic
def holiday_delete(*, holiday: Holiday, actor: User | None) -> int:
    """Remove a holiday and recompute the calendar's tickets; returns how many were recomputed."""
    _require(actor)
    calendar_id, organization_id = holiday.calendar_id, holiday.organization_id
    BusinessCalendar.objects.select_for_update().get(organization_id=organization_id, pk=calendar_id)
    holiday.delete()
    return sla.recompute_for_calendar(calendar_id=calendar_id, organization_id=organization_id)


# --- policies -----------------------------------------------------------------------------------------------


def _validated_policy(policy: SlaPolicy) -> None:
    if policy.calendar_id and policy.calendar.organization_id != policy.organization_id:
        raise ValidationError({"calendar": _("Choose a calendar of this organization.")})
    policy.full_clean(exclude=["organization", "position"], validate_unique=False)
    if policy.first_response_minutes > policy.resolution_minutes:
        raise ValidationError(
            {"first_response_minutes": _("The first response cannot be due after the resolution.")}
        )


@transaction.atomic
def policy_create(*, organization: Organization, actor: User | None, **fields) -> SlaPolicy:
    """Add a policy at the end of the order (it matches what no earlier policy matched)."""
    _require(actor)
    unknown = set(fields) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    last = SlaPolicy.objects.filter(organization_id=organization.pk).aggregate(last=Max("position"))["last"]
    policy = SlaPolicy(organization=organization, position=(last or 0) + 10, **fields)
    _validated_policy(policy)
    policy.save(force_insert=True)
    return policy


@transaction.atomic
def policy_update(*, policy: SlaPolicy, actor: User | None, **fields) -> tuple[SlaPolicy, int]:
    """Save a policy; when its targets or calendar change, recompute its active tickets. Returns the policy
    and how many tickets were recomputed. Changed conditions apply to new tickets and to each ticket at its
    next change (policies are matched again then)."""
    _require(actor)
    unknown = set(fields) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    stored = SlaPolicy.objects.select_for_update().get(organization_id=policy.organization_id, pk=policy.pk)
    before = {name: getattr(stored, name) for name in _CLOCK_FIELDS}
    for name, value in fields.items():
        setattr(stored, name, value)
    _validated_policy(stored)
    stored.save()
    recomputed = 0
    if any(getattr(stored, name) != before[name] for name in _CLOCK_FIELDS):
        recomputed = sla.recompute_for_policy(policy_id=stored.pk, organization_id=stored.organization_id)
    return stored, recomputed


def _renumber(organization_id, ordered_ids: Sequence) -> None:
    positions = {pk: (index + 1) * 10 for index, pk in enumerate(ordered_ids)}
    policies = list(SlaPolicy.objects.filter(organization_id=organization_id, pk__in=list(positions)))
    for policy in policies:
        policy.position = positions[policy.pk]
    SlaPolicy.objects.bulk_update(policies, ["position"])


def _locked_order(organization_id) -> list:
    """The organization's policy ids in order, with their rows locked (two reorders never interleave)."""
    return list(
        SlaPolicy.objects.select_for_update()
        .filter(organization_id=organization_id)
        .order_by("position", "id")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def policy_move(*, policy: SlaPolicy, actor: User | None, direction: str) -> SlaPolicy:
    """Move a policy one place up (tried earlier) or down."""
    _require(actor)
    if direction not in ("up", "down"):
        raise ValidationError(_("Move up or down."))
    order = _locked_order(policy.organization_id)
    index = order.index(policy.pk)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
        _renumber(policy.organization_id, order)
    return SlaPolicy.objects.get(organization_id=policy.organization_id, pk=policy.pk)


@transaction.atomic
def policy_reorder(*, organization: Organization, actor: User | None, policy_ids: Sequence[str]) -> None:
    """Put the organization's policies in this order (every policy, each once)."""
    _require(actor)
    order = _locked_order(organization.pk)
    wanted = [str(pk) for pk in policy_ids]
    if sorted(wanted) != sorted(str(pk) for pk in order):
        raise ValidationError(_("The order must list every policy once; reload the page and try again."))
    _renumber(organization.pk, [pk for wanted_pk in wanted for pk in order if str(pk) == wanted_pk])


@transaction.atomic
def policy_delete(*, policy: SlaPolicy, actor: User | None) -> int:
    """Delete a policy; its active tickets are matched again to the remaining policies (and get their
    deadlines). Returns how many tickets moved."""
    _require(actor)
    organization_id = policy.organization_id
    orphans = list(
        Ticket.objects.select_for_update()
        .filter(organization_id=organization_id, sla_policy_id=policy.pk)
        .exclude(status__in=DONE_STATUSES)
        .order_by("id")
    )
    policy.delete()
    for ticket in orphans:
        ticket.sla_policy = None
        sla.ticket_apply_sla(ticket=ticket, install_defaults=False)
    return len(orphans)


@transaction.atomic
def policies_install_defaults(*, organization: Organization, actor: User | None) -> list[SlaPolicy]:
    """The design document's default policies (and business-hours calendar), for an organization with none."""
    _require(actor)
    return sla.ensure_default_policies(organization)
