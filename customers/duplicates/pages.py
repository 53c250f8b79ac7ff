"""What the duplicates pages show: the list page with both customers of each pair, one pair, and the
compare & merge page (field by field, default picks, what moves). Scoped to the actor's organization."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.http import Http404
from django.utils import formats
from django.utils.translation import gettext as _

from crm.models import User
from customers import merging
from customers.duplicates.finding import (
    PER_PAGE,
    DuplicatePair,
    DuplicatesPage,
    Reason,
    find_duplicates,
    pair_reasons,
)
from customers.models import Customer, DuplicateDismissal


def duplicates_page(*, actor: User, cursor: str | None = None, per_page: int = PER_PAGE) -> DuplicatesPage:
    """The actor's organization's duplicates list page, each pair with both customers (and owners) loaded
    in one more query."""
    page = find_duplicates(organization_id=actor.organization_id, cursor=cursor, per_page=per_page)
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
