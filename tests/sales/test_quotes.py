"""The quote services: numbers, totals stored from the lines, the approval rules and flow (no self-approval),
sending, acceptance (the deal won, one order, however often), versions and expiry."""

from __future__ import annotations

import datetime
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from crm.tenancy import system_context
from sales.models import Opportunity, Order, OrderLine, Quote, QuoteEvent, QuoteItem, SalesSettings
from sales.services import quotes as services
from sales.services.opportunities import organization_today
from sales.services.pipelines import sales_settings_for
from tests import factories

S = Quote.Status


@pytest.fixture
def team(org_a):
    return SimpleNamespace(
        rep=factories.user(org_a, role="sales_rep", email="rep@a.test"),
        rep2=factories.user(org_a, role="sales_rep", email="rep2@a.test"),
        manager=factories.user(org_a, role="sales_manager", email="manager@a.test"),
        manager2=factories.user(org_a, role="sales_manager", email="manager2@a.test"),
    )


def _draft(org, actor, as_tenant, *, lines, **fields):
    deal = fields.pop("opportunity", None) or factories.opportunity(org, assigned_to=actor)
    with as_tenant(org, actor):
        quote = services.quote_create(opportunity=deal, actor=actor, **fields)
        for line in lines:
            services.quote_item_add(quote=quote, actor=actor, **line)
        return Quote.objects.get(pk=quote.pk)


SMALL = [
    {"description": "Consulting day", "quantity": D("2"), "unit_price": D("800.00"), "tax_rate": D("10")}
]
# 2 x 1,000.00 = 2,000.00; 20 % = 400.00; 1,600.00 x 10 % = 160.00; total 1,760.00 (20 % > the 15 % limit)
DISCOUNTED = [
    {
        "description": "Licence",
        "quantity": D("2"),
        "unit_price": D("1000.00"),
        "discount_pct": D("20"),
        "tax_rate": D("10"),
    }
]


def _events(quote) -> list[tuple[str, str, str]]:
    with system_context():
        return list(
            QuoteEvent.objects.filter(quote=quote)
            .order_by("at", "id")
            .values_list("action", "from_status", "to_status")
        )


# --- creating and totals ------------------------------------------------------------------------------------


def test_a_quote_gets_the_next_number_the_deals_currency_and_the_validity_period(org_a, team, as_tenant):
    deal = factories.opportunity(org_a, currency="EUR", name="Fleet renewal")
    with as_tenant(org_a, team.rep):
        SalesSettings.objects.filter(organization=org_a).delete()
        sales_settings_for(org_a.pk)
        SalesSettings.objects.filter(organization=org_a).update(quote_valid_days=45)
        first = services.quote_create(opportunity=deal, actor=team.rep)
        second = services.quote_create(opportunity=deal, actor=team.rep, title="Option B")
        today = organization_today(org_a)
    assert (first.number, second.number) == (1, 2)
    assert first.quote_number == "Q-00001" and first.version == 1 and first.is_current
    assert (first.currency, first.title, first.status) == ("EUR", "Fleet renewal", S.DRAFT)
    assert first.valid_until == today + datetime.timedelta(days=45)
    assert _events(first) == [("created", "", "draft")]


def test_numbers_are_per_organization(org_a, org_b, as_tenant):
    a = factories.quote(org_a)
    b = factories.quote(org_b)
    assert a.number == b.number == 1


