"""Writes to orders: the one order of an accepted quote, order numbers, and the customer-merge reassigner.
Orders also come from a CSV file (`manage.py import_orders`, sales/importing_orders.py)."""

from __future__ import annotations

from django.db import transaction

from crm.db.numbering import allocate_numbers
from crm.models import User
from sales.models import Order, OrderLine, Quote, QuoteItem
from sales.services.opportunities import organization_today


@transaction.atomic
def order_create_from_quote(*, quote: Quote, actor: User | None) -> Order:
    """The order of an accepted quote: made once, found every time after (get_or_create on the unique
    `quote` column, so even a caller that did not lock the quote cannot make a second one)."""
    existing = Order.objects.filter(organization_id=quote.organization_id, quote_id=quote.pk).first()
    if existing is not None:
        return existing
    deal = quote.opportunity
    order, created = Order.objects.get_or_create(
        organization_id=quote.organization_id,
        quote=quote,
        defaults={
            "number": allocate_numbers("orders", quote.organization_id),
            "customer_id": deal.customer_id,
            "opportunity_id": deal.pk,
            "order_date": organization_today(deal.organization),
            "currency": quote.currency,
            "subtotal": quote.subtotal,
            "discount_total": quote.discount_total,
            "tax_total": quote.tax_total,
            "total": quote.total,
            "created_by": actor,
        },
    )
    if created:
        OrderLine.objects.bulk_create(
            OrderLine(
                organization_id=order.organization_id,
                order=order,
                position=item.position,
                product_id=item.product_id,
                description=item.description,
                quantity=item.quantity,
                unit_price=item.unit_price,
                discount_pct=item.discount_pct,
                tax_rate=item.tax_rate,
                line_total=item.line_total,
            )
            for item in QuoteItem.objects.filter(organization_id=quote.organization_id, quote=quote).order_by(
                "position", "id"
            )
        )
    return order


# --- Customer merge (customers/merging.py registry) ---------------------------------------------------------


def orders_reassign(*, organization_id, source_id, target_id) -> int:
    """Every order of the merged-away customer becomes the survivor's (one UPDATE)."""
    return Order.objects.filter(organization_id=organization_id, customer_id=source_id).update(
        customer_id=target_id
    )


def orders_count(*, organization_id, customer_id) -> int:
    """How many orders a merge would move (an index range on orders_org_customer_idx)."""
    return Order.objects.filter(organization_id=organization_id, customer_id=customer_id).count()
