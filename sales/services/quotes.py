"""Writes to quotes: create from a deal, edit lines, the approval flow, sending, acceptance, versions, expiry.

The status machine (every step leaves a QuoteEvent with its comment; the audit trigger logs the rows):

    draft ──submit──> pending_approval ──approve──> approved ──mark sent──> sent ──accept──> accepted
      │                      └──reject──> rejected (editable again) ──submit──> ...      └──decline──> declined
      └──submit (no approval needed)──> approved
    pending_approval / approved / sent ──valid_until passed (beat, daily)──> expired

- Approval is needed when the largest line discount is above the organization's limit % or the total is
  above its limit (`approval_reasons` keeps which). Only APPROVE_QUOTES holders decide, never the quote's
  creator or submitter.
- Only the current version of a quote, in draft or rejected, can be changed. "Revise" on an approved,
  sent, declined or expired quote makes version + 1 (a draft with the lines copied); earlier versions are
  read-only, which every write here checks on the locked row.
- Accepting (a sent, unexpired, current quote) wins the deal and makes exactly one order: the quote row is
  locked first, so a second "accept" waits, then finds the quote accepted and returns the same order; the
  unique Order.quote column backs this up.
"""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from crm.db.numbering import allocate_numbers
from crm.models import Organization, User
from crm.permissions import Capability, has_capability
from sales import pricing
from sales.models import Opportunity, Order, Product, Quote, QuoteEvent, QuoteItem
from sales.services.opportunities import opportunity_touch, opportunity_win, organization_today
from sales.services.pipelines import sales_settings_for

Status = Quote.Status
HEADER_FIELDS = frozenset({"title", "terms", "valid_until"})
LINE_FIELDS = frozenset({"description", "quantity", "unit_price", "discount_pct", "tax_rate"})
# Revising is offered once a version has left the drafting stage for good.
REVISABLE = (Status.APPROVED, Status.SENT, Status.DECLINED, Status.EXPIRED)
# What the daily expiry sweep closes: offers that are out (or about to go out) with a date.
EXPIRABLE = (Status.PENDING_APPROVAL, Status.APPROVED, Status.SENT)


def _require(actor: User | None, capability: Capability) -> None:
    if actor is not None and not has_capability(actor, capability):
        raise PermissionDenied


def _check_visible(actor: User | None, opportunity_id) -> None:
    """The actor must see the deal ("own only" mode): a quote of someone else's deal is not theirs to touch."""
    from sales.selectors import visible_opportunities

    if actor is not None and not visible_opportunities(actor=actor).filter(pk=opportunity_id).exists():
        raise PermissionDenied


def _organization(organization_id) -> Organization:
    return Organization.objects.get(pk=organization_id)


def _today(quote_or_deal) -> datetime.date:
    return organization_today(_organization(quote_or_deal.organization_id))


def _event(quote: Quote, action: str, *, actor: User | None, before: str, comment: str = "") -> QuoteEvent:
    return QuoteEvent.objects.create(
        organization_id=quote.organization_id,
        quote=quote,
        action=action,
        from_status=before,
        to_status=quote.status,
        actor=actor,
        comment=(comment or "").strip()[:500],
    )


def _locked(quote: Quote) -> Quote:
    """The stored row, locked until the end of the transaction: every check below reads this, never the
    caller's (possibly stale) instance."""
    return Quote.objects.select_for_update(of=("self",)).get(
        pk=quote.pk, organization_id=quote.organization_id
    )


def _check_editable(quote: Quote) -> None:
    if not quote.is_current:
        raise ValidationError(
            _("This is an earlier version of the quote: it is read-only."), code="old_version"
        )
    if not quote.is_editable:
        raise ValidationError(
            _("A quote can be changed only in draft or after a rejection (this one is %(status)s).")
            % {"status": quote.get_status_display().lower()},
            code="not_editable",
        )


def _check_current(quote: Quote) -> None:
    if not quote.is_current:
        raise ValidationError(
            _("This is an earlier version of the quote: it is read-only."), code="old_version"
        )


def _check_status(quote: Quote, allowed: tuple[str, ...], message: str) -> None:
    if quote.status not in allowed:
        raise ValidationError(message % {"status": quote.get_status_display().lower()}, code="status")


def _check_not_expired(quote: Quote, today: datetime.date) -> None:
    if quote.valid_until < today:
        raise ValidationError(
            _("This quote expired on %(date)s.") % {"date": date_format(quote.valid_until)}, code="expired"
        )


