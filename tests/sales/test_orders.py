"""Orders: the CSV import (good and bad files, all or nothing, references already there), the customer 360
"Lifetime value" panel against hand-computed numbers (no fan-out), the merge reassigner, and the pages."""

from __future__ import annotations

import datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from crm.tenancy import system_context
from customers import merging, panels
from sales.importing_orders import import_orders
from sales.models import Order, OrderLine, SalesSettings
from sales.selectors.orders import lifetime_value
from sales.services.orders import orders_count, orders_reassign
from sales.services.pipelines import sales_settings_for
from tests import factories

HEADER = "external_reference,customer_email,order_date,currency,sku,description,quantity,unit_price,discount_pct,tax_rate\n"


@pytest.fixture
def people(org_a):
    return {
        "ada": factories.customer(org_a, first_name="Ada", email="ada@example.test"),
        "bob": factories.customer(org_a, first_name="Bob", email="bob@example.test"),
    }


def _write(tmp_path: Path, text: str, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = HEADER + (
    # 3 x 19.99 = 59.97; 10 % = 6.00; 53.97 x 20 % = 10.79; 64.76 (description from the product)
    "ERP-1,ADA@example.test,2024-05-01,usd,W-1,,3,19.99,10,20\n"
    # 1 x 0.05; 10 % = 0.005 -> 0.01; 0.04
    "ERP-1,ada@example.test,2024-05-01,USD,,Installation,1,0.05,10,0\n"
    "\n"
    # 2 x 100 = 200.00, no discount, no tax
    "ERP-2,bob@example.test,2024-05-02,USD,,Support plan,2,100,,\n"
)


# --- the import -------------------------------------------------------------------------------------------


def test_a_good_file_makes_one_order_per_reference_with_totals_from_its_lines(
    org_a, people, tmp_path, as_tenant
):
    product = factories.product(org_a, sku="W-1", name="Widget")
    factories.order(org_a, customer=people["bob"])  # number 1 is taken
    with as_tenant(org_a):
        outcome = import_orders(path=_write(tmp_path, GOOD), organization=org_a)
        orders = {
            o.external_reference: o
            for o in Order.objects.filter(organization=org_a).exclude(external_reference="")
        }
        lines = list(
            OrderLine.objects.filter(order=orders["ERP-1"])
            .order_by("position")
            .values_list("position", "description", "product_id", "line_total")
        )
    assert outcome.ok and (outcome.total_rows, outcome.orders_created, outcome.lines_created) == (3, 2, 3)
    first, second = orders["ERP-1"], orders["ERP-2"]
    assert (first.number, second.number) == (2, 3)  # after the existing order, in file order
    assert (first.customer_id, first.order_date, first.currency, first.status) == (
        people["ada"].pk,
        datetime.date(2024, 5, 1),
        "USD",
        "open",
    )
    assert (first.subtotal, first.discount_total, first.tax_total, first.total) == (
        D("60.02"),
        D("6.01"),
        D("10.79"),
        D("64.80"),
    )
    assert (second.customer_id, second.total, second.quote_id) == (people["bob"].pk, D("200.00"), None)
    assert lines == [(0, "Widget", product.pk, D("64.76")), (1, "Installation", None, D("0.04"))]


def test_a_bad_file_reports_every_error_with_its_line_and_imports_nothing(org_a, people, tmp_path, as_tenant):
    factories.product(org_a, sku="W-1")
    factories.order(org_a, customer=people["ada"], external_reference="ERP-OLD")
    bad = HEADER + (
        "ERP-1,ada@example.test,2024-05-01,USD,W-1,,1,10,,\n"  # 2: fine
        "ERP-2,nobody@example.test,2024-05-01,USD,,Thing,1,10,,\n"  # 3: unknown customer
        "ERP-3,ada@example.test,01/05/2024,USD,,Thing,1,10,,\n"  # 4: bad date
        "ERP-4,ada@example.test,2024-05-01,USD,NOPE,,1,10,,\n"  # 5: unknown SKU
        "ERP-1,ada@example.test,2024-05-01,EUR,,Other,1,10,,\n"  # 6: the order's first line is in USD
        "ERP-5,ada@example.test,2024-05-01,USD,,Thing,,10,,\n"  # 7: no quantity
        "ERP-6,ada@example.test,2024-05-01,USD,,,1,10,,\n"  # 8: neither SKU nor description
        "ERP-7,ada@example.test,2024-05-01,USD,,Thing,1,10.001,120,\n"  # 9: 3 decimals, discount over 100
        "ERP-OLD,ada@example.test,2024-05-01,USD,,Thing,1,10,,\n"  # 10: already imported
        "ERP-8,ada@example.test,2024-05-01,XXX,,Thing,1,10,,\n"  # 11: unknown currency
        "ERP-9,ada@example.test,2024-05-01,USD,,Thing,1\n"  # 12: too few cells
    )
    with as_tenant(org_a):
        before = Order.objects.count()
        outcome = import_orders(path=_write(tmp_path, bad), organization=org_a)
        assert Order.objects.count() == before
    found = [(e["line"], e["column"]) for e in outcome.errors]
    assert found == [
        (3, "customer_email"),
        (4, "order_date"),
        (5, "sku"),
        (6, "external_reference"),
        (7, "quantity"),
        (8, "sku"),
        (9, "unit_price"),
        (9, "discount_pct"),
        (10, "external_reference"),
        (11, "currency"),
        (12, ""),
    ]
    assert outcome.error_count == 11 and not outcome.ok
    assert "line 2" in next(e["message"] for e in outcome.errors if e["line"] == 6)


def test_references_already_imported_are_errors_by_default_or_skipped_when_asked(
    org_a, people, tmp_path, as_tenant
):
    factories.product(org_a, sku="W-1")
    path = _write(tmp_path, GOOD)
    with as_tenant(org_a):
        assert import_orders(path=path, organization=org_a).orders_created == 2
        again = import_orders(path=path, organization=org_a)
        assert [e["line"] for e in again.errors] == [2, 3, 5]
        skipped = import_orders(path=path, organization=org_a, skip_existing=True)
        assert (skipped.ok, skipped.orders_created, skipped.orders_skipped) == (True, 0, 2)
        assert Order.objects.filter(organization=org_a).count() == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (HEADER, "no rows"),
        (
            "external_reference,customer_email,order_date,currency,quantity,unit_price,colour\n",
            "Unknown columns",
        ),
        ("external_reference,customer_email,order_date,currency,quantity,unit_price\n", "sku | description"),
    ],
)
def test_a_file_with_a_wrong_header_is_refused_whole(org_a, tmp_path, as_tenant, text, message):
    with as_tenant(org_a):
        outcome = import_orders(path=_write(tmp_path, text), organization=org_a)
    assert outcome.error_count == 1 and message in outcome.errors[0]["message"]


