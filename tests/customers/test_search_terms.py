"""customer_search_terms follows every change of a searchable field (migration 0005's insert trigger, 0007's
row-level update trigger), and an UPDATE that changes none (scoring, owner, tags, the ORM's save() of other
fields) leaves the term rows untouched. Terms recomputed here from pg_trgm's rules."""

from __future__ import annotations

import re

from django.db import connection

from crm.encryption import encrypt
from crm.tenancy import system_context, tenant_context
from customers.models import Customer
from customers.phones import phone_hash
from tests import factories


def trigrams(text: str) -> set[str]:
    """pg_trgm's show_trgm(): lower-cased words of letters and digits, padded with two spaces in front and
    one behind, each trigram once."""
    grams = set()
    for word in re.findall(r"[0-9a-z]+", text.lower()):
        padded = f"  {word} "
        grams |= {padded[i : i + 3] for i in range(len(padded) - 2)}
    return grams


def expected_terms(customer: Customer) -> set[str]:
    c = customer
    # The phone is encrypted at rest and found through its keyed hash (customers 0009), not the terms.
    return trigrams(f"{c.first_name} {c.last_name} {c.email} {c.company_name}")


def stored_terms(customer) -> set[str]:
    with system_context(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT term FROM customer_search_terms WHERE organization_id = %s AND customer_id = %s",
            [customer.organization_id, customer.pk],
        )
        return {term for (term,) in cursor.fetchall()}


def term_versions(customer) -> set[str]:
    """The row versions of the customer's terms (xmin): unchanged when nothing rewrote them."""
    with system_context(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT xmin::text || ':' || term FROM customer_search_terms WHERE customer_id = %s",
            [customer.pk],
        )
        return {row for (row,) in cursor.fetchall()}


def fresh(customer) -> Customer:
    with system_context():
        return Customer.objects.get(pk=customer.pk)


def test_terms_follow_inserts_orm_saves_and_multi_row_updates(org_a, admin_a):
    ann = factories.customer(
        org_a, first_name="Ann", last_name="Lee", company_name="Initech", phone="555 0101"
    )
    bob = factories.customer(org_a, first_name="Bob", last_name="Stone", company_name="Globex")
    cy = factories.customer(org_a, first_name="Cy", last_name="Young", company_name="Hooli")
    for customer in (ann, bob, cy):
        assert stored_terms(customer) == expected_terms(fresh(customer))
    with tenant_context(org_a.pk, user=admin_a):
        ann.last_name = "Leeds"
        ann.save()
        with connection.cursor() as cursor:
            # Two rows change a searchable field, one only its tags: one statement.
            cursor.execute(
                "UPDATE customers SET company_name = CASE WHEN id = %s THEN company_name ELSE 'Umbrella' END,"
                " tags = '{vip}' WHERE id = ANY(%s)",
                [cy.pk, [bob.pk, cy.pk]],
            )
            cursor.execute(
                "UPDATE customers SET phone = %s, phone_hash = %s, email = 'cy@hooli.example' WHERE id = %s",
                [encrypt("+1 555 0199"), phone_hash("+1 555 0199"), cy.pk],
            )
    assert " le" in stored_terms(ann) and "eds" in stored_terms(ann)
    for customer in (ann, bob, cy):
        assert stored_terms(customer) == expected_terms(fresh(customer))
    assert "umb" in stored_terms(bob) and "glo" not in stored_terms(bob)


def test_updates_that_change_no_searchable_field_leave_the_terms_untouched(org_a, admin_a):
    ann = factories.customer(org_a, first_name="Ann", last_name="Lee", company_name="Initech")
    before = term_versions(ann)
    assert before
    with tenant_context(org_a.pk, user=admin_a):
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE customers SET lead_score = 80, engagement_score = 5, scored_at = now() WHERE id = %s",
                [ann.pk],
            )
            cursor.execute(
                "UPDATE customers SET first_name = first_name, tags = '{x}' WHERE id = %s", [ann.pk]
            )
        customer = Customer.objects.get(pk=ann.pk)
        customer.job_title = "CTO"
        customer.save()  # sets every column, changes none that is searchable
    assert term_versions(ann) == before