def test_stored_totals_follow_the_lines_as_they_are_added_changed_and_removed(org_a, team, as_tenant):
    product = factories.product(org_a, name="Widget", unit_price=D("19.99"), tax_rate=D("20"))
    quote = _draft(org_a, team.rep, as_tenant, lines=[])
    with as_tenant(org_a, team.rep):
        # From the product: 3 x 19.99 = 59.97; 10 % = 6.00; 53.97 x 20 % = 10.79; total 64.76
        widget = services.quote_item_add(
            quote=quote, actor=team.rep, product=product, quantity=D("3"), discount_pct=D("10")
        )
        # Free text: 1 x 0.05, 10 % = 0.005 -> 0.01; total 0.04
        tiny = services.quote_item_add(
            quote=quote,
            actor=team.rep,
            description="Tiny",
            quantity=D("1"),
            unit_price=D("0.05"),
            discount_pct=D("10"),
        )
        stored = Quote.objects.get(pk=quote.pk)
        assert (widget.description, widget.unit_price, widget.tax_rate) == ("Widget", D("19.99"), D("20"))
        assert (stored.subtotal, stored.discount_total, stored.tax_total, stored.total) == (
            D("60.02"),
            D("6.01"),
            D("10.79"),
            D("64.80"),
        )
        assert stored.max_discount_pct == D("10")
        # 5 x 19.99 = 99.95; no discount; 99.95 x 20 % = 19.99; total 119.94 (+ 0.04)
        services.quote_item_update(item=widget, actor=team.rep, quantity=D("5"), discount_pct=D("0"))
        stored = Quote.objects.get(pk=quote.pk)
        assert (stored.subtotal, stored.total, stored.max_discount_pct) == (D("100.00"), D("119.98"), D("10"))
        services.quote_item_remove(item=tiny, actor=team.rep)
        stored = Quote.objects.get(pk=quote.pk)
        assert (stored.subtotal, stored.discount_total, stored.tax_total, stored.total) == (
            D("99.95"),
            D("0.00"),
            D("19.99"),
            D("119.94"),
        )
        assert stored.max_discount_pct == D("0")
        line = QuoteItem.objects.get(pk=widget.pk)
        assert (line.line_subtotal, line.line_discount, line.line_tax, line.line_total) == (
            D("99.95"),
            D("0.00"),
            D("19.99"),
            D("119.94"),
        )


def test_a_product_in_another_currency_or_inactive_is_refused(org_a, team, as_tenant):
    euro = factories.product(org_a, currency="EUR")
    retired = factories.product(org_a, active=False)
    quote = _draft(org_a, team.rep, as_tenant, lines=[])
    assert quote.currency == "USD"
    with as_tenant(org_a, team.rep):
        for product in (euro, retired):
            with pytest.raises(ValidationError) as error:
                services.quote_item_add(quote=quote, actor=team.rep, product=product)
            assert "product" in error.value.message_dict


def test_no_quote_for_a_closed_deal(org_a, team, as_tenant):
    deal = factories.opportunity(org_a, stage="Closed lost", lost_reason="Budget")
    with as_tenant(org_a, team.rep), pytest.raises(ValidationError):
        services.quote_create(opportunity=deal, actor=team.rep)


# --- the approval rules and flow -----------------------------------------------------------------------------


def test_a_quote_within_the_limits_is_approved_on_submit(org_a, team, as_tenant):
    quote = _draft(org_a, team.rep, as_tenant, lines=SMALL)
    with as_tenant(org_a, team.rep):
        submitted = services.quote_submit(quote=quote, actor=team.rep, comment="Standard pricing")
    assert submitted.status == S.APPROVED and submitted.approval_reasons == []
    assert _events(quote)[-1] == ("submitted", "draft", "approved")
    with system_context():
        assert QuoteEvent.objects.filter(quote=quote, action="submitted").get().comment == "Standard pricing"


@pytest.mark.parametrize(
    ("lines", "rule"),
    [
        (DISCOUNTED, "discount"),
        # 1 x 60,000.00, no discount, no tax: above the 50,000 total limit
        ([{"description": "Plant", "quantity": D("1"), "unit_price": D("60000.00")}], "total"),
    ],
)
def test_a_large_discount_or_total_needs_approval_and_says_why(org_a, team, as_tenant, lines, rule):
    quote = _draft(org_a, team.rep, as_tenant, lines=lines)
    with as_tenant(org_a, team.rep):
        submitted = services.quote_submit(quote=quote, actor=team.rep)
    assert submitted.status == S.PENDING_APPROVAL
    assert [reason["rule"] for reason in submitted.approval_reasons] == [rule]


