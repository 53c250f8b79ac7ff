"""Campaigns: the list (filters, counts per status, rates, sorting, keyset pages, query count), the form
(validation, the email-readiness rule, the frozen send time), status transitions, delete, the campaign page
(goals against actuals, panels), other organizations' campaigns, roles, search and the campaign selects of
the deal and interaction forms."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from crm.search import search_all
from crm.tenancy import tenant_context
from customers.models import Interaction
from marketing.models import Campaign, CampaignSegment, FormSubmission
from marketing.selectors import campaigns as selectors
from marketing.services import campaigns as services
from sales.models import Opportunity
from tests import factories
from tests.marketing import factories as mf

STATUSES = Campaign.Status.values


@pytest.fixture
def marketer(org_a):
    return factories.user(org_a, role="marketing_manager", first_name="Mia")


@pytest.fixture
def rep(org_a):
    return factories.user(org_a, role="sales_rep", first_name="Rita")


def _ids(response) -> list:
    return [row.pk for row in response.context["page"].items]


def _counts(response) -> dict:
    return {row.status: row.count for row in response.context["status_counts"]}


# --- List -----------------------------------------------------------------------------------------------------


def test_list_filters_by_search_status_channel_owner_and_period(client, login, org_a, marketer, rep):
    spring = mf.campaign(
        org_a,
        name="Spring launch",
        channels=["email", "social"],
        status="active",
        owner=marketer,
        start_date=datetime.date(2026, 3, 1),
        end_date=datetime.date(2026, 3, 31),
    )
    expo = mf.campaign(
        org_a,
        name="Trade expo",
        channels=["events"],
        status="scheduled",
        owner=rep,
        start_date=datetime.date(2026, 6, 10),
        end_date=datetime.date(2026, 6, 12),
    )
    ads = mf.campaign(org_a, name="Search ads", channels=["ads"], status="draft", owner=None)
    login(marketer)
    url = reverse("marketing:campaign_list")
    assert set(_ids(client.get(url))) == {spring.pk, expo.pk, ads.pk}
    assert _ids(client.get(url, {"q": "LAUNCH"})) == [spring.pk]
    assert _ids(client.get(url, {"status": "scheduled"})) == [expo.pk]
    assert _ids(client.get(url, {"channel": "social"})) == [spring.pk]
    assert _ids(client.get(url, {"channel": "ads"})) == [ads.pk]
    assert _ids(client.get(url, {"owner": "mine"})) == [spring.pk]
    assert _ids(client.get(url, {"owner": "none"})) == [ads.pk]
    assert _ids(client.get(url, {"owner": str(rep.pk)})) == [expo.pk]
    # The period: campaigns running at some point of it (one without dates never matches a period).
    assert _ids(client.get(url, {"running_from": "2026-03-31", "running_to": "2026-06-10"})) == [
        expo.pk,
        spring.pk,
    ]
    assert _ids(client.get(url, {"running_from": "2026-04-01"})) == [expo.pk]
    assert _ids(client.get(url, {"running_to": "2026-02-28"})) == []
    response = client.get(url, {"status": "active"})
    assert "1 campaign matches" in response.content.decode()


def test_counts_per_status_are_the_organizations_whatever_the_filter(client, login, org_a, org_b, marketer):
    plan = {"draft": 3, "scheduled": 1, "active": 2, "paused": 0, "completed": 4}
    for status, n in plan.items():
        for i in range(n):
            mf.campaign(org_a, name=f"{status} {i}", status=status)
    mf.campaign(org_b, name="Elsewhere", status="paused")
    login(marketer)
    response = client.get(reverse("marketing:campaign_list"), {"status": "draft"})
    assert _counts(response) == plan
    assert len(_ids(response)) == 3
    html = response.content.decode()
    for status, n in plan.items():
        assert f'data-testid="status-count-{status}">{n}<' in html


def test_list_shows_budget_cost_and_the_email_rates_recomputed(client, login, org_a, marketer):
    mf.campaign(
        org_a,
        name="Newsletter",
        budget=Decimal("1000.00"),
        actual_cost=Decimal("250.00"),
        currency="EUR",
        sent_count=200,
        bounced_count=20,
        opened_count=45,
        clicked_count=9,
    )
    mf.campaign(org_a, name="Not sent", channels=["ads"])
    login(marketer)
    html = client.get(reverse("marketing:campaign_list"), {"q": "Newsletter"}).content.decode()
    # 180 emails reached an inbox (200 sent - 20 bounced): 45 / 180 = 25.0 %, 9 / 180 = 5.0 %.
    assert 'data-testid="open-rate">25.0 %<' in html
    assert 'data-testid="click-rate">5.0 %<' in html
    assert "250.00" in html and "1,000.00" in html and "EUR" in html
    assert "25 % of budget" in html
    html = client.get(reverse("marketing:campaign_list"), {"q": "Not sent"}).content.decode()
    assert 'data-testid="open-rate">—<' in html


def test_rates_and_budget_use_by_hand():
    campaign = Campaign(
        sent_count=7,
        bounced_count=1,
        opened_count=2,
        clicked_count=1,
        budget=Decimal("300"),
        actual_cost=Decimal("100"),
    )
    assert selectors.open_rate(campaign) == Decimal("33.3")  # 2 / 6
    assert selectors.click_rate(campaign) == Decimal("16.7")  # 1 / 6, half up
    assert selectors.budget_used(campaign) == Decimal("33.3")
    assert selectors.open_rate(Campaign(sent_count=3, bounced_count=3)) is None
    assert selectors.budget_used(Campaign(budget=Decimal("0"), actual_cost=Decimal("5"))) is None


def test_list_sorts_and_pages_by_keyset(client, login, org_a, marketer, monkeypatch):
    from marketing.views import campaigns as views

    monkeypatch.setattr(views, "PER_PAGE", 2)
    names = ["Delta", "alpha", "Charlie", "Bravo", "Echo"]
    starts = [datetime.date(2026, 1, d) for d in (5, 1, 3, 2, 4)]
    for name, start in zip(names, starts, strict=True):
        mf.campaign(org_a, name=name, start_date=start, budget=Decimal(len(name)))
    mf.campaign(org_a, name="Undated")
    login(marketer)
    url = reverse("marketing:campaign_list")

    def walk(sort):
        seen, cursor = [], None
        while True:
            response = client.get(url, {"sort": sort, **({"cursor": cursor} if cursor else {})})
            seen += [row.name for row in response.context["page"].items]
            cursor = response.context["page"].next_cursor
            if not cursor:
                return seen

    assert walk("start") == ["Undated", "alpha", "Bravo", "Charlie", "Echo", "Delta"]
    assert walk("-start") == ["Delta", "Echo", "Charlie", "Bravo", "alpha", "Undated"]
    by_name = walk("name")
    assert by_name == sorted(by_name, key=lambda n: n) and len(by_name) == 6


def test_list_query_count_is_the_same_for_1_and_20_campaigns(client, login, org_a, marketer):
    login(marketer)
    url = reverse("marketing:campaign_list")
    mf.campaign(org_a, name="Only one", owner=marketer, sent_count=10, opened_count=3)
    client.get(url)  # warm the session and caches
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    for i in range(19):
        mf.campaign(org_a, name=f"More {i}", owner=marketer if i % 2 else None, channels=["email", "ads"])
    with CaptureQueriesContext(connection) as twenty:
        response = client.get(url)
    assert len(response.context["page"].items) == 20
    assert len(twenty) == len(one)


def test_empty_list_says_what_to_do(client, login, org_a, marketer, rep):
    login(marketer)
    html = client.get(reverse("marketing:campaign_list")).content.decode()
    assert "No campaigns yet" in html and reverse("marketing:campaign_create") in html
    html = client.get(reverse("marketing:campaign_list"), {"q": "nothing"}).content.decode()
    assert "No campaigns match these filters" in html
    login(rep)
    html = client.get(reverse("marketing:campaign_list")).content.decode()
    assert "No campaigns yet" in html and reverse("marketing:campaign_create") not in html


# --- Form -----------------------------------------------------------------------------------------------------


def _post(**overrides) -> dict:
    data = {
        "name": "Autumn webinar",
        "description": "Our yearly webinar",
        "channels": ["webinar", "email"],
        "status": "draft",
        "owner": "",
        "start_date": "2026-10-01",
        "end_date": "2026-10-31",
        "currency": "EUR",
        "budget": "1500.00",
        "goal_leads": "200",
        "goal_conversions": "10",
        "goal_revenue": "50000",
        "template": "",
        "from_name": "Acme",
        "reply_to": "hello@acme.test",
        "send_at": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_create_campaign_from_the_form(client, login, org_a, marketer):
    template = mf.email_template(org_a)
    segment = mf.segment(org_a, name="Subscribers")
    login(marketer)
    response = client.post(
        reverse("marketing:campaign_create"),
        _post(
            status="scheduled",
            template=str(template.pk),
            segments=[str(segment.pk)],
            send_at="2026-09-30T09:00",
        ),
    )
    with tenant_context(org_a.pk):
        campaign = Campaign.objects.get(name="Autumn webinar")
        segments = list(
            CampaignSegment.objects.filter(campaign=campaign).values_list("segment_id", flat=True)
        )
    assert response.status_code == 302 and response.url == reverse(
        "marketing:campaign_detail", args=[campaign.pk]
    )
    assert campaign.status == "scheduled" and campaign.channels == ["email", "webinar"]
    assert campaign.budget == Decimal("1500.00") and campaign.currency == "EUR"
    assert (campaign.goal_leads, campaign.goal_conversions, campaign.goal_revenue) == (
        200,
        10,
        Decimal("50000"),
    )
    assert campaign.template_id == template.pk and segments == [segment.pk]
    assert campaign.send_at == datetime.datetime(2026, 9, 30, 9, 0, tzinfo=datetime.UTC)
    assert campaign.created_by_id == marketer.pk and campaign.owner_id is None


def test_new_campaign_form_defaults_to_the_organizations_currency_and_the_actor(
    client, login, org_a, marketer
):
    from crm.tenancy import system_context

    with system_context():
        type(org_a).objects.filter(pk=org_a.pk).update(currency="GBP")
    login(marketer)
    form = client.get(reverse("marketing:campaign_create")).context["form"]
    assert form.initial["currency"] == "GBP" and form.initial["owner"] == str(marketer.pk)
    with tenant_context(org_a.pk):
        org_a.refresh_from_db()
        campaign = services.campaign_create(
            organization=org_a, actor=marketer, name="Plain", channels=["ads"]
        )
    assert campaign.currency == "GBP" and campaign.owner_id == marketer.pk and campaign.status == "draft"


def test_form_errors_are_shown_beside_the_fields(client, login, org_a, org_b, marketer):
    foreign_segment = mf.segment(org_b, name="Theirs")
    login(marketer)
    url = reverse("marketing:campaign_create")
    response = client.post(url, _post(end_date="2026-09-01", channels=[], name=""))
    form = response.context["form"]
    assert response.status_code == 200
    assert set(form.errors) == {"end_date", "channels", "name"}
    assert "The end date comes before the start date." in response.content.decode()
    # A segment of another organization is not a choice.
    response = client.post(url, _post(segments=[str(foreign_segment.pk)]))
    assert "segments" in response.context["form"].errors
    # An email campaign cannot be scheduled without a template and a segment.
    response = client.post(url, _post(status="scheduled"))
    errors = response.context["form"].errors
    assert "template" in errors and "segments" in errors
    with tenant_context(org_a.pk):
        assert not Campaign.objects.exists()
    # Without the email channel, the same campaign may be scheduled.
    response = client.post(url, _post(status="scheduled", channels=["webinar"]))
    assert response.status_code == 302


def test_service_validates_dates_and_email_readiness(org_a, marketer):
    with tenant_context(org_a.pk), pytest.raises(ValidationError) as error:
        services.campaign_create(
            organization=org_a,
            actor=marketer,
            name="Backwards",
            channels=["ads"],
            start_date=datetime.date(2026, 5, 2),
            end_date=datetime.date(2026, 5, 1),
        )
    assert "end_date" in error.value.error_dict
    with tenant_context(org_a.pk), pytest.raises(ValidationError) as error:
        services.campaign_create(
            organization=org_a, actor=marketer, name="Mail", channels=["email"], status="active"
        )
    assert {"template", "segments"} <= set(error.value.error_dict)
    with tenant_context(org_a.pk), pytest.raises(ValidationError) as error:
        services.campaign_create(
            organization=org_a, actor=marketer, name="Late", channels=["ads"], status="paused"
        )
    assert "status" in error.value.error_dict


def test_send_time_template_and_segments_are_frozen_once_the_send_started(client, login, org_a, marketer):
    segment = mf.segment(org_a)
    send_at = timezone.now().replace(microsecond=0) + datetime.timedelta(days=1)
    campaign = mf.email_campaign(
        org_a, name="Frozen", segments=[segment], send_at=send_at, send_state="sending"
    )
    other_template = mf.email_template(org_a, name="Other")
    with tenant_context(org_a.pk):
        with pytest.raises(ValidationError) as error:
            services.campaign_update(
                campaign=campaign, actor=marketer, send_at=send_at + datetime.timedelta(hours=1)
            )
        assert "send_at" in error.value.error_dict
        with pytest.raises(ValidationError) as error:
            services.campaign_update(campaign=campaign, actor=marketer, template=other_template, segments=[])
        assert {"template", "segments"} == set(error.value.error_dict)
        # The rest stays editable, and resubmitting the same send fields is no change.
        updated = services.campaign_update(
            campaign=campaign,
            actor=marketer,
            name="Frozen but renamed",
            send_at=send_at,
            template=campaign.template,
            segments=[segment],
        )
    assert updated.name == "Frozen but renamed" and updated.send_at == send_at
    # The form shows the send fields read-only and ignores what is posted for them.
    login(marketer)
    url = reverse("marketing:campaign_edit", args=[campaign.pk])
    form = client.get(url).context["form"]
    assert (
        form.fields["send_at"].disabled
        and form.fields["template"].disabled
        and form.fields["segments"].disabled
    )
    response = client.post(
        url,
        _post(
            name="Via the form",
            channels=["email"],
            status="draft",
            template=str(other_template.pk),
            send_at="2030-01-01T00:00",
            start_date="",
            end_date="",
        ),
    )
    assert response.status_code == 302
    with tenant_context(org_a.pk):
        campaign.refresh_from_db()
    assert (
        campaign.name == "Via the form"
        and campaign.send_at == send_at
        and campaign.template_id != other_template.pk
    )


def test_edit_form_saves_changes_and_replaces_segments(client, login, org_a, marketer):
    first, second = mf.segment(org_a, name="First"), mf.segment(org_a, name="Second")
    campaign = mf.email_campaign(org_a, name="Edit me", segments=[first])
    login(marketer)
    url = reverse("marketing:campaign_edit", args=[campaign.pk])
    form = client.get(url).context["form"]
    assert form.initial["segments"] == [str(first.pk)] and form.initial["name"] == "Edit me"
    response = client.post(
        url,
        _post(
            name="Edited", channels=["email"], template=str(campaign.template_id), segments=[str(second.pk)]
        ),
    )
    assert response.status_code == 302
    with tenant_context(org_a.pk):
        campaign.refresh_from_db()
        segments = list(
            CampaignSegment.objects.filter(campaign=campaign).values_list("segment_id", flat=True)
        )
    assert campaign.name == "Edited" and segments == [second.pk]


# --- Status transitions ---------------------------------------------------------------------------------------

ALLOWED = {
    ("draft", "scheduled"),
    ("draft", "active"),
    ("scheduled", "active"),
    ("scheduled", "paused"),
    ("scheduled", "draft"),
    ("active", "paused"),
    ("active", "completed"),
    ("paused", "active"),
    ("paused", "completed"),
}


@pytest.mark.parametrize(
    ("current", "target"), [p for p in itertools.product(STATUSES, STATUSES) if p[0] != p[1]]
)
def test_status_transitions(org_a, marketer, current, target):
    campaign = mf.campaign(org_a, name=f"{current} to {target}", channels=["ads"], status=current)
    with tenant_context(org_a.pk):
        if (current, target) in ALLOWED:
            moved = services.campaign_set_status(campaign=campaign, actor=marketer, status=target)
            assert moved.status == target
        else:
            with pytest.raises(ValidationError):
                services.campaign_set_status(campaign=campaign, actor=marketer, status=target)
            campaign.refresh_from_db()
            assert campaign.status == current


def test_status_buttons_post_transitions_and_refuse_the_rest(client, login, org_a, marketer):
    campaign = mf.campaign(org_a, name="Buttons", channels=["email"], status="draft")
    login(marketer)
    detail = reverse("marketing:campaign_detail", args=[campaign.pk])
    html = client.get(detail).content.decode()
    assert 'data-testid="status-scheduled"' in html and 'data-testid="status-active"' in html
    assert 'data-testid="status-completed"' not in html
    url = reverse("marketing:campaign_set_status", args=[campaign.pk])
    # An email campaign without template and segment cannot be scheduled: the page says why.
    response = client.post(url, {"status": "scheduled"}, follow=True)
    assert "needs a template" in response.content.decode()
    response = client.post(url, {"status": "completed"}, follow=True)
    assert "cannot go from Draft to Completed" in response.content.decode()
    with tenant_context(org_a.pk):
        campaign.refresh_from_db()
        assert campaign.status == "draft"
        Campaign.objects.filter(pk=campaign.pk).update(channels=["ads"])
    assert client.post(url, {"status": "active"}).status_code == 302
    with tenant_context(org_a.pk):
        campaign.refresh_from_db()
    assert campaign.status == "active"


# --- Delete ---------------------------------------------------------------------------------------------------


def test_only_drafts_without_sends_sequences_or_forms_can_be_deleted(client, login, org_a, marketer):
    customer = factories.customer(org_a)
    login(marketer)
    draft = mf.campaign(org_a, name="Bin me", channels=["ads"])
    with tenant_context(org_a.pk):
        from marketing.services.costs import cost_add

        cost_add(campaign=draft, actor=marketer, amount=Decimal("5"), description="Mock-up")
    response = client.post(reverse("marketing:campaign_delete", args=[draft.pk]))
    assert response.status_code == 302 and response.url == reverse("marketing:campaign_list")
    active = mf.campaign(org_a, name="Running", status="active")
    sent = mf.campaign(org_a, name="Sent", status="draft")
    mf.sent_email(org_a, campaign=sent, customer=customer)
    with_form = mf.campaign(org_a, name="With a form")
    mf.lead_form(org_a, campaign=with_form, slug="keep")
    for campaign, message in (
        (active, "Only a draft campaign can be deleted"),
        (sent, "has sent emails"),
        (with_form, "sequences and forms"),
    ):
        response = client.post(reverse("marketing:campaign_delete", args=[campaign.pk]), follow=True)
        assert message in response.content.decode()
    with tenant_context(org_a.pk):
        assert not Campaign.objects.filter(pk=draft.pk).exists()
        assert Campaign.objects.filter(pk__in=[active.pk, sent.pk, with_form.pk]).count() == 3


# --- Detail ---------------------------------------------------------------------------------------------------


def test_goals_against_actuals_recomputed_by_hand(client, login, org_a, marketer):
    campaign = mf.campaign(
        org_a,
        name="Goals",
        channels=["email", "events"],
        goal_leads=4,
        goal_conversions=5,
        goal_revenue=Decimal("1000"),
        conversions=2,
    )
    other = mf.campaign(org_a, name="Other")
    now = timezone.now()
    # Leads: (1) a customer its form created; (2) one whose first interaction is with the campaign;
    # not (3) one whose first interaction was with another campaign, nor (4) one a form only updated.
    created = factories.customer(org_a, first_name="Created")
    first_touch = factories.customer(org_a, first_name="First")
    later_touch = factories.customer(org_a, first_name="Later")
    updated = factories.customer(org_a, first_name="Updated")
    form = mf.lead_form(org_a, campaign=campaign, slug="goals")
    with tenant_context(org_a.pk):
        FormSubmission.objects.create(organization=org_a, form=form, customer=created, created_customer=True)
        FormSubmission.objects.create(organization=org_a, form=form, customer=updated, created_customer=False)
    mf.campaign_touch(created, campaign=campaign, at=now - datetime.timedelta(days=1))  # counted once
    mf.campaign_touch(first_touch, campaign=campaign, at=now - datetime.timedelta(days=3))
    mf.campaign_touch(first_touch, campaign=other, at=now - datetime.timedelta(days=2))
    mf.campaign_touch(later_touch, campaign=other, at=now - datetime.timedelta(days=5))
    mf.campaign_touch(later_touch, campaign=campaign, at=now - datetime.timedelta(days=4))
    # Conversions: 2 entered + 1 won deal sourced by the campaign (an open one and another's do not count).
    mf.won_deal(org_a, customer=created, amount=300, closed_on=now.date(), source_campaign=campaign)
    mf.won_deal(org_a, customer=created, amount=300, closed_on=now.date(), source_campaign=other)
    open_deal = factories.opportunity(org_a, customer=first_touch)
    with tenant_context(org_a.pk):
        Opportunity.objects.filter(pk=open_deal.pk).update(source_campaign=campaign)
        actuals = selectors.actuals_of(
            campaign=Campaign.objects.get(pk=campaign.pk), organization_currency=org_a.currency
        )
    assert (actuals.leads, actuals.entered_conversions, actuals.won_deals, actuals.conversions) == (
        2,
        2,
        1,
        3,
    )
    leads, conversions, revenue = actuals.goals
    assert (leads.goal, leads.actual, leads.percent) == (4, 2, Decimal("50.0"))
    assert (conversions.goal, conversions.actual, conversions.percent) == (5, 3, Decimal("60.0"))
    assert revenue.goal == Decimal("1000")
    login(marketer)
    html = client.get(reverse("marketing:campaign_detail", args=[campaign.pk])).content.decode()
    assert 'data-testid="fact-leads">2<' in html
    assert "2 entered by hand + 1 won deals sourced by this campaign." in html


def test_campaign_page_shows_facts_panels_and_sibling_links(client, login, org_a, marketer):
    segment = mf.segment(org_a, name="Fans")
    campaign = mf.email_campaign(
        org_a,
        name="Page",
        segments=[segment],
        budget=Decimal("200"),
        actual_cost=Decimal("50"),
        status="active",
    )
    mf.lead_form(org_a, campaign=campaign, slug="page-form", name="Sign-up form")
    login(marketer)
    response = client.get(reverse("marketing:campaign_detail", args=[campaign.pk]))
    html = response.content.decode()
    assert response.status_code == 200 and response.context["title"] == "Page"
    assert "Fans" in html and "Sign-up form" in html and "No sequences yet" in html
    assert 'data-status="active"' in html
    assert 'data-testid="status-paused"' in html and 'data-testid="status-completed"' in html
    assert 'data-testid="delete-campaign"' not in html  # not a draft
    # Each lazy panel is there exactly when its area's URL exists.
    for name, slot in (
        ("marketing:campaign_send_panel", "send-slot"),
        ("marketing:campaign_ab_panel", "ab-slot"),
        ("marketing:campaign_funnel_panel", "funnel-slot"),
    ):
        try:
            url = reverse(name, args=[campaign.pk])
        except NoReverseMatch:
            assert f'data-testid="{slot}"' not in html
        else:
            assert f'hx-get="{url}"' in html and f'<a href="{url}">' in html


def test_manual_actuals_for_other_channels(client, login, org_a, marketer, rep):
    campaign = mf.campaign(org_a, name="Ads", channels=["ads"])
    login(marketer)
    url = reverse("marketing:campaign_actuals", args=[campaign.pk])
    assert client.post(url, {"impressions": "12000", "clicks": "340", "conversions": "12"}).status_code == 302
    response = client.post(url, {"impressions": "-1", "clicks": "3", "conversions": "1"}, follow=True)
    assert response.status_code == 200
    with tenant_context(org_a.pk):
        campaign.refresh_from_db()
    assert (campaign.impressions, campaign.clicks, campaign.conversions) == (12000, 340, 12)
    login(rep)
    assert client.post(url, {"impressions": "1", "clicks": "1", "conversions": "1"}).status_code == 403


# --- Tenancy and roles ----------------------------------------------------------------------------------------


def test_another_organizations_campaign_is_404_everywhere(client, login, org_a, org_b, marketer):
    theirs = mf.campaign(org_b, name="Theirs", channels=["ads"])
    login(marketer)
    for name in ("campaign_detail", "campaign_edit"):
        assert client.get(reverse(f"marketing:{name}", args=[theirs.pk])).status_code == 404
    for name, data in (
        ("campaign_set_status", {"status": "active"}),
        ("campaign_delete", {}),
        ("campaign_actuals", {"impressions": "1", "clicks": "1", "conversions": "1"}),
        (
            "campaign_cost_add",
            {"incurred_on": "2026-01-01", "category": "ads", "description": "x", "amount": "1"},
        ),
    ):
        assert client.post(reverse(f"marketing:{name}", args=[theirs.pk]), data).status_code == 404
    with tenant_context(org_b.pk):
        theirs.refresh_from_db()
    assert theirs.status == "draft" and theirs.impressions == 0 and theirs.actual_cost == 0


def test_roles_view_and_manage(client, login, org_a, marketer, rep):
    campaign = mf.campaign(org_a, name="Roles")
    support = factories.user(org_a, role="support_agent")
    login(rep)
    assert client.get(reverse("marketing:campaign_list")).status_code == 200
    html = client.get(reverse("marketing:campaign_detail", args=[campaign.pk])).content.decode()
    assert (
        reverse("marketing:campaign_edit", args=[campaign.pk]) not in html
        and 'data-testid="cost-form"' not in html
    )
    assert client.get(reverse("marketing:campaign_create")).status_code == 403
    assert (
        client.post(
            reverse("marketing:campaign_set_status", args=[campaign.pk]), {"status": "active"}
        ).status_code
        == 403
    )
    login(support)
    assert client.get(reverse("marketing:campaign_list")).status_code == 403
    with tenant_context(org_a.pk), pytest.raises(PermissionDenied):
        services.campaign_create(organization=org_a, actor=rep, name="No", channels=["ads"])


# --- Search, navigation and the other areas' selects ----------------------------------------------------------


def test_search_finds_the_organizations_campaigns(org_a, org_b, marketer):
    mine = mf.campaign(org_a, name="Winter sale", start_date=datetime.date(2026, 12, 1))
    mf.campaign(org_b, name="Winter sale of B")
    with tenant_context(org_a.pk, user=marketer):
        groups = dict(search_all(user=marketer, query="winter"))
    results = groups["Campaigns"]
    assert [r.url for r in results] == [reverse("marketing:campaign_detail", args=[mine.pk])]
    assert "Draft" in results[0].subtitle and "Dec 1, 2026" in results[0].subtitle


def test_campaigns_nav_item(client, login, org_a, marketer):
    from crm import navigation

    item = next(i for i in navigation.all_items() if i.url_name == "marketing:campaign_list")
    assert (item.icon, item.section, item.order, str(item.capability)) == (
        "megaphone",
        "marketing",
        10,
        "campaigns.view",
    )


def test_deal_form_offers_the_organizations_campaigns_as_source(client, login, org_a, org_b, admin_a):
    mine = mf.campaign(org_a, name="Source of deals")
    theirs = mf.campaign(org_b, name="Not a choice")
    deal = factories.opportunity(org_a, name="Sourced deal")
    login(admin_a)
    url = reverse("sales:opportunity_edit", args=[deal.pk])
    form = client.get(url).context["form"]
    assert ("" in dict(form.fields["source_campaign"].choices)) and str(mine.pk) in dict(
        form.fields["source_campaign"].choices
    )
    assert str(theirs.pk) not in dict(form.fields["source_campaign"].choices)
    data = {
        "name": deal.name,
        "customer": str(deal.customer_id),
        "stage": str(deal.stage_id),
        "amount": "100",
        "currency": deal.currency,
        "expected_close_date": deal.expected_close_date.isoformat(),
        "assigned_to": "",
        "source_campaign": str(theirs.pk),
    }
    assert "source_campaign" in client.post(url, data).context["form"].errors
    assert client.post(url, {**data, "source_campaign": str(mine.pk)}).status_code == 302
    with tenant_context(org_a.pk):
        assert Opportunity.objects.get(pk=deal.pk).source_campaign_id == mine.pk
    html = client.get(reverse("sales:opportunity_detail", args=[deal.pk])).content.decode()
    assert reverse("marketing:campaign_detail", args=[mine.pk]) in html and "Source of deals" in html


def test_interaction_form_credits_a_campaign(client, login, org_a, org_b, admin_a):
    mine = mf.campaign(org_a, name="Credited")
    theirs = mf.campaign(org_b, name="Foreign")
    customer = factories.customer(org_a)
    login(admin_a)
    url = reverse("customers:interaction_create", args=[customer.pk])
    response = client.post(url, {"interaction_type": "call", "campaign_id": str(theirs.pk)})
    assert response.status_code == 302
    assert client.post(url, {"interaction_type": "call", "campaign_id": str(mine.pk)}).status_code == 302
    with tenant_context(org_a.pk):
        assert list(Interaction.objects.filter(customer=customer).values_list("campaign_id", flat=True)) == [
            mine.pk
        ]
    html = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "Credited" in html and "Foreign" not in html


def test_campaign_options_are_the_organizations_newest_first_with_the_chosen_one(org_a, org_b):
    old = mf.campaign(org_a, name="Old")
    new = mf.campaign(org_a, name="New")
    mf.campaign(org_b, name="B")
    with tenant_context(org_a.pk):
        assert [c.pk for c in selectors.campaign_options(organization_id=org_a.pk)] == [new.pk, old.pk]
        assert selectors.campaign_options(organization_id=org_a.pk, include_id=old.pk)[-1].pk == old.pk
