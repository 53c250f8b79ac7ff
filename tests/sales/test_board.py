"""The pipeline board: column figures recomputed independently, bounded columns, filters, fixed query count,
and the move endpoint (stage rules applied server-side, the touched columns redrawn)."""

from __future__ import annotations

import datetime
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.tenancy import tenant_context
from sales.models import Opportunity, OpportunityChange, SalesSettings
from sales.selectors import opportunities as selectors
from sales.services.opportunities import organization_today
from tests import factories

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def manager_a(org_a):
    return factories.user(org_a, role="sales_manager", first_name="Mona")


@pytest.fixture
def rep_a(org_a):
    return factories.user(org_a, role="sales_rep", first_name="Rita")


def _expected(deals) -> dict:
    """The column figures computed by hand: count, sum of amount, sum of amount * probability / 100 (rounded half-up
    to the cent once, on the sum)."""
    total = sum((d["amount"] for d in deals), Decimal("0"))
    raw = sum((d["amount"] * d["probability"] for d in deals), Decimal("0")) / 100
    return {
        "count": len(deals),
        "total": total.quantize(Decimal("0.01")),
        "weighted": raw.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
    }


def test_board_column_figures_match_an_independent_computation(org_a, org_b, manager_a, as_tenant):
    today = organization_today(org_a)
    hand_made = {
        "Prospecting": [("A", "1000.00", None), ("B", "333.33", None), ("C", "0.05", None)],
        "Qualification": [("D", "333.33", None), ("E", "333.33", 33)],  # E: probability set by hand
        "Proposal": [("F", "12500.50", None)],
        "Negotiation": [],
    }
    made = {}
    for stage_name, rows in hand_made.items():
        for name, amount, probability in rows:
            fields = {"stage": stage_name, "amount": Decimal(amount), "name": name}
            if probability is not None:
                fields["probability"] = probability
            made.setdefault(stage_name, []).append(factories.opportunity(org_a, **fields))
    # Noise the board must leave out: another organization's deal, and a deal of another pipeline.
    factories.opportunity(org_b, stage="Prospecting", amount=Decimal("999999"))
    with as_tenant(org_a, manager_a):
        from sales.services.pipelines import pipeline_create

        other = pipeline_create(organization=org_a, actor=manager_a, name="Renewals")
        other_stage = other.stages.get(name="Prospecting")
    factories.opportunity(org_a, stage=other_stage, amount=Decimal("777"))
    won = factories.opportunity(org_a, stage="Closed won", amount=Decimal("250.00"))

    stage_probability = {"Prospecting": 10, "Qualification": 25, "Proposal": 50, "Negotiation": 75}
    by_hand = {
        stage_name: _expected(
            [
                {"amount": Decimal(amount), "probability": probability or stage_probability[stage_name]}
                for _n, amount, probability in rows
            ]
        )
        for stage_name, rows in hand_made.items()
    }
    by_hand["Closed won"] = {"count": 1, "total": Decimal("250.00"), "weighted": Decimal("250.00")}
    by_hand["Closed lost"] = {"count": 0, "total": Decimal("0.00"), "weighted": Decimal("0.00")}
    # Hand check of one column: 333.33 * 25 % + 333.33 * 33 % = 83.3325 + 109.9989 = 193.3314 -> 193.33
    assert by_hand["Qualification"]["weighted"] == Decimal("193.33")

    with tenant_context(org_a.pk, user=manager_a):
        columns = selectors.board(actor=manager_a, pipeline=factories.pipeline(org_a))
    got = {c.stage.name: {"count": c.count, "total": c.total, "weighted": c.weighted} for c in columns}
    assert got == by_hand
    assert [c.stage.name for c in columns] == [
        "Prospecting",
        "Qualification",
        "Proposal",
        "Negotiation",
        "Closed won",
        "Closed lost",
    ]
    # Cards: largest amount first; the won deal sits in its column.
    prospecting = next(c for c in columns if c.stage.name == "Prospecting")
    assert [c.name for c in prospecting.cards] == ["A", "B", "C"]
    assert [c.pk for c in columns[4].cards] == [won.pk]
    summary = selectors.board_summary(columns)
    assert summary["count"] == 6
    assert summary["total"] == sum(by_hand[s]["total"] for s in stage_probability)
    assert summary["weighted"] == sum(by_hand[s]["weighted"] for s in stage_probability)
    assert today  # the organization's today exists (cards compare close dates with it)