def test_the_organizations_limits_decide(org_a, team, as_tenant):
    quote = _draft(org_a, team.rep, as_tenant, lines=DISCOUNTED)
    with as_tenant(org_a, team.rep):
        sales_settings_for(org_a.pk)
        SalesSettings.objects.filter(organization=org_a).update(approval_discount_pct=D("20"))
        assert (
            services.quote_submit(quote=quote, actor=team.rep).status == S.APPROVED
        )  # 20 % is not above 20 %


def test_a_manager_approves_with_a_comment(org_a, team, as_tenant):
    quote = _draft(org_a, team.rep, as_tenant, lines=DISCOUNTED)
    with as_tenant(org_a, team.rep):
        services.quote_submit(quote=quote, actor=team.rep)
    with as_tenant(org_a, team.manager):
        approved = services.quote_approve(quote=quote, actor=team.manager, comment="Strategic account")
    assert (approved.status, approved.decided_by_id, approved.decision_comment) == (
        S.APPROVED,
        team.manager.pk,
        "Strategic account",
    )
    assert _events(quote)[-1] == ("approved", "pending_approval", "approved")


def test_no_one_approves_or_rejects_their_own_quote(org_a, team, as_tenant):
    # A manager makes and submits a quote that needs approval: they may not decide it, another manager may.
    quote = _draft(org_a, team.manager, as_tenant, lines=DISCOUNTED)
    with as_tenant(org_a, team.manager):
        services.quote_submit(quote=quote, actor=team.manager)
        with pytest.raises(ValidationError) as error:
            services.quote_approve(quote=quote, actor=team.manager)
        assert error.value.code == "self_approval"
        with pytest.raises(ValidationError):
            services.quote_reject(quote=quote, actor=team.manager, comment="Too cheap")
        assert Quote.objects.get(pk=quote.pk).status == S.PENDING_APPROVAL
    # Submitted by someone else, made by the manager: still theirs.
    with as_tenant(org_a, team.manager2):
        assert services.quote_approve(quote=quote, actor=team.manager2).status == S.APPROVED


def test_the_submitter_cannot_approve_a_quote_someone_else_made(org_a, team, as_tenant):
    quote = _draft(org_a, team.rep, as_tenant, lines=DISCOUNTED)
    with as_tenant(org_a, team.manager):
        services.quote_submit(quote=quote, actor=team.manager)
        with pytest.raises(ValidationError):
            services.quote_approve(quote=quote, actor=team.manager)


def test_a_rep_cannot_approve(org_a, team, as_tenant):
    quote = _draft(org_a, team.rep, as_tenant, lines=DISCOUNTED)
    with as_tenant(org_a, team.rep):
        services.quote_submit(quote=quote, actor=team.rep)
    with as_tenant(org_a, team.rep2), pytest.raises(PermissionDenied):
        services.quote_approve(quote=quote, actor=team.rep2)


def test_a_rejected_quote_cannot_be_sent_but_is_editable_and_can_be_resubmitted(org_a, team, as_tenant):
    quote = _draft(org_a, team.rep, as_tenant, lines=DISCOUNTED)
    with as_tenant(org_a, team.rep):
        services.quote_submit(quote=quote, actor=team.rep)
    with as_tenant(org_a, team.manager):
        with pytest.raises(ValidationError) as error:
            services.quote_reject(quote=quote, actor=team.manager, comment="")
        assert "comment" in error.value.message_dict
        rejected = services.quote_reject(quote=quote, actor=team.manager, comment="Max 15 % this quarter")
    assert rejected.status == S.REJECTED and rejected.is_editable
    with as_tenant(org_a, team.rep):
        with pytest.raises(ValidationError) as error:
            services.quote_mark_sent(quote=quote, actor=team.rep)
        assert "rejected" in error.value.messages[0]
        item = QuoteItem.objects.get(quote=quote)
        services.quote_item_update(item=item, actor=team.rep, discount_pct=D("15"))
        resubmitted = services.quote_submit(quote=quote, actor=team.rep, comment="Down to 15 %")
    assert resubmitted.status == S.APPROVED  # 15 % is within the limit now
    assert [e[0] for e in _events(quote)] == ["created", "submitted", "rejected", "submitted"]


