"""What the duplicates pages show: the list page (the stored pairs, see customers.duplicates.refresh) with
both customers of each pair, one pair, and the compare & merge page (field by field, default picks, what
moves). Scoped to the actor's organization."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import connection
from django.http import Http404
from django.utils import formats
from django.utils.translation import gettext as _

from crm.models import User
from customers import merging
from customers.duplicates.finding import (
    PER_PAGE,
    DuplicatePair,
    DuplicatesPage,
    Keyset,
    Reason,
    pair_reasons,
    reasons_from,
)
from customers.models import Customer, DuplicateDismissal

# One keyset page of the stored pairs, read in the page index's order (organization_id, confidence DESC,
# customer_a_id DESC, customer_b_id DESC) and stopped after per_page + 1 rows whatever the depth. Pairs marked
# "not a duplicate" since, and pairs of customers erased or anonymized since, are left out as it reads. The
# customers are checked in a scalar subquery (two primary-key lookups a row) rather than a join: under
# row-level security the planner cannot estimate the customers side and would drive the query from the
# organization's customers (all of them) instead of walking the index and stopping.
_VISIBLE = """
FROM customer_duplicate_pairs p
WHERE p.organization_id = %(org)s
  AND NOT EXISTS (
      SELECT 1 FROM customer_duplicate_dismissals d
      WHERE d.organization_id = %(org)s AND d.customer_a_id = p.customer_a_id
        AND d.customer_b_id = p.customer_b_id
  )
  AND (
      SELECT count(*) FROM customers c
      WHERE c.organization_id = %(org)s AND c.id IN (p.customer_a_id, p.customer_b_id)
        AND c.erased_at IS NULL AND c.anonymized_at IS NULL
  ) = 2
