"""Consent records (compliance.services.consent / selectors.consent): the append-only history, the mirrored
columns, the one selector (ORM and SQL forms agreeing), every writer that changes email consent (staff edit,
import, lead form, unsubscribe, complaint, merge) and the customer 360 panel with its htmx form."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from compliance.models import ConsentPurpose, ConsentRecord, ConsentSource
from compliance.selectors.consent import (
    consent_panel_for_customer,
    consent_sql,
    consenting,
    may_process,
)
from compliance.services.consent import consent_record, consent_record_bulk
from crm.tenancy import system_context, tenant_context
from customers import importing
from customers.models import Customer
from customers.services.customers import customer_update
from marketing import events
from marketing.services.forms import form_submission_create
from tests import factories
from tests.marketing import factories as mf

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - datetime.timedelta(days=10)
HOUR = datetime.timedelta(hours=1)


def _records(org, customer) -> list[tuple]:
    with tenant_context(org.pk):
        return list(
            ConsentRecord.objects.filter(customer_id=customer.pk)
            .order_by("recorded_at", "id")
            .values_list("purpose", "granted", "source", "proof")
        )


def _row(org, customer) -> Customer:
    with tenant_context(org.pk):
        return Customer.objects.get(pk=customer.pk)


def _record(org, customer, purpose, granted, *, at=None, source=ConsentSource.STAFF, proof="p", actor=None):
    with tenant_context(org.pk, user=actor):
        return consent_record(
            customer=customer,
            purpose=purpose,
            granted=granted,
            source=source,
            proof=proof,
            actor=actor,
            recorded_at=at,
        )


# --- The service -------------------------------------------------------------------------------------------


def test_each_statement_is_appended_and_the_purposes_column_follows_the_latest(org_a, admin_a):
    customer = factories.customer(org_a)
    assert (customer.email_opt_in, customer.profiling_allowed, customer.sale_allowed) == (False, True, True)

    _record(org_a, customer, ConsentPurpose.EMAIL_MARKETING, True, at=T0, actor=admin_a)
    _record(org_a, customer, ConsentPurpose.SALE, False, at=T0 + HOUR, source=ConsentSource.REQUEST)
    _record(org_a, customer, ConsentPurpose.PROFILING, False, at=T0 + 2 * HOUR)
    _record(org_a, customer, ConsentPurpose.PROFILING, True, at=T0 + 3 * HOUR)

    row = _row(org_a, customer)
    assert (row.email_opt_in, row.profiling_allowed, row.sale_allowed, row.sharing_allowed) == (
        True,
        True,
        False,
        True,
    )
    assert [(p, g) for p, g, _s, _p in _records(org_a, customer)] == [
        ("email_marketing", True),
        ("sale", False),
        ("profiling", False),
        ("profiling", True),
    ]
    # The instance passed in is kept current too.
    assert customer.profiling_allowed is True


def test_a_repeated_statement_is_recorded_but_does_not_rewrite_the_column(org_a):
    customer = factories.customer(org_a, email_opt_in=True)  # recorded as a staff statement
    before = _row(org_a, customer).updated_at

    _record(org_a, customer, ConsentPurpose.EMAIL_MARKETING, True, proof="said so again")

    assert _row(org_a, customer).updated_at == before
    assert [g for _p, g, _s, _pr in _records(org_a, customer)] == [True, True]


def test_a_back_dated_statement_never_overrides_a_newer_one(org_a):
    customer = factories.customer(org_a)
    _record(org_a, customer, ConsentPurpose.SHARING, False, at=T0)
    _record(org_a, customer, ConsentPurpose.SHARING, True, at=T0 - 30 * HOUR, source=ConsentSource.IMPORT)

    assert _row(org_a, customer).sharing_allowed is False


def test_an_erased_customer_cannot_consent_and_bad_input_is_refused(org_a):
    customer = factories.customer(org_a)
    with pytest.raises(ValidationError):
        _record(org_a, customer, "telepathy", True)
    with pytest.raises(ValidationError):
        _record(org_a, customer, ConsentPurpose.SALE, True, source="rumour")
    with system_context():
        Customer.objects.filter(pk=customer.pk).update(erased_at=timezone.now())
    customer.erased_at = timezone.now()
    with pytest.raises(ValidationError):
        _record(org_a, customer, ConsentPurpose.SALE, True)
    assert _records(org_a, customer) == []


def test_bulk_records_one_statement_per_customer_of_the_organization_only(org_a, org_b):
    mine = [factories.customer(org_a) for _ in range(3)]
    erased = factories.customer(org_a)
    foreign = factories.customer(org_b)
    with system_context():
        Customer.objects.filter(pk=erased.pk).update(erased_at=timezone.now())

    with tenant_context(org_a.pk):
        recorded = consent_record_bulk(
            organization_id=org_a.pk,
            customer_ids=[c.pk for c in mine] + [erased.pk, foreign.pk],
            purpose=ConsentPurpose.EMAIL_MARKETING,
            granted=True,
            source=ConsentSource.IMPORT,
            proof="paper forms, box 3",
        )

    assert recorded == 3
    for customer in mine:
        assert _row(org_a, customer).email_opt_in is True
        assert _records(org_a, customer) == [("email_marketing", True, "import", "paper forms, box 3")]
    assert _records(org_a, erased) == []
    assert _row(org_b, foreign).email_opt_in is False


# --- The selector ------------------------------------------------------------------------------------------


def test_consenting_keeps_only_unrestricted_live_customers_with_the_purpose_on_and_sql_agrees(org_a):
    control = factories.customer(org_a, email_opt_in=True)
    restricted = factories.customer(org_a, email_opt_in=True)
    erased = factories.customer(org_a, email_opt_in=True)
    anonymized = factories.customer(org_a, email_opt_in=True)
    not_opted_in = factories.customer(org_a)
    no_profiling = factories.customer(org_a, email_opt_in=True)
    _record(org_a, no_profiling, ConsentPurpose.PROFILING, False)
    with system_context():
        Customer.objects.filter(pk=restricted.pk).update(processing_restricted=True)
        Customer.objects.filter(pk=erased.pk).update(erased_at=timezone.now())
        Customer.objects.filter(pk=anonymized.pk).update(anonymized_at=timezone.now())

    expected = {
        ConsentPurpose.EMAIL_MARKETING: {control.pk, no_profiling.pk},
        ConsentPurpose.PROFILING: {control.pk, not_opted_in.pk},
        ConsentPurpose.SALE: {control.pk, not_opted_in.pk, no_profiling.pk},
    }
    with tenant_context(org_a.pk):
        base = Customer.objects.filter(organization_id=org_a.pk)
        rows = list(base)
        for purpose, ids in expected.items():
            assert set(consenting(base, purpose).values_list("pk", flat=True)) == ids
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT c.id FROM customers c WHERE c.organization_id = %s AND {consent_sql(purpose, 'c')}",
                    [org_a.pk],
                )
                assert {r[0] for r in cursor.fetchall()} == ids
            assert {c.pk for c in rows if may_process(c, purpose)} == ids


def test_an_unknown_purpose_or_alias_fails_loudly():
    with pytest.raises(ValueError):
        consent_sql("everything")
    with pytest.raises(ValueError):
        consent_sql(ConsentPurpose.SALE, "c; DROP TABLE customers")


# --- The writers -------------------------------------------------------------------------------------------


def test_a_staff_edit_of_the_opt_in_is_recorded_with_who_did_it(org_a, admin_a):
    customer = factories.customer(org_a)
    with tenant_context(org_a.pk, user=admin_a):
        customer_update(customer=customer, actor=admin_a, email_opt_in=True)
        customer_update(customer=customer, actor=admin_a, job_title="CTO")  # no consent change: no record
    name = admin_a.get_full_name() or admin_a.email
    assert _records(org_a, customer) == [("email_marketing", True, "staff", f"edited by {name}")]
    with tenant_context(org_a.pk):
        assert ConsentRecord.objects.get(customer_id=customer.pk).recorded_by_id == admin_a.pk


def _import(org, tmp_path: Path, rows: list[str], **options):
    path = tmp_path / "people.csv"
    path.write_text("first_name,last_name,email,email_opt_in\r\n" + "".join(f"{r}\r\n" for r in rows))
    with tenant_context(org.pk):
        return importing.run_import(
            path=path, kind="customers", organization=org, file_label="people.csv", **options
        )


def test_an_import_records_consent_for_the_opt_ins_it_changes_with_file_and_line(org_a, tmp_path):
    kept = factories.customer(org_a, email="kept@x.example", email_opt_in=True)
    factories.customer(org_a, email="switched@x.example", email_opt_in=True)
    restricted = factories.customer(org_a, email="restricted@x.example", email_opt_in=True)
    with system_context():
        Customer.objects.filter(pk=restricted.pk).update(processing_restricted=True)

    outcome = _import(
        org_a,
        tmp_path,
        [
            "New,Yes,new-yes@x.example,yes",
            "New,No,new-no@x.example,no",
            "New,Blank,new-blank@x.example,",
            "Kept,Same,kept@x.example,true",
            "Switched,Off,switched@x.example,false",
            "Restricted,Off,restricted@x.example,false",
        ],
        policy="update",
    )

    assert outcome.error_count == 0, outcome.errors
    with tenant_context(org_a.pk):
        opt_in = dict(Customer.objects.values_list("email", "email_opt_in"))
        records = sorted(
            ConsentRecord.objects.filter(source="import").values_list("customer__email", "granted", "proof")
        )
    assert opt_in["new-yes@x.example"] is True
    assert opt_in["new-no@x.example"] is False and opt_in["new-blank@x.example"] is False
    assert opt_in["kept@x.example"] is True
    assert opt_in["switched@x.example"] is False
    assert opt_in["restricted@x.example"] is True  # restricted customers are left alone
    assert records == [
        ("new-yes@x.example", True, "import people.csv, line 2"),
        ("switched@x.example", False, "import people.csv, line 6"),
    ]
    assert _records(org_a, kept)[-1][2] == "staff"  # only its creation


def test_a_lead_form_records_the_ticked_consent_with_wording_submission_and_ip(org_a):
    lead_form = mf.lead_form(org_a, consent_text="Yes, email me offers.")
    with tenant_context(org_a.pk):
        submission = form_submission_create(
            lead_form=lead_form, values={"email": "ada@x.example"}, consent=True, ip_address="203.0.113.9"
        )
        form_submission_create(lead_form=lead_form, values={"email": "bob@x.example"}, consent=False)
        record = ConsentRecord.objects.get()
        bob = Customer.objects.get(email="bob@x.example")
        ada = Customer.objects.get(pk=submission.customer_id)
    assert (record.customer_id, record.purpose, record.granted, record.source) == (
        submission.customer_id,
        "email_marketing",
        True,
        "form",
    )
    assert record.proof == f"form “{lead_form.name}”, submission {submission.pk}: “Yes, email me offers.”"
    assert record.ip_address == "203.0.113.9"
    assert ada.email_opt_in is True
    assert bob.email_opt_in is False


def test_unsubscribe_and_complaint_withdraw_email_consent_once_with_the_campaign_as_proof(org_a):
    campaign = mf.campaign(org_a, name="Spring sale", template=mf.email_template(org_a))
    customer = factories.customer(org_a, email_opt_in=True)
    send = mf.sent_email(org_a, campaign=campaign, customer=customer)
    with tenant_context(org_a.pk):
        events.record_unsubscribe(send=send)
        events.record_unsubscribe(send=send)  # a second click adds nothing
        events.record_complaint(send=send)  # first complaint: a statement, even though already withdrawn
        events.record_complaint(send=send)
    assert _records(org_a, customer)[1:] == [
        ("email_marketing", False, "unsubscribe", "unsubscribe link in “Spring sale”"),
        ("email_marketing", False, "unsubscribe", "spam complaint about “Spring sale”"),
    ]
    assert _row(org_a, customer).email_opt_in is False


def test_merging_moves_the_consent_history_to_the_customer_that_stays(org_a, admin_a):
    from customers.services.merging import customers_merge

    target = factories.customer(org_a)
    source = factories.customer(org_a)
    _record(org_a, source, ConsentPurpose.SHARING, False, at=T0)
    with tenant_context(org_a.pk, user=admin_a):
        customers_merge(actor=admin_a, source=source, target=target)
    assert _records(org_a, target) == [("sharing", False, "staff", "p")]
    assert _row(org_a, target).sharing_allowed is False


# --- The panel and its form --------------------------------------------------------------------------------


def test_panel_shows_state_banners_and_history_latest_first_in_a_fixed_number_of_queries(org_a, admin_a):
    customer = factories.customer(org_a)
    _record(org_a, customer, ConsentPurpose.EMAIL_MARKETING, True, at=T0, source=ConsentSource.FORM)
    _record(
        org_a, customer, ConsentPurpose.EMAIL_MARKETING, False, at=T0 + HOUR, source=ConsentSource.UNSUBSCRIBE
    )
    with system_context():
        Customer.objects.filter(pk=customer.pk).update(
            processing_restricted=True, restriction_reason="Accuracy contested", restricted_at=T0
        )
    with tenant_context(org_a.pk):
        customer = Customer.objects.get(pk=customer.pk)
        with CaptureQueriesContext(connection) as few:
            data = consent_panel_for_customer(customer=customer, actor=admin_a)
    for n in range(6):
        _record(org_a, customer, ConsentPurpose.SALE, n % 2 == 0, at=T0 + (2 + n) * HOUR)
    with tenant_context(org_a.pk):
        with CaptureQueriesContext(connection) as many:
            consent_panel_for_customer(customer=customer, actor=admin_a)
    assert len(many) == len(few) <= 1

    assert [h["source"] for h in data["history"]] == ["unsubscribe", "form"]
    email = next(p for p in data["purposes"] if p["purpose"] == "email_marketing")
    assert (email["granted"], email["source"], email["since"]) == (
        False,
        "Unsubscribe link",
        (T0 + HOUR).isoformat(),
    )
    sale = next(p for p in data["purposes"] if p["purpose"] == "sale")
    assert (sale["granted"], sale["default"]) == (True, True)
    assert data["restricted"] and data["restriction_reason"] == "Accuracy contested"
    assert data["objecting"] == ["Email marketing"]


def test_the_profile_page_shows_the_panel_and_htmx_records_a_statement(org_a, admin_a, login):
    customer = factories.customer(org_a, first_name="Ada")
    client = login(admin_a)
    page = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'data-testid="consent-panel"' in page and 'data-testid="consent-form"' in page

    url = reverse("compliance:consent_record_add", args=[customer.pk])
    response = client.post(
        url,
        {"purpose": "profiling", "granted": "0", "source": "staff", "proof": "<b>phone call</b>"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200 and "Consent statement recorded." in body
    assert "&lt;b&gt;phone call&lt;/b&gt;" in body and "<b>phone call</b>" not in body
    assert _row(org_a, customer).profiling_allowed is False
    assert _records(org_a, customer) == [("profiling", False, "staff", "<b>phone call</b>")]

    missing = client.post(
        url, {"purpose": "profiling", "granted": "1", "source": "staff"}, HTTP_HX_REQUEST="true"
    )
    assert missing.status_code == 200 and "invalid-feedback" in missing.content.decode()
    assert len(_records(org_a, customer)) == 1

    plain = client.post(url, {"purpose": "sale", "granted": "0", "source": "staff", "proof": "letter"})
    assert plain.status_code == 302 and plain.url == reverse("customers:detail", args=[customer.pk])
    assert _row(org_a, customer).sale_allowed is False


def test_another_organizations_customer_answers_404(org_a, org_b, admin_a, login):
    foreign = factories.customer(org_b)
    client = login(admin_a)
    url = reverse("compliance:consent_record_add", args=[foreign.pk])
    response = client.post(url, {"purpose": "sale", "granted": "0", "source": "staff", "proof": "x"})
    assert response.status_code == 404
    assert _records(org_b, foreign) == []