def test_only_draft_or_rejected_quotes_can_be_changed(org_a, team, as_tenant):
    quote = _draft(org_a, team.rep, as_tenant, lines=SMALL)
    with as_tenant(org_a, team.rep):
        services.quote_submit(quote=quote, actor=team.rep)
        item = QuoteItem.objects.get(quote=quote)
        for attempt in (
            lambda: services.quote_item_update(item=item, actor=team.rep, quantity=D("9")),
            lambda: services.quote_item_remove(item=item, actor=team.rep),
            lambda: services.quote_item_add(
                quote=quote, actor=team.rep, description="More", unit_price=D("1")
            ),
            lambda: services.quote_update(quote=quote, actor=team.rep, title="Changed"),
            lambda: services.quote_submit(quote=quote, actor=team.rep),
        ):
            with pytest.raises(ValidationError):
                attempt()
        assert QuoteItem.objects.get(pk=item.pk).quantity == D("2")


def test_an_empty_quote_cannot_be_submitted(org_a, team, as_tenant):
    quote = _draft(org_a, team.rep, as_tenant, lines=[])
    with as_tenant(org_a, team.rep), pytest.raises(ValidationError) as error:
        services.quote_submit(quote=quote, actor=team.rep)
    assert error.value.code == "no_lines"


# --- with the customer ----------------------------------------------------------------------------------------


def _sent(org, team, as_tenant, lines=SMALL, **fields):
    quote = _draft(org, team.rep, as_tenant, lines=lines, **fields)
    with as_tenant(org, team.rep):
        services.quote_submit(quote=quote, actor=team.rep)
        return services.quote_mark_sent(quote=quote, actor=team.rep)


def test_accepting_wins_the_deal_and_makes_one_order_however_often_it_is_submitted(org_a, team, as_tenant):
    quote = _sent(
        org_a,
        team,
        as_tenant,
        lines=[*SMALL, {"description": "Travel", "quantity": D("1"), "unit_price": D("120.00")}],
    )
    with as_tenant(org_a, team.rep):
        first = services.quote_accept(quote=quote, actor=team.rep, comment="Signed PO 4711")
        second = services.quote_accept(quote=quote, actor=team.rep)
        deal = Opportunity.objects.get(pk=quote.opportunity_id)
        orders = list(Order.objects.filter(quote=quote))
        lines = list(
            OrderLine.objects.filter(order=first)
            .order_by("position")
            .values_list("description", "line_total")
        )
    assert first.pk == second.pk and len(orders) == 1
    assert deal.status == Opportunity.Status.WON and deal.actual_close_date is not None
    # 2 x 800.00 = 1,600.00 + 10 % tax 160.00 = 1,760.00; travel 120.00; total 1,880.00
    assert (first.total, first.subtotal, first.tax_total) == (D("1880.00"), D("1720.00"), D("160.00"))
    assert (first.customer_id, first.opportunity_id, first.currency, first.number) == (
        deal.customer_id,
        deal.pk,
        "USD",
        1,
    )
    assert lines == [("Consulting day", D("1760.00")), ("Travel", D("120.00"))]
    assert [e[0] for e in _events(quote)].count("accepted") == 1