"""
_PAGE_SQL = (
    "SELECT p.customer_a_id, p.customer_b_id, p.same_email, p.same_phone, p.name_similarity,"
    " p.company_similarity, p.confidence" + _VISIBLE + " AND {where} ORDER BY {order} LIMIT %(limit)s"
)
# "1,000+ pairs": never an unbounded count.
COUNT_CAP = 1000
_COUNT_SQL = f"SELECT count(*) FROM (SELECT 1 {_VISIBLE} LIMIT %(cap)s) capped"


def duplicates_page(*, actor: User, cursor: str | None = None, per_page: int = PER_PAGE) -> DuplicatesPage:
    """The actor's organization's duplicates list page, as the last refresh stored the pairs, each pair
    with both customers (and owners) loaded. Three queries whatever the data: the page of pairs, the capped
    count, the customers."""
    keyset = Keyset.from_cursor(cursor)
    params = {
        **keyset.params(),
        "org": actor.organization_id,
        "limit": per_page + 1,
        "cap": COUNT_CAP + 1,
    }
    sql = _PAGE_SQL.format(
        where=keyset.where("(p.confidence, p.customer_a_id, p.customer_b_id)"),
        order=keyset.order(("p.confidence", "p.customer_a_id", "p.customer_b_id")),
    )
    with connection.cursor() as db:
        db.execute(sql, params)
        rows = db.fetchall()
        db.execute(_COUNT_SQL, params)
        (total,) = db.fetchone()
    items = [
        DuplicatePair(
            a_id=a, b_id=b, confidence=conf, reasons=reasons_from(email, phone, name_sim, company_sim)
        )
        for a, b, email, phone, name_sim, company_sim, conf in rows
    ]
    page = keyset.page(items, per_page=per_page, total=min(total, COUNT_CAP), capped=total > COUNT_CAP)
    ids = {pair.a_id for pair in page.items} | {pair.b_id for pair in page.items}
    if ids:
        customers = Customer.objects.filter(organization_id=actor.organization_id, pk__in=ids).select_related(
            "assigned_to"
        )
        by_id = {customer.pk: customer for customer in customers}
        for pair in page.items:
            pair.a, pair.b = by_id.get(pair.a_id), by_id.get(pair.b_id)
        page.items = [pair for pair in page.items if pair.a and pair.b]
    return page


def one_pair(*, actor: User, a: Customer, b: Customer) -> DuplicatePair:
    """One pair as the list shows it (ids in the list's order), with its current reasons."""
    if b.pk < a.pk:
        a, b = b, a
    confidence, reasons = pair_reasons(organization_id=actor.organization_id, a_id=a.pk, b_id=b.pk)
    return DuplicatePair(a_id=a.pk, b_id=b.pk, confidence=confidence, reasons=reasons, a=a, b=b)


def customer_pair(*, actor: User, a_id: uuid.UUID, b_id: uuid.UUID) -> tuple[Customer, Customer]:
    """Two different customers of the actor's organization that may be merged, or 404 (another
    organization's, unknown, the same one twice, erased or anonymized)."""
    if a_id == b_id:
        raise Http404
    found = {
        customer.pk: customer
        for customer in Customer.objects.filter(
            organization_id=actor.organization_id,
            pk__in=[a_id, b_id],
            erased_at__isnull=True,
            anonymized_at__isnull=True,
        ).select_related("assigned_to")
    }
    if len(found) != 2:
        raise Http404
    return found[a_id], found[b_id]


@dataclass
class FieldRow:
    name: str
    label: str
    a: str  # displayed values
    b: str
    same: bool
    default: str  # "a" or "b"
    picked: str = ""  # what the page shows as picked (the default, or what was posted)

    @property
    def values(self) -> list[tuple[str, str]]:
        return [("a", self.a), ("b", self.b)]


@dataclass
class MoveRow:
    label: str
    a: int
    b: int


@dataclass
class MergePreview:
    a: Customer
    b: Customer
    confidence: int
    reasons: list[Reason]
    rows: list[FieldRow]
    tags: list[str]  # what the survivor's tags become (the union)
    moves: list[MoveRow]
    default_survivor: str  # "a" or "b"
    dismissed: bool


def _display(customer: Customer, group: merging.FieldGroup) -> str:
    parts = []
    for name in group.fields:
        value = getattr(customer, name)
        model_field = Customer._meta.get_field(name)
        if model_field.choices and value:
            value = getattr(customer, f"get_{name}_display")()
        elif isinstance(value, bool):
            value = _("Yes") if value else _("No")
        elif name == "assigned_to":
            value = customer.assigned_to.get_full_name() or customer.assigned_to.email if value else ""
        elif value is not None and not isinstance(value, str):
            value = formats.localize(value, use_l10n=True)
        if value not in (None, ""):
            parts.append(str(value))
    return group.separator.join(parts)


def merge_preview(*, actor: User, a_id: uuid.UUID, b_id: uuid.UUID) -> MergePreview:
    """Everything the compare & merge page shows about two customers: field by field with the default
    pick, the tags the survivor ends up with, how many records of each would move (per registered app),
    why they look alike, and whether someone marked them "not a duplicate". A fixed number of queries:
    the pair, its reasons, the dismissal, and one per registered count per customer."""
    a, b = customer_pair(actor=actor, a_id=a_id, b_id=b_id)
    confidence, reasons = pair_reasons(organization_id=actor.organization_id, a_id=a.pk, b_id=b.pk)
    rows = []
    for group in merging.FIELD_GROUPS:
        shown_a, shown_b = _display(a, group), _display(b, group)
        rows.append(
            FieldRow(
                name=group.name,
                label=str(group.label),
                a=shown_a,
                b=shown_b,
                same=all(getattr(a, f) == getattr(b, f) for f in group.fields),
                default=merging.default_choice(group, a, b),
            )
        )
    moves = [
        MoveRow(
            label=str(entry.label),
            a=entry.count(organization_id=actor.organization_id, customer_id=a.pk),
            b=entry.count(organization_id=actor.organization_id, customer_id=b.pk),
        )
        for entry in merging.reassigners()
        if entry.count is not None
    ]
    low, high = sorted([a.pk, b.pk])
    dismissed = DuplicateDismissal.objects.filter(
        organization_id=actor.organization_id, customer_a_id=low, customer_b_id=high
    ).exists()
    return MergePreview(
        a=a,
        b=b,
        confidence=confidence,
        reasons=reasons,
        rows=rows,
        tags=merging.merged_tags(a.tags, b.tags),
        moves=moves,
        default_survivor="a" if (a.number, a.pk) <= (b.number, b.pk) else "b",
        dismissed=dismissed,
    )
