"""CSV import through COPY + set-based upsert vs an ORM loop of `customer_create` per row (`make bench`).

Into an empty organization, and into one already holding 100,000 customers (the issue's scale, where both
ways check emails against a real customer base). Timed side by side in one run:
- the pipeline importing a 50,000-row customer file (every column filled): counting pass, row validation,
  COPY into staging, in-file duplicate check, numbering, INSERT ... SELECT, lifecycle history;
- `customer_create()` for a sample of the same rows (2,000; 500 at scale, where each row is slow):
  validation, numbering lock, email check, INSERT, lifecycle history; rolled back, extrapolated per row.
Both pay the same row triggers (the audit trail) and index maintenance (trigram search, tags); the ratio
is per row. Absolute times drift on shared machines; the ratio is what we record in docs/benchmarks.md.
Both ways encrypt the phone, date of birth, street and postal code and hash the phone in Python (migration
customers 0009): the pipeline as it validates each row, `customer_create` through the model fields. The
existing customers have none of those (blank). IMPORT_BENCH_ROWS and IMPORT_BENCH_EXISTING set the sizes
(default 50,000 and 100,000) for a smaller run while developing.
"""

from __future__ import annotations

import csv
import os
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from crm.tenancy import tenant_context
from customers import importing
from customers.models import Customer
from customers.services.customers import customer_create
from tests import factories
from tests.owner_db import analyze_as_owner

pytestmark = pytest.mark.bench

EXISTING = int(os.environ.get("IMPORT_BENCH_EXISTING", "100000"))
IMPORTED = int(os.environ.get("IMPORT_BENCH_ROWS", "50000"))
ORM_SAMPLE = min(2_000, IMPORTED)
# Each create scans the customer base for its email: ~0.1 s a row at 100k.
ORM_SAMPLE_AT_SCALE = min(500, IMPORTED)


def _row(i: int) -> dict:
    return {
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
        "email": f"person{i}@bench.example",
        "phone": f"+1 555 {i:07d}",
        "company_name": f"Company {i % 900}",
        "job_title": "Engineer",
        "education_level": "bachelors",
        "date_of_birth": f"1980-01-{i % 28 + 1:02d}",
        "annual_revenue": f"{i * 10}.50",
        "customer_type": "business",
        "lifecycle_stage": ("lead", "subscriber", "customer", "champion")[i % 4],
        "tags": "alpha;Beta",
        "vip_status": "yes" if i % 10 == 0 else "no",
        "street": f"{i} Main Street",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62704",
        "country": "US",
        "source": "trade show",
    }


def _existing_customers(org_id) -> None:
    """EXISTING customers, set-based (their audit rows included, as for any insert)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers (id, organization_id, number, first_name, last_name, company_name, email, phone,"
            " education_level, job_title, customer_type, lifecycle_stage, lead_score, engagement_score,"
            " health_score, tags, vip_status, status, street, city, state, postal_code, country, source,"
            " email_opt_in, do_not_call, processing_restricted, restriction_reason, created_at, updated_at) "
            "SELECT gen_random_uuid(), %s, n, 'Known' || n, 'Customer', 'Firm ' || (n %% 700), "
            " 'known' || n || '@bench.example', '', '', '', 'individual', 'lead', 0, 0, 0, '{}', false,"
            " 'active', '', '', '', '', '', '', false, false, false, '', now(), now() "
            "FROM generate_series(1, %s) AS n",
            [org_id, EXISTING],
        )


def _measure(org, path, orm_sample: int, existing: int) -> tuple[float, float]:
    """(ORM seconds per row, pipeline seconds per row) for the same rows into `org`."""
    with tenant_context(org.pk):
        # The ORM loop first, on the first rows of the same file, then undone (a savepoint).
        with transaction.atomic():
            started = time.perf_counter()
            for i in range(orm_sample):
                fields = _row(i)
                fields["tags"] = fields["tags"].split(";")
                fields["vip_status"] = fields["vip_status"] == "yes"
                fields["annual_revenue"] = Decimal(fields["annual_revenue"])
                customer_create(organization=org, actor=None, reason="Imported", **fields)
            orm_seconds = time.perf_counter() - started
            transaction.set_rollback(True)
        assert Customer.objects.count() == existing

        started = time.perf_counter()
        outcome = importing.run_import(path=path, kind="customers", organization=org)
        copy_seconds = time.perf_counter() - started
        assert outcome.ok and (outcome.created, outcome.skipped) == (IMPORTED, 0)
        assert Customer.objects.count() == existing + IMPORTED
    return orm_seconds / orm_sample, copy_seconds / IMPORTED


@pytest.mark.django_db(transaction=True)
def test_copy_import_beats_an_orm_loop_per_row(tmp_path, capsys):
    path = tmp_path / "customers.csv"
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=importing.CUSTOMERS.header)
        writer.writeheader()
        for i in range(IMPORTED):
            writer.writerow(_row(i))
    empty, loaded = factories.organization(), factories.organization()
    with tenant_context(loaded.pk):
        _existing_customers(loaded.pk)
    analyze_as_owner("customers")

    results = {
        "an empty organization": (*_measure(empty, path, ORM_SAMPLE, 0), ORM_SAMPLE),
        f"{EXISTING:,} existing customers": (
            *_measure(loaded, path, ORM_SAMPLE_AT_SCALE, EXISTING),
            ORM_SAMPLE_AT_SCALE,
        ),
    }
    with capsys.disabled():
        print()
        for where, (orm, copy, sample) in results.items():
            print(
                f"[bench] {IMPORTED:,} customers into {where}: ORM customer_create {orm * 1e3:.2f} ms/row "
                f"(sample of {sample:,}), COPY pipeline {copy * 1e6:.0f} µs/row, ratio {orm / copy:.0f}x"
            )
    orm, copy, _sample = results[f"{EXISTING:,} existing customers"]
    assert orm / copy >= 50  # the target, at the scale
