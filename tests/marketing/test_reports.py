"""Campaign reports (marketing/selectors/reports.py, marketing/views/reports.py): the funnel recomputed from
hand-made email_sends, leads, conversions, cost per lead and ROI (zero cost included) written out by hand;
the comparison page's rows, totals, sorting, filters, CSV export and query count; who may open what."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.tenancy import system_context, tenant_context
from marketing.attribution import AttributionModel
from marketing.models import Campaign, FormSubmission
from marketing.selectors import reports
from tests import factories
from tests.marketing import factories as mf

pytestmark = pytest.mark.django_db
days = datetime.timedelta


def _cost(campaign, amount) -> None:
    with tenant_context(campaign.organization_id):
        Campaign.objects.filter(pk=campaign.pk).update(actual_cost=Decimal(amount))
    campaign.actual_cost = Decimal(amount)


def build_reports_data(org) -> SimpleNamespace:
    """The email campaign E (cost 300) and its recipients, forms and deals; Z (no cost), X (costs in EUR);
    one campaign that ended before the period and one that starts after it. Organization: USD, UTC."""
    today = timezone.localdate()
    s = (timezone.now() - days(days=5)).replace(microsecond=0)  # E's send
    e = mf.campaign(org, name="Email E", status="active", start_date=s.date() - days(1), send_at=s)
    _cost(e, "300.00")
    r = {n: factories.customer(org, first_name=n) for n in ("R1", "R2", "R3", "R4", "R5", "R6", "R7")}
    touch = mf.campaign_touch

    # R1: known before (a note), delivered, opened and clicked; won 900 the day after the send.
    touch(r["R1"], campaign=None, at=s - days(2), kind="note")
    mf.sent_email(
        org,
        campaign=e,
        customer=r["R1"],
        status="delivered",
        delivered_at=s + days(minutes=1),
        opened_at=s + days(hours=1),
        clicked_at=s + days(hours=2),
    )
    touch(r["R1"], campaign=e, at=s + days(hours=2))
    mf.won_deal(org, customer=r["R1"], amount=900, closed_on=(s + days(1)).date())
    # R2: sent and opened; its open is its first interaction ever: a lead.
    mf.sent_email(org, campaign=e, customer=r["R2"], opened_at=s + days(hours=3))
    touch(r["R2"], campaign=e, at=s + days(hours=3), kind="email_opened")
    # R3 bounced; R4 failed (never sent); R6 still queued; R7 claimed by a worker, never confirmed sent.
    mf.sent_email(org, campaign=e, customer=r["R3"], status="bounced", bounced_at=s + days(minutes=1))
    mf.sent_email(org, campaign=e, customer=r["R4"], status="failed", sent_at=None, failed_at=s)
    mf.sent_email(org, campaign=e, customer=r["R6"], status="queued", sent_at=None, message_id="")
    mf.sent_email(org, campaign=e, customer=r["R7"], status="sending", message_id="")
    # R5: delivered, clicked without a recorded open (images off), won 250 ten days BEFORE the send.
    touch(r["R5"], campaign=None, at=s - days(20), kind="note")
    mf.sent_email(org, campaign=e, customer=r["R5"], status="delivered", clicked_at=s + days(hours=5))
    touch(r["R5"], campaign=e, at=s + days(hours=5))
    mf.won_deal(org, customer=r["R5"], amount=250, closed_on=(s - days(10)).date())

    # E's form: F1 new (its submission is its first interaction), won 600 today; F2 new, no deal; F3 known
    # before (not a lead), submitted, won 400 today: revenue for E, but not a conversion of E.
    form = mf.lead_form(org, campaign=e, slug="e-form")
    f = {n: factories.customer(org, first_name=n) for n in ("F1", "F2", "F3")}
    touch(f["F3"], campaign=None, at=s - days(30), kind="note")
    with tenant_context(org.pk):
        for name, created in (("F1", True), ("F2", True), ("F3", False)):
            FormSubmission.objects.create(
                organization=org,
                form=form,
                customer=f[name],
                created_customer=created,
                submitted_at=s + days(1),
            )
    touch(f["F1"], campaign=e, at=s + days(1), kind="form_submission")
    touch(f["F3"], campaign=e, at=s + days(1), kind="form_submission")
    mf.won_deal(org, customer=f["F1"], amount=600, closed_on=today)
    mf.won_deal(org, customer=f["F3"], amount=400, closed_on=today)

    # Z: a webinar without cost: Z1's first interaction, won 500.
    z = mf.campaign(
        org,
        name="Webinar Z",
        channels=["webinar"],
        status="completed",
        start_date=today - days(40),
        end_date=today - days(20),
    )
    z1 = factories.customer(org, first_name="Z1")
    touch(z1, campaign=z, at=timezone.now() - days(30), kind="meeting")
    mf.won_deal(org, customer=z1, amount=500, closed_on=today - days(2))
    # X: ads paid in EUR, nothing else.
    x = mf.campaign(
        org, name="Ads X", channels=["ads"], status="paused", currency="EUR", start_date=today - days(50)
    )
    _cost(x, "100.00")
    # Outside the period [today-60, today]: ended before it, or starts after it.
    old = mf.campaign(org, name="Old", start_date=today - days(200), end_date=today - days(61))
    later = mf.campaign(org, name="Later", status="draft", start_date=today + days(1))
    return SimpleNamespace(org=org, today=today, s=s, e=e, z=z, x=x, old=old, later=later, form=form)


@pytest.fixture
def data(org_a):
    return build_reports_data(org_a)


def _period(data) -> reports.Period:
    return reports.Period(start=data.today - days(60), end=data.today)


# --- The funnel -------------------------------------------------------------------------------------------


def test_the_funnel_is_recomputed_from_the_sends(data, admin_a):
    """Sent R1 R2 R3 R5 (4; not R4 failed, R6 queued, R7 still sending); delivered without the bounce (3);
    opened R1 R2 and R5's click (3); clicked R1 R5 (2); converted R1 (won after the send) and F1 (form lead,
    won after submitting): 2."""
    with tenant_context(data.org.pk):
        figures = reports.campaign_funnel(actor=admin_a, campaign=data.e)
    assert [(s.key, s.count, s.of_previous, s.of_first) for s in figures.funnel] == [
        ("sent", 4, None, None),
        ("delivered", 3, Decimal("75.0"), Decimal("75.0")),
        ("opened", 3, Decimal("100.0"), Decimal("75.0")),
        ("clicked", 2, Decimal("66.7"), Decimal("50.0")),
        ("converted", 2, Decimal("100.0"), Decimal("50.0")),
    ]
    assert figures.delivery_rate == Decimal("75.0")
    assert figures.open_rate == Decimal("100.0")  # 3 of 3 delivered
    assert figures.click_rate == Decimal("66.7")  # 2 of 3 delivered


def test_leads_cost_per_lead_revenue_and_roi(data, admin_a):
    """Leads: F1 and F2 (new from the form) and R2 (first touched by E) = 3; cost per lead 300 / 3 = 100.
    Revenue: R1 900 + F1 600 + F3 400 = 1900 under every model (E is their only campaign); R5's deal came
    before any touch. ROI (1900 - 300) / 300 = 533.3 %."""
    with tenant_context(data.org.pk):
        figures = reports.campaign_funnel(actor=admin_a, campaign=data.e, model=AttributionModel.LAST_TOUCH)
    assert figures.counts.leads == 3
    assert figures.cost == Decimal("300.00")
    assert figures.cost_per_lead == Decimal("100.00")
    assert (
        figures.revenue.first_touch
        == figures.revenue.last_touch
        == figures.revenue.linear
        == Decimal("1900.00")
    )
    assert figures.revenue.deals == 3
    assert figures.attributed == Decimal("1900.00")
    assert figures.roi == Decimal("533.3")


def test_roi_is_undefined_without_cost(data, admin_a, login):
    with tenant_context(data.org.pk):
        figures = reports.campaign_funnel(actor=admin_a, campaign=data.z)
    assert figures.cost == 0 and figures.attributed == Decimal("500.00")
    assert figures.roi is None
    assert figures.cost_per_lead == Decimal("0.00")  # one lead, no cost
    client = login(admin_a)
    response = client.get(
        reverse("marketing:campaign_funnel_panel", args=[data.z.pk]), HTTP_HX_REQUEST="true"
    )
    assert b'data-testid="roi" data-value="">\xe2\x80\x94<' in response.content  # "—"


def test_costs_in_another_currency_have_no_roi(data, admin_a):
    with tenant_context(data.org.pk):
        figures = reports.campaign_funnel(actor=admin_a, campaign=data.x)
    assert figures.cost_currency == "EUR" and figures.currency == "USD"
    assert figures.roi is None


def test_the_funnel_is_two_queries(data, admin_a):
    with system_context():
        admin_a.organization  # noqa: B018 - loaded, as the request's user has it
    with tenant_context(data.org.pk), CaptureQueriesContext(connection) as queries:
        reports.campaign_funnel(actor=admin_a, campaign=data.e)
    assert len(queries) == 2  # counts, attribution


def test_the_panel_is_a_partial_through_htmx_and_a_page_otherwise(data, admin_a, login):
    client = login(admin_a)
    url = reverse("marketing:campaign_funnel_panel", args=[data.e.pk])
    partial = client.get(url, {"model": "first_touch"}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    html = partial.content.decode()
    assert "<html" not in html and 'data-testid="funnel-panel"' in html
    assert 'data-testid="revenue" data-value="1900.00"' in html
    assert 'data-testid="roi" data-value="533.3"' in html
    assert 'value="first_touch" checked' in html
    assert 'data-testid="leads" data-value="3"' in html
    assert 'data-testid="cost-per-lead" data-value="100.00"' in html
    page = client.get(url)
    assert page.status_code == 200 and "<title>" in page.content.decode()
    assert "Email E" in page.content.decode()


def test_the_panel_without_sends_says_what_to_do(org_a, admin_a, login):
    quiet = mf.campaign(org_a, name="Quiet")
    response = login(admin_a).get(
        reverse("marketing:campaign_funnel_panel", args=[quiet.pk]), HTTP_HX_REQUEST="true"
    )
    assert 'data-testid="funnel-empty"' in response.content.decode()


def test_the_panel_of_another_organization_is_404(data, admin_b, login):
    response = login(admin_b).get(reverse("marketing:campaign_funnel_panel", args=[data.e.pk]))
    assert response.status_code == 404


def test_a_sales_rep_sees_the_panel_but_not_the_comparison(data, login):
    rep = factories.user(data.org, role="sales_rep")
    client = login(rep)
    panel = client.get(reverse("marketing:campaign_funnel_panel", args=[data.e.pk]), HTTP_HX_REQUEST="true")
    assert panel.status_code == 200
    assert "Compare campaigns" not in panel.content.decode()
    assert client.get(reverse("marketing:campaign_comparison")).status_code == 403
    assert client.get(reverse("marketing:campaign_comparison_export")).status_code == 403


# --- The comparison ---------------------------------------------------------------------------------------

# By hand, period [today-60, today]: E, Z and X ran in it ("Old" ended before, "Later" starts after).
EXPECTED_ROWS = {
    #          cost      cur    sent deliv open click leads conv revenue    open_rate click_rate cpl      roi
    "Email E": ("300.00", "USD", 4, 3, 3, 2, 3, 2, "1900.00", "100.0", "66.7", "100.00", "533.3"),
    "Webinar Z": ("0.00", "USD", 0, 0, 0, 0, 1, 0, "500.00", None, None, "0.00", None),
    "Ads X": ("100.00", "EUR", 0, 0, 0, 0, 0, 0, "0.00", None, None, None, None),
}


def _row_tuple(row: reports.CampaignFigures) -> tuple:
    c = row.counts

    def text(value):
        return None if value is None else str(value)

    return (
        str(row.cost), row.cost_currency, c.sent, c.delivered, c.opened, c.clicked, c.leads, c.conversions,
        str(row.attributed), text(row.open_rate), text(row.click_rate), text(row.cost_per_lead), text(row.roi),
    )  # fmt: skip


def test_the_comparison_rows_and_totals(data, admin_a):
    with tenant_context(data.org.pk):
        comparison = reports.campaign_comparison(actor=admin_a, period=_period(data))
    assert {row.campaign.name: _row_tuple(row) for row in comparison.rows} == EXPECTED_ROWS
    # Default order: revenue, largest first.
    assert [row.campaign.name for row in comparison.rows] == ["Email E", "Webinar Z", "Ads X"]
    t = comparison.total
    # Cost: 300 + 0 (X's EUR left out); sends E's; leads 3 + 1; conversions 2; revenue 1900 + 500.
    assert (t.cost, t.counts.sent, t.counts.delivered, t.counts.opened, t.counts.clicked) == (
        Decimal("300.00"), 4, 3, 3, 2,
    )  # fmt: skip
    assert (t.counts.leads, t.counts.conversions, t.attributed) == (4, 2, Decimal("2400.00"))
    assert (t.open_rate, t.click_rate) == (Decimal("100.0"), Decimal("66.7"))
    assert t.partial_cost and t.cost_per_lead is None and t.roi is None
    assert [c.name for c in comparison.other_currency_campaigns] == ["Ads X"]


def test_the_comparison_totals_have_roi_when_every_cost_is_in_one_currency(data, admin_a):
    with tenant_context(data.org.pk):
        comparison = reports.campaign_comparison(actor=admin_a, period=_period(data), channel="email")
    assert [row.campaign.name for row in comparison.rows] == ["Email E"]
    t = comparison.total
    assert not t.partial_cost
    assert (t.cost_per_lead, t.roi) == (Decimal("100.00"), Decimal("533.3"))


def test_the_comparison_filters_by_status_and_channel(data, admin_a):
    with tenant_context(data.org.pk):
        paused = reports.campaign_comparison(actor=admin_a, period=_period(data), status="paused")
        webinars = reports.campaign_comparison(actor=admin_a, period=_period(data), channel="webinar")
        later = reports.campaign_comparison(
            actor=admin_a, period=reports.Period(data.today + days(1), data.today + days(5))
        )
    assert [r.campaign.name for r in paused.rows] == ["Ads X"]
    assert [r.campaign.name for r in webinars.rows] == ["Webinar Z"]
    # "Later" starts tomorrow; E and X have no end date, so they are still running then.
    assert sorted(r.campaign.name for r in later.rows) == ["Ads X", "Email E", "Later"]


@pytest.mark.parametrize(
    ("sort", "names"),
    [
        ("name", ["Ads X", "Email E", "Webinar Z"]),
        ("-name", ["Webinar Z", "Email E", "Ads X"]),
        ("-leads", ["Email E", "Webinar Z", "Ads X"]),
        ("cost", ["Webinar Z", "Email E", "Ads X"]),  # X's EUR cost is not comparable: last
        ("-roi", ["Email E", "Ads X", "Webinar Z"]),  # no ROI: last, then by name
        ("open_rate", ["Email E", "Ads X", "Webinar Z"]),
    ],
)
def test_the_comparison_sorts(data, admin_a, sort, names):
    with tenant_context(data.org.pk):
        comparison = reports.campaign_comparison(actor=admin_a, period=_period(data), sort=sort)
    assert [r.campaign.name for r in comparison.rows] == names


def test_the_comparison_model_changes_the_revenue(data, admin_a):
    """Z1's deal is Z's under every model; E's three deals are E's alone: the models agree here, and the
    model chosen is the one shown."""
    with tenant_context(data.org.pk):
        comparison = reports.campaign_comparison(
            actor=admin_a, period=_period(data), model=AttributionModel.FIRST_TOUCH
        )
    assert comparison.model == AttributionModel.FIRST_TOUCH
    assert comparison.total.attributed == Decimal("2400.00")


def _page(client, data, **params):
    query = {"period": "custom", "start": data.today - days(60), "end": data.today, **params}
    return client.get(reverse("marketing:campaign_comparison"), query)


def test_the_comparison_page_shows_the_figures(data, admin_a, login):
    response = _page(login(admin_a), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["comparison"].total.attributed == Decimal("2400.00")
    assert [row.campaign.name for row, _url in response.context["rows"]] == ["Email E", "Webinar Z", "Ads X"]
    assert 'data-col="revenue" data-value="1900.00"' in html
    assert 'data-col="roi" data-value="533.3"' in html
    assert 'data-testid="other-currency-campaigns"' in html
    assert 'id="marketing-comparison-data"' in html
    chart = response.context["chart"]
    assert chart["labels"] == ["Email E", "Webinar Z", "Ads X"]
    assert chart["cost"] == [300.0, 0.0, None] and chart["revenue"] == [1900.0, 500.0, 0.0]
    assert 'aria-sort="descending" data-sort-key="revenue"' in html


def test_the_comparison_page_has_an_empty_state_and_reports_bad_dates(data, admin_a, login):
    client = login(admin_a)
    empty = client.get(
        reverse("marketing:campaign_comparison"),
        {"period": "custom", "start": "2001-01-01", "end": "2001-12-31"},
    )
    assert 'data-testid="empty"' in empty.content.decode()
    wrong = client.get(
        reverse("marketing:campaign_comparison"),
        {"period": "custom", "start": "2001-12-31", "end": "2001-01-01"},
    )
    assert wrong.status_code == 200
    assert "The period ends before it starts." in wrong.content.decode()


def test_the_comparison_query_count_does_not_grow_with_campaigns(data, admin_a, login):
    client = login(admin_a)
    with CaptureQueriesContext(connection) as few:
        assert _page(client, data).status_code == 200
    for n in range(8):
        extra = mf.campaign(data.org, name=f"Extra {n}", start_date=data.today - days(3))
        mf.sent_email(data.org, campaign=extra, customer=factories.customer(data.org))
    with CaptureQueriesContext(connection) as many:
        response = _page(client, data)
    assert len(response.context["rows"]) == 11
    assert len(many) == len(few)


def test_the_comparison_selector_is_three_queries(data, admin_a):
    with system_context():
        admin_a.organization  # noqa: B018 - loaded, as the request's user has it
    with tenant_context(data.org.pk), CaptureQueriesContext(connection) as queries:
        reports.campaign_comparison(actor=admin_a, period=_period(data))
    assert len(queries) == 3  # campaigns, figures, attribution


def test_the_csv_export_has_the_rows_and_the_totals(data, admin_a, login):
    response = login(admin_a).get(
        reverse("marketing:campaign_comparison_export"),
        {"period": "custom", "start": data.today - days(60), "end": data.today, "sort": "name"},
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header, *rows, total = lines
    assert header[0] == "Campaign" and header[16] == "Revenue (Linear)" and header[-1] == "ROI (%)"
    assert [r[0] for r in rows] == ["Ads X", "Email E", "Webinar Z"]
    email = rows[1]
    assert email[5:] == [
        "300.00",
        "USD",
        "4",
        "3",
        "3",
        "2",
        "100.0",
        "66.7",
        "3",
        "100.00",
        "2",
        "1900.00",
        "USD",
        "533.3",
    ]
    assert rows[2][-1] == ""  # Z: no cost, no ROI
    assert total[0] == "Total"
    assert total[5:] == [
        "300.00",
        "",
        "4",
        "3",
        "3",
        "2",
        "100.0",
        "66.7",
        "4",
        "",
        "2",
        "2400.00",
        "USD",
        "",
    ]


def test_campaign_names_are_spreadsheet_safe_in_the_export(org_a, admin_a, login):
    mf.campaign(org_a, name='=HYPERLINK("http://evil")', start_date=timezone.localdate())
    response = login(admin_a).get(reverse("marketing:campaign_comparison_export"))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[1][0].startswith("'=")


def test_campaign_names_are_escaped_on_the_page(org_a, admin_a, login):
    mf.campaign(org_a, name="<script>alert(1)</script>", start_date=timezone.localdate())
    html = login(admin_a).get(reverse("marketing:campaign_comparison")).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_navigation_links_to_the_comparison(admin_a, login):
    html = login(admin_a).get(reverse("marketing:campaign_comparison")).content.decode()
    assert "Marketing ROI" in html and "bi-graph-up-arrow" in html
