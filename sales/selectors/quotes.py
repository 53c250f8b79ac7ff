"""Reads of quotes: the quotes an actor may see (those of the deals they see), a quote with its lines,
events and versions, the list and the approval queue (keyset pages), a deal's quotes, and the comparison
of two versions."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from crm.models import User
from crm.pagination import KeysetPage, keyset_page
from crm.permissions import Capability, has_capability
from sales.models import Opportunity, Quote, QuoteEvent, QuoteItem
from sales.selectors import sees_all_opportunities, visible_opportunities

LIST_ORDERING = ("-number", "-id")
QUEUE_ORDERING = ("submitted_at", "id")
COUNT_CAP = 1000


def quotes_of(*, actor: User) -> QuerySet[Quote]:
    """Every version of every quote on the deals `actor` may see (none without VIEW_QUOTES)."""
    if not has_capability(actor, Capability.VIEW_QUOTES):
        return Quote.objects.none()
    queryset = Quote.objects.filter(organization_id=actor.organization_id)
    if not sees_all_opportunities(actor):
        queryset = queryset.filter(opportunity__in=visible_opportunities(actor=actor).values("pk"))
    return queryset


def quote_get(*, actor: User, pk) -> Quote:
    """One quote version with its deal and customer; 404 when the actor may not see it."""
    quote = (
        quotes_of(actor=actor)
        .select_related("opportunity__customer", "created_by", "submitted_by", "decided_by")
        .filter(pk=pk)
        .first()
    )
    if quote is None:
        raise Http404
    return quote


def opportunity_get(*, actor: User, pk) -> Opportunity:
    """A deal the actor may see (for its quotes section), else 404."""
    deal = visible_opportunities(actor=actor).select_related("customer").filter(pk=pk).first()
    if deal is None:
        raise Http404
    return deal


def quote_items(*, quote: Quote) -> list[QuoteItem]:
    return list(
        QuoteItem.objects.filter(organization_id=quote.organization_id, quote=quote)
        .select_related("product")
        .order_by("position", "id")
    )


EVENT_LABELS = {
    "created": _("Created"),
    "submitted": _("Submitted"),
    "approved": _("Approved"),
    "rejected": _("Rejected"),
    "sent": _("Marked as sent"),
    "accepted": _("Accepted by the customer"),
    "declined": _("Declined by the customer"),
    "revised": _("Revised"),
    "expired": _("Expired"),
}


def quote_events(*, quote: Quote) -> list[QuoteEvent]:
    """The quote's steps, oldest first, each with `label` (the action) and `to_label` (the new status)."""
    statuses = dict(Quote.Status.choices)
    events = list(
        QuoteEvent.objects.filter(organization_id=quote.organization_id, quote=quote)
        .select_related("actor")
        .order_by("at", "id")
    )
    for event in events:
        event.label = EVENT_LABELS.get(event.action, event.action)
        event.to_label = statuses.get(event.to_status, event.to_status)
    return events


def quote_versions(*, quote: Quote) -> list[Quote]:
    """Every version of the quote's number, oldest first (a handful of rows)."""
    return list(
        Quote.objects.filter(organization_id=quote.organization_id, number=quote.number)
        .only("id", "number", "version", "is_current", "status", "total", "currency", "created_at")
        .order_by("version")
    )


def quote_page(*, actor: User, status: str = "", cursor: str | None = None, per_page: int = 50) -> KeysetPage:
    """The current version of each quote, newest number first, optionally of one status."""
    queryset = quotes_of(actor=actor).filter(is_current=True)
    if status:
        queryset = queryset.filter(status=status)
    queryset = queryset.select_related("opportunity__customer", "created_by")
    return keyset_page(queryset, ordering=LIST_ORDERING, cursor=cursor, per_page=per_page)


def approval_queue(*, actor: User, cursor: str | None = None, per_page: int = 50) -> KeysetPage:
    """Quotes waiting for a decision, longest waiting first (for APPROVE_QUOTES holders)."""
    if not has_capability(actor, Capability.APPROVE_QUOTES):
        return KeysetPage(items=[], next_cursor=None, previous_cursor=None)
    queryset = (
        quotes_of(actor=actor)
        .filter(is_current=True, status=Quote.Status.PENDING_APPROVAL)
        .select_related("opportunity__customer", "created_by", "submitted_by")
    )
    return keyset_page(queryset, ordering=QUEUE_ORDERING, cursor=cursor, per_page=per_page)


