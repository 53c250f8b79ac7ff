"""Reads of orders: the list (keyset pages), one order with its lines, and a customer's lifetime value
(the customer 360 panel `lifetime_value_metrics`)."""

from __future__ import annotations

from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.http import Http404

from crm.models import User
from crm.pagination import KeysetPage, keyset_page
from crm.permissions import Capability, has_capability
from sales import pricing
from sales.models import Order, OrderLine

LIST_ORDERING = ("-order_date", "-number")


def orders_of(*, actor: User) -> QuerySet[Order]:
    if not has_capability(actor, Capability.VIEW_ORDERS):
        return Order.objects.none()
    return Order.objects.filter(organization_id=actor.organization_id)


def order_get(*, actor: User, pk) -> Order:
    order = (
        orders_of(actor=actor)
        .select_related("customer", "opportunity", "quote", "created_by")
        .filter(pk=pk)
        .first()
    )
    if order is None:
        raise Http404
    return order


def order_lines(*, order: Order) -> list[OrderLine]:
    return list(
        OrderLine.objects.filter(organization_id=order.organization_id, order=order)
        .select_related("product")
        .order_by("position", "id")
    )


def order_page(
    *,
    actor: User,
    status: str = "",
    query: str = "",
    customer_id=None,
    cursor: str | None = None,
    per_page: int = 50,
) -> KeysetPage:
    """Orders, newest first, optionally of one status, one customer, or with a number or an external
    reference matching `query`."""
    queryset = orders_of(actor=actor).select_related("customer", "quote")
    if customer_id:
        queryset = queryset.filter(customer_id=customer_id)
    if status:
        queryset = queryset.filter(status=status)
    query = (query or "").strip()
    if query:
        filters = Q(external_reference__icontains=query)
        digits = query.upper().removeprefix("SO-").lstrip("0")
        if digits.isdigit():
            filters |= Q(number=int(digits))
        queryset = queryset.filter(filters)
    return keyset_page(queryset, ordering=LIST_ORDERING, cursor=cursor, per_page=per_page)


def lifetime_value(*, customer, actor=None) -> dict:
    """The design document's `lifetime_value_metrics` for one customer, from its orders that are not
    cancelled, in ONE aggregate query over `orders` alone (no join, so no row is counted twice however many
    deals or lines the customer has), grouped by currency: money is never added across currencies.

    The headline revenue and average are in the currency with the most revenue; `total_orders`, the first
    and the last order date count every currency; `by_currency` lists each currency when there are several.
    Values are JSON-ready (money as strings with two decimals, dates as ISO text)."""
    rows = list(
        Order.objects.filter(organization_id=customer.organization_id, customer_id=customer.pk)
        .exclude(status=Order.Status.CANCELLED)
        .values("currency")
        .annotate(revenue=Sum("total"), orders=Count("id"), first=Min("order_date"), last=Max("order_date"))
        .order_by()
    )
    by_currency = [
        {
            "currency": row["currency"],
            "total_revenue": f"{row['revenue']:.2f}",
            "total_orders": row["orders"],
            "average_order_value": f"{pricing.to_cents(row['revenue'] / row['orders']):.2f}",
        }
        for row in sorted(rows, key=lambda r: (-r["revenue"], r["currency"]))
    ]
    if not rows:
        return {
            "currency": "",
            "total_revenue": "0.00",
            "total_orders": 0,
            "average_order_value": None,
            "customer_since": None,
            "last_order": None,
            "by_currency": [],
        }
    headline = by_currency[0]
    return {
        "currency": headline["currency"],
        "total_revenue": headline["total_revenue"],
        "total_orders": sum(row["orders"] for row in rows),
        "average_order_value": headline["average_order_value"],
        "customer_since": min(row["first"] for row in rows).isoformat(),
        "last_order": max(row["last"] for row in rows).isoformat(),
        "by_currency": by_currency if len(by_currency) > 1 else [],
    }
