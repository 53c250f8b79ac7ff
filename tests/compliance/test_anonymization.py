"""Nightly anonymization of stale customers (compliance/anonymization.py): the selection, dry runs, batches
that commit one by one (a crash leaves no customer half anonymized), resuming and idempotence."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.utils import timezone

from compliance import anonymization
from compliance.models import AnonymizationRun, PrivacySettings
from compliance.registry import Erase, personal_data
from crm.models import AuditLog
from crm.tenancy import system_context, tenant_context
from customers.models import Customer, Interaction
from tests import factories
from tests.owner_db import owner_connection

RETENTION_DAYS = 90
OLD = datetime.timedelta(days=200)
RECENT = datetime.timedelta(days=10)


def _settings(org, **fields):
    with tenant_context(org.pk):
        return PrivacySettings.objects.create(
            organization=org, **{"customer_retention_days": RETENTION_DAYS, **fields}
        )


def _customer(org, *, status="inactive", last_contact=None, created_ago=OLD, **fields):
    """A customer with every profile field filled in, its contact dates set as given (ago from now)."""
    now = timezone.now()
    n = next(factories._sequence)
    profile = {
        "first_name": f"Stella{n}",
        "last_name": f"Stale{n}",
        "email": f"stella{n}@{org.slug}.example",
        "phone": f"+1 555 010 {n:04d}",
        "job_title": "Buyer",
        "company_name": "Old Co",
        "street": "1 Past Lane",
        "city": "Oldtown",
        "postal_code": "12345",
        "tags": ["legacy"],
    }
    customer = factories.customer(org, **{**profile, **fields})
    with system_context():
        Customer.objects.filter(pk=customer.pk).update(
            status=status,
            created_at=now - created_ago,
            last_contact_date=None if last_contact is None else now - last_contact,
        )
        customer.refresh_from_db()
    return customer


def _interaction(customer, ago, *, keep_last_contact=False):
    previous = customer.last_contact_date
    factories.interaction(
        customer, interaction_date=timezone.now() - ago, notes=f"Notes of {customer.last_name}"
    )
    if keep_last_contact:  # a back-dated import that did not move the customer's last contact date
        with system_context():
            Customer.objects.filter(pk=customer.pk).update(last_contact_date=previous)


def _personal_customer_fields() -> list[str]:
    declaration = next(d for d in personal_data() if d.model is Customer)
    return [f.name for f in declaration.fields if f.erase != Erase.KEEP and hasattr(Customer, f.name)]


def _snapshot(org) -> dict:
    with tenant_context(org.pk):
        return {c["id"]: c for c in Customer.objects.filter(organization_id=org.pk).values()}


def test_the_selection_is_exactly_the_inactive_customers_without_contact_since_the_cutoff(org_a, org_b):
    _settings(org_a)
    _settings(org_b)
    now = timezone.now()
    made = {
        "inactive, old contact": _customer(org_a, last_contact=OLD),
        "active, old contact": _customer(org_a, status="active", last_contact=OLD),
        "inactive, recent contact": _customer(org_a, last_contact=RECENT),
        "inactive, never contacted, created long ago": _customer(org_a, last_contact=None, created_ago=OLD),
        "inactive, never contacted, created recently": _customer(
            org_a, last_contact=None, created_ago=RECENT
        ),
        "inactive, old contact, recent interaction": _customer(org_a, last_contact=OLD),
        "inactive, old contact, old interaction": _customer(org_a, last_contact=OLD),
        "already anonymized": _customer(org_a, last_contact=OLD),
        "already erased": _customer(org_a, last_contact=OLD),
    }
    other_org = _customer(org_b, last_contact=OLD)
    _interaction(made["inactive, old contact, recent interaction"], RECENT, keep_last_contact=True)
    _interaction(made["inactive, old contact, old interaction"], OLD + datetime.timedelta(days=5))
    with system_context():
        Customer.objects.filter(pk=made["already anonymized"].pk).update(anonymized_at=now)
        Customer.objects.filter(pk=made["already erased"].pk).update(erased_at=now)

    # Independently: read every customer and interaction back and apply the rule by hand.
    cutoff = now - datetime.timedelta(days=RETENTION_DAYS)
    with tenant_context(org_a.pk):
        customers = list(Customer.objects.filter(organization_id=org_a.pk))
        latest = {}
        for interaction in Interaction.objects.filter(organization_id=org_a.pk):
            latest[interaction.customer_id] = max(
                latest.get(interaction.customer_id, interaction.interaction_date),
                interaction.interaction_date,
            )
    expected = {
        c.pk
        for c in customers
        if c.status == "inactive"
        and c.anonymized_at is None
        and c.erased_at is None
        and (c.last_contact_date or c.created_at) < cutoff
        and latest.get(c.pk, cutoff - datetime.timedelta(days=1)) < cutoff
    }
    assert expected == {
        made["inactive, old contact"].pk,
        made["inactive, never contacted, created long ago"].pk,
        made["inactive, old contact, old interaction"].pk,
    }

    with tenant_context(org_a.pk):
        preview = anonymization.preview_stale(organization_id=org_a.pk, now=now)
        selected = set(
            anonymization.stale_customers(organization_id=org_a.pk, cutoff=preview.cutoff).values_list(
                "pk", flat=True
            )
        )
    assert selected == expected
    assert preview.count == len(expected)
    assert preview.cutoff == cutoff
    assert sorted(preview.sample_numbers) == sorted(c.number for c in customers if c.pk in expected)
    assert other_org.pk not in selected


def test_a_dry_run_changes_no_customer_and_reports_the_count_and_numbers(org_a):
    _settings(org_a)
    stale = [_customer(org_a, last_contact=OLD) for _ in range(3)]
    _customer(org_a, last_contact=RECENT)
    before = _snapshot(org_a)

    result = anonymization.anonymize_stale(organization_id=org_a.pk, dry_run=True)

    assert _snapshot(org_a) == before
    assert result.stale_found == 3 and result.anonymized == 0
    assert sorted(result.sample_numbers) == sorted(c.number for c in stale)
    with tenant_context(org_a.pk):
        run = AnonymizationRun.objects.get()
    assert run.dry_run and run.status == "completed" and run.stale_found == 3 and run.anonymized_count == 0


def test_a_run_anonymizes_the_stale_customers_in_batches_and_a_second_run_changes_nothing(org_a):
    _settings(org_a)
    stale = [_customer(org_a, last_contact=OLD) for _ in range(5)]
    kept = _customer(org_a, last_contact=RECENT)
    kept_before = _snapshot(org_a)[kept.pk]

    result = anonymization.anonymize_stale(organization_id=org_a.pk, batch_size=2)

    assert (result.stale_found, result.anonymized, result.batches) == (5, 5, 3)
    with tenant_context(org_a.pk):
        rows = {c.pk: c for c in Customer.objects.filter(organization_id=org_a.pk)}
        run = AnonymizationRun.objects.get()
        trail = list(
            AuditLog.objects.filter(table_name="anonymization_runs", record_id=str(run.pk)).order_by(
                "occurred_at"
            )
        )
    for customer in stale:
        row = rows[customer.pk]
        assert row.anonymized_at is not None and row.erased_at is None
        assert (
            customer.last_name not in row.first_name + row.last_name and row.phone == "" and row.street == ""
        )
    assert _snapshot(org_a)[kept.pk] == kept_before
    assert (run.status, run.anonymized_count, run.batches, run.stale_found) == ("completed", 5, 3, 5)
    assert run.finished_at is not None
    # The trail holds the run: its creation, then its counters as each batch committed, then its end.
    assert trail[0].operation == "INSERT" and trail[-1].new_values["status"] == "completed"
    assert max(entry.new_values.get("anonymized_count", 0) for entry in trail) == 5

    before = _snapshot(org_a)
    again = anonymization.anonymize_stale(organization_id=org_a.pk, batch_size=2)
    assert (again.stale_found, again.anonymized, again.batches) == (0, 0, 0)
    assert _snapshot(org_a) == before


@pytest.fixture
def committed_rows_removed():
    """The crash test commits: the audit rows its triggers committed go too (flush does the rest)."""
    yield
    with owner_connection() as conn:
        conn.execute("TRUNCATE crm_audit_log")


def test_a_run_killed_halfway_leaves_no_customer_half_anonymized_and_a_restart_finishes(
    transactional_db, committed_rows_removed, monkeypatch
):
    org = factories.organization(slug="crash", name="Crash Co")
    _settings(org)
    stale = [_customer(org, last_contact=OLD) for _ in range(4)]
    for customer in stale:
        _interaction(customer, OLD + datetime.timedelta(days=3))
    before = _snapshot(org)
    real_batch = anonymization.anonymize_batch
    calls = []

    def dies_in_second_batch(**kwargs):
        calls.append(kwargs["customer_ids"])
        done = real_batch(**kwargs)
        if len(calls) == 2:  # the second batch's work is done but its transaction never commits
            raise RuntimeError("worker killed")
        return done

    monkeypatch.setattr(anonymization, "anonymize_batch", dies_in_second_batch)
    with pytest.raises(RuntimeError, match="worker killed"):
        anonymization.anonymize_stale(organization_id=org.pk, batch_size=2)

    first, second = set(calls[0]), set(calls[1])
    assert first | second == {c.pk for c in stale}
    fields = _personal_customer_fields()
    after = _snapshot(org)
    with tenant_context(org.pk):
        notes = dict(Interaction.objects.filter(organization_id=org.pk).values_list("customer_id", "notes"))
        run = AnonymizationRun.objects.get()
    for pk, original in before.items():
        filled = [name for name in fields if original[name] not in ("", None, [])]
        changed = [name for name in filled if after[pk][name] != original[name]]
        if pk in first:
            assert changed == filled and after[pk]["anonymized_at"] is not None
            assert notes[pk] != original_notes(before, pk)
        else:
            assert changed == [] and after[pk]["anonymized_at"] is None
            assert after[pk] == original
            assert notes[pk] == original_notes(before, pk)
    assert (run.status, run.anonymized_count, run.batches) == ("failed", 2, 1)
    assert "worker killed" in run.error

    monkeypatch.setattr(anonymization, "anonymize_batch", real_batch)
    restart = anonymization.anonymize_stale(organization_id=org.pk, batch_size=2)
    assert (restart.stale_found, restart.anonymized) == (2, 2)
    final = _snapshot(org)
    assert all(final[c.pk]["anonymized_at"] is not None for c in stale)


def original_notes(before: dict, pk) -> str:
    return f"Notes of {before[pk]['last_name']}"


def test_only_privacy_admins_may_run_it(org_a):
    rep = factories.user(org_a, role="sales_rep")
    with pytest.raises(PermissionDenied):
        anonymization.anonymize_stale(organization_id=org_a.pk, actor=rep, dry_run=True)


def test_the_nightly_run_covers_every_organization_but_those_that_switched_it_off(org_a, org_b):
    _settings(org_b, anonymization_enabled=False)
    org_c = factories.organization(slug="org-c", name="Org C")
    assert set(anonymization.organizations_to_anonymize()) >= {org_a.pk, org_c.pk}
    assert org_b.pk not in anonymization.organizations_to_anonymize()


def test_the_command_dry_run_prints_the_count_and_sample_then_the_real_run_anonymizes(org_a):
    _settings(org_a)
    stale = [_customer(org_a, last_contact=OLD) for _ in range(2)]
    out = io.StringIO()
    call_command("anonymize_stale", "--dry-run", "--org", org_a.slug, stdout=out)
    text = out.getvalue()
    assert "2 customer(s)" in text and "would be anonymized" in text
    assert all(str(c.number) in text for c in stale)
    with tenant_context(org_a.pk):
        assert not Customer.objects.filter(anonymized_at__isnull=False).exists()

    out = io.StringIO()
    call_command("anonymize_stale", "--org", org_a.slug, "--batch-size", "1", stdout=out)
    assert "2 customer(s) without contact" in out.getvalue() and "in 2 batch(es)" in out.getvalue()
    with tenant_context(org_a.pk):
        assert Customer.objects.filter(anonymized_at__isnull=False).count() == 2


def test_the_task_anonymizes_one_organization(org_a):
    from compliance.tasks.maintenance import anonymize_stale_customers

    _settings(org_a)
    _customer(org_a, last_contact=OLD)
    assert anonymize_stale_customers(str(org_a.pk)) == 1
    assert anonymize_stale_customers(str(org_a.pk)) == 0
