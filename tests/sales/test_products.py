"""The product catalogue: SKU unique per organization (a field error), activate / deactivate, the list with
search and keyset pages, who may manage it, and 404 for another organization's product."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from crm.tenancy import system_context
from sales.models import Product
from sales.services import products as services
from sales.views import products as product_views
from tests import factories


def test_a_sku_is_unique_per_organization_and_a_duplicate_is_a_field_error(org_a, org_b, admin_a, as_tenant):
    factories.product(org_a, sku="ABC-1")
    factories.product(org_b, sku="ABC-1")  # another organization may use it
    with as_tenant(org_a, admin_a), pytest.raises(ValidationError) as error:
        services.product_create(
            organization=org_a, actor=admin_a, sku=" ABC-1 ", name="Twin", unit_price=D("1")
        )
    assert list(error.value.message_dict) == ["sku"]


def test_create_update_and_deactivate(org_a, admin_a, as_tenant):
    with as_tenant(org_a, admin_a):
        product = services.product_create(
            organization=org_a,
            actor=admin_a,
            sku="P-1",
            name="Widget",
            unit_price=D("9.50"),
            tax_rate=D("20"),
        )
        assert (product.currency, product.active) == (org_a.currency, True)
        services.product_update(product=product, actor=admin_a, unit_price=D("10.00"), name="Widget 2")
        services.product_set_active(product=product, actor=admin_a, active=False)
        stored = Product.objects.get(pk=product.pk)
    assert (stored.name, stored.unit_price, stored.active) == ("Widget 2", D("10.00"), False)


def test_a_rep_may_not_manage_products(org_a, as_tenant):
    rep = factories.user(org_a, role="sales_rep")
    with as_tenant(org_a, rep), pytest.raises(PermissionDenied):
        services.product_create(organization=org_a, actor=rep, sku="X", name="X", unit_price=D("1"))


def test_the_list_searches_by_sku_or_name_and_filters_inactive(org_a, admin_a, login):
    factories.product(org_a, sku="CHAIR-1", name="Office chair")
    factories.product(org_a, sku="DESK-1", name="Standing desk")
    factories.product(org_a, sku="LAMP-1", name="Desk lamp", active=False)
    client = login(admin_a)

    def skus(**params):
        response = client.get(reverse("sales:product_list"), params)
        assert response.status_code == 200
        return sorted(p.sku for p in response.context["page"].items)

    assert skus() == ["CHAIR-1", "DESK-1", "LAMP-1"]
    assert skus(q="desk") == ["DESK-1", "LAMP-1"]
    assert skus(q="chair-1") == ["CHAIR-1"]
    assert skus(active="0") == ["LAMP-1"]
    assert skus(q="desk", active="1") == ["DESK-1"]


def test_the_list_pages_by_keyset_in_name_order(org_a, admin_a, login, monkeypatch):
    monkeypatch.setattr(product_views, "PER_PAGE", 2)
    for name in ("Cherry", "Apple", "Banana"):
        factories.product(org_a, name=name)
    client = login(admin_a)
    first = client.get(reverse("sales:product_list")).context["page"]
    assert [p.name for p in first.items] == ["Apple", "Banana"] and first.has_next
    second = client.get(reverse("sales:product_list"), {"cursor": first.next_cursor}).context["page"]
    assert [p.name for p in second.items] == ["Cherry"]


def test_the_form_shows_a_duplicate_sku_beside_the_field(org_a, admin_a, login):
    factories.product(org_a, sku="DUP")
    response = login(admin_a).post(
        reverse("sales:product_create"),
        {
            "sku": "DUP",
            "name": "Second",
            "unit_price": "5",
            "currency": "USD",
            "tax_rate": "0",
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {"sku": ["Another product already has this SKU."]}


def test_create_edit_and_deactivate_through_the_pages(org_a, admin_a, login):
    client = login(admin_a)
    response = client.post(
        reverse("sales:product_create"),
        {
            "sku": "NEW-1",
            "name": "New",
            "unit_price": "12.34",
            "currency": "EUR",
            "tax_rate": "7",
            "active": "on",
        },
    )
    assert response.status_code == 302
    with system_context():
        product = Product.objects.get(organization=org_a, sku="NEW-1")
    assert (product.unit_price, product.currency, product.tax_rate) == (D("12.34"), "EUR", D("7"))
    client.post(
        reverse("sales:product_edit", args=[product.pk]),
        {
            "sku": "NEW-1",
            "name": "Renamed",
            "unit_price": "15",
            "currency": "EUR",
            "tax_rate": "7",
            "active": "on",
        },
    )
    client.post(reverse("sales:product_set_active", args=[product.pk]), {"active": "0"})
    with system_context():
        product.refresh_from_db()
    assert (product.name, product.unit_price, product.active) == ("Renamed", D("15.00"), False)


def test_another_organizations_product_is_404_and_reps_get_403(org_a, org_b, admin_a, login):
    other = factories.product(org_b)
    client = login(admin_a)
    assert client.get(reverse("sales:product_edit", args=[other.pk])).status_code == 404
    assert (
        client.post(reverse("sales:product_set_active", args=[other.pk]), {"active": "0"}).status_code == 404
    )
    with system_context():
        assert Product.objects.get(pk=other.pk).active
    rep = factories.user(org_a, role="sales_rep")
    assert login(rep).get(reverse("sales:product_list")).status_code == 403
