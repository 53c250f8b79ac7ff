"""CSV import: validation with line numbers, all or nothing, dedupe policies, caps, interactions, the
commands, the web flow with its progress bar, permissions, and bounded memory on a large file."""

from __future__ import annotations

import csv
import datetime
import io
import uuid
import zoneinfo
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.tenancy import system_context, tenant_context
from customers import importing
from customers.importing import pipeline, results
from customers.models import Customer, ImportJob, Interaction, LifecycleChange
from customers.services import imports as import_services
from customers.tasks import run_import
from tests import factories

DATA = Path(__file__).parent / "data"
CUSTOMER_HEADER = ",".join(importing.CUSTOMERS.header)
INTERACTION_HEADER = ",".join(importing.INTERACTIONS.header)


def _write(tmp_path, text: str, name: str = "import.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _run(org, path, kind="customers", **options) -> importing.ImportOutcome:
    with tenant_context(org.pk):
        return importing.run_import(path=path, kind=kind, organization=org, **options)


def _customers(org) -> dict[str, Customer]:
    with tenant_context(org.pk):
        return {c.email: c for c in Customer.objects.filter(organization=org)}


def _count(org) -> int:
    with tenant_context(org.pk):
        return Customer.objects.filter(organization=org).count()


def _ago(days: int = 0, hours: int = 0) -> datetime.datetime:
    return (timezone.now() - datetime.timedelta(days=days, hours=hours)).replace(microsecond=0)


# --- Validation: every bad row, with its line and column; nothing imported ----------------------------------


def test_bad_file_reports_every_bad_row_with_line_and_column_and_imports_nothing(org_a):
    factories.customer(org_a, email="existing@import.example")
    before = _count(org_a)
    outcome = _run(org_a, DATA / "customers_bad.csv")
    found = [(e["line"], e["column"]) for e in outcome.errors]
    # Lines as a spreadsheet numbers them: the header is 1, the first data row 2.
    assert found == [
        (3, "email"),
        (4, "vip_status"),
        (4, "annual_revenue"),
        (6, "lifecycle_stage"),
        (6, "date_of_birth"),
        (6, "country"),
        (7, ""),
        (8, "email"),
    ]
    assert outcome.error_count == 8
    messages = {(e["line"], e["column"]): e["message"] for e in outcome.errors}
    assert "not-an-email" in messages[(3, "email")]
    assert "negative" in messages[(4, "annual_revenue")]
    assert "wizard" in messages[(6, "lifecycle_stage")] and "champion" in messages[(6, "lifecycle_stage")]
    assert "1990-02-30" in messages[(6, "date_of_birth")]
    assert "3 cells" in messages[(7, "")] and "8 columns" in messages[(7, "")]
    assert "line 2" in messages[(8, "email")]
    assert outcome.created == outcome.updated == outcome.skipped == 0
    assert _count(org_a) == before  # the two good rows were not imported either


def test_valid_file_creates_customers_numbered_in_file_order_with_every_field_parsed(org_a, admin_a):
    existing = factories.customer(org_a, email="someone@else.example")
    outcome = _run(org_a, DATA / "customers_valid.csv", actor_id=admin_a.pk)
    assert (outcome.ok, outcome.total_rows, outcome.created, outcome.updated, outcome.skipped) == (
        True, 3, 3, 0, 0,
    )  # fmt: skip
    people = _customers(org_a)
    ada, grace, alan = (
        people["ada@import.example"],
        people["grace@import.example"],
        people["alan@import.example"],
    )
    assert [ada.number, grace.number, alan.number] == [
        existing.number + 1,
        existing.number + 2,
        existing.number + 3,
    ]
    assert (ada.first_name, ada.company_name, ada.job_title, ada.phone) == (
        "Ada", "Analytical Engines", "CTO", "+44 20 7946 0000",
    )  # fmt: skip
    assert ada.education_level == "masters" and ada.date_of_birth == datetime.date(1985, 12, 10)
    assert ada.annual_revenue == Decimal("2500000.50") and ada.customer_type == "business"
    assert ada.lifecycle_stage == "customer" and ada.vip_status is True
    assert ada.tags == ["newsletter", "vip"]  # trimmed, lower-cased, de-duplicated, sorted
    assert (ada.street, ada.city, ada.state, ada.postal_code, ada.country, ada.source) == (
        "12 St James Sq", "London", "", "SW1Y 4JH", "GB", "conference",
    )  # fmt: skip
    assert ada.created_by_id == admin_a.pk and ada.status == "active" and ada.lead_score == 0
    # Grace: email lower-cased, empty cells take the defaults.
    assert grace.lifecycle_stage == "lead" and grace.customer_type == "individual" and grace.tags == []
    assert grace.annual_revenue is None and grace.date_of_birth is None and grace.vip_status is False
    # Alan: a choice given by its label, a boolean as 1, revenue 0.
    assert alan.lifecycle_stage == "marketing_qualified" and alan.vip_status is True
    assert alan.annual_revenue == Decimal("0")
    with tenant_context(org_a.pk):
        history = set(
            LifecycleChange.objects.filter(customer__in=[ada, grace, alan]).values_list(
                "customer__email", "from_stage", "to_stage", "reason", "changed_by"
            )
        )
    assert history == {
        ("ada@import.example", "", "customer", "Imported", admin_a.pk),
        ("grace@import.example", "", "lead", "Imported", admin_a.pk),
        ("alan@import.example", "", "marketing_qualified", "Imported", admin_a.pk),
    }


def test_byte_order_mark_crlf_padding_and_blank_rows_are_accepted(org_a, tmp_path):
    text = "\ufeff First_Name , last_name,EMAIL \r\n  Bea , Kim ,  bea@import.example \r\n\r\n,,\r\nCy,Lo,cy@import.example\r\n"
    path = _write(tmp_path, text)
    outcome = _run(org_a, path)
    assert (outcome.ok, outcome.total_rows, outcome.created) == (True, 2, 2)
    people = _customers(org_a)
    assert (people["bea@import.example"].first_name, people["bea@import.example"].last_name) == ("Bea", "Kim")


def test_line_numbers_count_blank_rows_and_multi_line_cells_as_a_spreadsheet_does(org_a, tmp_path):
    text = 'first_name,last_name,email\n"Two\nlines",X,a@import.example\n\nB,Y,bad@\n'
    outcome = _run(org_a, _write(tmp_path, text))
    assert [(e["line"], e["column"]) for e in outcome.errors] == [(4, "email")]


def test_a_row_needs_a_name_a_company_or_an_email(org_a, tmp_path):
    outcome = _run(org_a, _write(tmp_path, "first_name,last_name,email,company_name,city\n,,,,Paris\n"))
    assert [(e["line"], e["column"]) for e in outcome.errors] == [(2, "email")]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("first_name,last_name,email,favourite_colour,shoe_size", "favourite_colour, shoe_size"),
        ("first_name,email", "Missing columns: last_name"),
        ("first_name,last_name,email,email", "Columns named twice: email"),
    ],
)
def test_header_problems_are_reported_on_line_1(org_a, tmp_path, header, expected):
    outcome = _run(org_a, _write(tmp_path, header + "\nA,B,a@import.example,x,y\n"))
    assert outcome.error_count == 1
    assert outcome.errors[0]["line"] == 1 and expected in outcome.errors[0]["message"]