def pending_approval_count(*, actor: User) -> tuple[int, bool]:
    """How many quotes wait for approval, counted up to COUNT_CAP: (count, capped)."""
    if not has_capability(actor, Capability.APPROVE_QUOTES):
        return 0, False
    ids = (
        quotes_of(actor=actor)
        .filter(is_current=True, status=Quote.Status.PENDING_APPROVAL)
        .values("id")[: COUNT_CAP + 1]
    )
    count = Quote.objects.filter(pk__in=ids).count()
    return min(count, COUNT_CAP), count > COUNT_CAP


def organizations_with_expirable_quotes() -> list:
    """Organizations (read as the platform) with a current quote pending approval, approved or sent dated
    before tomorrow in UTC: a superset of those with one past its date in their own time zone (each
    organization's task then applies its own today)."""
    import datetime

    from django.utils import timezone

    horizon = timezone.now().date() + datetime.timedelta(days=1)
    return list(
        Quote.objects.filter(
            is_current=True,
            status__in=[Quote.Status.PENDING_APPROVAL, Quote.Status.APPROVED, Quote.Status.SENT],
            valid_until__lt=horizon,
        )
        .order_by("organization_id")
        .values_list("organization_id", flat=True)
        .distinct()
    )


def opportunity_quotes(*, actor: User, opportunity: Opportunity) -> list[Quote]:
    """The current version of each quote of a deal, newest first."""
    return list(
        quotes_of(actor=actor)
        .filter(opportunity=opportunity, is_current=True)
        .select_related("created_by")
        .order_by("-number")
    )


# --- Comparing two versions ---------------------------------------------------------------------------------

COMPARED_FIELDS = ("description", "quantity", "unit_price", "discount_pct", "tax_rate", "line_total")


@dataclass
class LineDiff:
    state: str  # "added", "removed", "changed", "same"
    left: QuoteItem | None
    right: QuoteItem | None
    changed: tuple[str, ...] = ()


@dataclass
class Comparison:
    left: Quote
    right: Quote
    lines: list[LineDiff] = field(default_factory=list)
    totals: list[dict] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        result = {"added": 0, "removed": 0, "changed": 0, "same": 0}
        for line in self.lines:
            result[line.state] += 1
        return result


def _line_key(item: QuoteItem) -> tuple:
    """Lines are matched across versions by product, or by their text when they have none."""
    if item.product_id:
        return ("product", str(item.product_id))
    return ("text", " ".join(item.description.lower().split()))


def compare_lines(left: list[QuoteItem], right: list[QuoteItem]) -> list[LineDiff]:
    """Pair the lines of two versions (the n-th line of a key with the n-th of the same key), in the
    newer version's order, with the removed ones after."""
    pending: dict[tuple, list[QuoteItem]] = {}
    for item in left:
        pending.setdefault(_line_key(item), []).append(item)
    diffs = []
    for item in right:
        matches = pending.get(_line_key(item))
        if not matches:
            diffs.append(LineDiff("added", None, item))
            continue
        old = matches.pop(0)
        changed = tuple(name for name in COMPARED_FIELDS if getattr(old, name) != getattr(item, name))
        diffs.append(LineDiff("changed" if changed else "same", old, item, changed))
    leftovers = [item for items in pending.values() for item in items]
    diffs.extend(
        LineDiff("removed", item, None) for item in sorted(leftovers, key=lambda i: (i.position, str(i.pk)))
    )
    return diffs


def quote_compare(*, left: Quote, right: Quote) -> Comparison:
    """Two versions of one quote side by side: lines added, removed or changed, and the totals."""
    comparison = Comparison(left=left, right=right)
    comparison.lines = compare_lines(quote_items(quote=left), quote_items(quote=right))
    for name, label in (
        ("subtotal", "subtotal"),
        ("discount_total", "discount"),
        ("tax_total", "tax"),
        ("total", "total"),
    ):
        before, after = getattr(left, name), getattr(right, name)
        comparison.totals.append({"name": label, "left": before, "right": after, "delta": after - before})
    return comparison
