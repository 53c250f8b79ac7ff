"""The audit trail: trigger-written rows, append-only for the app role, monthly partitions, and the viewer."""

import datetime
import html
import re

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm import services
from crm.models import AuditLog, User
from crm.tenancy import system_context, tenant_context
from tests import factories
from tests.crm.conftest import audit_rows, insert_audit_row

PARTITIONS_SQL = """
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'crm_audit_log'
"""
HIDDEN = {"password", "last_login"}


def _keys(row: AuditLog) -> set[str]:
    return set(row.old_values or {}) | set(row.new_values or {}) | set(row.changed_fields or [])


def _user_form(user: User, **changes) -> dict:
    data = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": user.role,
        "department": user.department,
        "job_title": user.job_title,
        "time_zone": user.time_zone,
    }
    return {**data, **changes}


# --- Rows written by the trigger ------------------------------------------------------------------------------


def test_insert_update_and_delete_each_leave_one_audit_row_with_the_acting_user(org_a, admin_a):
    with tenant_context(org_a.pk, user=admin_a, request_id="req-insert-0001"):
        person = User.objects.create_user(
            organization=org_a,
            role="sales_rep",
            email="new.person@org-a.test",
            password=factories.PASSWORD,
            first_name="Nora",
            job_title="Rep",
        )
    person_id = person.pk
    with tenant_context(org_a.pk, user=admin_a, request_id="req-update-0001"):
        person.first_name = "Nina"
        person.job_title = "Senior rep"
        person.save()
    with tenant_context(org_a.pk, user=admin_a, request_id="req-delete-0001"):
        person.delete()

    rows = audit_rows(org_a, table_name="users", record_id=str(person_id))
    assert [row.operation for row in rows] == ["INSERT", "UPDATE", "DELETE"]
    assert [row.request_id for row in rows] == ["req-insert-0001", "req-update-0001", "req-delete-0001"]
    for row in rows:
        assert row.table_name == "users"
        assert row.record_id == str(person_id)
        assert row.organization_id == org_a.pk
        assert row.user_id == admin_a.pk
        assert row.sensitivity == "high"
        assert not _keys(row) & HIDDEN

    inserted, updated, deleted = rows
    assert inserted.old_values is None
    assert inserted.new_values["email"] == "new.person@org-a.test"
    assert inserted.new_values["job_title"] == "Rep"
    assert updated.old_values == {"first_name": "Nora", "job_title": "Rep"}
    assert updated.new_values == {"first_name": "Nina", "job_title": "Senior rep"}
    assert updated.changed_fields == ["first_name", "job_title"]
    assert deleted.new_values is None
    assert deleted.old_values["email"] == "new.person@org-a.test"
    assert deleted.old_values["first_name"] == "Nina"


def test_password_and_last_login_never_reach_the_audit_trail(org_a, admin_a):
    person = factories.user(org_a, job_title="Rep")
    before = len(audit_rows(org_a, table_name="users", record_id=str(person.pk)))
    with tenant_context(org_a.pk, user=admin_a):
        person.last_login = timezone.now()
        person.save(update_fields=["last_login"])
        person.set_password("another-long-passphrase-2026")
        person.save(update_fields=["password"])
    # Only ignored columns changed: no row at all.
    assert len(audit_rows(org_a, table_name="users", record_id=str(person.pk))) == before

    with tenant_context(org_a.pk, user=admin_a):
        person.last_login = timezone.now()
        person.set_password("yet-another-long-passphrase")
        person.job_title = "Lead"
        person.save()
    rows = audit_rows(org_a, table_name="users", record_id=str(person.pk))
    assert len(rows) == before + 1
    assert rows[-1].changed_fields == ["job_title"]
    assert rows[-1].old_values == {"job_title": "Rep"}
    assert rows[-1].new_values == {"job_title": "Lead"}
    for row in audit_rows(org_a, table_name="users"):
        assert not _keys(row) & HIDDEN