def test_empty_file_and_header_only_file_are_refused(org_a, tmp_path):
    assert "empty" in _run(org_a, _write(tmp_path, "", "a.csv")).errors[0]["message"]
    assert "no rows" in _run(org_a, _write(tmp_path, CUSTOMER_HEADER + "\n", "b.csv")).errors[0]["message"]


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(org_a, tmp_path):
    path = _write(tmp_path, "first_name,last_name,email\nRené,Ü,rene@import.example\n", encoding="latin-1")
    outcome = _run(org_a, path)
    assert outcome.error_count == 1
    assert "UTF-8" in outcome.errors[0]["message"] and outcome.errors[0]["line"] == 2
    assert _count(org_a) == 0


def test_too_long_values_and_bad_tags_are_errors(org_a, tmp_path):
    long_tag = "x" * 51
    text = f"first_name,last_name,email,tags,country\n{'A' * 101},B,a@import.example,ok;{long_tag},US\n"
    outcome = _run(org_a, _write(tmp_path, text))
    assert [(e["line"], e["column"]) for e in outcome.errors] == [(2, "first_name"), (2, "tags")]
    assert "101" in outcome.errors[0]["message"] and "100" in outcome.errors[0]["message"]


def test_error_list_is_capped_and_every_error_is_counted(org_a, tmp_path, monkeypatch):
    monkeypatch.setattr(results, "ERROR_CAP", 5)
    rows = "".join(f"A{i},B,bad{i}@\n" for i in range(12))
    outcome = _run(org_a, _write(tmp_path, "first_name,last_name,email\n" + rows))
    assert outcome.error_count == 12
    assert [e["line"] for e in outcome.errors] == [2, 3, 4, 5, 6]


# --- Duplicates and dedupe policies ---------------------------------------------------------------------


def test_the_same_email_twice_in_the_file_is_an_error_on_each_later_line(org_a, tmp_path):
    text = "first_name,last_name,email\nA,A,x@import.example\nB,B,y@import.example\nC,C,X@Import.Example\nD,D,x@import.example\n"
    outcome = _run(org_a, _write(tmp_path, text))
    assert [(e["line"], e["column"]) for e in outcome.errors] == [(4, "email"), (5, "email")]
    assert all("line 2" in e["message"] for e in outcome.errors)
    assert _count(org_a) == 0


