"""Reads of the product catalogue: the managed list (search, keyset pages) and the quote line picker."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from crm.models import User
from crm.pagination import KeysetPage, keyset_page
from crm.permissions import Capability, has_capability
from sales.models import Product

LIST_ORDERING = ("name", "id")
PICKER_LIMIT = 500  # a catalogue larger than this is searched, not scrolled


def products_of(*, actor: User) -> QuerySet[Product]:
    """The organization's products, for whoever manages them or picks them for quote lines."""
    if not (
        has_capability(actor, Capability.MANAGE_PRODUCTS) or has_capability(actor, Capability.EDIT_QUOTES)
    ):
        return Product.objects.none()
    return Product.objects.filter(organization_id=actor.organization_id)


def product_get(*, actor: User, pk) -> Product:
    product = products_of(actor=actor).filter(pk=pk).first()
    if product is None:
        raise Http404
    return product


def product_page(
    *, actor: User, query: str = "", active: str = "", cursor: str | None = None, per_page: int = 50
) -> KeysetPage:
    """Products by name, filtered by a search on SKU or name and by active / inactive."""
    queryset = products_of(actor=actor)
    query = (query or "").strip()
    if query:
        queryset = queryset.filter(Q(sku__icontains=query) | Q(name__icontains=query))
    if active in ("1", "0"):
        queryset = queryset.filter(active=active == "1")
    return keyset_page(queryset, ordering=LIST_ORDERING, cursor=cursor, per_page=per_page)


def picker_products(*, actor: User, currency: str) -> list[Product]:
    """Active products priced in `currency`, for a quote line (at most PICKER_LIMIT)."""
    return list(
        products_of(actor=actor)
        .filter(active=True, currency=currency)
        .only("id", "sku", "name", "unit_price", "currency", "tax_rate")
        .order_by("name", "id")[:PICKER_LIMIT]
    )
