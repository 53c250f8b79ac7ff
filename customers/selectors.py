"""Reads of the customers app: lists, the 360 view, search. Scoped to the actor's organization."""

from __future__ import annotations

import datetime

from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import connection
from django.db.models import Q, QuerySet, TextField, Value
from django.db.models.functions import Concat
from django.shortcuts import get_object_or_404
from django.utils import timezone

from crm.models import User
from crm.search import SearchResult
from customers import panels
from customers.models import Customer, Interaction, LifecycleChange, Segment, SegmentMember

WORD_SIMILARITY = "0.45"
LIST_CAP = 1000  # the list says "1,000+" rather than counting a large table to the end

# The same expression as the GIN trigram index customers_search_trgm_idx, so searches can use it.
SEARCH_TEXT = Concat(
    "first_name",
    Value(" "),
    "last_name",
    Value(" "),
    "email",
    Value(" "),
    "company_name",
    Value(" "),
    "phone",
    output_field=TextField(),
)

# Orderings offered by the list, each ending with a unique key for keyset pagination.
ORDERINGS = {
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
    "name": ("last_name", "first_name", "id"),
    "-name": ("-last_name", "-first_name", "-id"),
    "score": ("lead_score", "id"),
    "-score": ("-lead_score", "-id"),
    "number": ("number", "id"),
    "-number": ("-number", "-id"),
}
DEFAULT_ORDERING = "-created"


def customers_of(*, actor: User) -> QuerySet[Customer]:
    """The actor's organization's customers (the application wall; RLS is the second)."""
    return Customer.objects.filter(organization_id=actor.organization_id)


def customer_get(*, actor: User, pk) -> Customer:
    return get_object_or_404(customers_of(actor=actor).select_related("assigned_to"), pk=pk)


def search(queryset: QuerySet[Customer], query: str) -> QuerySet[Customer]:
    """Typo-tolerant search by name, email, company, phone: substring OR trigram word similarity,
    most similar first (both served by the trigram index)."""
    query = query.strip()[:100]
    if not query:
        return queryset
    # pg_trgm's default word-similarity threshold (0.6) misses ordinary typos ("Jonathon Smithrs" scores
    # 0.57 against "Jonathan Smithers"); 0.45 catches them while unrelated names score near 0. Transaction-
    # local, like every setting here, so it never leaks into another request.
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)", [WORD_SIMILARITY])
    return (
        queryset.alias(search_text=SEARCH_TEXT)
        .filter(Q(search_text__icontains=query) | Q(search_text__trigram_word_similar=query))
        .annotate(similarity=TrigramWordSimilarity(query, SEARCH_TEXT))
    )


def capped_count(queryset: QuerySet, cap: int = LIST_CAP) -> tuple[int, bool]:
    """(count, capped): counts at most cap + 1 rows, so a large table is never counted to the end."""
    n = queryset.order_by()[: cap + 1].count()
    return min(n, cap), n > cap


def timeline(*, customer: Customer, kind: str = "") -> QuerySet[Interaction]:
    queryset = Interaction.objects.filter(organization_id=customer.organization_id, customer_id=customer.pk)
    if kind:
        queryset = queryset.filter(interaction_type=kind)
    return queryset.select_related("logged_by")


def lifecycle_history(*, customer: Customer) -> list[LifecycleChange]:
    return list(
        LifecycleChange.objects.filter(
            organization_id=customer.organization_id, customer_id=customer.pk
        ).select_related("changed_by")[:50]
    )


def segments_of(*, customer: Customer) -> list[SegmentMember]:
    return list(
        SegmentMember.objects.filter(organization_id=customer.organization_id, customer_id=customer.pk)
        .select_related("segment")
        .order_by("segment__name")
    )


def recent_interactions(*, customer: Customer, days: int = 90, limit: int = 10) -> list[Interaction]:
    """The design document's 'recent interactions' (last 90 days, newest 10) — with the LIMIT applied to
    the rows, not to an aggregate as its SQL did."""
    since = timezone.now() - datetime.timedelta(days=days)
    return list(timeline(customer=customer).filter(interaction_date__gte=since)[:limit])


def segment_choices(*, actor: User) -> list[tuple[str, str]]:
    return [(str(s.pk), s.name) for s in Segment.objects.filter(organization_id=actor.organization_id)]


def static_segments(*, actor: User) -> list[Segment]:
    return list(Segment.objects.filter(organization_id=actor.organization_id, kind=Segment.Kind.STATIC))


def owner_choices(*, actor: User) -> list[User]:
    return list(
        User.objects.filter(organization_id=actor.organization_id, is_active=True).only(
            "id", "first_name", "last_name", "email"
        )
    )


def panels_for(*, customer: Customer, actor: User) -> list[dict]:
    return panels.load_all(customer=customer, actor=actor)


def search_customers(*, user: User, query: str, limit: int) -> list[SearchResult]:
    """Global search provider: customers by name, email, company or phone (typo-tolerant)."""
    from django.urls import reverse

    matches = search(customers_of(actor=user), query).order_by("-similarity", "-id")[:limit]
    return [
        SearchResult(
            kind="Customers",
            title=c.display_name,
            subtitle=" · ".join(filter(None, [c.customer_number, c.company_name, c.email])),
            url=reverse("customers:detail", args=[c.pk]),
            icon="person-vcard",
        )
        for c in matches
    ]