def test_policy_skip_leaves_existing_customers_as_they_were_and_counts_them(org_a, tmp_path):
    kept = factories.customer(org_a, first_name="Old", email="ada@import.example", tags=["keep"])
    outcome = _run(org_a, DATA / "customers_valid.csv", policy=ImportJob.Policy.SKIP)
    assert (outcome.created, outcome.updated, outcome.skipped) == (2, 0, 1)
    ada = _customers(org_a)["ada@import.example"]
    assert (ada.pk, ada.number, ada.first_name, ada.tags) == (kept.pk, kept.number, "Old", ["keep"])
    assert _count(org_a) == 3


def test_policy_update_overwrites_filled_cells_keeps_numbers_and_records_the_stage_change(
    org_a, admin_a, tmp_path
):
    ada = factories.customer(
        org_a, first_name="Old", last_name="Name", email="Ada@Import.Example", city="Paris",
        lifecycle_stage="lead", tags=["old"], vip_status=False, annual_revenue=Decimal("5"),
    )  # fmt: skip
    text = (
        "first_name,last_name,email,city,lifecycle_stage,tags,vip_status,annual_revenue,job_title\n"
        "Ada,,ada@import.example,,champion,New;b,yes,,Countess\n"
        "Brand,New,new@import.example,Oslo,,,,,\n"
    )
    outcome = _run(org_a, _write(tmp_path, text), policy=ImportJob.Policy.UPDATE, actor_id=admin_a.pk)
    assert (outcome.created, outcome.updated, outcome.skipped) == (1, 1, 0)
    people = _customers(org_a)
    updated = people["ada@import.example"]
    assert (updated.pk, updated.number) == (ada.pk, ada.number)
    assert (updated.first_name, updated.job_title, updated.lifecycle_stage, updated.vip_status) == (
        "Ada", "Countess", "champion", True,
    )  # fmt: skip
    assert updated.tags == ["b", "new"]
    # Empty cells change nothing.
    assert (updated.last_name, updated.city, updated.annual_revenue) == ("Name", "Paris", Decimal("5"))
    assert people["new@import.example"].number == ada.number + 1
    with tenant_context(org_a.pk):
        changes = set(
            LifecycleChange.objects.filter(customer=ada).values_list(
                "from_stage", "to_stage", "reason", "changed_by"
            )
        )
    assert changes == {("", "lead", "Created", None), ("lead", "champion", "Imported", admin_a.pk)}


def test_policy_update_leaves_customers_with_restricted_processing_alone(org_a, tmp_path):
    restricted = factories.customer(org_a, first_name="Private", email="ada@import.example")
    with tenant_context(org_a.pk):
        Customer.objects.filter(pk=restricted.pk).update(processing_restricted=True)
    text = "first_name,last_name,email\nChanged,X,ada@import.example\n"
    outcome = _run(org_a, _write(tmp_path, text), policy=ImportJob.Policy.UPDATE)
    assert (outcome.created, outcome.updated, outcome.skipped) == (0, 0, 1)
    assert _customers(org_a)["ada@import.example"].first_name == "Private"


def test_emails_of_another_organization_do_not_match(org_a, org_b, tmp_path):
    factories.customer(org_b, email="ada@import.example", first_name="Theirs")
    outcome = _run(org_a, _write(tmp_path, "first_name,last_name,email\nOurs,X,ada@import.example\n"))
    assert (outcome.created, outcome.skipped) == (1, 0)
    assert _customers(org_b)["ada@import.example"].first_name == "Theirs"


# --- Caps -----------------------------------------------------------------------------------------------


def test_row_cap_refuses_the_file_with_a_clear_message(org_a, tmp_path):
    rows = "".join(f"A,B,a{i}@import.example\n" for i in range(4))
    outcome = _run(org_a, _write(tmp_path, "first_name,last_name,email\n" + rows), max_rows=3)
    assert outcome.error_count == 1
    assert "more than 3 rows" in outcome.errors[0]["message"]
    assert _count(org_a) == 0
    assert (
        _run(org_a, _write(tmp_path, "first_name,last_name,email\n" + rows, "b.csv"), max_rows=4).created == 4
    )


def test_size_cap_refuses_the_file_with_a_clear_message(org_a, tmp_path):
    path = _write(tmp_path, "first_name,last_name,email\nA,B,a@import.example\n")
    outcome = _run(org_a, path, max_bytes=10)
    assert outcome.error_count == 1
    message = outcome.errors[0]["message"]
    assert "10\xa0bytes" in message and f"{path.stat().st_size}\xa0bytes" in message


def test_web_task_applies_the_row_cap_of_the_settings(org_a, admin_a, settings, tmp_path):
    settings.CRM_IMPORT_MAX_ROWS = 1
    settings.MEDIA_ROOT = str(tmp_path)
    job = _upload_job(
        org_a, admin_a, "first_name,last_name,email\nA,B,a@import.example\nC,D,c@import.example\n"
    )
    run_import.apply(kwargs={"job_id": str(job.pk), "organization_id": str(org_a.pk)}, throw=True)
    job = _job(org_a, job.pk)
    assert job.status == ImportJob.Status.FAILED
    assert "more than 1 row, the most one import takes" in job.errors[0]["message"]


