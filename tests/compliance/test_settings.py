"""The privacy & retention settings page (/privacy/settings/): edit, errors, what it shows, who may open it."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.models import AnonymizationRun, PrivacySettings
from crm.models import AuditLog
from crm.tenancy import system_context, tenant_context
from customers.models import Customer
from tests import factories

URL = "/privacy/settings/"


def _stale_customer(org, days_ago: int, status: str = "inactive"):
    customer = factories.customer(org)
    with system_context():
        Customer.objects.filter(pk=customer.pk).update(
            status=status, last_contact_date=timezone.now() - datetime.timedelta(days=days_ago)
        )
    return customer


def _runs(org, n: int) -> None:
    with tenant_context(org.pk):
        for i in range(n):
            AnonymizationRun.objects.create(
                organization=org,
                retention_days=365,
                cutoff=timezone.now(),
                stale_found=10 + i,
                anonymized_count=i,
                status="completed",
                finished_at=timezone.now(),
            )


def test_the_url_is_the_privacy_settings_page():
    assert reverse("compliance:settings") == URL


def test_the_page_creates_the_defaults_and_shows_the_stale_preview_runs_and_retention(
    client, login, org_a, admin_a, django_assert_max_num_queries
):
    with tenant_context(org_a.pk):
        PrivacySettings.objects.create(organization=org_a, customer_retention_days=100)
    stale = [_stale_customer(org_a, 150) for _ in range(3)]
    _stale_customer(org_a, 50)  # contacted since the cut-off
    _stale_customer(org_a, 150, status="active")
    _runs(org_a, 2)
    login(admin_a)

    with django_assert_max_num_queries(30):
        response = client.get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    # Recomputed by hand: inactive, last contact more than 100 days ago.
    assert response.context["preview"].count == 3
    assert 'data-testid="stale-count">3<' in page
    cutoff = (timezone.now() - datetime.timedelta(days=100)).date()
    assert abs((timezone.localtime(response.context["preview"].cutoff).date() - cutoff).days) <= 1
    assert sorted(response.context["preview"].sample_numbers) == sorted(c.number for c in stale)
    assert page.count('data-testid="run-row"') == 2
    assert "1 / 11" in page and "0 / 10" in page
    assert 'data-testid="privacy-settings-form"' in page
    assert 'href="/privacy/settings/"' in page  # the nav item (settings section)
    # The interaction log's migration made partitions back to 13 months ago, all within the 84 months.
    assert 'data-testid="retention-row"' in page and "within every organization" in page


def test_the_query_count_does_not_grow_with_runs_or_customers(
    client, login, org_a, admin_a, django_assert_max_num_queries
):
    login(admin_a)
    client.get(URL)  # creates the settings row
    with django_assert_max_num_queries(30) as few:
        client.get(URL)
    baseline = len(few.captured_queries)
    _runs(org_a, 8)
    for _ in range(6):
        _stale_customer(org_a, 3000)
    with django_assert_max_num_queries(baseline):
        response = client.get(URL)
    assert response.context["preview"].count == 6


def test_a_first_visit_saves_the_defaults(client, login, org_a, admin_a):
    login(admin_a)
    assert client.get(URL).status_code == 200
    with tenant_context(org_a.pk):
        settings = PrivacySettings.objects.get(organization=org_a)
    assert (settings.customer_retention_days, settings.interaction_retention_months) == (7 * 365, 84)
    assert settings.audit_retention_months == 84 and settings.anonymization_enabled


def test_out_of_range_values_show_errors_beside_the_fields_and_save_nothing(client, login, org_a, admin_a):
    login(admin_a)
    response = client.post(
        URL,
        {"customer_retention_days": "5", "interaction_retention_months": "0", "audit_retention_months": "6"},
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {
        "customer_retention_days",
        "interaction_retention_months",
        "audit_retention_months",
    }
    page = response.content.decode()
    assert "Please correct the highlighted fields." in page
    assert 'id="id_customer_retention_days-error"' in page
    with tenant_context(org_a.pk):
        settings = PrivacySettings.objects.get(organization=org_a)
    assert settings.customer_retention_days == 7 * 365 and settings.audit_retention_months == 84
    # The preview still uses the saved period, not the rejected one.
    assert response.context["preview"].retention_days == 7 * 365


def test_saving_changes_the_settings_and_the_audit_trail_records_it(client, login, org_a, admin_a):
    login(admin_a)
    response = client.post(
        URL,
        {
            "customer_retention_days": "400",
            "interaction_retention_months": "24",
            "audit_retention_months": "36",
        },
    )
    assert response.status_code == 302 and response.url == URL
    with tenant_context(org_a.pk):
        settings = PrivacySettings.objects.get(organization=org_a)
        trail = AuditLog.objects.filter(
            table_name="privacy_settings", record_id=str(settings.pk), operation="UPDATE"
        )
        change = trail.get()
    assert (settings.customer_retention_days, settings.interaction_retention_months) == (400, 24)
    assert settings.audit_retention_months == 36
    assert settings.anonymization_enabled is False  # an unticked checkbox
    assert settings.updated_by_id == admin_a.pk
    assert change.new_values["customer_retention_days"] == 400 and change.user_id == admin_a.pk


@pytest.mark.parametrize("role", ["sales_rep", "sales_manager", "support_agent", "marketing_manager"])
def test_only_admins_may_open_it(client, login, org_a, role):
    login(factories.user(org_a, role=role))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"customer_retention_days": "400"}).status_code == 403


def test_another_organizations_settings_are_untouched(client, login, org_a, org_b, admin_a):
    with tenant_context(org_b.pk):
        PrivacySettings.objects.create(organization=org_b, customer_retention_days=1000)
    login(admin_a)
    client.post(
        URL,
        {
            "customer_retention_days": "400",
            "interaction_retention_months": "24",
            "audit_retention_months": "36",
        },
    )
    with tenant_context(org_b.pk):
        assert PrivacySettings.objects.get(organization=org_b).customer_retention_days == 1000
