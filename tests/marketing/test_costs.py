"""Campaign costs: the actual cost is always the exact sum of the entries (added and removed one after the
other, twice, or at the same moment on several connections), the htmx add / remove panel, validation,
roles and other organizations' entries."""

from __future__ import annotations

import threading
import time
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import reverse

from crm.tenancy import system_context, tenant_context
from marketing.models import Campaign, CostEntry
from marketing.services.costs import cost_add, cost_delete
from tests import factories
from tests.marketing import factories as mf
from tests.owner_db import owner_connection

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def marketer(org_a):
    return factories.user(org_a, role="marketing_manager")


def _stored(campaign) -> tuple[D, D]:
    """(actual_cost as stored, sum of the entries counted independently)."""
    with tenant_context(campaign.organization_id):
        stored = Campaign.objects.get(pk=campaign.pk).actual_cost
        amounts = list(CostEntry.objects.filter(campaign_id=campaign.pk).values_list("amount", flat=True))
    return stored, sum(amounts, D("0"))


def test_adds_and_deletes_keep_the_sum_exact(org_a, marketer):
    campaign = mf.campaign(org_a, name="Costs", budget=D("1000"))
    other = mf.campaign(org_a, name="Other")
    with tenant_context(org_a.pk):
        a = cost_add(
            campaign=campaign, actor=marketer, amount=D("199.99"), description="Banner", category="ads"
        )
        b = cost_add(campaign=campaign, actor=marketer, amount=D("0.01"), description="Coffee")
        cost_add(
            campaign=campaign, actor=marketer, amount=D("300.50"), description="Booth", category="events"
        )
        cost_add(campaign=other, actor=marketer, amount=D("77.00"), description="Not ours")
        assert campaign.actual_cost == D("500.50")
        assert _stored(campaign) == (D("500.50"), D("500.50"))
        assert cost_delete(entry=a, actor=marketer) == D("300.51")
        # Deleting the same entry again (a double click) changes nothing.
        assert cost_delete(entry=a, actor=marketer) == D("300.51")
        cost_delete(entry=b, actor=marketer)
    assert _stored(campaign) == (D("300.50"), D("300.50"))
    assert _stored(other) == (D("77.00"), D("77.00"))


def test_a_stale_actual_cost_is_corrected_by_the_next_write(org_a, marketer):
    campaign = mf.campaign(org_a, name="Drifted", actual_cost=D("999.00"))
    with tenant_context(org_a.pk):
        cost_add(campaign=campaign, actor=marketer, amount=D("10"), description="Flyers")
    assert _stored(campaign) == (D("10.00"), D("10.00"))


def test_cost_validation_and_roles(org_a, marketer):
    campaign = mf.campaign(org_a, name="Rules")
    rep = factories.user(org_a, role="sales_rep")
    with tenant_context(org_a.pk):
        with pytest.raises(ValidationError) as error:
            cost_add(campaign=campaign, actor=marketer, amount=D("0"), description=" ")
        assert set(error.value.error_dict) == {"amount", "description"}
        with pytest.raises(PermissionDenied):
            cost_add(campaign=campaign, actor=rep, amount=D("5"), description="Sneaky")
    assert _stored(campaign) == (D("0"), D("0"))