# --- Interactions ---------------------------------------------------------------------------------------


def test_interactions_import_logs_every_row_and_moves_last_contact_dates_forward_only(
    org_a, admin_a, tmp_path
):
    ada = factories.customer(org_a, email="ada@import.example")
    grace = factories.customer(org_a, email="grace@import.example")
    newer = _ago(days=1)
    factories.interaction(grace, interaction_date=newer)
    first, second, old = _ago(days=30), _ago(days=10), _ago(days=60)
    text = (
        INTERACTION_HEADER + "\n"
        f"ada@import.example,{first.isoformat()},call,phone,Left a voicemail,neutral,Will call back\n"
        f'ADA@import.example,{second.isoformat()},Meeting,in_person,Demo done,positive,"Notes, with ""quotes"""\n'
        f"grace@import.example,{old.isoformat()},email_sent,email,,,\n"
    )
    outcome = _run(org_a, _write(tmp_path, text), kind="interactions", actor_id=admin_a.pk)
    assert (outcome.ok, outcome.created, outcome.updated) == (True, 3, 1)
    with tenant_context(org_a.pk):
        logged = list(
            Interaction.objects.filter(customer=ada)
            .order_by("interaction_date")
            .values_list("interaction_type", "channel", "outcome", "sentiment", "notes", "logged_by")
        )
        ada.refresh_from_db()
        grace.refresh_from_db()
    assert logged == [
        ("call", "phone", "Left a voicemail", "neutral", "Will call back", admin_a.pk),
        ("meeting", "in_person", "Demo done", "positive", 'Notes, with "quotes"', admin_a.pk),
    ]
    assert ada.last_contact_date == second  # the newest of the file
    assert grace.last_contact_date == newer  # an older imported interaction never moves it back


def test_interaction_dates_without_offset_are_read_in_the_organizations_time_zone(org_a, tmp_path):
    with system_context():
        org_a.time_zone = "America/New_York"
        org_a.save(update_fields=["time_zone"])
    customer = factories.customer(org_a, email="ada@import.example")
    local = _ago(days=20).astimezone(zoneinfo.ZoneInfo("America/New_York")).replace(tzinfo=None)
    text = INTERACTION_HEADER + f"\nada@import.example,{local.isoformat()},note,,,,\n"
    assert _run(org_a, _write(tmp_path, text), kind="interactions").ok
    with tenant_context(org_a.pk):
        stored = Interaction.objects.get(customer=customer).interaction_date
    assert stored == local.replace(tzinfo=zoneinfo.ZoneInfo("America/New_York"))


def test_interactions_of_unknown_emails_are_errors_and_nothing_is_imported(org_a, org_b, tmp_path):
    factories.customer(org_a, email="ada@import.example")
    factories.customer(org_b, email="theirs@import.example")
    day = _ago(days=3).date().isoformat()
    text = (
        INTERACTION_HEADER + "\n"
        f"ada@import.example,{day},call,,,,\n"
        f"nobody@import.example,{day},call,,,,\n"
        f"theirs@import.example,{day},call,,,,\n"
        f"ada@import.example,{day},teleport,,,,\n"
        f"ada@import.example,,call,,,,\n"
    )
    outcome = _run(org_a, _write(tmp_path, text), kind="interactions")
    assert [(e["line"], e["column"]) for e in outcome.errors] == [
        (3, "customer_email"),
        (4, "customer_email"),
        (5, "interaction_type"),
        (6, "interaction_date"),
    ]
    assert outcome.errors[0]["message"] == "No customer has this email."
    with tenant_context(org_a.pk):
        assert not Interaction.objects.exists()


def test_interaction_dates_in_the_future_or_beyond_the_log_are_errors(org_a, tmp_path):
    factories.customer(org_a, email="ada@import.example")
    future = (timezone.now() + datetime.timedelta(days=2)).date().isoformat()
    ancient = (timezone.now() - datetime.timedelta(days=365 * 4)).date().isoformat()
    text = (
        INTERACTION_HEADER
        + f"\nada@import.example,{future},call,,,,\nada@import.example,{ancient},call,,,,\n"
    )
    outcome = _run(org_a, _write(tmp_path, text), kind="interactions")
    assert ["future" in outcome.errors[0]["message"], "before" in outcome.errors[1]["message"]] == [
        True,
        True,
    ]


