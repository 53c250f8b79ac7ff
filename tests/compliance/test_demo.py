"""The privacy demo data (compliance/demo.py): consent histories, restricted customers and GDPR / CCPA
requests in every state, made through the services, idempotently."""

from __future__ import annotations

from django.core import mail
from django.utils import timezone

from compliance.demo import RESTRICTIONS, seed_privacy
from compliance.models import CcpaRequest, ConsentRecord, GdprRequest, RequestStatus
from crm.models import User
from crm.tenancy import tenant_context
from customers.demo import seed_customers
from customers.models import Customer
from tests import factories


def test_demo_privacy_covers_every_state_consent_histories_and_restrictions(
    db, django_capture_on_commit_callbacks
):
    org = factories.organization(slug="demo-privacy", name="Demo Privacy")
    factories.team(org)
    with tenant_context(org.pk):
        users = list(User.objects.filter(organization=org))
        seed_customers(organization=org, users=users, count=70)
        with django_capture_on_commit_callbacks(execute=False):
            made = seed_privacy(organization=org)
        assert made == GdprRequest.objects.count() + CcpaRequest.objects.count() > 0
        assert seed_privacy(organization=org) == 0  # idempotent

        gdpr, ccpa = list(GdprRequest.objects.all()), list(CcpaRequest.objects.all())
        statuses = {r.status for r in gdpr} | {r.status for r in ccpa}
        assert statuses == set(RequestStatus.values)
        assert {r.status for r in ccpa} >= {RequestStatus.NOT_APPLICABLE, RequestStatus.COMPLETED}
        assert any(r.is_overdue for r in gdpr + ccpa)
        assert any(r.extended_at and r.extension_reason for r in gdpr)
        access = [r for r in gdpr if r.request_type == "access" and r.status == RequestStatus.COMPLETED]
        assert access and access[0].result.get("export_file")
        erased = [r for r in gdpr if r.request_type == "erase" and r.status == RequestStatus.COMPLETED]
        assert erased and Customer.objects.get(pk=erased[0].customer_id).erased_at is not None
        assert any(r.rejection_reason for r in gdpr if r.status == RequestStatus.REJECTED)

        restricted = Customer.objects.filter(processing_restricted=True)
        assert restricted.count() == 3
        assert all(any(reason in c.restriction_reason for reason in RESTRICTIONS) for c in restricted)

        records = list(ConsentRecord.objects.all())
        demo_customers = {r.customer_id for r in records if r.source in ("form", "import")}
        assert len(demo_customers) == 40
        assert any(r.source == "unsubscribe" and not r.granted for r in records)
        assert any(r.source == "request" and r.purpose == "sale" and not r.granted for r in records)
        # The mirrored columns follow each customer's latest statement.
        latest = {}
        for r in sorted(records, key=lambda r: (r.recorded_at, r.id)):
            latest[(r.customer_id, r.purpose)] = r.granted
        columns = {
            "email_marketing": "email_opt_in",
            "profiling": "profiling_allowed",
            "sale": "sale_allowed",
        }
        rows = {c.pk: c for c in Customer.objects.filter(pk__in={k[0] for k in latest})}
        for (customer_id, purpose), granted in latest.items():
            if purpose in columns and rows[customer_id].erased_at is None:
                assert getattr(rows[customer_id], columns[purpose]) is granted
        assert all(r.recorded_at <= timezone.now() for r in records)
    assert mail.outbox == [] or all(m.to for m in mail.outbox)
