"""Writes to segments: create, edit, delete, refresh (set-based), and manual membership of static ones.

A dynamic segment is refreshed when it is saved, by the hourly beat task, and on demand; every refresh
applies the difference between the members and the customers its rules select in one statement
(customers.segments.membership), recording each arrival and departure with the rule that explains it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Organization, User
from crm.permissions import Capability, has_capability
from customers.models import Segment
from customers.segments import membership
from customers.segments.compiler import matching_customers
from customers.segments.criteria import CriteriaError, validate_criteria
from customers.selectors import valid_ids

logger = logging.getLogger(__name__)


def _require(actor: User | None, segment_or_org_id) -> None:
    """The actor may manage segments, and only their own organization's."""
    if actor is None:
        return
    if not has_capability(actor, Capability.MANAGE_SEGMENTS):
        raise PermissionDenied
    if actor.organization_id and actor.organization_id != segment_or_org_id:
        raise PermissionDenied


def _check_name(*, organization_id, name: str, exclude_pk=None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the segment a name.")})
    taken = Segment.objects.filter(organization_id=organization_id, name__iexact=name)
    if exclude_pk:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationError({"name": _("Another segment already has this name.")})
    return name


def _dynamic_criteria(criteria) -> dict:
    try:
        return validate_criteria(criteria)
    except CriteriaError as error:
        raise ValidationError({"criteria": error.flat()}) from error


def _person(actor: User | None) -> str:
    return (actor.get_full_name() or actor.email) if actor else ""


@transaction.atomic
def segment_create(
    *,
    organization: Organization,
    actor: User | None,
    name: str,
    kind: str = Segment.Kind.DYNAMIC,
    description: str = "",
    criteria: dict | None = None,
) -> Segment:
    """Create a segment; a dynamic one is filled at once from its rules."""
    _require(actor, organization.pk)
    if kind not in Segment.Kind.values:
        raise ValidationError({"kind": _("Choose static or dynamic.")})
    segment = Segment(
        organization=organization,
        name=_check_name(organization_id=organization.pk, name=name),
        description=(description or "").strip(),
        kind=kind,
        criteria=_dynamic_criteria(criteria) if kind == Segment.Kind.DYNAMIC else {},
        created_by=actor,
    )
    segment.save(force_insert=True)
    if segment.kind == Segment.Kind.DYNAMIC:
        segment_refresh(segment=segment, actor=actor)
    return segment


@transaction.atomic
def segment_update(
    *,
    segment: Segment,
    actor: User | None,
    name: str,
    description: str = "",
    criteria: dict | None = None,
) -> Segment:
    """Rename, describe, or change the rules of a segment (its kind stays); a dynamic one is refreshed."""
    _require(actor, segment.organization_id)
    segment.name = _check_name(organization_id=segment.organization_id, name=name, exclude_pk=segment.pk)
    segment.description = (description or "").strip()
    if segment.kind == Segment.Kind.DYNAMIC:
        segment.criteria = _dynamic_criteria(criteria)
    segment.save(update_fields=["name", "description", "criteria", "updated_at"])
    if segment.kind == Segment.Kind.DYNAMIC:
        segment_refresh(segment=segment, actor=actor)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment, actor: User | None) -> None:
    """Delete a segment with its members and history (the audit trail keeps the deletion)."""
    _require(actor, segment.organization_id)
    segment.delete()


@transaction.atomic
def segment_refresh(*, segment: Segment, actor: User | None = None) -> tuple[int, int]:
    """Bring a dynamic segment's members in line with its rules; returns (added, removed).

    Locks the segment's row first, so a refresh on demand and the beat's never interleave (the second
    waits, then finds nothing left to do). Refuses static segments (they have no rules).
    """
    _require(actor, segment.organization_id)
    if segment.kind != Segment.Kind.DYNAMIC:
        raise ValidationError(_("Only dynamic segments are refreshed; static ones change by hand."))
    locked = Segment.objects.select_for_update().only("id", "organization_id", "criteria").get(pk=segment.pk)
    organization = Organization.objects.only("id", "time_zone").get(pk=locked.organization_id)
    now = timezone.now()
    matching = matching_customers(
        locked.criteria, organization_id=organization.pk, now=now, tz=organization.time_zone
    )
    added, removed = membership.refresh_members(
        organization_id=organization.pk, segment_id=locked.pk, matching=matching, now=now
    )
    segment.member_count = membership.recount(
        organization_id=organization.pk, segment_id=locked.pk, refreshed_at=now
    )
    segment.refreshed_at = now
    return added, removed


def _static(segment: Segment) -> None:
    if segment.kind != Segment.Kind.STATIC:
        raise ValidationError(
            _("“%(name)s” is a dynamic segment: its rules decide who is in it.") % {"name": segment}
        )


@transaction.atomic
def segment_add_members(*, segment: Segment, customer_ids: Iterable, actor: User | None) -> int:
    """Add customers to a static segment; returns how many joined.

    Only the segment's organization's customers are added (other ids, and customers already in it, are
    ignored); customers whose processing is restricted are never added. Dynamic segments refuse.
    """
    _require(actor, segment.organization_id)
    _static(segment)
    locked = Segment.objects.select_for_update().only("id", "organization_id").get(pk=segment.pk)
    person = _person(actor)
    added = membership.add_members(
        organization_id=locked.organization_id,
        segment_id=locked.pk,
        customer_ids=valid_ids(customer_ids),
        actor_id=actor.pk if actor else None,
        rule=_("Added by %(name)s") % {"name": person} if person else _("Added by hand"),
        now=timezone.now(),
    )
    segment.member_count = membership.recount(organization_id=locked.organization_id, segment_id=locked.pk)
    return added


@transaction.atomic
def segment_remove_members(*, segment: Segment, customer_ids: Iterable, actor: User | None) -> int:
    """Remove customers from a static segment; returns how many left. Dynamic segments refuse."""
    _require(actor, segment.organization_id)
    _static(segment)
    locked = Segment.objects.select_for_update().only("id", "organization_id").get(pk=segment.pk)
    person = _person(actor)
    removed = membership.remove_members(
        organization_id=locked.organization_id,
        segment_id=locked.pk,
        customer_ids=valid_ids(customer_ids),
        rule=_("Removed by %(name)s") % {"name": person} if person else _("Removed by hand"),
        now=timezone.now(),
    )
    segment.member_count = membership.recount(organization_id=locked.organization_id, segment_id=locked.pk)
    return removed


def segments_refresh_dynamic(*, organization_id: uuid.UUID, actor: User | None = None) -> dict[str, int]:
    """Refresh every dynamic segment of an organization (the beat's per-organization task).

    Each segment in its own savepoint: one that fails (say, rules that no longer validate) is logged and
    skipped, and the others are still refreshed.
    """
    totals = {"segments": 0, "added": 0, "removed": 0, "failed": 0}
    segments = Segment.objects.filter(organization_id=organization_id, kind=Segment.Kind.DYNAMIC).order_by(
        "id"
    )
    for segment in list(segments.only("id", "organization_id", "kind", "name")):
        try:
            with transaction.atomic():
                added, removed = segment_refresh(segment=segment, actor=actor)
        except (ValidationError, CriteriaError):
            logger.exception("Segment %s could not be refreshed", segment.pk)
            totals["failed"] += 1
            continue
        totals["segments"] += 1
        totals["added"] += added
        totals["removed"] += removed
    return totals