def test_board_page_shows_the_figures_and_flags_overdue_deals(client, login, org_a, manager_a):
    today = organization_today(org_a)
    factories.opportunity(
        org_a,
        stage="Proposal",
        amount=Decimal("1200.00"),
        name="Late deal",
        expected_close_date=today - datetime.timedelta(days=3),
    )
    factories.opportunity(org_a, stage="Proposal", amount=Decimal("800.00"), name="On time")
    login(manager_a)
    response = client.get(reverse("sales:board"))
    assert response.status_code == 200
    html = response.content.decode()
    proposal = next(c for c in response.context["columns"] if c.stage.name == "Proposal")
    assert (proposal.count, proposal.total, proposal.weighted) == (2, Decimal("2000.00"), Decimal("1000.00"))
    column_html = html[html.index(f'id="column-{proposal.stage.pk}"') :]
    column_html = column_html[: column_html.index("</section>")]
    assert re.search(r'data-testid="column-count"[^>]*>2<', column_html)
    assert "2,000.00" in column_html and "1,000.00" in column_html
    assert column_html.count('data-testid="overdue"') == 1
    assert html.index("Late deal") < html.index("On time")  # by amount


def test_board_columns_are_bounded_with_a_link_to_the_rest(client, login, org_a, manager_a, monkeypatch):
    monkeypatch.setattr(selectors, "BOARD_CARDS", 3)
    for amount in range(1, 8):
        factories.opportunity(org_a, stage="Qualification", amount=Decimal(amount * 100))
    login(manager_a)
    response = client.get(reverse("sales:board"))
    column = next(c for c in response.context["columns"] if c.stage.name == "Qualification")
    assert column.count == 7 and len(column.cards) == 3 and column.more == 4
    assert [c.amount for c in column.cards] == [Decimal("700"), Decimal("600"), Decimal("500")]
    html = response.content.decode()
    assert f"{reverse('sales:opportunity_list')}?stage={column.stage.pk}" in html
    assert "+ 4 more" in html


def test_board_query_count_does_not_grow_with_the_number_of_deals(client, login, org_a, rep_a, manager_a):
    factories.opportunity(org_a, stage="Proposal", assigned_to=rep_a)
    login(rep_a)
    client.get(reverse("sales:board"))
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("sales:board")).status_code == 200
    for i in range(25):
        factories.opportunity(
            org_a,
            stage=["Prospecting", "Proposal", "Closed won"][i % 3],
            assigned_to=[rep_a, manager_a][i % 2],
            customer=factories.customer(org_a),
        )
    with CaptureQueriesContext(connection) as many:
        assert client.get(reverse("sales:board"), {"owner": "mine"}).status_code == 200
    assert len(many) == len(few)
    assert len(few) <= 15  # 5 of them the board's own: pipelines, stages, visibility, figures, cards


def test_board_filters_by_owner_and_close_date(client, login, org_a, manager_a, rep_a):
    today = organization_today(org_a)
    mine = factories.opportunity(
        org_a, stage="Proposal", assigned_to=manager_a, expected_close_date=today + datetime.timedelta(days=5)
    )
    theirs = factories.opportunity(
        org_a, stage="Proposal", assigned_to=rep_a, expected_close_date=today + datetime.timedelta(days=40)
    )
    login(manager_a)

    def card_ids(params):
        columns = client.get(reverse("sales:board"), params).context["columns"]
        return {card.pk for column in columns for card in column.cards}

    assert card_ids({}) == {mine.pk, theirs.pk}
    assert card_ids({"owner": "mine"}) == {mine.pk}
    assert card_ids({"owner": str(rep_a.pk)}) == {theirs.pk}
    assert card_ids({"close_to": (today + datetime.timedelta(days=10)).isoformat()}) == {mine.pk}
    assert card_ids({"close_from": (today + datetime.timedelta(days=10)).isoformat()}) == {theirs.pk}


def test_a_rep_in_own_only_mode_sees_only_their_deals_on_the_board(client, login, org_a, rep_a, as_tenant):
    own = factories.opportunity(org_a, stage="Proposal", assigned_to=rep_a, amount=Decimal("10"))
    factories.opportunity(org_a, stage="Proposal", amount=Decimal("90"))
    with as_tenant(org_a):
        SalesSettings.objects.create(organization=org_a, opportunity_visibility="own")
    login(rep_a)
    columns = client.get(reverse("sales:board")).context["columns"]
    proposal = next(c for c in columns if c.stage.name == "Proposal")
    assert [c.pk for c in proposal.cards] == [own.pk]
    assert (proposal.count, proposal.total) == (1, Decimal("10.00"))


# --- Moving ---------------------------------------------------------------------------------------------------


def _move(client, deal, stage, **extra):
    data = {"stage": str(stage.pk), "from": "board", **extra}
    return client.post(reverse("sales:opportunity_move", args=[deal.pk]), data, **HTMX)


