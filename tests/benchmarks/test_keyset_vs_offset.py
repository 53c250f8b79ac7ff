"""Keyset vs OFFSET pagination on the audit log, measured side by side in one run (`make bench`).

200,000 audit rows of one organization (plus as many of another, which RLS must skip); the 3,000th page
of 50 rows read both ways. Absolute times drift on shared machines; the ratio is what we record.
"""

import statistics
import time

import pytest
from django.db import connection

from crm.models import AuditLog
from crm.pagination import _after, _encode, keyset_page
from crm.tenancy import system_context, tenant_context
from tests import factories
from tests.owner_db import analyze_as_owner

pytestmark = pytest.mark.bench

ROWS = 200_000
PAGE = 50
DEPTH = 3_000  # pages deep: OFFSET 150,000


def _fill(org_id) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO crm_audit_log (organization_id, occurred_at, table_name, record_id, operation) "
            "SELECT %s, now() - (n || ' seconds')::interval, 'users', n::text, 'UPDATE' "
            "FROM generate_series(1, %s) AS n",
            [org_id, ROWS],
        )


def _best_of(fn, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@pytest.mark.django_db(transaction=True)
def test_keyset_page_deep_in_the_log_beats_offset(capsys):
    org, other = factories.organization(), factories.organization()
    with system_context():
        _fill(org.pk)
        _fill(other.pk)
    analyze_as_owner("crm_audit_log")
    with tenant_context(org.pk):
        ordered = AuditLog.objects.filter(organization_id=org.pk).order_by("-occurred_at", "-id")
        boundary = ordered.values_list("occurred_at", "id")[DEPTH * PAGE - 1]
        cursor = _encode(list(boundary), "next")

        def by_offset():
            return list(ordered[DEPTH * PAGE : DEPTH * PAGE + PAGE])

        def by_keyset():
            return keyset_page(
                AuditLog.objects.filter(organization_id=org.pk),
                ordering=("-occurred_at", "-id"),
                cursor=cursor,
                per_page=PAGE,
            ).items

        assert [r.pk for r in by_offset()] == [r.pk for r in by_keyset()]
        offset_s, keyset_s = _best_of(by_offset), _best_of(by_keyset)
        with connection.cursor() as c:
            sql, params = ordered[DEPTH * PAGE : DEPTH * PAGE + PAGE].query.sql_with_params()
            c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            offset_plan = "\n".join(row[0] for row in c.fetchall())
            page_qs = AuditLog.objects.filter(organization_id=org.pk).order_by("-occurred_at", "-id")
            page_qs = page_qs.filter(_after(("-occurred_at", "-id"), list(boundary), reverse=False))[:PAGE]
            sql, params = page_qs.query.sql_with_params()
            c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            keyset_plan = "\n".join(row[0] for row in c.fetchall())
    with capsys.disabled():
        print(
            f"\n[bench] audit log, {ROWS:,} rows/org, page {DEPTH:,} of {PAGE}: OFFSET {offset_s * 1000:.1f} ms, "
            f"keyset {keyset_s * 1000:.1f} ms, ratio {offset_s / keyset_s:.1f}x\n"
            f"--- OFFSET plan\n{offset_plan}\n--- keyset plan\n{keyset_plan}\n"
        )
    assert offset_s / keyset_s > 3