def _recompute(quote: Quote) -> Quote:
    """Store the quote's totals from its stored (already rounded) line amounts."""
    lines = [
        pricing.LineAmounts(
            subtotal=item.line_subtotal,
            discount=item.line_discount,
            tax=item.line_tax,
            total=item.line_total,
            discount_pct=item.discount_pct,
        )
        for item in QuoteItem.objects.filter(organization_id=quote.organization_id, quote=quote).only(
            "line_subtotal", "line_discount", "line_tax", "line_total", "discount_pct"
        )
    ]
    summary = pricing.totals(lines)
    quote.subtotal, quote.discount_total = summary.subtotal, summary.discount
    quote.tax_total, quote.total = summary.tax, summary.total
    quote.max_discount_pct = summary.max_discount_pct
    quote.save(
        update_fields=["subtotal", "discount_total", "tax_total", "total", "max_discount_pct", "updated_at"]
    )
    return quote


def _price(item: QuoteItem) -> QuoteItem:
    amounts = pricing.line_amounts(
        quantity=item.quantity,
        unit_price=item.unit_price,
        discount_pct=item.discount_pct,
        tax_rate=item.tax_rate,
    )
    item.line_subtotal, item.line_discount = amounts.subtotal, amounts.discount
    item.line_tax, item.line_total = amounts.tax, amounts.total
    return item


# --- Creating and editing ---------------------------------------------------------------------------------


@transaction.atomic
def quote_create(
    *,
    opportunity: Opportunity,
    actor: User | None,
    title: str = "",
    terms: str = "",
    valid_until: datetime.date | None = None,
) -> Quote:
    """A new draft quote (version 1) for an open deal, in the deal's currency, valid for the organization's
    number of days unless a date is given."""
    _require(actor, Capability.EDIT_QUOTES)
    _check_visible(actor, opportunity.pk)
    deal = Opportunity.objects.select_related("organization").get(
        pk=opportunity.pk, organization_id=opportunity.organization_id
    )
    if deal.status != Opportunity.Status.OPEN:
        raise ValidationError(_("Quotes are made for open deals; this one is closed."), code="closed_deal")
    today = organization_today(deal.organization)
    if valid_until is None:
        valid_until = today + datetime.timedelta(
            days=sales_settings_for(deal.organization_id).quote_valid_days
        )
    quote = Quote(
        organization_id=deal.organization_id,
        opportunity=deal,
        title=(title or "").strip() or deal.name,
        terms=terms or "",
        currency=deal.currency,
        valid_until=valid_until,
        created_by=actor,
    )
    quote.number = allocate_numbers("quotes", deal.organization_id)
    quote.full_clean(exclude=["number", "opportunity"], validate_unique=False, validate_constraints=False)
    quote.save(force_insert=True)
    _event(quote, "created", actor=actor, before="")
    return quote


@transaction.atomic
def quote_update(*, quote: Quote, actor: User | None, **fields) -> Quote:
    """Change the title, terms or valid-until date of an editable quote."""
    _require(actor, Capability.EDIT_QUOTES)
    unknown = set(fields) - HEADER_FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    _check_visible(actor, quote.opportunity_id)
    stored = _locked(quote)
    _check_editable(stored)
    for name, value in fields.items():
        setattr(stored, name, value)
    stored.title = (stored.title or "").strip()
    stored.full_clean(exclude=["number", "opportunity"], validate_unique=False, validate_constraints=False)
    stored.save(update_fields=[*fields, "updated_at"])
    return stored


def _check_product(quote: Quote, product: Product | None) -> None:
    if product is None:
        return
    if product.organization_id != quote.organization_id:
        raise ValidationError({"product": _("Choose a product of this organization.")})
    if not product.active:
        raise ValidationError({"product": _("This product is no longer offered.")})
    if product.currency != quote.currency:
        raise ValidationError(
            {
                "product": _("This product is priced in %(product)s; the quote is in %(quote)s.")
                % {"product": product.currency, "quote": quote.currency}
            }
        )


