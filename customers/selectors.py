"""Reads of the customers app: lists, the 360 view, search. Scoped to the actor's organization."""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Iterable
from decimal import Decimal

from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import connection
from django.db.models import BooleanField, Case, FloatField, Q, QuerySet, TextField, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Concat
from django.shortcuts import get_object_or_404
from django.utils import timezone

from crm.models import User
from crm.search import SearchResult
from customers import panels
from customers.models import Customer, Interaction, LifecycleChange, Segment, SegmentMember
from customers.phones import query_phone_hash

WORD_SIMILARITY = "0.45"
# A trigram held by this many customers or more is "common": the search's candidate step leaves it out.
COMMON_TERM = 10_000
LIST_CAP = 1000  # the list says "1,000+" rather than counting a large table to the end

# The same expression as the GIN trigram index customers_search_trgm_idx (which serves the owner role only,
# see search()) and as the search terms of migrations 0005/0009. The phone is not in it: it is encrypted at
# rest, and a query that is a phone number is looked up by its keyed hash instead (customers.phones).
SEARCH_TEXT = Concat(
    "first_name",
    Value(" "),
    "last_name",
    Value(" "),
    "email",
    Value(" "),
    "company_name",
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


def valid_ids(values: Iterable) -> list[uuid.UUID]:
    """The valid UUIDs among `values` (form input, task arguments), deduplicated; anything else is ignored."""
    ids = []
    for value in values or ():
        try:
            ids.append(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except ValueError:
            continue
    return list(dict.fromkeys(ids))


def customers_of(*, actor: User) -> QuerySet[Customer]:
    """The actor's organization's customers (the application wall; RLS is the second)."""
    return Customer.objects.filter(organization_id=actor.organization_id)


def customer_get(*, actor: User, pk) -> Customer:
    return get_object_or_404(customers_of(actor=actor).select_related("assigned_to"), pk=pk)


def _candidate_threshold(trigrams: list[str]) -> int:
    """How many of the query's trigrams a customer's search terms must hold to be a candidate: the fewest
    that either precise condition allows, so the candidate step never loses a match.

    - Word similarity >= 0.45 is |shared| / |union| of the query's trigrams and an extent of the text, so at
      least 45% of the query's trigrams must be among the customer's: ceil(0.45 * n).
    - A substring match holds every trigram lying inside a word of the query (no padding space): those are
      inside a word of the text too. Trigrams shown as a hash (multi-byte text) are not counted, to be safe.

    0 means no bound (a query of one- or two-letter words).
    """
    similar = math.ceil(Decimal(WORD_SIMILARITY) * len(trigrams))
    interior = sum(1 for t in trigrams if len(t) == 3 and " " not in t)
    return min(similar, interior)


def search(queryset: QuerySet[Customer], query: str, *, organization_id) -> QuerySet[Customer]:
    """Typo-tolerant search by name, email, company, phone: substring OR trigram word similarity, most
    similar first.

    Under forced row-level security no index serves pg_trgm's operators or ILIKE (they are not leakproof),
    so candidates come first from customer_search_terms (the trigrams of each customer's searchable text,
    kept by triggers, migration 0005) with `=` — leakproof, served by its primary key. A true match holds at
    least k of the query's trigrams (_candidate_threshold). The query's common trigrams (held by
    COMMON_TERM or more customers) are left out of the candidate step, as reading them costs as much as
    reading the rows: a match holds at most all of them, so it holds at least k - len(common) of the rare
    ones, and the candidates are the customers holding that many rare trigrams. Exact, never a lost match.
    When that bound is 0 (a query of common trigrams only, or of one- or two-letter words) the candidate
    step could not narrow anything and the rows are filtered as before. The precise conditions and the
    similarity are then computed on the candidates only.

    A query that is a phone number ("+1 555 010 2000", "(555) 010-2000 x12") also finds the customers with
    that number through `phone_hash` (equality on an indexed column, leakproof too): the same comparison as
    duplicate detection, the last ten digits without an extension. Those rank first (similarity 1)."""
    query = query.strip()[:100]
    if not query:
        return queryset
    by_phone = query_phone_hash(query)
    # pg_trgm's default word-similarity threshold (0.6) misses ordinary typos ("Jonathon Smithrs" scores
    # 0.57 against "Jonathan Smithers"); 0.45 catches them while unrelated names score near 0. Transaction-
    # local, like every setting here, so it never leaks into another request. The same round trip returns
    # the query's trigrams, as pg_trgm itself splits them, each with how many customers hold it (counted
    # up to COMMON_TERM, through the primary key).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('pg_trgm.word_similarity_threshold', %s, true),"
            " (SELECT coalesce(json_agg(json_build_array(t, (SELECT count(*) FROM (SELECT 1"
            " FROM customer_search_terms s WHERE s.organization_id = %s AND s.term = t LIMIT %s) held))), '[]')"
            " FROM unnest(show_trgm(lower(%s))) AS t)",
            [WORD_SIMILARITY, organization_id, COMMON_TERM, query],
        )
        held = dict(cursor.fetchone()[1])
    rare = sorted(t for t, n in held.items() if n < COMMON_TERM)
    need = _candidate_threshold(list(held)) - (len(held) - len(rare))
    matches = Q(search_text__icontains=query) | Q(search_text__trigram_word_similar=query)
    if need > 0:
        # An array of ids, computed once (an InitPlan), so the customers are then fetched through their
        # primary key (`= ANY`, leakproof) rather than by filtering the organization's rows.
        matches &= Q(
            RawSQL(
                '"customers"."id" = ANY(ARRAY(SELECT customer_id FROM customer_search_terms'
                " WHERE organization_id = %s AND term = ANY(%s::text[])"
                " GROUP BY customer_id HAVING count(*) >= %s))",
                [organization_id, rare, need],
                output_field=BooleanField(),
            )
        )
    similarity = TrigramWordSimilarity(query, SEARCH_TEXT)
    if by_phone is not None:
        matches |= Q(phone_hash=by_phone)
        similarity = Case(
            When(phone_hash=by_phone, then=Value(1.0)), default=similarity, output_field=FloatField()
        )
    return queryset.alias(search_text=SEARCH_TEXT).filter(matches).annotate(similarity=similarity)


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

    matches = search(customers_of(actor=user), query, organization_id=user.organization_id).order_by(
        "-similarity", "-id"
    )[:limit]
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