def test_change_through_the_web_records_admin_request_id_ip_and_user_agent(client, login, org_a, admin_a):
    target = factories.user(org_a, job_title="Rep")
    login(admin_a)
    response = client.post(
        f"/settings/users/{target.pk}/",
        _user_form(target, job_title="Team lead"),
        HTTP_X_REQUEST_ID="web-request-0042",
        HTTP_USER_AGENT="AuditProbe/1.0 (pytest)",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 302
    assert response["X-Request-ID"] == "web-request-0042"
    rows = audit_rows(org_a, table_name="users", record_id=str(target.pk), operation="UPDATE")
    assert len(rows) == 1
    row = rows[0]
    assert row.user_id == admin_a.pk
    assert row.organization_id == org_a.pk
    assert row.request_id == "web-request-0042"
    assert str(row.ip_address) == "203.0.113.9"
    assert row.user_agent == "AuditProbe/1.0 (pytest)"
    assert row.changed_fields == ["job_title"]
    assert row.new_values == {"job_title": "Team lead"}


def test_admin_cannot_change_their_own_role_through_the_edit_form(client, login, org_a, admin_a):
    login(admin_a)
    response = client.post(f"/settings/users/{admin_a.pk}/", _user_form(admin_a, role="sales_rep"))
    assert response.status_code == 200
    assert "role" in response.context["form"].errors
    with system_context():
        assert User.objects.get(pk=admin_a.pk).role == "admin"
    assert audit_rows(org_a, table_name="users", record_id=str(admin_a.pk), operation="UPDATE") == []


# --- Append-only for the app role --------------------------------------------------------------------------------


def test_app_role_cannot_update_delete_or_truncate_audit_rows(org_a, org_b, admin_a):
    factories.user(org_a)
    before = [(r.pk, r.request_id) for r in audit_rows(org_a)]
    assert before
    statements = [
        "UPDATE crm_audit_log SET request_id = 'forged'",
        "DELETE FROM crm_audit_log",
        "TRUNCATE crm_audit_log",
    ]
    with tenant_context(org_a.pk, user=admin_a):
        for statement in statements:
            with pytest.raises(ProgrammingError, match="permission denied"):
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(statement)
        with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
            AuditLog.objects.filter(organization_id=org_a.pk).update(request_id="forged")
    assert [(r.pk, r.request_id) for r in audit_rows(org_a)] == before


def test_app_role_may_append_audit_rows_only_for_its_own_organization(org_a, org_b):
    now = timezone.now()
    insert_audit_row(org_a, occurred_at=now, record_id="own-org")
    assert [r.record_id for r in audit_rows(org_a, record_id="own-org")] == ["own-org"]
    with tenant_context(org_a.pk), pytest.raises(ProgrammingError, match="row-level security"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO crm_audit_log (organization_id, table_name, record_id, operation) "
                "VALUES (%s, 'users', 'other-org', 'INSERT')",
                [org_b.pk],
            )
    assert audit_rows(org_b, record_id="other-org") == []


# --- Monthly partitions -------------------------------------------------------------------------------------------


def _month(offset: int) -> datetime.date:
    today = datetime.datetime.now(datetime.UTC).date()
    index = today.year * 12 + today.month - 1 + offset
    return datetime.date(index // 12, index % 12 + 1, 1)


def _partition_name(month: datetime.date) -> str:
    return f"crm_audit_log_y{month:%Y}m{month:%m}"


def _query(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _partitions() -> set[str]:
    return {name for (name,) in _query(PARTITIONS_SQL)}


def _policies(table: str) -> set[tuple]:
    return set(
        _query(
            "SELECT policyname, permissive, cmd, qual, with_check FROM pg_policies "
            "WHERE schemaname = 'public' AND tablename = %s",
            [table],
        )
    )


def test_partitions_ensure_creates_the_missing_months_once(org_a):
    months_ahead = 7
    expected = {_partition_name(_month(offset)) for offset in range(-1, months_ahead + 1)}
    before = _partitions()
    missing = expected - before
    assert _partition_name(_month(months_ahead)) in missing

    last_month = _month(months_ahead)
    stamp = datetime.datetime(last_month.year, last_month.month, 15, 12, tzinfo=datetime.UTC)
    with pytest.raises(IntegrityError, match="no partition"), transaction.atomic():
        insert_audit_row(org_a, occurred_at=stamp, record_id="far-future")

    created = services.partitions_ensure(months_ahead=months_ahead)
    assert created["crm_audit_log"] == len(missing)
    assert expected <= _partitions()
    assert services.partitions_ensure(months_ahead=months_ahead) == dict.fromkeys(created, 0)

    # The last month's partition covers that whole UTC month, and a row stamped in it lands there.
    next_month = _month(months_ahead + 1)
    (bound,) = _query(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s",
        [_partition_name(last_month)],
    )[0]
    assert bound == f"FOR VALUES FROM ('{last_month} 00:00:00+00') TO ('{next_month} 00:00:00+00')"
    row_id = insert_audit_row(org_a, occurred_at=stamp, record_id="far-future")
    with tenant_context(org_a.pk):
        landed = _query("SELECT tableoid::regclass::text FROM crm_audit_log WHERE id = %s", [row_id])
    assert landed == [(_partition_name(last_month),)]


def test_every_audit_partition_forces_rls_with_the_parents_policies_and_grants_the_app_role_nothing(db):
    services.partitions_ensure(months_ahead=5)
    parent_policies = _policies("crm_audit_log")
    # tenant_redact: the owner-run crm_audit_redact() (erasure) updates rows of the caller's organization only.
    assert {p[0] for p in parent_policies} == {"tenant_read", "tenant_append", "tenant_redact"}
    partitions = _partitions()
    assert len(partitions) >= 7
    for name in partitions:
        (enabled, forced) = _query(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = %s", [name]
        )[0]
        assert (name, enabled, forced) == (name, True, True)
        assert _policies(name) == parent_policies, name
        privileges = _query(
            "SELECT p, has_table_privilege(current_user, %s, p) FROM unnest(ARRAY["
            "'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p",
            [name],
        )
        assert [p for p, granted in privileges if granted] == [], name


# --- The audit viewer ----------------------------------------------------------------------------------------------


def _shown(response) -> set[tuple[str, str, str]]:
    return {
        (r["entry"].table_name, r["entry"].record_id, r["entry"].operation) for r in response.context["rows"]
    }


@pytest.fixture
def audit_set(org_a, org_b, admin_a, admin_b):
    """A small hand-made trail: four rows of org A at known days, one of org B, plus the factory INSERTs."""
    alice = factories.user(org_a, first_name="Alice", last_name="Archer")
    bob = factories.user(org_a, first_name="Bob", last_name="Baker")
    noon = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)

    def days_ago(n):
        return noon - datetime.timedelta(days=n)

    hand = {
        "r1": ("users", "rec-1", "UPDATE", alice, days_ago(20)),
        "r2": ("users", "rec-2", "DELETE", bob, days_ago(10)),
        "r3": ("organizations", "rec-3", "UPDATE", alice, days_ago(8)),
        "r4": ("users", "rec-1", "INSERT", bob, days_ago(2)),
    }
    for table, record, operation, actor, when in hand.values():
        insert_audit_row(
            org_a, occurred_at=when, table_name=table, record_id=record, operation=operation, user_id=actor.pk
        )
    insert_audit_row(
        org_b, occurred_at=days_ago(10), record_id="rec-1", operation="UPDATE", user_id=admin_b.pk
    )
    rows = {name: (table, record, op) for name, (table, record, op, _, _) in hand.items()}
    baseline = {
        ("organizations", str(org_a.pk), "INSERT"),
        ("users", str(admin_a.pk), "INSERT"),
        ("users", str(alice.pk), "INSERT"),
        ("users", str(bob.pk), "INSERT"),
    }
    # The data set is exactly what we think it is.
    everything = {(r.table_name, r.record_id, r.operation) for r in audit_rows(org_a)}
    assert everything == baseline | set(rows.values())
    return {"rows": rows, "baseline": baseline, "alice": alice, "bob": bob, "noon": noon}


def test_audit_viewer_filters_by_table_user_operation_record_and_dates(client, login, admin_a, audit_set):
    rows, alice, bob = audit_set["rows"], audit_set["alice"], audit_set["bob"]
    noon = audit_set["noon"]
    login(admin_a)

    def shown(**params):
        response = client.get("/settings/audit/", params)
        assert response.status_code == 200
        return _shown(response)

    def pick(*names):
        return {rows[name] for name in names}

    org_insert = next(b for b in audit_set["baseline"] if b[0] == "organizations")
    assert shown() == audit_set["baseline"] | pick("r1", "r2", "r3", "r4")
    assert shown(table_name="organizations") == pick("r3") | {org_insert}
    assert shown(user_id=str(alice.pk)) == pick("r1", "r3")
    assert shown(operation="DELETE") == pick("r2")
    assert shown(operation="UPDATE") == pick("r1", "r3")
    assert shown(record_id="rec-1") == pick("r1", "r4")
    since = (noon - datetime.timedelta(days=12)).date().isoformat()
    until = (noon - datetime.timedelta(days=5)).date().isoformat()
    assert shown(since=since, until=until) == pick("r2", "r3")
    assert shown(since=since) == pick("r2", "r3", "r4") | audit_set["baseline"]
    assert shown(table_name="users", user_id=str(bob.pk)) == pick("r2", "r4")
    assert shown(record_id="no-such-record") == set()


def test_audit_viewer_names_the_actor_and_answers_htmx_with_the_rows_partial(
    client, login, admin_a, audit_set
):
    login(admin_a)
    response = client.get("/settings/audit/", {"user_id": str(audit_set["alice"].pk)})
    assert {str(r["user"]) for r in response.context["rows"]} == {"Alice Archer"}
    assert "Alice Archer" in response.content.decode()
    partial = client.get(
        "/settings/audit/",
        {"operation": "DELETE"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="audit-results",
    )
    assert partial.templates[0].name == "crm/audit/_rows.html"
    assert "<html" not in partial.content.decode()
    assert _shown(partial) == {audit_set["rows"]["r2"]}


def test_audit_viewer_is_for_admins_only(client, login, org_a):
    login(factories.user(org_a, role="sales_manager"))
    assert client.get("/settings/audit/").status_code == 403


def _page_links(response) -> dict[str, str]:
    """The 'Newer' / 'Older' links as the page renders them."""
    found = re.findall(
        r'<a class="btn btn-sm btn-outline-secondary" href="([^"]+)">\s*(?:<i[^>]*></i>\s*)?(Newer|Older)',
        response.content.decode(),
    )
    return {label: html.unescape(href) for href, label in found}


def test_audit_viewer_pages_by_keyset_fifty_rows_at_a_time(client, login, org_a, admin_a):
    target = factories.user(org_a)
    with tenant_context(org_a.pk, user=admin_a):
        for n in range(1, 121):
            User.objects.filter(pk=target.pk).update(job_title=f"Title {n:03d}")
    login(admin_a)

    url = f"/settings/audit/?record_id={target.pk}&operation=UPDATE"
    pages, links = [], []
    response = client.get(url)
    while True:
        assert response.status_code == 200
        pages.append([r["entry"] for r in response.context["rows"]])
        links.append(_page_links(response))
        if "Older" not in links[-1]:
            break
        response = client.get("/settings/audit/" + links[-1]["Older"])
    assert [len(page) for page in pages] == [50, 50, 20]
    entries = [entry for page in pages for entry in page]
    assert len({entry.pk for entry in entries}) == 120
    # Newest first: the 120th change on top, the first at the bottom.
    assert [e.new_values["job_title"] for e in entries] == [f"Title {n:03d}" for n in range(120, 0, -1)]
    assert "Newer" not in links[0]
    # The cursor link keeps the filters.
    assert f"record_id={target.pk}" in links[1]["Older"]

    back = client.get("/settings/audit/" + links[2]["Newer"])
    assert [r["entry"].pk for r in back.context["rows"]] == [e.pk for e in pages[1]]
    assert set(_page_links(back)) == {"Newer", "Older"}


def test_audit_detail_shows_before_and_after_values(client, login, org_a, org_b, admin_a, admin_b):
    target = factories.user(org_a, job_title="Rep")
    with tenant_context(org_a.pk, user=admin_a, request_id="detail-request-1"):
        User.objects.filter(pk=target.pk).update(job_title="Team lead")
    (entry,) = audit_rows(org_a, record_id=str(target.pk), operation="UPDATE")
    login(admin_a)
    response = client.get(f"/settings/audit/{entry.pk}/")
    assert response.status_code == 200
    assert response.context["changes"] == [{"field": "job_title", "old": "Rep", "new": "Team lead"}]
    assert response.context["actor"] == admin_a
    page = response.content.decode()
    assert '<td class="diff-old">Rep</td>' in page
    assert '<td class="diff-new">Team lead</td>' in page
    assert "detail-request-1" in page

    (other,) = audit_rows(org_b, table_name="users", record_id=str(admin_b.pk))
    assert client.get(f"/settings/audit/{other.pk}/").status_code == 404


def test_audit_list_query_count_does_not_grow_with_the_rows(client, login, org_a, admin_a):
    people = [admin_a, factories.user(org_a), factories.user(org_a)]
    now = timezone.now()

    def add_rows(count, start):
        for n in range(start, start + count):
            insert_audit_row(
                org_a,
                occurred_at=now - datetime.timedelta(minutes=n),
                record_id=f"rec-{n}",
                user_id=people[n % 3].pk,
                new_values={"job_title": f"T{n}"},
                changed_fields=["job_title"],
            )

    baseline = len(audit_rows(org_a))
    add_rows(5 - baseline, 0)
    login(admin_a)
    client.get("/settings/audit/")  # warm-up: session and caches settle

    def measure():
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/settings/audit/")
        assert response.status_code == 200
        return len(response.context["rows"]), len(queries)

    few_rows, few_queries = measure()
    add_rows(55, 100)
    many_rows, many_queries = measure()
    assert (few_rows, many_rows) == (5, 50)
    assert many_queries == few_queries