@transaction.atomic
def quote_item_add(
    *,
    quote: Quote,
    actor: User | None,
    product: Product | None = None,
    description: str = "",
    quantity: Decimal = Decimal("1"),
    unit_price: Decimal | None = None,
    discount_pct: Decimal = Decimal("0"),
    tax_rate: Decimal | None = None,
) -> QuoteItem:
    """Add a line (a product, whose name, price and tax rate fill what is not given, or free text) at the
    end of an editable quote; the quote's totals are recomputed."""
    _require(actor, Capability.EDIT_QUOTES)
    _check_visible(actor, quote.opportunity_id)
    stored = _locked(quote)
    _check_editable(stored)
    _check_product(stored, product)
    if product is not None:
        description = (description or "").strip() or product.name
        unit_price = product.unit_price if unit_price is None else unit_price
        tax_rate = product.tax_rate if tax_rate is None else tax_rate
    if unit_price is None:
        raise ValidationError({"unit_price": _("Give a unit price (or pick a product).")})
    last = QuoteItem.objects.filter(organization_id=stored.organization_id, quote=stored).aggregate(
        last=Max("position")
    )["last"]
    item = QuoteItem(
        organization_id=stored.organization_id,
        quote=stored,
        position=0 if last is None else last + 1,
        product=product,
        description=(description or "").strip(),
        quantity=quantity,
        unit_price=unit_price,
        discount_pct=discount_pct or Decimal("0"),
        tax_rate=tax_rate or Decimal("0"),
    )
    item.full_clean(exclude=["quote", "product"], validate_unique=False, validate_constraints=False)
    _price(item).save(force_insert=True)
    _recompute(stored)
    return item


@transaction.atomic
def quote_item_update(*, item: QuoteItem, actor: User | None, **fields) -> QuoteItem:
    """Change a line's description, quantity, price, discount or tax rate; the totals are recomputed."""
    _require(actor, Capability.EDIT_QUOTES)
    unknown = set(fields) - LINE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    quote = Quote.objects.get(pk=item.quote_id, organization_id=item.organization_id)
    _check_visible(actor, quote.opportunity_id)
    stored = _locked(quote)
    _check_editable(stored)
    line = QuoteItem.objects.get(pk=item.pk, organization_id=item.organization_id, quote=stored)
    for name, value in fields.items():
        setattr(line, name, value)
    line.description = (line.description or "").strip()
    line.full_clean(exclude=["quote", "product"], validate_unique=False, validate_constraints=False)
    _price(line).save()
    _recompute(stored)
    return line


@transaction.atomic
def quote_item_remove(*, item: QuoteItem, actor: User | None) -> Quote:
    """Remove a line from an editable quote; returns the quote with its totals recomputed."""
    _require(actor, Capability.EDIT_QUOTES)
    quote = Quote.objects.get(pk=item.quote_id, organization_id=item.organization_id)
    _check_visible(actor, quote.opportunity_id)
    stored = _locked(quote)
    _check_editable(stored)
    QuoteItem.objects.filter(pk=item.pk, organization_id=item.organization_id, quote=stored).delete()
    return _recompute(stored)


# --- The approval flow ------------------------------------------------------------------------------------


@transaction.atomic
def quote_submit(*, quote: Quote, actor: User | None, comment: str = "") -> Quote:
    """Submit a draft (or a rejected quote, changed): to a manager when a rule asks for approval (the
    reasons are stored), otherwise approved at once."""
    _require(actor, Capability.EDIT_QUOTES)
    _check_visible(actor, quote.opportunity_id)
    stored = _locked(quote)
    _check_editable(stored)
    if not QuoteItem.objects.filter(organization_id=stored.organization_id, quote=stored).exists():
        raise ValidationError(_("Add at least one line before submitting the quote."), code="no_lines")
    today = _today(stored)
    if stored.valid_until < today:
        raise ValidationError(
            {"valid_until": _("The valid-until date has passed: set a date from today on.")}, code="expired"
        )
    _recompute(stored)  # the totals the rules judge are the lines' as they are now
    rules = sales_settings_for(stored.organization_id)
    summary = pricing.Totals(total=stored.total, max_discount_pct=stored.max_discount_pct)
    reasons = pricing.approval_reasons(
        summary, discount_limit_pct=rules.approval_discount_pct, total_limit=rules.approval_total
    )
    before = stored.status
    stored.approval_reasons = reasons
    stored.submitted_by, stored.submitted_at = actor, timezone.now()
    stored.decided_by, stored.decided_at, stored.decision_comment = None, None, ""
    stored.status = Status.PENDING_APPROVAL if reasons else Status.APPROVED
    stored.save()
    _event(stored, "submitted", actor=actor, before=before, comment=comment)
    return stored