@pytest.mark.django_db(transaction=True)
def test_an_interaction_in_a_month_without_partition_gets_its_partition_first(tmp_path):
    org = factories.organization()
    customer = factories.customer(org, email="ada@import.example")
    when = (timezone.now() - datetime.timedelta(days=30 * 25)).replace(microsecond=0)
    partition = f"interaction_logs_y{when.astimezone(datetime.UTC):%Y}m{when.astimezone(datetime.UTC):%m}"
    text = INTERACTION_HEADER + f"\nada@import.example,{when.isoformat()},call,,,,\n"
    outcome = _run(org, _write(tmp_path, text), kind="interactions")
    assert outcome.ok and outcome.created == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition])
        assert cursor.fetchone()[0]
    with tenant_context(org.pk):
        assert Interaction.objects.get(customer=customer).interaction_date == when


# --- Commands -------------------------------------------------------------------------------------------


def test_import_customers_command_prints_progress_and_summary(org_a):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_customers", str(DATA / "customers_valid.csv"), "--org", org_a.slug, stdout=out, stderr=err
    )
    assert "3 rows imported into org-a: 3 created, 0 updated, 0 skipped." in out.getvalue()
    assert "3 rows to check" in err.getvalue() and "importing" in err.getvalue()
    assert _count(org_a) == 3
    with tenant_context(org_a.pk):
        job = ImportJob.objects.get()
    assert (job.status, job.created_by, job.file_name) == ("done", None, "customers_valid.csv")


