"""The data access log (compliance/access_log.py): rows written by the customer 360 page, its JSON and the
list exports; the review page's filters, keyset pages and fixed query count; the "Viewed by" panel; and the
walls (capability, organization, append-only)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from compliance.access_log import customer_lookup, describe_filters, record_access
from compliance.models import AccessAction, AccessLogEntry
from crm.models import AuditLog
from crm.tenancy import system_context, tenant_context
from customers.models import Customer
from sales.models import Opportunity
from tests import factories

pytestmark = pytest.mark.django_db

LIST = "compliance:access_log"
# session, user, tenant settings, the organization's users, the page, its customers, nav and layout
QUERIES = 13


def _log(org) -> list[AccessLogEntry]:
    with system_context():
        return list(AccessLogEntry.objects.filter(organization_id=org.pk).order_by("occurred_at", "id"))


def test_the_360_page_and_its_json_are_logged_with_who_whose_and_where_from(org_a, login, client):
    rep = factories.user(org_a, role="sales_rep")
    customer = factories.customer(org_a)
    login(rep)

    assert client.get(reverse("customers:detail", kwargs={"pk": customer.pk})).status_code == 200
    assert client.get(reverse("customers:json360", kwargs={"pk": customer.pk})).status_code == 200

    page, json_view = _log(org_a)
    for entry in (page, json_view):
        assert (entry.user_id, entry.customer_id, entry.action) == (rep.pk, customer.pk, "view_customer")
        assert entry.request_id and entry.ip_address == "127.0.0.1"
        assert entry.row_count is None
    assert json_view.description == "360 JSON"


def test_a_refused_360_view_logs_nothing(org_a, org_b, login, client):
    foreign = factories.customer(org_b)
    login(factories.user(org_a, role="sales_rep"))
    assert client.get(reverse("customers:detail", kwargs={"pk": foreign.pk})).status_code == 404
    assert _log(org_a) == [] and _log(org_b) == []


def test_the_customer_export_is_logged_with_its_filters_and_row_count(org_a, login, client):
    manager = factories.user(org_a, role="sales_manager")
    for n in range(3):
        factories.customer(org_a, lifecycle_stage="lead", last_name=f"Lead{n}")
    factories.customer(org_a, lifecycle_stage="customer")
    login(manager)

    response = client.get(reverse("customers:export"), {"lifecycle_stage": "lead", "cursor": "x"})
    lines = b"".join(response.streaming_content).decode().strip().splitlines()

    [entry] = _log(org_a)
    with system_context():
        leads = Customer.objects.filter(organization=org_a, lifecycle_stage="lead").count()
    assert entry.row_count == leads == len(lines) - 1 == 3
    assert (entry.action, entry.user_id, entry.customer_id) == ("export_list", manager.pk, None)
    assert entry.description == "Customers export (lifecycle_stage=lead)"


def test_the_opportunity_export_is_logged(org_a, login, client):
    manager = factories.user(org_a, role="sales_manager")
    factories.opportunity(org_a, name="One")
    factories.opportunity(org_a, name="Two")
    login(manager)

    response = client.get(reverse("sales:opportunity_export"))
    lines = b"".join(response.streaming_content).decode().strip().splitlines()

    [entry] = _log(org_a)
    with system_context():
        deals = Opportunity.objects.filter(organization=org_a).count()
    assert entry.row_count == deals == len(lines) - 1 == 2
    assert entry.description == "Opportunities export (no filters)"
    assert entry.action == AccessAction.EXPORT_LIST


def test_a_refused_export_logs_nothing(org_a, login, client):
    login(factories.user(org_a, role="sales_rep"))
    assert client.get(reverse("customers:export")).status_code == 403
    assert _log(org_a) == []


def test_the_app_role_cannot_change_or_delete_log_rows(org_a):
    admin = factories.user(org_a, role="admin")
    with tenant_context(org_a.pk, user=admin):
        entry = record_access(request_or_none=None, user=admin, action="view_customer")
        for sql in ("UPDATE data_access_log SET description = 'x'", "DELETE FROM data_access_log"):
            with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)
        assert AccessLogEntry.objects.get(pk=entry.pk).description == ""


def test_describe_filters_and_customer_lookup():
    from django.http import QueryDict

    assert describe_filters(QueryDict("b=2&a=1&a=3&cursor=x&sort=name&empty=")) == "a=1|3, b=2"
    assert customer_lookup("C-000123") == {"number": 123}
    assert customer_lookup(" 42 ") == {"number": 42}
    assert customer_lookup("nonsense") is None


# --- The review page ----------------------------------------------------------------------------------------


@pytest.fixture
def history(org_a, org_b):
    """Three people, two customers, each action, and a day of another organization's rows."""
    admin = factories.user(org_a, role="admin", first_name="Ada")
    rep = factories.user(org_a, role="sales_rep", first_name="Rex")
    alice = factories.customer(org_a, first_name="Alice", last_name="Anders")
    bob = factories.customer(org_a, first_name="Bob", last_name="Brown")
    foreign = factories.customer(org_b, first_name="Foreign")
    outsider = factories.user(org_b, role="admin")
    with tenant_context(org_a.pk, user=admin):
        record_access(request_or_none=None, user=rep, action="view_customer", customer=alice)
        record_access(request_or_none=None, user=rep, action="view_customer", customer=bob)
        record_access(request_or_none=None, user=admin, action="export_list", description="Customers export")
        record_access(
            request_or_none=None,
            user=None,
            action="download_export",
            customer=alice,
            description="GDPR-00001",
        )
    with tenant_context(org_b.pk, user=outsider):
        record_access(request_or_none=None, user=outsider, action="view_customer", customer=foreign)
    return {"admin": admin, "rep": rep, "alice": alice, "bob": bob, "foreign": foreign}