@pytest.fixture
def committed_audit_rows_removed():
    """These tests commit: the audit rows the triggers committed are removed by the owner afterwards."""
    yield
    with owner_connection() as conn:
        conn.execute("TRUNCATE crm_audit_log")


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # see the other sessions as they are now
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_concurrent_adds_and_deletes_keep_the_sum_exact(transactional_db, committed_audit_rows_removed):
    org = factories.organization(slug="race-costs", name="Race Costs")
    marketer = factories.user(org, role="marketing_manager", email="mm@race-costs.test")
    campaign = mf.campaign(org, name="Raced")
    with tenant_context(org.pk, user=marketer):
        doomed = cost_add(campaign=campaign, actor=marketer, amount=D("1000.00"), description="To remove")
    amounts = [D("10.10"), D("20.20"), D("30.30"), D("40.40")]
    errors: list[str] = []

    def add(amount: D) -> None:
        try:
            with tenant_context(org.pk, user=marketer):
                cost_add(campaign=campaign, actor=marketer, amount=amount, description=f"Cost {amount}")
        except Exception as error:  # reported by the assertion below
            errors.append(repr(error))
        finally:
            connection.close()

    def remove() -> None:
        try:
            with tenant_context(org.pk, user=marketer):
                cost_delete(entry=doomed, actor=marketer)
        except Exception as error:
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=add, args=(a,)) for a in amounts]
    threads += [threading.Thread(target=remove), threading.Thread(target=remove)]
    # Hold the campaign's row and let go only once every writer waits for it: they all run at once.
    with tenant_context(org.pk):
        Campaign.objects.select_for_update().get(pk=campaign.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 15
        while _lock_waiters() < len(threads):
            assert time.monotonic() < deadline, f"every writer should wait for the campaign: {errors}"
            time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    with system_context():
        stored = Campaign.objects.get(pk=campaign.pk).actual_cost
        entries = sorted(CostEntry.objects.filter(campaign_id=campaign.pk).values_list("amount", flat=True))
    assert entries == amounts
    assert stored == sum(amounts) == D("101.00")


# --- Views ----------------------------------------------------------------------------------------------------


def test_htmx_add_and_remove_redraw_the_costs_panel(client, login, org_a, marketer):
    campaign = mf.campaign(org_a, name="Panel", budget=D("100.00"), currency="EUR")
    login(marketer)
    url = reverse("marketing:campaign_cost_add", args=[campaign.pk])
    data = {"incurred_on": "2026-03-02", "category": "print", "description": "Posters", "amount": "80.00"}
    response = client.post(url, data, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and 'id="costs"' in html and "Posters" in html
    assert 'data-testid="actual-cost">80.00' in html
    assert "80.0 % of the budget spent" in html
    # The page's "Actual cost" fact is redrawn out of band.
    assert 'id="fact-actual-cost" hx-swap-oob="true"' in html
    response = client.post(url, {**data, "description": "Stickers", "amount": "40.00"}, **HTMX)
    html = response.content.decode()
    assert 'data-testid="actual-cost">120.00' in html and "Over budget" in html
    assert 'data-testid="remaining">20.00' in html
    with tenant_context(org_a.pk):
        posters = CostEntry.objects.get(description="Posters")
    response = client.post(reverse("marketing:campaign_cost_delete", args=[campaign.pk, posters.pk]), **HTMX)
    html = response.content.decode()
    assert "Posters" not in html and 'data-testid="actual-cost">40.00' in html
    assert _stored(campaign) == (D("40.00"), D("40.00"))


def test_invalid_cost_shows_the_errors_in_the_panel(client, login, org_a, marketer):
    campaign = mf.campaign(org_a, name="Errors")
    login(marketer)
    url = reverse("marketing:campaign_cost_add", args=[campaign.pk])
    response = client.post(
        url, {"incurred_on": "", "category": "ads", "description": "", "amount": "-3"}, **HTMX
    )
    form = response.context["cost_form"]
    assert response.status_code == 200 and set(form.errors) == {"incurred_on", "description", "amount"}
    assert 'aria-invalid="true"' in response.content.decode()
    # Without htmx: back to the campaign page, with the errors as a message.
    response = client.post(url, {"category": "ads"}, follow=True)
    assert response.redirect_chain[-1][0].endswith("#costs")
    assert _stored(campaign) == (D("0"), D("0"))


def test_cost_entries_of_other_campaigns_or_organizations_are_404(client, login, org_a, org_b, marketer):
    mine = mf.campaign(org_a, name="Mine")
    sibling = mf.campaign(org_a, name="Sibling")
    theirs = mf.campaign(org_b, name="Theirs")
    with system_context():
        sibling_entry = CostEntry.objects.create(
            organization=org_a, campaign=sibling, description="S", amount=5
        )
        their_entry = CostEntry.objects.create(organization=org_b, campaign=theirs, description="T", amount=7)
    login(marketer)
    for campaign, entry in ((mine, sibling_entry), (mine, their_entry), (theirs, their_entry)):
        url = reverse("marketing:campaign_cost_delete", args=[campaign.pk, entry.pk])
        assert client.post(url).status_code == 404
    with system_context():
        assert CostEntry.objects.filter(pk__in=[sibling_entry.pk, their_entry.pk]).count() == 2


def test_sales_reps_see_costs_but_cannot_change_them(client, login, org_a):
    campaign = mf.campaign(org_a, name="Read only")
    with system_context():
        entry = CostEntry.objects.create(organization=org_a, campaign=campaign, description="Seen", amount=5)
    rep = factories.user(org_a, role="sales_rep")
    login(rep)
    html = client.get(reverse("marketing:campaign_detail", args=[campaign.pk])).content.decode()
    assert "Seen" in html and 'data-testid="cost-form"' not in html
    add = reverse("marketing:campaign_cost_add", args=[campaign.pk])
    assert (
        client.post(add, {"description": "x", "amount": "1", "incurred_on": "2026-01-01"}).status_code == 403
    )
    delete = reverse("marketing:campaign_cost_delete", args=[campaign.pk, entry.pk])
    assert client.post(delete).status_code == 403
