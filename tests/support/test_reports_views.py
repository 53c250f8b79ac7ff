"""The support report pages: who may open them, what they show (the figures of support/reports/, rendered),
the answers list with its filters and keyset pages, drill-down links that open, and nothing of another
organization."""

from __future__ import annotations

import datetime as dt
import json
import re
from urllib.parse import unquote, urlencode

import pytest
from django.test import Client
from django.urls import reverse

from crm.permissions import MATRIX, Capability
from crm.tenancy import system_context
from support.models import Survey
from tests import factories
from tests.support.test_reports import answered, at, build_data

MARCH = {"start": "2026-03-01", "end": "2026-03-31"}
PAGES = ("support:reports", "support:report_agents", "support:report_comments")


@pytest.fixture
def data(db):
    """The hand-made data set of tests/support/test_reports.py (its figures are checked there)."""
    return build_data()


def values(body: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}".*?data-value="([^"]*)"', body, re.S)
    assert match, testid
    return match.group(1)


@pytest.mark.parametrize("name", PAGES)
def test_only_roles_that_view_support_reports_open_the_pages(data, login, name):
    allowed = {role for role, caps in MATRIX.items() if Capability.VIEW_SUPPORT_REPORTS in caps}
    assert allowed == {"support_manager", "admin"}
    for role in MATRIX:
        client = login(factories.user(data.org, role=role), on=Client())
        response = client.get(reverse(name), MARCH)
        assert response.status_code == (200 if role in allowed else 403), role
    anonymous = Client().get(reverse(name))
    assert anonymous.status_code == 302 and anonymous.url.startswith(reverse("login"))


def test_the_nav_offers_support_reports_to_those_who_may_open_them(data, login):
    manager = login(data.manager, on=Client())
    agent = login(data.alice, on=Client())
    assert reverse("support:reports") in manager.get(reverse("home")).content.decode()
    assert reverse("support:reports") not in agent.get(reverse("home")).content.decode()


def test_the_satisfaction_page_shows_the_reports_figures_and_chart_data(data, login, client):
    login(data.manager)
    response = client.get(reverse("support:reports"), MARCH)
    body = response.content.decode()
    assert values(body, "total-csat") == "3.00"
    assert values(body, "total-csat-responses") == "5"
    assert values(body, "total-satisfied") == "40.0"
    assert values(body, "total-nps") == "0.0"
    assert values(body, "total-nps-responses") == "5"
    assert (values(body, "promoters"), values(body, "passives"), values(body, "detractors")) == (
        "2",
        "1",
        "2",
    )
    assert "Alice Able" in body and "Unattributed" in body and "Billing" in body
    chart = json.loads(re.search(r'id="support-reports-data"[^>]*>(.*?)</script>', body, re.S).group(1))
    periods = chart["satisfaction"]["periods"]
    assert periods["csat_responses"] == [0, 4, 1, 0, 0, 0]
    assert periods["csat_average"] == [None, 2.75, 4.0, None, None, None]
    assert periods["nps"] == [None, -100.0, 100.0, 0.0, None, -100.0]
    assert len(periods["urls"]) == 6
    assert "<script>" not in body  # no inline JS: the figures travel as JSON (json_script)
    # The latest comments, with their ticket links.
    assert body.count('data-testid="answer"') == 5
    assert reverse("support:ticket_detail", args=[data.t.b2.pk]) in body


def test_the_agent_page_shows_every_agents_figures(data, login, client):
    login(data.manager)
    body = client.get(reverse("support:report_agents"), MARCH).content.decode()
    row = re.search(rf'<tr data-key="{data.bob.pk}">(.*?)</tr>', body, re.S).group(1)
    cells = dict(re.findall(r'data-col="([a-z-]+)" data-value="([^"]*)"', row))
    assert cells == {
        "handled": "2",
        "first-response": "190.0",
        "resolution": "720.0",
        "sla": "0.0",
        "csat": "2.00",
        "reopen": "0.0",
    }
    assert "3 h 10 min" in row and "12 h 00 min" in row
    assert values(body, "total-handled") == "6"
    assert values(body, "total-sla") == "66.7"
    assert values(body, "total-reopen") == "16.7"
    assert values(body, "total-first-response") == "30.0"
    chart = json.loads(re.search(r'id="support-reports-data"[^>]*>(.*?)</script>', body, re.S).group(1))
    assert chart["performance"]["labels"][:2] == ["Alice Able", "Bob Baker"]
    assert chart["performance"]["handled"][:2] == [3, 2]


def test_drill_down_links_open_the_queue_and_the_answers_they_count(data, login, client):
    login(data.manager)
    body = client.get(reverse("support:report_agents"), MARCH).content.decode()
    row = re.search(rf'<tr data-key="{data.bob.pk}">(.*?)</tr>', body, re.S).group(1)
    queue_link = re.search(r'data-col="handled"[^>]*><a href="([^"]+)"', row).group(1).replace("&amp;", "&")
    assert queue_link.startswith(reverse("support:queue"))
    queue = client.get(queue_link)
    assert queue.status_code == 200
    assert data.t.b2.subject in queue.content.decode()
    csat_link = re.search(r'data-col="csat"[^>]*><a href="([^"]+)"', row).group(1).replace("&amp;", "&")
    answers = client.get(csat_link).content.decode()
    assert answers.count('data-testid="answer"') == 3  # Bob's three CSAT answers, with or without a comment


def test_the_answers_list_filters_and_pages(data, login, client, django_assert_max_num_queries):
    login(data.manager)
    url = reverse("support:report_comments")
    with_comments = client.get(url, MARCH).content.decode()
    commented = sum(1 for row in data.csat if row[5]) + sum(1 for row in data.nps if row[4])
    assert with_comments.count('data-testid="answer"') == commented == 7
    everything = client.get(url, {**MARCH, "all": "1"}).content.decode()
    assert everything.count('data-testid="answer"') == 10
    nps_bob = client.get(
        url, {**MARCH, "all": "1", "kind": "nps", "agent": str(data.bob.pk)}
    ).content.decode()
    assert nps_bob.count('data-testid="answer"') == 2 and "Never again" in nps_bob
    unattributed = client.get(url, {**MARCH, "agent": "none", "kind": "nps"}).content.decode()
    assert unattributed.count('data-testid="answer"') == 1 and "Meh" in unattributed
    billing = client.get(url, {**MARCH, "all": "1", "category": "billing", "kind": "csat"}).content.decode()
    assert billing.count('data-testid="answer"') == 2
    # Keyset pages: 30 more answers, 25 a page, newest first, nothing lost or repeated.
    customer = factories.customer(data.org)
    for n in range(30):
        answered(data.org, kind="nps", score=8, when=at(20, 9, n), customer=customer, comment=f"note {n:02d}")
    seen, params = [], {**MARCH, "kind": "nps"}
    while True:
        with django_assert_max_num_queries(20):
            page = client.get(url, params).content.decode()
        seen += re.findall(r'data-survey="([0-9a-f-]+)"', page)
        cursor = re.search(r'cursor=([^"&]+)"[^>]*>[^<]*Next', page)
        if not cursor:
            break
        params = {**params, "cursor": unquote(cursor.group(1))}
    with system_context():
        expected = list(
            Survey.objects.filter(organization=data.org, kind="nps", responded_at__month=3)
            .exclude(comment="")
            .order_by("-responded_at", "-id")
            .values_list("id", flat=True)
        )
    assert seen == [str(pk) for pk in expected] and len(seen) == 33


def test_another_organizations_answers_never_show(data, login, client):
    other = factories.organization(name="Other Org")
    stranger = factories.user(other, role="support_agent")
    customer = factories.customer(other)
    answered(
        other,
        kind="csat",
        score=1,
        when=at(3, 9),
        customer=customer,
        agent=stranger,
        comment="Foreign secret",
    )
    login(data.manager)
    for name in PAGES:
        for params in (MARCH, {**MARCH, "all": "1", "agent": str(stranger.pk)}):
            body = client.get(reverse(name), params).content.decode()
            assert "Foreign secret" not in body and stranger.last_name not in body
    body = client.get(reverse("support:report_comments"), {**MARCH, "all": "1", "agent": str(stranger.pk)})
    assert body.content.decode().count('data-testid="answer"') == 0
    assert (
        values(client.get(reverse("support:reports"), MARCH).content.decode(), "total-csat-responses") == "5"
    )


@pytest.mark.parametrize(
    ("params", "start", "end"),
    [
        ({"start": "2026-03-31", "end": "2026-03-01"}, None, None),  # reversed: the default period
        ({"start": "2020-01-01", "end": "2026-03-31"}, None, None),  # over two years: the default period
        ({"start": "not-a-date"}, None, None),
        ({"start": "2026-03-01", "end": "2026-03-31", "unit": "month"}, "2026-03-01", "2026-03-31"),
    ],
)
def test_the_period_form_falls_back_to_the_default_on_bad_input(data, login, client, params, start, end):
    login(data.manager)
    response = client.get(reverse("support:reports"), params)
    assert response.status_code == 200
    period = response.context["period"]
    if start:
        assert (period.start.isoformat(), period.end.isoformat(), period.unit) == (start, end, "month")
    else:
        assert (period.end - period.start).days < 7 * 12 + 7 and period.unit == "week"


def test_the_default_period_is_the_last_twelve_weeks(data, login, client):
    login(data.manager)
    period = client.get(reverse("support:reports")).context["period"]
    assert period.start.weekday() == 0 and (period.end - period.start).days in range(77, 84)
    by_month = client.get(reverse("support:reports"), {"unit": "month"}).context["period"]
    assert by_month.start.day == 1 and len(by_month.buckets()) == 12


def test_report_links_keep_the_period(data, login, client):
    login(data.manager)
    body = client.get(reverse("support:report_agents"), {**MARCH, "unit": "month"}).content.decode()
    expected = urlencode({**MARCH, "unit": "month"}).replace("&", "&amp;")
    assert f"{reverse('support:reports')}?{expected}" in body
    assert dt.date(2026, 3, 31).isoformat() in body
