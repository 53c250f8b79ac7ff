"""The stage rules of sales/services/opportunities.py and the change history they leave."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from sales.models import ForecastCategory, Opportunity, OpportunityChange
from sales.services.opportunities import opportunity_update
from tests import factories


def test_a_new_deal_takes_probability_and_category_from_its_stage(org_a, as_tenant):
    deal = factories.opportunity(org_a, stage="Proposal")
    assert (deal.status, deal.probability, deal.forecast_category) == ("open", 50, ForecastCategory.BEST_CASE)
    assert deal.pipeline_id == deal.stage.pipeline_id
    assert deal.currency == org_a.currency


def test_moving_records_stage_amount_and_close_date_changes(org_a, as_tenant):
    admin = factories.user(org_a, role="admin")
    deal = factories.opportunity(org_a, stage="Prospecting", amount=Decimal("100"))
    negotiation = factories.stage(org_a, "Negotiation")
    new_date = deal.expected_close_date + datetime.timedelta(days=14)
    with as_tenant(org_a, admin):
        saved = opportunity_update(
            opportunity=deal,
            actor=admin,
            stage=negotiation,
            amount=Decimal("250"),
            expected_close_date=new_date,
        )
        changes = {
            c.field: (c.old_value, c.new_value) for c in OpportunityChange.objects.filter(opportunity=deal)
        }
    assert saved.probability == 75 and saved.forecast_category == ForecastCategory.COMMIT
    assert changes == {
        "stage": (str(factories.stage(org_a, "Prospecting").pk), str(negotiation.pk)),
        "amount": ("100.00", "250.00"),
        "expected_close_date": (deal.expected_close_date.isoformat(), new_date.isoformat()),
        "probability": ("10", "75"),
    }


def test_closing_lost_needs_a_reason_and_reopening_clears_the_close(org_a, as_tenant):
    admin = factories.user(org_a, role="admin")
    deal = factories.opportunity(org_a, stage="Proposal")
    lost = factories.stage(org_a, "Closed lost")
    with as_tenant(org_a, admin):
        with pytest.raises(ValidationError) as error:
            opportunity_update(opportunity=deal, actor=admin, stage=lost)
        assert "lost_reason" in error.value.message_dict
        closed = opportunity_update(opportunity=deal, actor=admin, stage=lost, lost_reason="Budget cut")
        assert (closed.status, closed.lost_reason, closed.probability) == ("lost", "Budget cut", 0)
        assert closed.actual_close_date is not None
        reopened = opportunity_update(opportunity=deal, actor=admin, stage=factories.stage(org_a, "Proposal"))
        assert (reopened.status, reopened.actual_close_date, reopened.lost_reason) == ("open", None, "")
        assert Opportunity.objects.get(pk=deal.pk).status == "open"


def test_an_overridden_probability_survives_open_stage_moves_but_not_closing(org_a, as_tenant):
    admin = factories.user(org_a, role="admin")
    deal = factories.opportunity(org_a, stage="Prospecting", probability=40)
    assert (deal.probability, deal.probability_overridden) == (40, True)
    with as_tenant(org_a, admin):
        moved = opportunity_update(opportunity=deal, actor=admin, stage=factories.stage(org_a, "Proposal"))
        assert (moved.probability, moved.probability_overridden) == (40, True)
        won = opportunity_update(opportunity=deal, actor=admin, stage=factories.stage(org_a, "Closed won"))
        assert (won.status, won.probability, won.probability_overridden) == ("won", 100, False)


def test_the_lead_score_counts_every_opportunity_of_the_customer_open_or_closed(org_a, as_tenant):
    from crm.tenancy import tenant_context
    from customers import scoring
    from customers.models import Customer

    buyer, other = factories.customer(org_a), factories.customer(org_a)
    factories.opportunity(org_a, customer=buyer)
    factories.opportunity(org_a, customer=buyer, stage="Closed lost", lost_reason="Price")
    factories.opportunity(org_a, customer=buyer, stage="Closed won")
    with tenant_context(org_a.pk):
        scoring.score_organization(org_a.pk, customer_ids=[buyer.pk, other.pk])
        counts = {
            c.pk: scoring.explain(c)["factors"]["opportunity_count"]
            for c in Customer.objects.filter(pk__in=[buyer.pk, other.pk])
        }
    assert counts == {buyer.pk: 3, other.pk: 0}