def _decide(quote: Quote, actor: User | None, *, approve: bool, comment: str) -> Quote:
    _require(actor, Capability.APPROVE_QUOTES)
    if actor is None:
        raise PermissionDenied("A quote is approved or rejected by a person.")
    _check_visible(actor, quote.opportunity_id)
    stored = _locked(quote)
    _check_current(stored)
    _check_status(
        stored,
        (Status.PENDING_APPROVAL,),
        _("Only a quote pending approval can be decided (this one is %(status)s)."),
    )
    if actor.pk in (stored.created_by_id, stored.submitted_by_id):
        raise ValidationError(
            _("You made or submitted this quote, so another manager must approve or reject it."),
            code="self_approval",
        )
    comment = (comment or "").strip()
    if not approve and not comment:
        raise ValidationError({"comment": _("Say why the quote is rejected.")}, code="comment_required")
    if approve:
        _check_not_expired(stored, _today(stored))
    before = stored.status
    stored.status = Status.APPROVED if approve else Status.REJECTED
    stored.decided_by, stored.decided_at, stored.decision_comment = actor, timezone.now(), comment[:500]
    stored.save()
    _event(stored, "approved" if approve else "rejected", actor=actor, before=before, comment=comment)
    return stored


@transaction.atomic
def quote_approve(*, quote: Quote, actor: User, comment: str = "") -> Quote:
    """Approve a quote pending approval (a manager who neither made nor submitted it)."""
    return _decide(quote, actor, approve=True, comment=comment)


@transaction.atomic
def quote_reject(*, quote: Quote, actor: User, comment: str) -> Quote:
    """Send a quote back with a reason; it becomes editable again and can be resubmitted."""
    return _decide(quote, actor, approve=False, comment=comment)


# --- With the customer ------------------------------------------------------------------------------------


@transaction.atomic
def quote_mark_sent(*, quote: Quote, actor: User | None, comment: str = "") -> Quote:
    """Record that an approved quote went to the customer (a rejected one never can)."""
    _require(actor, Capability.EDIT_QUOTES)
    _check_visible(actor, quote.opportunity_id)
    stored = _locked(quote)
    _check_current(stored)
    if stored.status == Status.REJECTED:
        raise ValidationError(
            _("A rejected quote cannot be sent: change it and submit it again."), code="status"
        )
    _check_status(
        stored, (Status.APPROVED,), _("Only an approved quote can be sent (this one is %(status)s).")
    )
    _check_not_expired(stored, _today(stored))
    before = stored.status
    stored.status, stored.sent_at = Status.SENT, timezone.now()
    stored.save()
    _event(stored, "sent", actor=actor, before=before, comment=comment)
    opportunity_touch(opportunity_id=stored.opportunity_id, organization_id=stored.organization_id)
    return stored


@transaction.atomic
def quote_accept(*, quote: Quote, actor: User | None, comment: str = "") -> Order:
    """The customer accepted: the quote is accepted, its deal won, and its one order made. Submitting
    twice is harmless: the second call waits for the first's lock and returns the same order."""
    from sales.services.orders import order_create_from_quote

    _require(actor, Capability.EDIT_QUOTES)
    _check_visible(actor, quote.opportunity_id)
    stored = _locked(quote)
    if stored.status == Status.ACCEPTED:
        return order_create_from_quote(quote=stored, actor=actor)
    _check_current(stored)
    _check_status(stored, (Status.SENT,), _("Only a sent quote can be accepted (this one is %(status)s)."))
    _check_not_expired(stored, _today(stored))
    before = stored.status
    stored.status, stored.accepted_at = Status.ACCEPTED, timezone.now()
    stored.save()
    _event(stored, "accepted", actor=actor, before=before, comment=comment)
    deal = Opportunity.objects.get(pk=stored.opportunity_id, organization_id=stored.organization_id)
    opportunity_win(opportunity=deal, actor=actor, note=_("Quote %(number)s accepted") % {"number": stored})
    return order_create_from_quote(quote=stored, actor=actor)


@transaction.atomic
def quote_decline(*, quote: Quote, actor: User | None, comment: str = "") -> Quote:
    """The customer declined a sent quote (the deal stays as it is: a revision may follow)."""
    _require(actor, Capability.EDIT_QUOTES)
    _check_visible(actor, quote.opportunity_id)
    stored = _locked(quote)
    _check_current(stored)
    _check_status(stored, (Status.SENT,), _("Only a sent quote can be declined (this one is %(status)s)."))
    before = stored.status
    stored.status, stored.declined_at = Status.DECLINED, timezone.now()
    stored.save()
    _event(stored, "declined", actor=actor, before=before, comment=comment)
    return stored


# --- Versions and expiry ----------------------------------------------------------------------------------