def test_the_command_prints_progress_and_a_summary_or_the_report(org_a, people, tmp_path, capsys):
    factories.product(org_a, sku="W-1")
    call_command("import_orders", str(_write(tmp_path, GOOD)), "--org", org_a.slug, "--progress-every", "1")
    out, err = capsys.readouterr()
    assert "3 rows imported into org-a: 2 orders, 3 lines." in out
    assert "checked 3 / 3 rows (100%)" in err
    bad = _write(tmp_path, HEADER + "ERP-9,who@example.test,2024-05-01,USD,,X,1,1,,\n", "bad.csv")
    with pytest.raises(CommandError):
        call_command("import_orders", str(bad), "--org", org_a.slug)
    _out, err = capsys.readouterr()
    assert "line 2, customer_email: No customer has this email." in err
    with pytest.raises(CommandError):
        call_command("import_orders", str(bad), "--org", "no-such-org")


# --- lifetime value ---------------------------------------------------------------------------------------


def _ltv_book(org):
    """A customer with two deals and several orders with several lines each: a join of orders with their
    lines or deals would count the revenue more than once."""
    ada = factories.customer(org, first_name="Ada")
    other = factories.customer(org, first_name="Other")
    deals = [factories.opportunity(org, customer=ada) for _n in range(2)]
    line = {"quantity": 1, "unit_price": "100.00"}
    factories.order(
        org,
        customer=ada,
        opportunity=deals[0],
        order_date=datetime.date(2024, 1, 10),
        lines=[{"quantity": 2, "unit_price": "250.00"}, {"quantity": 1, "unit_price": "500.00"}],
    )  # 1,000.00
    factories.order(
        org,
        customer=ada,
        opportunity=deals[1],
        order_date=datetime.date(2024, 3, 5),
        lines=[
            {"quantity": 1, "unit_price": "200.00"},
            {"quantity": 1, "unit_price": "40.00", "tax_rate": "25"},
            {"quantity": 1, "unit_price": "0.50"},
        ],
    )  # 200.00 + 50.00 + 0.50 = 250.50
    factories.order(
        org,
        customer=ada,
        order_date=datetime.date(2024, 6, 1),
        lines=[{"quantity": 1, "unit_price": "99.99"}],
    )  # 99.99
    factories.order(org, customer=ada, status="cancelled", order_date=datetime.date(2024, 7, 1), lines=[line])
    factories.order(org, customer=other, order_date=datetime.date(2023, 1, 1), lines=[line])
    return ada


def test_lifetime_value_by_hand_without_double_counting(org_a, as_tenant, django_assert_num_queries):
    ada = _ltv_book(org_a)
    with as_tenant(org_a), django_assert_num_queries(1):
        value = lifetime_value(customer=ada)
    # 1,000.00 + 250.50 + 99.99 = 1,350.49 over 3 orders (the cancelled one and the other customer's left out);
    # average 450.1633... -> 450.16
    assert value == {
        "currency": "USD",
        "total_revenue": "1350.49",
        "total_orders": 3,
        "average_order_value": "450.16",
        "customer_since": "2024-01-10",
        "last_order": "2024-06-01",
        "by_currency": [],
    }


