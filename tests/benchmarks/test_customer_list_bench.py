"""Customer list: keyset page vs OFFSET page, deep in a 100,000-customer organization (`make bench`).

Both queries are the list's own (the selector's queryset, ordered newest first), compiled once by the ORM
and executed side by side; the ratio compares the database work of a deep page. The page's rendering is
the same either way and is left out. CUSTOMER_LIST_BENCH_CUSTOMERS sets the size (default 100,000; the page
read stays 95 % deep) for a smaller run while developing; the uniform search needs at least 4,242.
"""

import os
import statistics
import time

import pytest
from django.db import connection

from crm.pagination import _after
from crm.tenancy import system_context, tenant_context
from customers.models import Customer
from tests import factories
from tests.benchmarks.pii import stored_phones
from tests.owner_db import analyze_as_owner, owner_connection

pytestmark = pytest.mark.bench

CUSTOMERS = int(os.environ.get("CUSTOMER_LIST_BENCH_CUSTOMERS", "100000"))  # smaller while developing
PAGE = 50
DEPTH = CUSTOMERS * 19 // 20 // PAGE  # 95 % deep: page 1,900, OFFSET 95,000 at 100,000 customers


def _fill(org_id) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers (id, organization_id, number, first_name, last_name, company_name, email, phone,"
            " job_title, customer_type, lifecycle_stage, lead_score, engagement_score, health_score, tags,"
            " vip_status, status, street, city, state, postal_code, country, source, email_opt_in, do_not_call,"
            " processing_restricted, restriction_reason, education_level, created_at, updated_at) "
            "SELECT gen_random_uuid(), %s, n, 'First' || n, 'Last' || n, 'Company ' || (n %% 500), "
            " 'c' || n || '@example.com', '', '', 'individual', 'lead', n %% 101, 0, 0, '{}', false, 'active',"
            " '', '', '', '', '', '', false, false, false, '', '', now() - (n || ' minutes')::interval, now() "
            "FROM generate_series(1, %s) AS n",
            [org_id, CUSTOMERS],
        )


def _execution_ms(sql: str, params, runs: int = 9) -> float:
    """Median "Execution Time" of EXPLAIN (ANALYZE): the database's own work, without the client round trip
    and row transfer that are the same for both pages."""
    times = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            times.append(cursor.fetchone()[0][0]["Execution Time"])
    return statistics.median(times)


def _median_ms(sql: str, params, runs: int = 9) -> float:
    times = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            started = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


@pytest.mark.django_db(transaction=True)
def test_keyset_list_page_beats_offset_a_hundredfold(capsys):
    org = factories.organization()
    with system_context():
        _fill(org.pk)
    analyze_as_owner("customers")
    ordering = ("-created_at", "-id")
    with tenant_context(org.pk):
        listed = (
            Customer.objects.filter(organization_id=org.pk).select_related("assigned_to").order_by(*ordering)
        )
        boundary = listed.values_list("created_at", "id")[DEPTH * PAGE - 1]
        offset_sql, offset_params = listed[DEPTH * PAGE : DEPTH * PAGE + PAGE].query.sql_with_params()
        keyset_sql, keyset_params = listed.filter(_after(ordering, list(boundary), reverse=False))[
            :PAGE
        ].query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(offset_sql, offset_params)
            by_offset = [row[0] for row in cursor.fetchall()]
            cursor.execute(keyset_sql, keyset_params)
            by_keyset = [row[0] for row in cursor.fetchall()]
        assert by_offset == by_keyset
        offset_ms, keyset_ms = _median_ms(offset_sql, offset_params), _median_ms(keyset_sql, keyset_params)
        offset_db, keyset_db = (
            _execution_ms(offset_sql, offset_params),
            _execution_ms(keyset_sql, keyset_params),
        )
    with capsys.disabled():
        print(
            f"\n[bench] customer list, {CUSTOMERS:,} customers, page {DEPTH:,} of {PAGE}: in the database "
            f"OFFSET {offset_db:.2f} ms vs keyset {keyset_db:.3f} ms ({offset_db / keyset_db:.0f}x); "
            f"round trip OFFSET {offset_ms:.2f} ms vs keyset {keyset_ms:.3f} ms ({offset_ms / keyset_ms:.0f}x)"
        )
    assert offset_db / keyset_db >= 100
    assert offset_ms / keyset_ms >= 20


