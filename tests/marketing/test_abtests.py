"""A/B tests: configuring a test and its variants, counting a test sample (recomputed by hand), the decision
task (once, releasing the held recipients once, to the winner or the default), the report panel and "decide
now", and the walls: roles and other organizations."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.tenancy import system_context
from marketing import abtest
from marketing import sending as sending_module
from marketing.models import ABTest, Campaign, EmailSend, Variant
from marketing.services import abtests as services
from marketing.tasks.abtests import decide_ab_test, decide_due_ab_tests
from sales.models import Opportunity
from tests import factories
from tests.marketing import factories as mf

# --- fixtures and helpers ----------------------------------------------------------------------------------


@pytest.fixture
def marketer(org_a):
    return factories.user(org_a, role="marketing_manager")


@pytest.fixture
def campaign(org_a):
    template = mf.email_template(org_a, name="Spring", subject="Spring is here")
    return mf.campaign(org_a, template=template)


def _send(org, campaign, variant, *, opened=False, clicked=False, **fields):
    """One recipient of the test sample (a new customer), sent now; returns the customer."""
    customer = factories.customer(org)
    now = timezone.now()
    fields.setdefault("in_test", True)
    mf.sent_email(
        org,
        campaign=campaign,
        customer=customer,
        variant=variant,
        opened_at=now if opened else None,
        clicked_at=now if clicked else None,
        **fields,
    )
    return customer


def _held(org, campaign, count):
    for _ in range(count):
        mf.sent_email(
            org,
            campaign=campaign,
            customer=factories.customer(org),
            status="held",
            sent_at=None,
            message_id="",
        )


def _won(org, customer, amount, *, currency="USD", closed=None):
    opportunity = factories.opportunity(org, customer=customer, amount=Decimal(amount), currency=currency)
    with system_context():
        Opportunity.objects.filter(pk=opportunity.pk).update(
            status="won", actual_close_date=closed or timezone.localdate()
        )
    return opportunity


def _variants(org, campaign):
    with system_context():
        return {v.label: v for v in Variant.objects.filter(campaign=campaign)}


def _running(org, campaign, *, due=True, **fields):
    now = timezone.now()
    fields.setdefault("metric", "open_rate")
    fields.setdefault("min_sample", 2)
    return mf.ab_test(
        org,
        campaign=campaign,
        status="running",
        started_at=now - datetime.timedelta(hours=24),
        decide_at=now - datetime.timedelta(minutes=1) if due else now + datetime.timedelta(hours=3),
        duration_hours=24,
        **fields,
    )


@pytest.fixture
def enqueued(monkeypatch):
    """The campaigns whose sending was (re)started, through the real enqueue_send_chunks."""
    calls = []
    real = sending_module.enqueue_send_chunks

    def spy(campaign_id, **kwargs):
        calls.append(campaign_id)
        return real(campaign_id, **kwargs)

    monkeypatch.setattr(sending_module, "enqueue_send_chunks", spy)
    return calls


def _reload(model, pk):
    with system_context():
        return model.objects.get(pk=pk)


def _by_status(campaign):
    with system_context():
        rows = EmailSend.objects.filter(campaign_id=campaign.pk).values_list(
            "status", "in_test", "variant_id"
        )
        return sorted((status, in_test, str(variant)) for status, in_test, variant in rows)


# --- configuration -----------------------------------------------------------------------------------------


def test_turning_the_test_on_creates_variants_a_and_b_with_a_as_default(org_a, marketer, campaign, as_tenant):
    with as_tenant(org_a, marketer):
        ab_test = services.abtest_configure(
            campaign=campaign, actor=marketer, enabled=True, test_share=30, metric="click_rate", min_sample=50
        )
        labels = list(Variant.objects.filter(campaign=campaign).values_list("label", flat=True))
    assert labels == ["A", "B"]
    assert (ab_test.test_share, ab_test.metric, ab_test.min_sample, ab_test.status) == (
        30,
        "click_rate",
        50,
        "draft",
    )
    assert ab_test.default_variant.label == "A"


def test_turning_the_test_off_removes_it_and_its_variants(org_a, marketer, campaign, as_tenant):
    with as_tenant(org_a, marketer):
        services.abtest_configure(campaign=campaign, actor=marketer, enabled=True)
        services.abtest_configure(campaign=campaign, actor=marketer, enabled=False)
        assert not ABTest.objects.filter(campaign=campaign).exists()
        assert not Variant.objects.filter(campaign=campaign).exists()


def test_identical_variants_are_reported_and_a_variant_cannot_copy_another(
    org_a, marketer, campaign, as_tenant
):
    with as_tenant(org_a, marketer):
        services.abtest_configure(campaign=campaign, actor=marketer, enabled=True)
        # A and B both send the campaign's template with its subject.
        assert services.abtest_problems(campaign=campaign) == [
            "Variant B is the same as variant A: give it another subject or template."
        ]
        b = Variant.objects.get(campaign=campaign, label="B")
        services.variant_update(variant=b, actor=marketer, subject="Last chance: spring deals", template=None)
        assert services.abtest_problems(campaign=campaign) == []
        # C with the template's own subject is A again ("Spring is here" written out counts as the same).
        with pytest.raises(ValidationError, match="same as variant A"):
            services.variant_create(campaign=campaign, actor=marketer, subject="Spring is here")


def test_the_send_launch_refuses_an_ab_test_whose_variants_are_identical(
    org_a, marketer, campaign, as_tenant
):
    from marketing.services.sends import campaign_send_launch, launch_problems

    with as_tenant(org_a, marketer):
        services.abtest_configure(campaign=campaign, actor=marketer, enabled=True)
        campaign.refresh_from_db()
        problem = "Variant B is the same as variant A: give it another subject or template."
        assert problem in launch_problems(campaign)
        with pytest.raises(ValidationError, match="same as variant A"):
            campaign_send_launch(campaign=campaign, actor=marketer)
        assert Campaign.objects.get(pk=campaign.pk).send_state == Campaign.SendState.NOT_STARTED


def test_a_test_has_two_to_five_variants(org_a, marketer, campaign, as_tenant):
    with as_tenant(org_a, marketer):
        services.abtest_configure(campaign=campaign, actor=marketer, enabled=True)
        b = Variant.objects.get(campaign=campaign, label="B")
        with pytest.raises(ValidationError, match="at least two"):
            services.variant_delete(variant=b, actor=marketer)
        for n in range(3):
            services.variant_create(campaign=campaign, actor=marketer, subject=f"Subject {n}")
        with pytest.raises(ValidationError, match="at most 5"):
            services.variant_create(campaign=campaign, actor=marketer, subject="One too many")
        labels = list(Variant.objects.filter(campaign=campaign).values_list("label", flat=True))
    assert labels == ["A", "B", "C", "D", "E"]


def test_removing_the_default_variant_moves_the_default(org_a, marketer, campaign, as_tenant):
    with as_tenant(org_a, marketer):
        services.abtest_configure(campaign=campaign, actor=marketer, enabled=True)
        services.variant_create(campaign=campaign, actor=marketer, subject="Third")
        a = Variant.objects.get(campaign=campaign, label="A")
        services.variant_delete(variant=a, actor=marketer)
        assert ABTest.objects.get(campaign=campaign).default_variant.label == "B"


def test_an_unknown_merge_field_in_a_variant_subject_is_refused(org_a, marketer, campaign, as_tenant):
    with as_tenant(org_a, marketer):
        services.abtest_configure(campaign=campaign, actor=marketer, enabled=True)
        b = Variant.objects.get(campaign=campaign, label="B")
        with pytest.raises(ValidationError) as error:
            services.variant_update(
                variant=b, actor=marketer, subject="Hi {{ settings.SECRET_KEY }}", template=None
            )
    assert "Unknown merge field" in str(error.value)


def test_the_test_cannot_change_once_the_send_started(org_a, marketer, campaign, as_tenant):
    with as_tenant(org_a, marketer):
        services.abtest_configure(campaign=campaign, actor=marketer, enabled=True)
        Campaign.objects.filter(pk=campaign.pk).update(send_state="sending")
        b = Variant.objects.get(campaign=campaign, label="B")
        with pytest.raises(ValidationError, match="started sending"):
            services.abtest_configure(campaign=campaign, actor=marketer, enabled=False)
        with pytest.raises(ValidationError, match="started sending"):
            services.variant_update(variant=b, actor=marketer, subject="Too late", template=None)


def test_only_campaign_managers_configure_tests(org_a, campaign, as_tenant):
    rep = factories.user(org_a, role="sales_rep")
    with as_tenant(org_a, rep), pytest.raises(PermissionDenied):
        services.abtest_configure(campaign=campaign, actor=rep, enabled=True)


def test_start_sets_the_decision_time_once(org_a, campaign, as_tenant):
    mf.ab_test(org_a, campaign=campaign, duration_hours=6)
    start = timezone.now()
    with as_tenant(org_a):
        first = services.abtest_start(campaign=campaign, now=start)
        again = services.abtest_start(campaign=campaign, now=start + datetime.timedelta(hours=1))
    assert first.status == "running" and first.decide_at == start + datetime.timedelta(hours=6)
    assert (again.started_at, again.decide_at) == (start, start + datetime.timedelta(hours=6))


# --- counting the sample -----------------------------------------------------------------------------------


@pytest.fixture
def hand_made(org_a, campaign):
    """A: 4 sent (2 opened, 1 of them clicked); one recipient won 100 + 50 USD after the email, another won
    a deal the day before it (not a conversion). B: 3 sent, all opened, none clicked; one won 500 EUR
    (a conversion, but no USD revenue). Not counted: a sample row that failed (never sent), a held row."""
    ab_test = _running(org_a, campaign, due=False)
    v = _variants(org_a, campaign)
    a1 = _send(org_a, campaign, v["A"], opened=True, clicked=True)
    _send(org_a, campaign, v["A"], opened=True)
    a3 = _send(org_a, campaign, v["A"])
    _send(org_a, campaign, v["A"])
    _won(org_a, a1, "100.00")
    _won(org_a, a1, "50.00")
    _won(org_a, a3, "999.00", closed=timezone.localdate() - datetime.timedelta(days=1))
    b1 = _send(org_a, campaign, v["B"], opened=True)
    _send(org_a, campaign, v["B"], opened=True)
    _send(org_a, campaign, v["B"], opened=True)
    _won(org_a, b1, "500.00", currency="EUR")
    _send(org_a, campaign, v["B"], status="failed", sent_at=None)
    _held(org_a, campaign, 1)
    return ab_test


def test_the_sample_numbers_match_the_hand_count(org_a, campaign, hand_made, as_tenant):
    v = _variants(org_a, campaign)
    with as_tenant(org_a):
        campaign.refresh_from_db()
        numbers = abtest.variant_numbers(campaign=campaign, as_of=timezone.now())
    a, b = numbers[v["A"].pk], numbers[v["B"].pk]
    assert (a.recipients, a.opens, a.clicks, a.conversions, a.revenue) == (4, 2, 1, 1, Decimal("150.00"))
    assert a.revenue_squares == Decimal("22500.0000")  # one recipient with 150
    assert (b.recipients, b.opens, b.clicks, b.conversions, b.revenue) == (3, 3, 0, 1, Decimal("0"))


def test_events_after_the_cutoff_are_not_counted(org_a, campaign, hand_made, as_tenant):
    v = _variants(org_a, campaign)
    with as_tenant(org_a):
        campaign.refresh_from_db()
        before = abtest.variant_numbers(
            campaign=campaign, as_of=campaign.send_at - datetime.timedelta(seconds=1)
        )
    assert before[v["A"].pk].recipients == 0 and before[v["B"].pk].opens == 0


def test_the_report_panel_shows_the_hand_counted_numbers(org_a, marketer, campaign, hand_made, login, client):
    login(marketer)
    response = client.get(reverse("marketing:campaign_ab_panel", args=[campaign.pk]))
    assert response.status_code == 200
    rows = {row.variant.label: row for row in response.context["report"].rows}
    a, b = rows["A"], rows["B"]
    assert (a.open_rate, a.click_rate, a.conversion_rate) == (50.0, 25.0, 25.0)
    assert (b.open_rate, b.click_rate) == (100.0, 0.0)
    # The metric (open rate) as bars: B's 100 % is the longest, A's 50 % half of it.
    assert (a.metric_value, a.bar_percent, b.bar_percent) == (50.0, 50, 100)
    html = response.content.decode()
    assert 'data-col="open_rate">50.0 %' in html and 'data-col="revenue">150.00 USD' in html
    assert 'data-col="click_rate">25.0 %' in html and 'data-col="conversions">1<' in html
    assert "Decide now" in html and "The winner is chosen at" in html


def test_the_panel_runs_a_fixed_number_of_queries(org_a, marketer, campaign, login, client):
    login(marketer)
    _running(org_a, campaign, due=False)
    v = _variants(org_a, campaign)
    _send(org_a, campaign, v["A"], opened=True)
    url = reverse("marketing:campaign_ab_panel", args=[campaign.pk])
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    for label in ("C", "D"):
        with system_context():
            variant = Variant.objects.create(
                organization=org_a, campaign=campaign, label=label, subject=label
            )
        for _ in range(3):
            _send(org_a, campaign, variant, opened=True, clicked=True)
    with CaptureQueriesContext(connection) as large:
        assert client.get(url).status_code == 200
    assert len(large) == len(small)


# --- deciding ----------------------------------------------------------------------------------------------


def _clear_lead(org, campaign):
    """A: 4 sent, all opened; B: 4 sent, none opened; 3 held. Pooled 0.5: z = 0.5 / sqrt(0.25 * 0.5) =
    2.828, p = 0.00468: A wins at 95 %."""
    v = _variants(org, campaign)
    for _ in range(4):
        _send(org, campaign, v["A"], opened=True)
        _send(org, campaign, v["B"])
    _held(org, campaign, 3)
    return v


def test_the_task_run_twice_decides_once_and_releases_the_held_rows_once(org_a, campaign, enqueued):
    ab_test = _running(org_a, campaign)
    v = _clear_lead(org_a, campaign)
    assert decide_ab_test(str(ab_test.pk), organization_id=str(org_a.pk)) == "decided"
    first = _reload(ABTest, ab_test.pk)
    assert decide_ab_test(str(ab_test.pk), organization_id=str(org_a.pk)) == "decided"
    second = _reload(ABTest, ab_test.pk)
    assert enqueued == [campaign.pk]  # the rest of the audience was released once
    assert first.winner_id == v["A"].pk and first.decided_at == second.decided_at
    assert first.p_value == pytest.approx(0.004678, abs=1e-6)
    assert first.confidence == pytest.approx(1 - 0.004678, abs=1e-6)
    assert "Variant A had the highest open rate" in first.explanation
    assert _by_status(campaign).count(("queued", False, str(v["A"].pk))) == 3
    assert not [row for row in _by_status(campaign) if row[0] == "held"]
    a, b = _reload(Variant, v["A"].pk), _reload(Variant, v["B"].pk)
    assert (a.recipients, a.successes, b.recipients, b.successes) == (4, 4, 4, 0)


def test_an_inconclusive_test_sends_the_default_variant(org_a, campaign, enqueued):
    # Same clear lead, but a minimum of 5 recipients per variant: too few to tell.
    ab_test = _running(org_a, campaign, min_sample=5)
    v = _variants(org_a, campaign)
    with system_context():
        ABTest.objects.filter(pk=ab_test.pk).update(default_variant=v["B"])
    _clear_lead(org_a, campaign)
    assert decide_ab_test(str(ab_test.pk), organization_id=str(org_a.pk)) == "inconclusive"
    decided = _reload(ABTest, ab_test.pk)
    assert decided.winner_id is None and decided.p_value is None
    assert "fewer recipients than the minimum of 5" in decided.explanation
    assert "The default variant B was sent." in decided.explanation
    assert _by_status(campaign).count(("queued", False, str(v["B"].pk))) == 3
    assert enqueued == [campaign.pk]


def test_a_test_not_yet_due_is_left_running(org_a, campaign, enqueued):
    ab_test = _running(org_a, campaign, due=False)
    _clear_lead(org_a, campaign)
    assert decide_ab_test(str(ab_test.pk), organization_id=str(org_a.pk)) == "running"
    assert enqueued == []
    assert [row for row in _by_status(campaign) if row[0] == "held"]


def test_the_beat_task_enqueues_one_decision_per_due_test(org_a, org_b, campaign, monkeypatch):
    due_a = _running(org_a, campaign)
    _running(org_a, mf.campaign(org_a, name="Later"), due=False)
    due_b = _running(org_b, mf.campaign(org_b, name="Of B"))
    mf.ab_test(org_b, campaign=mf.campaign(org_b, name="Draft"))  # not started
    calls = []
    monkeypatch.setattr(
        decide_ab_test, "delay_on_commit", lambda *args, **kwargs: calls.append((args, kwargs))
    )
    assert decide_due_ab_tests() == 2
    assert sorted(calls) == sorted(
        [
            ((str(due_a.pk),), {"organization_id": str(org_a.pk)}),
            ((str(due_b.pk),), {"organization_id": str(org_b.pk)}),
        ]
    )


def test_decide_now_answers_htmx_with_the_decided_panel(org_a, marketer, campaign, login, client, enqueued):
    ab_test = _running(org_a, campaign, due=False)
    _clear_lead(org_a, campaign)
    login(marketer)
    response = client.post(
        reverse("marketing:campaign_ab_decide", args=[campaign.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="ab-winner">Variant A' in html and "Winner chosen" in html
    assert _reload(ABTest, ab_test.pk).status == "decided"
    assert enqueued == [campaign.pk]


def test_decide_now_is_for_campaign_managers(org_a, campaign, login, client):
    _running(org_a, campaign, due=False)
    login(factories.user(org_a, role="sales_manager"))
    panel = client.get(reverse("marketing:campaign_ab_panel", args=[campaign.pk]))
    assert panel.status_code == 200 and "Decide now" not in panel.content.decode()
    assert client.post(reverse("marketing:campaign_ab_decide", args=[campaign.pk])).status_code == 403


# --- the test page -----------------------------------------------------------------------------------------


def test_setting_up_a_test_through_the_page(org_a, marketer, campaign, login, client):
    login(marketer)
    url = reverse("marketing:campaign_ab_edit", args=[campaign.pk])
    page = client.get(url)
    assert page.status_code == 200 and "No A/B test yet" in page.content.decode()
    form = {
        "enabled": "on",
        "test_share": "25",
        "metric": "revenue",
        "duration_hours": "12",
        "confidence_level": "0.990",
        "min_sample": "200",
        "default_variant": "",
    }
    assert client.post(url, form).status_code == 302
    with system_context():
        ab_test = ABTest.objects.get(campaign=campaign)
    assert (ab_test.test_share, ab_test.metric, ab_test.duration_hours) == (25, "revenue", 12)
    assert (ab_test.confidence_level, ab_test.min_sample) == (Decimal("0.990"), 200)
    v = _variants(org_a, campaign)
    response = client.post(
        reverse("marketing:campaign_ab_variant_edit", args=[campaign.pk, v["B"].pk]),
        {"variant-B-subject": "Spring deals inside", "variant-B-template": ""},
    )
    assert response.status_code == 302
    assert _reload(Variant, v["B"].pk).subject == "Spring deals inside"
    response = client.post(
        reverse("marketing:campaign_ab_variant_add", args=[campaign.pk]),
        {"new-subject": "Spring deals inside", "new-template": ""},
    )
    assert response.status_code == 200  # a copy of B: shown as an error on the add form
    assert "same as variant B" in response.content.decode()
    page = client.get(url).content.decode()
    assert 'data-testid="ab-problems"' not in page and 'data-testid="variant-B"' in page


def test_the_settings_form_shows_field_errors(org_a, marketer, campaign, login, client):
    login(marketer)
    url = reverse("marketing:campaign_ab_edit", args=[campaign.pk])
    form = {
        "enabled": "on",
        "test_share": "1",
        "metric": "open_rate",
        "duration_hours": "0",
        "confidence_level": "0.950",
        "min_sample": "100",
    }
    response = client.post(url, form)
    assert response.status_code == 200
    errors = response.context["settings_form"].errors
    assert set(errors) == {"test_share", "duration_hours"}
    with system_context():
        assert not ABTest.objects.filter(campaign=campaign).exists()


def test_the_page_is_read_only_once_the_send_started(org_a, marketer, campaign, login, client):
    mf.ab_test(org_a, campaign=campaign)
    with system_context():
        Campaign.objects.filter(pk=campaign.pk).update(send_state="testing")
    login(marketer)
    html = client.get(reverse("marketing:campaign_ab_edit", args=[campaign.pk])).content.decode()
    assert 'data-testid="ab-locked"' in html and "Save settings" not in html


def test_the_panel_without_a_test_says_what_to_do(org_a, marketer, campaign, login, client):
    login(marketer)
    html = client.get(reverse("marketing:campaign_ab_panel", args=[campaign.pk])).content.decode()
    assert "No A/B test" in html and "set up an A/B test before the send starts" in html


# --- other organizations -----------------------------------------------------------------------------------


def test_another_organizations_campaign_and_variants_are_404(org_a, org_b, admin_b, campaign, login, client):
    mf.ab_test(org_a, campaign=campaign)
    v = _variants(org_a, campaign)
    own = mf.campaign(org_b, name="Own campaign")
    mf.ab_test(org_b, campaign=own)
    login(admin_b)
    for name in ("campaign_ab_edit", "campaign_ab_panel"):
        assert client.get(reverse(f"marketing:{name}", args=[campaign.pk])).status_code == 404
    for name in ("campaign_ab_edit", "campaign_ab_decide", "campaign_ab_variant_add"):
        assert (
            client.post(reverse(f"marketing:{name}", args=[campaign.pk]), {"enabled": ""}).status_code == 404
        )
    for name in ("campaign_ab_variant_edit", "campaign_ab_variant_delete"):
        # Their variant under their campaign, and their variant under one's own campaign.
        for campaign_pk in (campaign.pk, own.pk):
            url = reverse(f"marketing:{name}", args=[campaign_pk, v["B"].pk])
            assert client.post(url, {"variant-B-subject": "x"}).status_code == 404
    assert _variants(org_a, campaign)["B"].subject == "Subject B"
    with system_context():
        assert ABTest.objects.filter(campaign=campaign).exists()
