"""Two "accept" clicks at the same moment, on two connections: one order, one acceptance, the deal won once."""

from __future__ import annotations

import threading
import time
from decimal import Decimal as D

import pytest
from django.db import connection

from crm.tenancy import system_context, tenant_context
from sales.models import Opportunity, OpportunityChange, Order, Quote, QuoteEvent
from sales.services import quotes as services
from tests import factories
from tests.owner_db import owner_connection


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


def test_two_accepts_at_once_make_one_order(transactional_db, committed_audit_rows_removed):
    org = factories.organization(slug="race-quotes", name="Race Quotes")
    rep = factories.user(org, role="sales_rep", email="rep@race-quotes.test")
    deal = factories.opportunity(org, assigned_to=rep)
    with tenant_context(org.pk, user=rep):
        quote = services.quote_create(opportunity=deal, actor=rep)
        services.quote_item_add(quote=quote, actor=rep, description="Service", unit_price=D("500.00"))
        services.quote_submit(quote=quote, actor=rep)
        services.quote_mark_sent(quote=quote, actor=rep)
    results: dict[int, object] = {}

    def accept(n: int) -> None:
        try:
            with tenant_context(org.pk, user=rep):
                results[n] = services.quote_accept(quote=quote, actor=rep).pk
        except Exception as error:  # reported by the assertion below
            results[n] = repr(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(n,)) for n in (1, 2)]
    # Hold the quote's row and let go only once both accepts wait for it: they run at the same moment.
    with tenant_context(org.pk):
        Quote.objects.select_for_update().get(pk=quote.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _lock_waiters() < 2:
            assert time.monotonic() < deadline, f"both accepts should wait for the quote: {results}"
            time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=20)
    with system_context():
        orders = list(Order.objects.filter(organization=org).values_list("pk", flat=True))
        accepted = QuoteEvent.objects.filter(quote_id=quote.pk, action="accepted").count()
        won = OpportunityChange.objects.filter(
            opportunity_id=deal.pk, field="status", new_value="won"
        ).count()
        status = Opportunity.objects.get(pk=deal.pk).status
    assert len(orders) == 1 and results == {1: orders[0], 2: orders[0]}
    assert (accepted, won, status) == (1, 1, "won")
