"""Writes to the product catalogue: create, update, activate / deactivate.

A product is never deleted from here: quote and order lines keep a link to it (and their own copy of its
description, price and tax), so retiring a product is deactivating it (it leaves the quote line picker).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from crm.models import User
from crm.permissions import Capability, has_capability
from sales.models import Product

EDITABLE_FIELDS = frozenset({"sku", "name", "description", "unit_price", "currency", "tax_rate", "active"})


def _require(actor: User | None) -> None:
    if actor is not None and not has_capability(actor, Capability.MANAGE_PRODUCTS):
        raise PermissionDenied


def _check_sku_free(product: Product) -> None:
    # One probe of the unique index (organization_id, sku): a friendly field error instead of an
    # IntegrityError. The index still decides a race between two creations.
    if (
        Product.objects.filter(organization_id=product.organization_id, sku=product.sku)
        .exclude(pk=product.pk)
        .exists()
    ):
        raise ValidationError({"sku": _("Another product already has this SKU.")})


def _save(product: Product, *, creating: bool) -> Product:
    product.sku = (product.sku or "").strip()
    product.name = (product.name or "").strip()
    product.full_clean(validate_unique=False, validate_constraints=False)
    _check_sku_free(product)
    product.save(force_insert=creating)
    return product


@transaction.atomic
def product_create(*, organization, actor: User | None, **fields) -> Product:
    _require(actor)
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    fields.setdefault("currency", organization.currency)
    return _save(Product(organization=organization, **fields), creating=True)


@transaction.atomic
def product_update(*, product: Product, actor: User | None, **fields) -> Product:
    _require(actor)
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(product, name, value)
    return _save(product, creating=False)


@transaction.atomic
def product_set_active(*, product: Product, actor: User | None, active: bool) -> Product:
    """Activate or deactivate a product (an inactive one is no longer offered on new quote lines)."""
    _require(actor)
    if product.active != active:
        product.active = active
        product.save(update_fields=["active", "updated_at"])
    return product
