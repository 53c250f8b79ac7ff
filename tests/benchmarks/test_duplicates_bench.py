"""Duplicates page: reading the stored pairs vs recomputing them on every load (`make bench`).

One organization of 2,000 and of 10,000 customers: the demo's 36 first names, random last names of three
syllables ("Bakorin"), the demo's 22 companies (a third without one), each with an e-mail
address and phone number of their own; plus 3% planted duplicates, the same person again with a typo in the
name and the same phone or the same e-mail written differently. Besides those, similar names at the same
company make pairs too, as they would in a real organization.

The page's data (one page of 25 pairs with both customers and their owners) is built both ways side by
side: as the page did before (`find_duplicates` computing every pair of the organization, then the
customers) and as it does now (`duplicates_page` reading `customer_duplicate_pairs`, filled by one refresh).
Also reported: the refresh itself, and the whole page through the test client.

Phone numbers are encrypted at rest and matched through their keyed hash (`phone_hash`, migration customers
0009): the fill makes both in Python as the app does (tests/benchmarks/pii.py), so the planted duplicates with
the same phone match as they would in the product. DUPLICATES_BENCH_CUSTOMERS sets the sizes
(comma-separated, default "2000,10000").
"""

import os
import statistics
import time
from types import SimpleNamespace

import pytest
from django.db import connection
from django.urls import reverse

from crm.tenancy import system_context, tenant_context
from customers import duplicates
from customers.models import Customer
from tests import factories
from tests.benchmarks.pii import stored_phones
from tests.owner_db import analyze_as_owner

pytestmark = pytest.mark.bench

PLANTED = 0.03  # share of customers that are a second record of someone else
# Last names spelled consonant-vowel at random ("Bakorin", "Tesumal"): 18 x 5 letters a syllable, three
# syllables and an optional closing consonant, so trigrams vary the way real names' do (the prefix filter of
# the name rule relies on rare trigrams, and a synthetic name list built from a few syllables would have none).
CONSONANTS = list("bcdfghjklmnprstvwz")
VOWELS = list("aeiou")
SIZES = [int(size) for size in os.environ.get("DUPLICATES_BENCH_CUSTOMERS", "2000,10000").split(",")]


def _phone(n: int) -> str:
    """Original customer n's own number (7919 is prime to 10^7: no two originals share one)."""
    return f"+49 {30 + n % 70} {n * 7919 % 10_000_000:07d}"