def test_only_a_sent_quote_is_accepted_or_declined(org_a, team, as_tenant):
    quote = _draft(org_a, team.rep, as_tenant, lines=SMALL)
    with as_tenant(org_a, team.rep):
        with pytest.raises(ValidationError):
            services.quote_accept(quote=quote, actor=team.rep)
        services.quote_submit(quote=quote, actor=team.rep)
        with pytest.raises(ValidationError):
            services.quote_decline(quote=quote, actor=team.rep)
        services.quote_mark_sent(quote=quote, actor=team.rep)
        declined = services.quote_decline(quote=quote, actor=team.rep, comment="Went with a competitor")
        assert declined.status == S.DECLINED
        with pytest.raises(ValidationError):
            services.quote_accept(quote=quote, actor=team.rep)
        assert not Order.objects.filter(quote=quote).exists()
        assert Opportunity.objects.get(pk=quote.opportunity_id).status == Opportunity.Status.OPEN


# --- versions ----------------------------------------------------------------------------------------------


def test_revising_copies_the_lines_into_a_new_current_draft_and_freezes_the_old_version(
    org_a, team, as_tenant
):
    product = factories.product(org_a, unit_price=D("250.00"))
    lines = [*SMALL, {"product": product, "quantity": D("4")}]
    quote = _sent(org_a, team, as_tenant, lines=lines)
    with as_tenant(org_a, team.rep2):
        revision = services.quote_revise(quote=quote, actor=team.rep2)
        old = Quote.objects.get(pk=quote.pk)
        copied = list(QuoteItem.objects.filter(quote=revision).order_by("position"))
        originals = list(QuoteItem.objects.filter(quote=old).order_by("position"))
    assert (revision.number, revision.version, revision.status, revision.is_current) == (
        quote.number,
        2,
        S.DRAFT,
        True,
    )
    assert (old.is_current, old.status) == (False, S.SENT)
    assert revision.created_by_id == team.rep2.pk
    assert [(i.description, i.quantity, i.unit_price, i.product_id, i.line_total) for i in copied] == [
        (i.description, i.quantity, i.unit_price, i.product_id, i.line_total) for i in originals
    ]
    assert {i.pk for i in copied}.isdisjoint({i.pk for i in originals})
    assert (revision.subtotal, revision.total) == (old.subtotal, old.total)
    with as_tenant(org_a, team.rep):
        # The old version is read-only everywhere: lines, header, flow, another revision.
        item = originals[0]
        for attempt in (
            lambda: services.quote_item_update(item=item, actor=team.rep, quantity=D("9")),
            lambda: services.quote_item_add(quote=old, actor=team.rep, description="x", unit_price=D("1")),
            lambda: services.quote_item_remove(item=item, actor=team.rep),
            lambda: services.quote_update(quote=old, actor=team.rep, title="Changed"),
            lambda: services.quote_accept(quote=old, actor=team.rep),
            lambda: services.quote_decline(quote=old, actor=team.rep),
            lambda: services.quote_revise(quote=old, actor=team.rep),
        ):
            with pytest.raises(ValidationError):
                attempt()
        # The new version is edited on its own.
        services.quote_item_update(item=copied[0], actor=team.rep, quantity=D("3"))
        assert QuoteItem.objects.get(pk=originals[0].pk).quantity == D("2")
        third = services.quote_submit(quote=revision, actor=team.rep)
        third = services.quote_revise(quote=third, actor=team.rep)
        assert third.version == 3
        assert list(
            Quote.objects.filter(number=quote.number, is_current=True).values_list("version", flat=True)
        ) == [3]


def test_a_draft_cannot_be_revised(org_a, team, as_tenant):
    quote = _draft(org_a, team.rep, as_tenant, lines=SMALL)
    with as_tenant(org_a, team.rep), pytest.raises(ValidationError):
        services.quote_revise(quote=quote, actor=team.rep)


# --- expiry ------------------------------------------------------------------------------------------------


def test_an_expired_quote_cannot_be_accepted(org_a, team, as_tenant):
    quote = _sent(org_a, team, as_tenant)
    with as_tenant(org_a, team.rep):
        Quote.objects.filter(pk=quote.pk).update(
            valid_until=organization_today(org_a) - datetime.timedelta(days=1)
        )
        with pytest.raises(ValidationError) as error:
            services.quote_accept(quote=quote, actor=team.rep)
        assert error.value.code == "expired"
        assert services.quote_expire_if_due(quote=quote) is True
        assert Quote.objects.get(pk=quote.pk).status == S.EXPIRED
        assert not Order.objects.filter(quote=quote).exists()
        assert Opportunity.objects.get(pk=quote.opportunity_id).status == Opportunity.Status.OPEN


