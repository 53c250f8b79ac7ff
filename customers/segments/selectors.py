"""Reads of segments, scoped to the acting user's organization (RLS is the second wall)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from crm.models import Organization, User
from crm.pagination import KeysetPage, keyset_page
from customers.models import Segment, SegmentEvent, SegmentMember
from customers.segments.compiler import matching_customers

MEMBERS_PER_PAGE = 25
RECENT_EVENTS = 20


def _organization_id(actor: User) -> uuid.UUID:
    if not actor.organization_id:
        raise Http404("Segments belong to an organization.")
    return actor.organization_id


def segment_list(*, actor: User, query: str = "", kind: str = "") -> QuerySet[Segment]:
    segments = Segment.objects.filter(organization_id=_organization_id(actor))
    if query:
        segments = segments.filter(name__icontains=query)
    if kind in Segment.Kind.values:
        segments = segments.filter(kind=kind)
    return segments


def segment_list_page(
    *, actor: User, query: str = "", kind: str = "", cursor: str | None = None
) -> KeysetPage:
    return keyset_page(
        segment_list(actor=actor, query=query, kind=kind), ordering=("name", "id"), cursor=cursor, per_page=50
    )


def segment_get(*, actor: User, pk) -> Segment:
    return get_object_or_404(Segment.objects.filter(organization_id=_organization_id(actor)), pk=pk)


def segment_members_page(*, actor: User, segment: Segment, cursor: str | None = None) -> KeysetPage:
    """One page of members with their customers, newest customers first (keyset on the (organization,
    segment, customer) key: an index range scan, however deep the page)."""
    members = SegmentMember.objects.filter(
        organization_id=_organization_id(actor), segment_id=segment.pk
    ).select_related("customer")
    return keyset_page(members, ordering=("-customer_id",), cursor=cursor, per_page=MEMBERS_PER_PAGE)


def segment_recent_events(*, actor: User, segment: Segment, limit: int = RECENT_EVENTS) -> list[SegmentEvent]:
    return list(
        SegmentEvent.objects.filter(organization_id=_organization_id(actor), segment_id=segment.pk)
        .select_related("customer")
        .order_by("-at", "-id")[:limit]
    )


def segment_preview_count(*, actor: User, criteria: dict) -> int:
    """How many customers the criteria select right now (raises CriteriaError for invalid criteria)."""
    organization = organization_of(actor=actor)
    return matching_customers(criteria, organization_id=organization.pk, tz=organization.time_zone).count()


def organization_of(*, actor: User) -> Organization:
    """The actor's organization (platform operators, who have none, get 404 on segment pages)."""
    _organization_id(actor)
    return actor.organization


def organizations_with_dynamic_segments() -> list[uuid.UUID]:
    """Every trial or active organization that has a dynamic segment (read in the platform's system
    context; suspended and cancelled organizations are left as they are)."""
    live = [Organization.Status.TRIAL, Organization.Status.ACTIVE]
    return list(
        Segment.objects.filter(kind=Segment.Kind.DYNAMIC, organization__status__in=live)
        .order_by("organization_id")
        .values_list("organization_id", flat=True)
        .distinct()
    )