def _fill(org_id, count: int) -> None:
    from customers.demo import COMPANIES, FIRST

    originals = count - int(count * PLANTED)
    planted = count - originals
    # Phones are encrypted at rest and matched by their keyed hash (migration customers 0009): both made in
    # Python as the app makes them (tests/benchmarks/pii.py), joined to the generated rows by number. Planted
    # duplicate k copies customer 1 + (k * 31) % originals; every other one (even k) has that customer's
    # number written with dashes: another token, the same hash.
    phones, hashes = stored_phones(_phone(n) for n in range(1, originals + 1))
    planted_phones, planted_hashes = stored_phones(
        _phone(1 + (k * 31) % originals).replace(" ", "-") if k % 2 == 0 else ""
        for k in range(1, planted + 1)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers (id, organization_id, number, first_name, last_name, company_name, email, phone,"
            " phone_hash, job_title, customer_type, lifecycle_stage, lead_score, engagement_score, health_score,"
            " tags, vip_status, status, street, city, state, postal_code, country, source, email_opt_in,"
            " do_not_call, processing_restricted, restriction_reason, education_level, created_at, updated_at) "
            "SELECT gen_random_uuid(), %(org)s, n, f, l, CASE WHEN n %% 3 = 0 THEN '' ELSE co END,"
            " lower(f) || '.' || lower(l) || n || '@example.com', p.phone, p.phone_hash,"
            " '', 'individual', 'lead', n %% 101, 0, 0, '{}', false, 'active',"
            " '', '', '', '', '', '', false, false, false, '', '', now() - (n || ' minutes')::interval, now() "
            "FROM generate_series(1, %(originals)s) AS n"
            " JOIN unnest(%(phones)s::text[], %(hashes)s::text[]) WITH ORDINALITY AS p(phone, phone_hash, k)"
            " ON p.k = n,"
            " LATERAL (SELECT decode(md5('customer' || n), 'hex') AS h) AS random,"
            " LATERAL (SELECT (%(first)s::text[])[1 + n %% 36] AS f,"
            " initcap(c[1 + get_byte(h, 0) %% 18] || v[1 + get_byte(h, 1) %% 5] || c[1 + get_byte(h, 2) %% 18]"
            "  || v[1 + get_byte(h, 3) %% 5] || c[1 + get_byte(h, 4) %% 18] || v[1 + get_byte(h, 5) %% 5]"
            "  || CASE WHEN get_byte(h, 6) %% 2 = 0 THEN c[1 + get_byte(h, 7) %% 18] ELSE '' END) AS l,"
            " (%(companies)s::text[])[1 + get_byte(h, 8) %% 22] AS co"
            " FROM (SELECT %(consonants)s::text[] AS c, %(vowels)s::text[] AS v) letters) AS names",
            {
                "org": org_id,
                "originals": originals,
                "first": FIRST,
                "companies": COMPANIES,
                "consonants": CONSONANTS,
                "vowels": VOWELS,
                "phones": phones,
                "hashes": hashes,
            },
        )
        # The planted duplicates: customer k * 31 again, with the last letter of the name doubled, the same
        # company; every other one with the same phone written with dashes, the rest with the same e-mail in
        # capitals with a trailing dot (rows written around the services).
        cursor.execute(
            "INSERT INTO customers (id, organization_id, number, first_name, last_name, company_name, email, phone,"
            " phone_hash, job_title, customer_type, lifecycle_stage, lead_score, engagement_score, health_score,"
            " tags, vip_status, status, street, city, state, postal_code, country, source, email_opt_in,"
            " do_not_call, processing_restricted, restriction_reason, education_level, created_at, updated_at) "
            "SELECT gen_random_uuid(), c.organization_id, %(originals)s + k,"
            " c.first_name, c.last_name || right(c.last_name, 1), c.company_name,"
            " CASE WHEN k %% 2 = 0 THEN '' ELSE upper(c.email) || '.' END, p.phone, p.phone_hash,"
            " '', 'individual', 'lead', 0, 0, 0, '{}', false, 'active',"
            " '', '', '', '', '', '', false, false, false, '', '', now(), now() "
            "FROM generate_series(1, %(planted)s) AS k"
            " JOIN unnest(%(phones)s::text[], %(hashes)s::text[]) WITH ORDINALITY AS p(phone, phone_hash, j)"
            " ON p.j = k"
            " JOIN customers c ON c.organization_id = %(org)s AND c.number = 1 + (k * 31) %% %(originals)s",
            {
                "org": org_id,
                "originals": originals,
                "planted": planted,
                "phones": planted_phones,
                "hashes": planted_hashes,
            },
        )


def _recomputed_page(organization_id) -> duplicates.DuplicatesPage:
    """The page's data as it was built before the table: every pair computed, then the customers."""
    page = duplicates.find_duplicates(organization_id=organization_id)
    ids = {p.a_id for p in page.items} | {p.b_id for p in page.items}
    by_id = {c.pk: c for c in Customer.objects.filter(pk__in=ids).select_related("assigned_to")}
    for pair in page.items:
        pair.a, pair.b = by_id.get(pair.a_id), by_id.get(pair.b_id)
    return page


def _median_ms(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("customers", SIZES)
def test_duplicates_page_reads_stored_pairs_instead_of_recomputing_them(capsys, login, client, customers):
    org = factories.organization()
    admin = factories.user(org, role="admin")
    with system_context():
        _fill(org.pk, customers)
    analyze_as_owner("customers")
    actor = SimpleNamespace(organization_id=org.pk)
    with tenant_context(org.pk):
        refreshed = duplicates.duplicate_pairs_refresh(organization_id=org.pk)
    analyze_as_owner("customer_duplicate_pairs")
    with tenant_context(org.pk):
        again = _median_ms(lambda: duplicates.duplicate_pairs_refresh(organization_id=org.pk), 3)
        stored = duplicates.duplicates_page(actor=actor)
        recomputed = _recomputed_page(org.pk)
        # The same first page either way.
        assert [(p.a_id, p.b_id, p.confidence) for p in stored.items] == [
            (p.a_id, p.b_id, p.confidence) for p in recomputed.items
        ]
        assert len(stored.items) == duplicates.PER_PAGE
        recompute_ms = _median_ms(lambda: _recomputed_page(org.pk), 5)
        stored_ms = _median_ms(lambda: duplicates.duplicates_page(actor=actor), 21)
        deep, depth, deep_cursor = stored, 1, None
        while deep.has_next and depth < 10:  # as deep as page 10, or the last page
            deep_cursor = deep.next_cursor
            deep, depth = duplicates.duplicates_page(actor=actor, cursor=deep_cursor), depth + 1
        deep_ms = _median_ms(lambda: duplicates.duplicates_page(actor=actor, cursor=deep_cursor), 21)
    login(admin)
    url = reverse("customers:duplicates")
    assert client.get(url).status_code == 200
    view_ms = _median_ms(lambda: client.get(url), 11)
    ratio = recompute_ms / stored_ms
    with capsys.disabled():
        print(
            f"\n[bench] duplicates page, {customers:,} customers, {refreshed.pairs:,} pairs: "
            f"recomputed {recompute_ms:.1f} ms vs stored {stored_ms:.2f} ms ({ratio:.0f}x); "
            f"stored page {depth}: {deep_ms:.2f} ms; whole page (view + template) {view_ms:.1f} ms; "
            f"refresh: first {refreshed.seconds * 1000:.0f} ms, again with nothing changed {again:.0f} ms"
        )
    assert ratio >= 10