def test_the_expiry_sweep_expires_due_offers_once_and_leaves_the_rest(org_a, org_b, team, as_tenant):
    today = datetime.date(2030, 6, 15)
    due = {
        status: factories.quote(org_a, status=status) for status in (S.PENDING_APPROVAL, S.APPROVED, S.SENT)
    }
    draft = factories.quote(org_a)
    accepted = factories.quote(org_a, status=S.ACCEPTED)
    on_the_day = factories.quote(org_a, status=S.SENT)
    other_org = factories.quote(org_b, status=S.SENT)
    with as_tenant(org_a):
        Quote.objects.exclude(pk=on_the_day.pk).update(valid_until=today - datetime.timedelta(days=1))
        Quote.objects.filter(pk=on_the_day.pk).update(valid_until=today)
    with as_tenant(org_b):
        Quote.objects.filter(pk=other_org.pk).update(valid_until=today - datetime.timedelta(days=1))
    with as_tenant(org_a):
        assert services.quotes_expire_due(organization_id=org_a.pk, today=today) == 3
        assert services.quotes_expire_due(organization_id=org_a.pk, today=today) == 0
        statuses = dict(Quote.objects.values_list("pk", "status"))
        events = list(QuoteEvent.objects.filter(action="expired").values_list("quote_id", "from_status"))
    assert {statuses[q.pk] for q in due.values()} == {S.EXPIRED}
    assert (statuses[draft.pk], statuses[accepted.pk], statuses[on_the_day.pk]) == (
        S.DRAFT,
        S.ACCEPTED,
        S.SENT,
    )
    assert sorted(events) == sorted((q.pk, status) for status, q in due.items())
    with as_tenant(org_b):
        assert Quote.objects.get(pk=other_org.pk).status == S.SENT


def test_the_beat_task_enqueues_organizations_with_due_quotes_and_expires_them(
    org_a, team, as_tenant, settings
):
    from sales import tasks

    settings.CELERY_TASK_ALWAYS_EAGER = True
    quote = factories.quote(org_a, status=S.SENT)
    with as_tenant(org_a):
        Quote.objects.filter(pk=quote.pk).update(
            valid_until=organization_today(org_a) - datetime.timedelta(days=3)
        )
    assert tasks.expire_organization_quotes.apply(kwargs={"organization_id": str(org_a.pk)}).get() == 1
    with as_tenant(org_a):
        assert Quote.objects.get(pk=quote.pk).status == S.EXPIRED
    from crm.tenancy import system_context

    with system_context():
        from sales.selectors.quotes import organizations_with_expirable_quotes

        assert org_a.pk not in organizations_with_expirable_quotes()


# --- visibility ------------------------------------------------------------------------------------------


def test_in_own_only_mode_a_rep_cannot_touch_a_colleagues_deal_quotes(org_a, team, as_tenant):
    deal = factories.opportunity(org_a, assigned_to=team.rep2)
    quote = _draft(org_a, team.rep2, as_tenant, lines=SMALL, opportunity=deal)
    with as_tenant(org_a, team.rep):
        sales_settings_for(org_a.pk)
        SalesSettings.objects.filter(organization=org_a).update(
            opportunity_visibility=SalesSettings.Visibility.OWN
        )
        with pytest.raises(PermissionDenied):
            services.quote_create(opportunity=deal, actor=team.rep)
        with pytest.raises(PermissionDenied):
            services.quote_submit(quote=quote, actor=team.rep)
        with pytest.raises(PermissionDenied):
            services.quote_item_add(quote=quote, actor=team.rep, description="x", unit_price=D("1"))