def test_import_customers_command_update_flag_updates_existing_customers(org_a):
    factories.customer(org_a, email="ada@import.example", first_name="Old")
    out = io.StringIO()
    call_command(
        "import_customers", str(DATA / "customers_valid.csv"), "--org", org_a.slug, "--update",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    assert "2 created, 1 updated, 0 skipped" in out.getvalue()
    assert _customers(org_a)["ada@import.example"].first_name == "Ada"


def test_import_command_with_an_invalid_file_exits_non_zero_with_the_report(org_a, tmp_path):
    rows = "".join(f"A,B,bad{i}@\n" for i in range(60))
    err = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(
            "import_customers", str(_write(tmp_path, "first_name,last_name,email\n" + rows)), "--org", org_a.slug,
            stdout=io.StringIO(), stderr=err,
        )  # fmt: skip
    assert failure.value.returncode == 1
    report = err.getvalue()
    assert "60 errors were found; nothing was imported." in report
    assert "line 2, email:" in report and "line 51, email:" in report and "line 52, email" not in report
    assert "... and 10 more" in report
    assert _count(org_a) == 0


def test_import_command_progress_line_every_n_rows(org_a, tmp_path):
    rows = "".join(f"A,B,a{i}@import.example\n" for i in range(5))
    err = io.StringIO()
    call_command(
        "import_customers", str(_write(tmp_path, "first_name,last_name,email\n" + rows)), "--org", org_a.slug,
        "--progress-every", "2", stdout=io.StringIO(), stderr=err,
    )  # fmt: skip
    assert "checked 2 / 5 rows (40%)" in err.getvalue() and "checked 4 / 5 rows (80%)" in err.getvalue()


def test_import_command_refuses_unknown_organization_or_file(org_a):
    with pytest.raises(CommandError, match="No organization"):
        call_command("import_customers", str(DATA / "customers_valid.csv"), "--org", "nope")
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_customers", "/nonexistent.csv", "--org", org_a.slug)


def test_import_interactions_command_prints_summary(org_a, tmp_path):
    factories.customer(org_a, email="ada@import.example")
    text = INTERACTION_HEADER + f"\nada@import.example,{_ago(days=2).date().isoformat()},call,,,,\n"
    out = io.StringIO()
    call_command(
        "import_interactions",
        str(_write(tmp_path, text)),
        "--org",
        org_a.slug,
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "1 interaction imported into org-a; 1 customer has a newer last contact date." in out.getvalue()


def test_import_interactions_command_rejects_unknown_emails_with_exit_status_1(org_a, tmp_path):
    text = INTERACTION_HEADER + f"\nnobody@import.example,{_ago(days=2).date().isoformat()},call,,,,\n"
    err = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(
            "import_interactions", str(_write(tmp_path, text)), "--org", org_a.slug,
            stdout=io.StringIO(), stderr=err,
        )  # fmt: skip
    assert failure.value.returncode == 1
    assert "line 2, customer_email: No customer has this email." in err.getvalue()


# --- The web flow ---------------------------------------------------------------------------------------


def _upload_job(org, user, text: str, kind: str = "customers", policy: str = "skip") -> ImportJob:
    upload = SimpleUploadedFile("people.csv", text.encode(), content_type="text/csv")
    with tenant_context(org.pk, user=user):
        return import_services.import_job_create(
            organization=org, actor=user, kind=kind, policy=policy, upload=upload
        )


def _job(org, pk) -> ImportJob:
    with tenant_context(org.pk):
        return ImportJob.objects.get(pk=pk)


def test_upload_saves_the_file_creates_the_job_and_enqueues_the_task_on_commit(
    org_a, admin_a, login, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    client = login(admin_a)
    upload = SimpleUploadedFile("people.csv", (DATA / "customers_valid.csv").read_bytes(), "text/csv")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("customers:import_upload"), {"kind": "customers", "policy": "update", "file": upload}
        )
    with tenant_context(org_a.pk):
        job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("customers:import_detail", args=[job.pk])
    assert (job.kind, job.policy, job.status, job.file_name, job.created_by_id) == (
        "customers", "update", "pending", "people.csv", admin_a.pk,
    )  # fmt: skip
    stored = tmp_path / "imports" / str(org_a.pk) / f"{job.pk}.csv"
    assert job.file_path == f"imports/{org_a.pk}/{job.pk}.csv"
    assert stored.read_bytes() == (DATA / "customers_valid.csv").read_bytes()
    assert len(callbacks) == 1  # run_import, sent once the upload's transaction commits
    # Pending: the job page polls its status partial every second.
    page = client.get(reverse("customers:import_detail", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in page and "Waiting for a worker" in page

    with django_capture_on_commit_callbacks(execute=True):
        run_import.apply(kwargs={"job_id": str(job.pk), "organization_id": str(org_a.pk)}, throw=True)
    job = _job(org_a, job.pk)
    assert (job.status, job.total_rows, job.processed_rows, job.created_count) == ("done", 3, 3, 3)
    assert job.started_at and job.finished_at and not stored.exists()  # the upload is not kept
    partial = client.get(reverse("customers:import_progress", args=[job.pk])).content.decode()
    assert "hx-trigger" not in partial  # done: the polling stops
    assert 'data-testid="import-created">3<' in partial and 'data-testid="import-skipped">0<' in partial
    assert "pct-100" in partial
    listing = client.get(reverse("customers:imports")).content.decode()
    assert "people.csv" in listing and "3 created · 0 updated · 0 skipped" in listing


def test_progress_partial_shows_rows_checked_and_keeps_polling_while_running(org_a, admin_a, login):
    with tenant_context(org_a.pk):
        job = ImportJob.objects.create(
            organization=org_a, kind="customers", file_name="big.csv", file_path="x.csv",
            status=ImportJob.Status.VALIDATING, total_rows=2000, processed_rows=500, created_by=admin_a,
        )  # fmt: skip
    partial = login(admin_a).get(reverse("customers:import_progress", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in partial
    assert "500 of 2,000 rows checked (25%)" in partial and "pct-25" in partial


def test_failed_job_page_shows_the_report_and_it_downloads_as_safe_csv(
    org_a, admin_a, login, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    job = _upload_job(org_a, admin_a, "first_name,last_name,email\nA,B,=HYPERLINK(1)\nC,D,c@import.example\n")
    run_import.apply(kwargs={"job_id": str(job.pk), "organization_id": str(org_a.pk)}, throw=True)
    client = login(admin_a)
    page = client.get(reverse("customers:import_detail", args=[job.pk])).content.decode()
    assert "Validation report" in page and "1 error was found; nothing was imported." in page
    assert page.count('data-testid="import-error"') == 1
    response = client.get(reverse("customers:import_errors", args=[job.pk]))
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["line", "column", "message"]
    assert rows[1] == ["2", "email", "“=HYPERLINK(1)” is not a valid email address."]
    assert rows[2] == ["", "", "1 error was found; nothing was imported."]
    assert _count(org_a) == 0


def test_report_download_defuses_cells_a_spreadsheet_would_run_as_formulas(org_a, admin_a, login):
    with tenant_context(org_a.pk):
        job = ImportJob.objects.create(
            organization=org_a, kind="customers", file_name="a.csv", file_path="x", status="failed",
            errors=[{"line": 2, "column": "@SUM(A1)", "message": '=HYPERLINK("https://evil.example")'}],
        )  # fmt: skip
    response = login(admin_a).get(reverse("customers:import_errors", args=[job.pk]))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[1] == ["2", "'@SUM(A1)", '\'=HYPERLINK("https://evil.example")']


def test_task_is_idempotent_a_finished_job_is_not_run_again(org_a, admin_a, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    job = _upload_job(org_a, admin_a, "first_name,last_name,email\nA,B,a@import.example\n")
    kwargs = {"job_id": str(job.pk), "organization_id": str(org_a.pk)}
    run_import.apply(kwargs=kwargs, throw=True)
    finished = _job(org_a, job.pk)
    run_import.apply(kwargs=kwargs, throw=True)
    again = _job(org_a, job.pk)
    assert (again.status, again.created_count, again.finished_at) == ("done", 1, finished.finished_at)
    assert _count(org_a) == 1


def test_a_missing_upload_fails_the_job_with_a_message(org_a, admin_a, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    job = _upload_job(org_a, admin_a, "first_name,last_name,email\nA,B,a@import.example\n")
    (tmp_path / job.file_path).unlink()
    run_import.apply(kwargs={"job_id": str(job.pk), "organization_id": str(org_a.pk)}, throw=True)
    job = _job(org_a, job.pk)
    assert job.status == "failed" and "upload it again" in job.errors[0]["message"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("people.xlsx", b"first_name\n", "Choose a .csv file"),
        ("people.csv", b"", "empty"),
        (
            "people.csv",
            b"first_name,last_name,email\n" + b"A,B,a@import.example\n" * 10,
            "the most one import takes",
        ),
    ],
)
def test_upload_form_refuses_wrong_extension_empty_and_too_big_files(
    org_a, admin_a, login, settings, name, content, message
):
    settings.CRM_IMPORT_MAX_BYTES = 100
    response = login(admin_a).post(
        reverse("customers:import_upload"),
        {"kind": "customers", "policy": "skip", "file": SimpleUploadedFile(name, content, "text/csv")},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    with tenant_context(org_a.pk):
        assert not ImportJob.objects.exists()


def test_upload_page_links_a_template_for_each_kind_with_the_right_header(org_a, admin_a, login):
    client = login(admin_a)
    page = client.get(reverse("customers:import_upload")).content.decode()
    for kind, fmt in importing.FORMATS.items():
        url = f"{reverse('customers:import_template')}?kind={kind}"
        assert url in page
        response = client.get(url)
        assert response["Content-Type"].startswith("text/csv")
        assert response.content.decode().splitlines() == [",".join(fmt.header)]
    assert client.get(reverse("customers:import_template") + "?kind=secrets").status_code == 404
    assert importing.CUSTOMERS.header == [
        "first_name", "last_name", "email", "phone", "company_name", "job_title", "education_level",
        "date_of_birth", "annual_revenue", "customer_type", "lifecycle_stage", "tags", "vip_status", "street",
        "city", "state", "postal_code", "country", "source", "email_opt_in",
    ]  # fmt: skip
    assert importing.INTERACTIONS.header == [
        "customer_email", "interaction_date", "interaction_type", "interaction_channel", "outcome", "sentiment",
        "notes",
    ]  # fmt: skip


def test_imports_list_shows_counts_who_and_status_with_a_fixed_number_of_queries(org_a, admin_a, login):
    def add(n):
        with tenant_context(org_a.pk):
            for i in range(n):
                ImportJob.objects.create(
                    organization=org_a, kind="customers", file_name=f"file{i}.csv", file_path="x",
                    status="done", total_rows=10 + i, created_count=7, updated_count=2, skipped_count=1 + i,
                    created_by=admin_a if i % 2 else factories.user(org_a, role="marketing_manager"),
                )  # fmt: skip

    client = login(admin_a)
    add(2)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("customers:imports"))
    add(8)
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("customers:imports")).content.decode()
    assert len(many) == len(few)
    assert page.count('data-testid="import-row"') == 10
    assert "7 created · 2 updated · 1 skipped" in page and "7 created · 2 updated · 8 skipped" in page


def test_imports_list_has_an_empty_state_and_is_in_the_navigation(org_a, admin_a, login):
    page = login(admin_a).get(reverse("customers:imports")).content.decode()
    assert "No imports yet" in page and reverse("customers:import_upload") in page
    assert f'href="{reverse("customers:imports")}"' in page


# --- Permissions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("admin", True),
        ("sales_manager", True),
        ("marketing_manager", True),
        ("sales_rep", False),
        ("support_manager", False),
        ("support_agent", False),
    ],
)
def test_only_roles_that_may_import_reach_the_import_pages(org_a, admin_a, login, role, allowed):
    with tenant_context(org_a.pk):
        job = ImportJob.objects.create(organization=org_a, kind="customers", file_name="a.csv", file_path="x")
    client = login(factories.user(org_a, role=role))
    urls = [
        reverse("customers:imports"),
        reverse("customers:import_upload"),
        reverse("customers:import_template"),
        reverse("customers:import_detail", args=[job.pk]),
        reverse("customers:import_progress", args=[job.pk]),
        reverse("customers:import_errors", args=[job.pk]),
    ]
    assert {client.get(url).status_code for url in urls} == ({200} if allowed else {403})


def test_the_upload_service_refuses_a_user_without_the_import_capability(org_a, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    rep = factories.user(org_a, role="sales_rep")
    with pytest.raises(PermissionDenied):
        _upload_job(org_a, rep, "first_name,last_name,email\nA,B,a@import.example\n")
    assert not list(tmp_path.rglob("*.csv"))


def test_another_organizations_import_is_a_404(org_a, org_b, admin_a, admin_b, login):
    with tenant_context(org_b.pk):
        theirs = ImportJob.objects.create(
            organization=org_b, kind="customers", file_name="b.csv", file_path="x"
        )
    client = login(admin_a)
    for name in ("customers:import_detail", "customers:import_progress", "customers:import_errors"):
        assert client.get(reverse(name, args=[theirs.pk])).status_code == 404
    assert "b.csv" not in client.get(reverse("customers:imports")).content.decode()


def test_a_task_for_a_job_of_another_organization_finds_nothing(org_a, org_b, admin_b, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    job = _upload_job(org_b, admin_b, "first_name,last_name,email\nA,B,a@import.example\n")
    run_import.apply(kwargs={"job_id": str(job.pk), "organization_id": str(org_a.pk)}, throw=True)
    assert _job(org_b, job.pk).status == "pending"
    assert _count(org_a) == _count(org_b) == 0


# --- Progress from a second connection, while the import transaction is open ------------------------


@pytest.mark.django_db(transaction=True)
def test_progress_is_committed_from_a_second_connection_while_the_import_runs(
    monkeypatch, settings, tmp_path
):
    """What the polling page would read mid-import: read through a third connection, as the app role."""
    settings.MEDIA_ROOT = str(tmp_path)
    org = factories.organization()
    admin = factories.user(org, role="admin")
    rows = "".join(f"A,B,a{i}@import.example\n" for i in range(50))
    job = _upload_job(org, admin, "first_name,last_name,email\n" + rows)  # committed: a transactional test
    seen = []
    db = connection.settings_dict
    original = import_services._JobProgress._write

    def write_then_look(self, **fields):
        original(self, **fields)
        with (
            psycopg.connect(
                dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"], host=db["HOST"], port=db["PORT"]
            ) as other,
            other.transaction(),
        ):
            other.execute("SELECT set_config('app.organization_id', %s, true)", [str(org.pk)])
            seen.append(
                other.execute(
                    "SELECT status, total_rows, processed_rows FROM customer_import_jobs WHERE id = %s",
                    [job.pk],
                ).fetchone()
            )

    monkeypatch.setattr(import_services._JobProgress, "_write", write_then_look)
    with tenant_context(org.pk):
        import_services.import_job_run(job_id=job.pk, max_rows=None, max_bytes=None, progress_every=20)
        assert Customer.objects.count() == 50
    assert seen == [
        ("validating", 0, 0),
        ("validating", 50, 0),
        ("validating", 50, 20),
        ("validating", 50, 40),
        ("importing", 50, 50),
    ]
    assert _job(org, job.pk).status == "done"


# --- Memory ---------------------------------------------------------------------------------------------


def _peak_rss_kb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS is read from Linux's /proc")
def test_a_200k_line_file_is_streamed_not_loaded(org_a, tmp_path):
    """The process's peak memory grows far less than the file's size: rows are read, checked and sent one
    at a time. The last row is invalid, so all 200,000 rows are read, checked and COPied into staging,
    then nothing is applied (the apply is SQL on the server: no memory of ours)."""
    path = tmp_path / "large.csv"
    with open(path, "w", encoding="utf-8") as out:
        out.write(CUSTOMER_HEADER + "\n")
        for i in range(199_999):
            out.write(
                f"First{i},Last{i},person{i}@large.example,+1 555 {i:07d},Company {i % 900},Engineer,bachelors,"
                f"1980-01-{i % 28 + 1:02d},{i}.50,business,lead,alpha;beta,no,{i} Main Street,Springfield,IL,"
                "62704,US,trade show,yes\n"
            )
        out.write("Last,Row,not-an-email\n")
    size = path.stat().st_size
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current size
    before = _peak_rss_kb()
    outcome = _run(org_a, path)
    growth = (_peak_rss_kb() - before) * 1024
    assert (outcome.total_rows, outcome.processed_rows, outcome.error_count) == (200_000, 200_000, 1)
    assert size > 30 * 1024 * 1024
    # Reading it whole would take several times its size (a list of 200,000 rows of 19 strings).
    assert growth < 50 * 1024 * 1024, f"peak grew {growth / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
    assert _count(org_a) == 0


def test_staging_table_is_gone_after_the_import(org_a, tmp_path):
    path = _write(tmp_path, "first_name,last_name,email\nA,B,a@import.example\n")
    with tenant_context(org_a.pk):
        importing.run_import(path=path, kind="customers", organization=org_a)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_class WHERE relname LIKE 'crm_import_%%' AND relpersistence = 't'"
            )
            assert cursor.fetchone()[0] == 0


def test_time_ordered_ids_are_version_7_unique_and_increasing():
    ids = pipeline._TimeOrderedIds()
    values = [uuid.UUID(ids.next()) for _ in range(1000)]
    assert len(set(values)) == 1000 and values == sorted(values)
    assert {v.version for v in values} == {7} and {v.variant for v in values} == {uuid.RFC_4122}
    assert abs(int(values[0].hex[:12], 16) - timezone.now().timestamp() * 1000) < 60_000


def test_settings_declare_the_web_caps():
    assert settings.CRM_IMPORT_MAX_BYTES == 50 * 1024 * 1024
    assert settings.CRM_IMPORT_MAX_ROWS == 100_000