def test_lifetime_value_never_adds_currencies(org_a, as_tenant):
    ada = _ltv_book(org_a)
    factories.order(
        org_a,
        customer=ada,
        currency="EUR",
        order_date=datetime.date(2024, 8, 1),
        lines=[{"quantity": 1, "unit_price": "80.00"}],
    )
    with as_tenant(org_a):
        value = lifetime_value(customer=ada)
    assert (value["currency"], value["total_revenue"], value["total_orders"], value["last_order"]) == (
        "USD",
        "1350.49",
        4,
        "2024-08-01",
    )
    assert value["by_currency"] == [
        {"currency": "USD", "total_revenue": "1350.49", "total_orders": 3, "average_order_value": "450.16"},
        {"currency": "EUR", "total_revenue": "80.00", "total_orders": 1, "average_order_value": "80.00"},
    ]


def test_a_customer_without_orders_has_an_empty_lifetime_value(org_a, as_tenant):
    with as_tenant(org_a):
        value = lifetime_value(customer=factories.customer(org_a))
    assert (value["total_revenue"], value["total_orders"], value["customer_since"]) == ("0.00", 0, None)


def test_the_360_page_and_json_show_the_lifetime_value(org_a, admin_a, login):
    ada = _ltv_book(org_a)
    assert "lifetime_value_metrics" in {p.key for p in panels.panels_for(admin_a)}
    client = login(admin_a)
    page = client.get(reverse("customers:detail", args=[ada.pk])).content.decode()
    assert 'data-testid="ltv-revenue">1,350.49 USD' in page and 'data-testid="ltv-orders">3<' in page
    data = client.get(reverse("customers:json360", args=[ada.pk])).json()
    assert data["lifetime_value_metrics"]["total_revenue"] == "1350.49"


# --- merge ------------------------------------------------------------------------------------------------


def test_a_merge_moves_the_orders_to_the_survivor(org_a, as_tenant):
    source, target = factories.customer(org_a), factories.customer(org_a)
    factories.order(org_a, customer=source)
    factories.order(org_a, customer=source)
    factories.order(org_a, customer=target)
    assert "sales.services.orders.orders_reassign" in {r.key for r in merging.reassigners()}
    with as_tenant(org_a):
        assert orders_count(organization_id=org_a.pk, customer_id=source.pk) == 2
        assert orders_reassign(organization_id=org_a.pk, source_id=source.pk, target_id=target.pk) == 2
        assert Order.objects.filter(customer=target).count() == 3
        assert orders_count(organization_id=org_a.pk, customer_id=source.pk) == 0


# --- the pages --------------------------------------------------------------------------------------------


def test_the_order_list_filters_pages_and_keeps_its_query_count(
    org_a, admin_a, login, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ada = factories.customer(org_a, first_name="Ada")
    factories.order(
        org_a, customer=ada, external_reference="ERP-77", lines=[{"quantity": 1, "unit_price": "5"}]
    )
    client = login(admin_a)
    url = reverse("sales:order_list")
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    for _n in range(4):
        factories.order(org_a, status="fulfilled")
    with CaptureQueriesContext(connection) as five:
        response = client.get(url)
    assert len(five) == len(one)
    assert len(response.context["page"].items) == 5
    assert [o.external_reference for o in client.get(url, {"q": "erp-77"}).context["page"].items] == [
        "ERP-77"
    ]
    assert len(client.get(url, {"status": "fulfilled"}).context["page"].items) == 4
    assert len(client.get(url, {"customer": ada.pk}).context["page"].items) == 1


def test_an_order_page_shows_its_lines_and_other_organizations_get_404(org_a, org_b, admin_a, login):
    order = factories.order(org_a, lines=[{"quantity": 2, "unit_price": "10.00", "tax_rate": "10"}])
    other = factories.order(org_b)
    client = login(admin_a)
    body = client.get(reverse("sales:order_detail", args=[order.pk])).content.decode()
    assert 'data-testid="order-total">22.00 USD' in body
    assert client.get(reverse("sales:order_detail", args=[other.pk])).status_code == 404


def test_an_order_page_hides_a_deal_the_viewer_may_not_see(org_a, login):
    owner = factories.user(org_a, role="sales_rep")
    viewer = factories.user(org_a, role="sales_rep")
    deal = factories.opportunity(org_a, assigned_to=owner, name="Secret expansion")
    order = factories.order(org_a, customer=deal.customer, opportunity=deal)
    with system_context():
        sales_settings_for(org_a.pk)
        SalesSettings.objects.filter(organization=org_a).update(
            opportunity_visibility=SalesSettings.Visibility.OWN
        )
    body = login(viewer).get(reverse("sales:order_detail", args=[order.pk])).content.decode()
    assert "Secret expansion" not in body