@transaction.atomic
def quote_revise(*, quote: Quote, actor: User | None, comment: str = "") -> Quote:
    """Make the next version of a quote that left drafting (approved, sent, declined or expired): a draft
    with the lines copied, valid for the organization's number of days; it becomes the current version and
    every earlier one is read-only."""
    _require(actor, Capability.EDIT_QUOTES)
    _check_visible(actor, quote.opportunity_id)
    # Every version of the number, locked: two revisions at once cannot both make version n + 1.
    versions = list(
        Quote.objects.select_for_update(of=("self",))
        .filter(organization_id=quote.organization_id, number=quote.number)
        .order_by("version")
    )
    stored = next(v for v in versions if v.pk == quote.pk)
    _check_current(stored)
    _check_status(
        stored,
        REVISABLE,
        _("Only an approved, sent, declined or expired quote can be revised (this one is %(status)s)."),
    )
    today = _today(stored)
    stored.is_current = False
    stored.save(update_fields=["is_current", "updated_at"])
    revision = Quote.objects.create(
        organization_id=stored.organization_id,
        opportunity_id=stored.opportunity_id,
        number=stored.number,
        version=versions[-1].version + 1,
        is_current=True,
        title=stored.title,
        status=Status.DRAFT,
        currency=stored.currency,
        valid_until=max(
            stored.valid_until,
            today + datetime.timedelta(days=sales_settings_for(stored.organization_id).quote_valid_days),
        ),
        terms=stored.terms,
        subtotal=stored.subtotal,
        discount_total=stored.discount_total,
        tax_total=stored.tax_total,
        total=stored.total,
        max_discount_pct=stored.max_discount_pct,
        created_by=actor,
    )
    QuoteItem.objects.bulk_create(
        QuoteItem(
            organization_id=item.organization_id,
            quote=revision,
            position=item.position,
            product_id=item.product_id,
            description=item.description,
            quantity=item.quantity,
            unit_price=item.unit_price,
            discount_pct=item.discount_pct,
            tax_rate=item.tax_rate,
            line_subtotal=item.line_subtotal,
            line_discount=item.line_discount,
            line_tax=item.line_tax,
            line_total=item.line_total,
        )
        for item in QuoteItem.objects.filter(organization_id=stored.organization_id, quote=stored)
    )
    note = _("Revised as version %(version)s") % {"version": revision.version}
    _event(stored, "revised", actor=actor, before=stored.status, comment=comment or note)
    _event(
        revision,
        "created",
        actor=actor,
        before="",
        comment=_("Revision of version %(version)s") % {"version": stored.version},
    )
    return revision


_EXPIRE_SQL = """
WITH due AS (
    SELECT id, status FROM quotes
    WHERE organization_id = %(org)s AND is_current AND status = ANY(%(statuses)s) AND valid_until < %(today)s
      AND (%(ids)s::uuid[] IS NULL OR id = ANY(%(ids)s::uuid[]))
    FOR UPDATE
), expired AS (
    UPDATE quotes AS q SET status = 'expired', updated_at = now()
    FROM due WHERE q.organization_id = %(org)s AND q.id = due.id
    RETURNING q.id, due.status AS from_status
)
INSERT INTO quote_events (id, organization_id, quote_id, action, from_status, to_status, actor_id, comment, at)
SELECT gen_random_uuid(), %(org)s, id, 'expired', from_status, 'expired', NULL, %(comment)s, now() FROM expired
"""


@transaction.atomic
def quotes_expire_due(
    *, organization_id: uuid.UUID, today: datetime.date | None = None, quote_ids: list | None = None
) -> int:
    """Expire, set-based, the organization's current quotes pending approval, approved or sent whose
    valid-until date is before `today` (the organization's today by default); each gets an "expired"
    event. Idempotent: an expired quote is not due any more. Returns how many expired."""
    if today is None:
        today = organization_today(_organization(organization_id))
    with connection.cursor() as cursor:
        cursor.execute(
            _EXPIRE_SQL,
            {
                "org": organization_id,
                "statuses": list(EXPIRABLE),
                "today": today,
                "ids": [str(i) for i in quote_ids] if quote_ids is not None else None,
                "comment": _("The valid-until date passed."),
            },
        )
        return cursor.rowcount


def quote_expire_if_due(*, quote: Quote) -> bool:
    """Expire this one quote if its date has passed (after an acceptance was refused as too late)."""
    return bool(quotes_expire_due(organization_id=quote.organization_id, quote_ids=[quote.pk]))