def _fill_varied(org_id) -> None:
    """Customers named from the demo's lists (36 first names x 28 last names, 22 companies), with their own
    e-mail addresses and phone numbers: trigrams shared the way real names share them, not by every row.
    The phones are encrypted and hashed in Python as the app stores them (tests/benchmarks/pii.py); they are
    not part of the trigram search text any more (migration customers 0009)."""
    from customers.demo import COMPANIES, FIRST, LAST

    phones, hashes = stored_phones(
        f"+49 {30 + n % 70} {n * 7919 % 10_000_000:07d}" for n in range(1, CUSTOMERS + 1)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers (id, organization_id, number, first_name, last_name, company_name, email, phone,"
            " phone_hash, job_title, customer_type, lifecycle_stage, lead_score, engagement_score, health_score,"
            " tags, vip_status, status, street, city, state, postal_code, country, source, email_opt_in,"
            " do_not_call, processing_restricted, restriction_reason, education_level, created_at, updated_at) "
            "SELECT gen_random_uuid(), %s, n, f, l, CASE WHEN n %% 3 = 0 THEN '' ELSE co END,"
            " lower(f) || '.' || lower(l) || n || '@' || CASE n %% 4 WHEN 0 THEN 'example.com'"
            " WHEN 1 THEN 'mail.test' WHEN 2 THEN 'corp.example' ELSE 'inbox.test' END,"
            " p.phone, p.phone_hash,"
            " '', 'individual', 'lead', n %% 101, 0, 0, '{}', false, 'active',"
            " '', '', '', '', '', '', false, false, false, '', '', now() - (n || ' minutes')::interval, now() "
            "FROM generate_series(1, %s) AS n"
            " JOIN unnest(%s::text[], %s::text[]) WITH ORDINALITY AS p(phone, phone_hash, k) ON p.k = n,"
            " LATERAL (SELECT (%s::text[])[1 + n %% %s] AS f, (%s::text[])[1 + (n / 7) %% %s] AS l,"
            " (%s::text[])[1 + (n / 3) %% %s] AS co) AS names",
            [
                org_id,
                CUSTOMERS,
                phones,
                hashes,
                FIRST,
                len(FIRST),
                LAST,
                len(LAST),
                COMPANIES,
                len(COMPANIES),
            ],
        )


def _varied_query() -> tuple[str, str]:
    """A typo'd full name from the lists (a letter of the last name dropped), and the name it should find."""
    from customers.demo import FIRST, LAST

    first, last = FIRST[4], LAST[9]
    return f"{first} {last[:2]}{last[3:]}", last


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("data", ["uniform", "varied"])
def test_search_cost_at_100k_customers_is_reported(capsys, data):
    """Typo-tolerant search in a 100,000-customer organization, as the app role (docs/benchmarks.md).

    Under forced row-level security, PostgreSQL uses an index only for leakproof operators, and pg_trgm's
    (like ILIKE) are not: the trigram index serves the owner, not the app. The search therefore picks its
    candidates from customer_search_terms with `=` (leakproof, served by its primary key) and computes the
    precise conditions on those only. Two data sets: "uniform", the list benchmark's First<n>/Last<n>
    customers, where 'First4242' shares five of its ten trigrams with every customer, so every customer
    is a true match (word similarity 0.5 >= 0.45) and no candidate step can skip one; "varied", names,
    companies, e-mails and phones as in the demo, searched for a typo'd full name."""
    from customers.selectors import search

    org = factories.organization()
    with system_context():
        (_fill if data == "uniform" else _fill_varied)(org.pk)
    analyze_as_owner("customers")
    with owner_connection() as conn:  # as autovacuum would after a bulk insert: index-only scans need it
        conn.execute("VACUUM ANALYZE customer_search_terms")
    query, expected = ("First4242", "First4242") if data == "uniform" else _varied_query()
    with tenant_context(org.pk):

        def run():
            return search(
                Customer.objects.filter(organization_id=org.pk), query, organization_id=org.pk
            ).order_by("-similarity", "-id")[:50]

        queryset = run()
        sql, params = queryset.query.sql_with_params()
        found = [c.first_name if data == "uniform" else c.last_name for c in queryset]
        db_ms = _execution_ms(sql, params, runs=5)
        walls = []
        for _ in range(5):  # both round trips (trigram counts, then the page) as the list makes them
            started = time.perf_counter()
            list(run())
            walls.append(time.perf_counter() - started)
        wall_ms = statistics.median(walls) * 1000
    with capsys.disabled():
        print(
            f"\n[bench] customer search, {CUSTOMERS:,} customers ({data}), {query!r}: {db_ms:.1f} ms in the database"
            f" (the page's query), {wall_ms:.1f} ms end to end"
        )
    assert expected in found