def test_moving_a_card_applies_the_stage_and_redraws_both_columns(client, login, org_a, rep_a, as_tenant):
    deal = factories.opportunity(org_a, stage="Prospecting", amount=Decimal("400.00"), assigned_to=rep_a)
    factories.opportunity(org_a, stage="Negotiation", amount=Decimal("100.00"))
    negotiation = factories.stage(org_a, "Negotiation")
    login(rep_a)
    response = _move(client, deal, negotiation)
    assert response.status_code == 200
    html = response.content.decode()
    with as_tenant(org_a):
        moved = Opportunity.objects.get(pk=deal.pk)
        change = OpportunityChange.objects.get(opportunity=deal, field="stage")
    assert (moved.stage_id, moved.probability) == (negotiation.pk, 75)
    assert (change.new_value, change.changed_by_id) == (str(negotiation.pk), rep_a.pk)
    # Only the two columns concerned come back (out of band), with their new figures.
    redrawn = re.findall(r'<section class="board-column[^"]*" id="column-([0-9a-f-]+)"[^>]*hx-swap-oob', html)
    assert set(redrawn) == {str(negotiation.pk), str(factories.stage(org_a, "Prospecting").pk)}
    negotiation_html = html[html.index(f'id="column-{negotiation.pk}"') :]
    negotiation_html = negotiation_html[: negotiation_html.index("</section>")]
    assert re.search(r'data-testid="column-count"[^>]*>2<', negotiation_html)
    assert "500.00" in negotiation_html and "375.00" in negotiation_html  # 400 * 75 % + 100 * 75 %
    assert 'data-testid="move-ok"' in html and 'id="board-summary-inner" hx-swap-oob' in html


def test_moving_to_a_lost_stage_without_a_reason_is_refused_and_the_card_goes_back(
    client, login, org_a, rep_a, as_tenant
):
    deal = factories.opportunity(org_a, stage="Proposal", assigned_to=rep_a)
    lost = factories.stage(org_a, "Closed lost")
    login(rep_a)
    response = _move(client, deal, lost)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="move-error"' in html and "Say why the deal was lost." in html
    with as_tenant(org_a):
        assert Opportunity.objects.get(pk=deal.pk).status == "open"
    # The card is drawn back in its own column.
    proposal = factories.stage(org_a, "Proposal")
    own_column = html[html.index(f'id="column-{proposal.pk}"') :]
    assert f'data-deal-id="{deal.pk}"' in own_column[: own_column.index("</section>")]

    response = _move(client, deal, lost, lost_reason="Chose a competitor")
    with as_tenant(org_a):
        closed = Opportunity.objects.get(pk=deal.pk)
    assert (closed.status, closed.lost_reason, closed.actual_close_date) == (
        "lost",
        "Chose a competitor",
        organization_today(org_a),
    )


def test_moving_to_a_won_stage_sets_the_close_date(client, login, org_a, rep_a, as_tenant):
    deal = factories.opportunity(org_a, stage="Negotiation", assigned_to=rep_a)
    login(rep_a)
    _move(client, deal, factories.stage(org_a, "Closed won"))
    with as_tenant(org_a):
        won = Opportunity.objects.get(pk=deal.pk)
    assert (won.status, won.actual_close_date, won.probability) == ("won", organization_today(org_a), 100)


def test_move_without_htmx_redirects_with_a_message(client, login, org_a, rep_a):
    deal = factories.opportunity(org_a, stage="Prospecting", assigned_to=rep_a)
    login(rep_a)
    url = reverse("sales:opportunity_move", args=[deal.pk])
    response = client.post(url, {"stage": str(factories.stage(org_a, "Proposal").pk)}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("sales:opportunity_detail", args=[deal.pk])
    assert "moved to Proposal" in response.content.decode()
    response = client.post(url, {"stage": "not-a-stage"}, follow=True)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()


def test_a_stage_of_another_pipeline_is_refused(client, login, org_a, manager_a, as_tenant):
    deal = factories.opportunity(org_a, stage="Prospecting")
    with as_tenant(org_a, manager_a):
        from sales.services.pipelines import pipeline_create

        foreign = pipeline_create(organization=org_a, actor=manager_a, name="Partners").stages.first()
    login(manager_a)
    response = _move(client, deal, foreign)
    assert 'data-testid="move-error"' in response.content.decode()
    with as_tenant(org_a):
        assert Opportunity.objects.get(pk=deal.pk).stage_id == factories.stage(org_a, "Prospecting").pk


def test_moving_a_colleagues_deal_in_own_only_mode_or_another_orgs_deal_is_404(
    client, login, org_a, org_b, rep_a, as_tenant
):
    colleague = factories.opportunity(org_a, stage="Prospecting")
    foreign = factories.opportunity(org_b, stage="Prospecting")
    with as_tenant(org_a):
        SalesSettings.objects.create(organization=org_a, opportunity_visibility="own")
    login(rep_a)
    assert _move(client, colleague, factories.stage(org_a, "Proposal")).status_code == 404
    assert _move(client, foreign, factories.stage(org_b, "Proposal")).status_code == 404
    with as_tenant(org_a):
        assert Opportunity.objects.get(pk=colleague.pk).stage.name == "Prospecting"


def test_a_role_without_edit_rights_sees_the_board_without_move_controls(client, login, org_a):
    agent = factories.user(org_a, role="support_agent")
    factories.opportunity(org_a, stage="Proposal")
    login(agent)
    html = client.get(reverse("sales:board")).content.decode()
    assert 'data-testid="deal-card"' in html and "card-move" not in html and "lost-modal" not in html