def _rows(response) -> list[dict]:
    return response.context["rows"]


def test_the_page_lists_the_organizations_rows_newest_first(history, login, client):
    login(history["admin"])
    response = client.get(reverse(LIST))
    assert response.status_code == 200
    rows = _rows(response)
    assert [r["entry"].action for r in rows] == [
        "download_export",
        "export_list",
        "view_customer",
        "view_customer",
    ]
    assert rows[0]["user"] is None and rows[0]["customer"].pk == history["alice"].pk
    assert rows[1]["user"].pk == history["admin"].pk and rows[1]["customer"] is None
    content = response.content.decode()
    assert "Alice Anders" in content and "Foreign" not in content
    assert "The data subject (signed link)" in content


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (lambda h: {"user": str(h["rep"].pk)}, 2),
        (lambda h: {"action": "view_customer"}, 2),
        (lambda h: {"action": "download_export"}, 1),
        (lambda h: {"customer": h["alice"].customer_number}, 2),
        (lambda h: {"customer": str(h["bob"].pk)}, 1),
        (lambda h: {"customer": "C-999999"}, 0),
        (lambda h: {"customer": str(h["foreign"].pk)}, 0),
        (lambda h: {"customer": "no such thing"}, 0),
        (lambda h: {"user": str(h["rep"].pk), "customer": h["bob"].customer_number}, 1),
        (lambda h: {"since": timezone.now().date().isoformat()}, 4),
        (lambda h: {"until": (timezone.now().date() - dt.timedelta(days=1)).isoformat()}, 0),
    ],
)
def test_filters(history, login, client, params, expected):
    login(history["admin"])
    response = client.get(reverse(LIST), params(history))
    rows = _rows(response)
    assert len(rows) == expected
    # recomputed independently of the filter code
    with system_context():
        everything = AccessLogEntry.objects.filter(organization_id=history["admin"].organization_id)
        assert all(r["entry"] in everything for r in rows)


def test_the_filtered_empty_state_says_what_to_do(history, login, client):
    login(history["admin"])
    response = client.get(reverse(LIST), {"action": "download_export", "user": str(history["rep"].pk)})
    assert "No access matches these filters" in response.content.decode()


def test_keyset_pages_and_a_fixed_query_count(org_a, login, client, django_assert_num_queries):
    admin = factories.user(org_a, role="admin")
    customers = [factories.customer(org_a) for _ in range(3)]
    with tenant_context(org_a.pk, user=admin):
        for n in range(55):
            record_access(request_or_none=None, user=admin, action="view_customer", customer=customers[n % 3])
    login(admin)
    client.get(reverse(LIST))  # warm up (session, content types)
    with django_assert_num_queries(QUERIES):
        first = client.get(reverse(LIST))
    page = first.context["page"]
    assert len(first.context["rows"]) == 50 and page.has_next and not page.has_previous
    second = client.get(reverse(LIST), {"cursor": page.next_cursor})
    assert len(second.context["rows"]) == 5
    seen = {r["entry"].pk for r in first.context["rows"]} | {r["entry"].pk for r in second.context["rows"]}
    assert len(seen) == 55
    # the same number of queries for a page of 5 as for a page of 50
    with django_assert_num_queries(QUERIES):
        client.get(reverse(LIST), {"cursor": page.next_cursor})


def test_the_page_needs_the_capability(org_a, login, client):
    for role in ("sales_manager", "sales_rep", "support_manager", "marketing_manager"):
        login(factories.user(org_a, role=role))
        assert client.get(reverse(LIST)).status_code == 403


def test_the_nav_and_the_audit_page_link_to_it_for_admins_only(org_a, login, client):
    login(factories.user(org_a, role="admin"))
    audit = client.get(reverse("audit:list")).content.decode()
    assert reverse(LIST) in audit
    login(factories.user(org_a, role="sales_manager"))
    home = client.get(reverse("home")).content.decode()
    assert reverse(LIST) not in home


def test_the_360_page_shows_who_viewed_the_customer_to_admins(org_a, login, client):
    admin = factories.user(org_a, role="admin", first_name="Ada", last_name="Admin")
    customer = factories.customer(org_a)
    login(admin)
    response = client.get(reverse("customers:detail", kwargs={"pk": customer.pk}))
    content = response.content.decode()
    assert 'data-testid="viewed-by-panel"' in content
    assert "Ada Admin" in content or str(admin) in content  # the view that was just logged
    assert f"{reverse(LIST)}?customer={customer.pk}" in content
    login(factories.user(org_a, role="sales_rep"))
    rep_view = client.get(reverse("customers:detail", kwargs={"pk": customer.pk})).content.decode()
    assert 'data-testid="viewed-by-panel"' not in rep_view


def test_opening_an_audit_entry_of_a_customer_is_logged_with_whose_it_is(org_a, login, client):
    admin = factories.user(org_a, role="admin")
    customer = factories.customer(org_a)
    with system_context():
        entry = AuditLog.objects.filter(table_name="customers", record_id=str(customer.pk)).latest(
            "occurred_at"
        )
    login(admin)

    assert client.get(f"/settings/audit/{entry.pk}/").status_code == 200

    [logged] = _log(org_a)
    assert (logged.action, logged.user_id, logged.customer_id) == ("view_audit_entry", admin.pk, customer.pk)
    assert logged.description == f"customers {customer.pk} (INSERT)"
