"""Activity pages: My day (buckets in the user's calendar days, counts, actions), the deal page's activity
section (order, "show more", one-step logging, follow-up), the customer 360 panel, visibility (404) and
fixed query counts."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.tenancy import system_context, tenant_context
from customers.models import Interaction
from sales.models import Activity, SalesSettings
from sales.views import activities as views
from tests import factories

LA = zoneinfo.ZoneInfo("America/Los_Angeles")
# 06:30 UTC on 15 January is 22:30 on the 14th in Los Angeles: the two calendars disagree about "today".
NOW = datetime.datetime(2025, 1, 15, 6, 30, tzinfo=datetime.UTC)


def utc(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime.datetime:
    return datetime.datetime(2025, month, day, hour, minute, tzinfo=datetime.UTC)


@pytest.fixture
def rep(org_a):
    return factories.user(org_a, role="sales_rep", first_name="Lola", time_zone="America/Los_Angeles")


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(views, "_now", lambda: NOW)
    return NOW


# --- My day -------------------------------------------------------------------------------------------------------

# subject: due time (UTC). Los Angeles is UTC-8 in January.
DUE = {
    "A late on the 13th": utc(14, 7),  # 13th 23:00 LA: overdue (in UTC: the 14th, overdue too)
    "B this evening": utc(15, 3),  # 14th 19:00 LA: today (in UTC: the 15th, also "today")
    "C after midnight": utc(15, 9),  # 15th 01:00 LA: upcoming (in UTC it would be today)
    "D at noon": utc(14, 20),  # 14th 12:00 LA: today, already past (in UTC it would be overdue)
    "E last of the week": utc(22, 7, 30),  # 21st 23:30 LA: the 7th day ahead, upcoming
    "F a week and a day": utc(22, 9),  # 22nd 01:00 LA: beyond the 7 days, not shown
    "G undated": None,
}


def _expected_buckets() -> dict[str, set[str]]:
    """The buckets computed independently: each due time's calendar date in Los Angeles against LA's today."""
    today = NOW.astimezone(LA).date()
    buckets: dict[str, set[str]] = {"overdue": set(), "today": set(), "upcoming": set(), "undated": set()}
    for subject, due in DUE.items():
        if due is None:
            buckets["undated"].add(subject)
            continue
        day = due.astimezone(LA).date()
        if day < today:
            buckets["overdue"].add(subject)
        elif day == today:
            buckets["today"].add(subject)
        elif (day - today).days <= 7:
            buckets["upcoming"].add(subject)
    return buckets


@pytest.fixture
def my_activities(org_a, org_b, rep):
    deal = factories.opportunity(org_a, assigned_to=rep, name="Lola's deal")
    for subject, due in DUE.items():
        factories.activity(org_a, opportunity=deal, owner=rep, subject=subject, due_at=due)
    # Not on Lola's day: done, someone else's, another organization's.
    factories.activity(
        org_a, opportunity=deal, owner=rep, subject="Done already", due_at=utc(14, 20), completed_at=NOW
    )
    factories.activity(
        org_a, opportunity=deal, owner=factories.user(org_a), subject="Colleague's", due_at=utc(14, 20)
    )
    factories.activity(org_b, owner=factories.user(org_b), subject="Other org", due_at=utc(14, 20))
    return deal


def test_my_day_buckets_are_the_users_calendar_days_across_the_utc_boundary(
    client, login, rep, my_activities, frozen
):
    expected = _expected_buckets()
    assert expected == {
        "overdue": {"A late on the 13th"},
        "today": {"B this evening", "D at noon"},
        "upcoming": {"C after midnight", "E last of the week"},
        "undated": {"G undated"},
    }
    login(rep)
    response = client.get("/sales/my-day/")
    assert response.status_code == 200
    day = response.context["day"]
    shown = {
        "overdue": {a.subject for a in day.overdue},
        "today": {a.subject for a in day.due_today},
        "upcoming": {a.subject for a in day.upcoming},
        "undated": {a.subject for a in day.undated},
    }
    assert shown == expected
    assert day.counts == {key: len(subjects) for key, subjects in expected.items()}
    assert day.today == datetime.date(2025, 1, 14)
    html = response.content.decode()
    assert 'data-testid="count-overdue">1<' in html and 'data-testid="count-today">2<' in html
    assert 'data-testid="count-upcoming">2<' in html and 'data-testid="count-undated">1<' in html
    assert "Tuesday, 14 January 2025" in html
    for hidden in ("F a week and a day", "Done already", "Colleague's", "Other org"):
        assert hidden not in html
    # Upcoming in due order.
    assert [a.subject for a in day.upcoming] == ["C after midnight", "E last of the week"]


def test_my_day_is_empty_with_a_hint_for_a_new_rep(client, login, org_a):
    newcomer = factories.user(org_a, role="sales_rep")
    login(newcomer)
    html = client.get("/sales/my-day/").content.decode()
    assert "Nothing overdue" in html and "Nothing due today" in html and "Nothing scheduled" in html


def test_my_day_needs_the_selling_capability(client, login, org_a):
    login(factories.user(org_a, role="support_agent"))
    assert client.get("/sales/my-day/").status_code == 403


def test_my_day_runs_a_fixed_number_of_queries(client, login, org_a, rep, frozen):
    deal = factories.opportunity(org_a, assigned_to=rep)
    login(rep)

    def measure() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/sales/my-day/").status_code == 200
        return len(queries)

    factories.activity(org_a, opportunity=deal, owner=rep, due_at=NOW)
    client.get("/sales/my-day/")
    few = measure()
    for hours in range(-40, 200, 8):
        factories.activity(org_a, opportunity=deal, owner=rep, due_at=NOW + datetime.timedelta(hours=hours))
    for _ in range(3):
        factories.activity(org_a, customer=factories.customer(org_a), owner=rep)
    assert measure() == few


def test_completing_on_my_day_swaps_the_row_updates_the_counts_and_offers_a_follow_up(
    client, login, org_a, rep, frozen
):
    deal = factories.opportunity(org_a, assigned_to=rep)
    call = factories.activity(
        org_a, opportunity=deal, owner=rep, kind="call", subject="Ring Bob", due_at=utc(14, 20)
    )
    login(rep)
    response = client.post(
        f"/sales/activities/{call.pk}/complete/",
        {"outcome": "Bob wants a demo", "where": "day"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="activity-{call.pk}"' in html and "Bob wants a demo" in html
    assert 'data-testid="follow-up-offer"' in html
    assert 'hx-swap-oob="true"' in html and 'data-testid="count-today">0<' in html
    # One click makes the follow-up task; a second click makes no other.
    for _ in range(2):
        response = client.post(
            f"/sales/activities/{call.pk}/follow-up/",
            {"days": "2", "where": "day"},
            headers={"HX-Request": "true"},
        )
        assert 'data-testid="follow-up-created"' in response.content.decode()
    with tenant_context(org_a.pk):
        (task,) = Activity.objects.filter(follow_up_of=call)
        assert task.subject == "Follow up: Ring Bob" and task.owner_id == rep.pk
        assert Activity.objects.get(pk=call.pk).outcome == "Bob wants a demo"
        assert Interaction.objects.filter(customer_id=deal.customer_id, interaction_type="call").count() == 1


def test_snoozing_on_my_day_moves_the_due_time_to_tomorrow_morning_in_the_users_zone(
    client, login, org_a, rep, frozen
):
    task = factories.activity(
        org_a, owner=rep, due_at=utc(14, 20), reminder_at=utc(14, 19), reminded_at=utc(14, 19)
    )
    login(rep)
    response = client.post(
        f"/sales/activities/{task.pk}/snooze/",
        {"until": "tomorrow", "where": "day"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    with tenant_context(org_a.pk):
        snoozed = Activity.objects.get(pk=task.pk)
    # Tomorrow for Lola is the 15th (it is the 14th, 22:30, in Los Angeles).
    assert snoozed.due_at == datetime.datetime(2025, 1, 15, 9, 0, tzinfo=LA)
    assert (snoozed.reminder_at, snoozed.reminded_at) == (snoozed.due_at, None)


# --- the deal page's section --------------------------------------------------------------------------------------


def test_deal_section_lists_open_first_then_done_newest_first_with_show_more(client, login, org_a, rep):
    deal = factories.opportunity(org_a, assigned_to=rep)
    now = timezone.now()
    factories.activity(
        org_a, opportunity=deal, owner=rep, subject="Open later", due_at=now + datetime.timedelta(days=3)
    )
    factories.activity(org_a, opportunity=deal, owner=rep, subject="Open undated")
    factories.activity(
        org_a, opportunity=deal, owner=rep, subject="Open soon", due_at=now + datetime.timedelta(days=1)
    )
    for i in range(12):
        factories.activity(
            org_a,
            opportunity=deal,
            owner=rep,
            kind="note",
            subject=f"Done {i:02d}",
            completed_at=now - datetime.timedelta(hours=i),
        )
    login(rep)
    response = client.get(f"/sales/opportunities/{deal.pk}/activities/")
    timeline = response.context["timeline"]
    assert [a.subject for a in timeline.open] == ["Open soon", "Open later", "Open undated"]
    assert [a.subject for a in timeline.done.items] == [f"Done {i:02d}" for i in range(10)]
    assert timeline.done.has_next
    more = client.get(
        f"/sales/opportunities/{deal.pk}/activities/", {"part": "done", "cursor": timeline.done.next_cursor}
    )
    assert [a.subject for a in more.context["done"].items] == ["Done 10", "Done 11"]
    assert not more.context["done"].has_next
    assert 'data-testid="show-more"' not in more.content.decode()


def test_deal_section_runs_a_fixed_number_of_queries(client, login, org_a, rep):
    deal = factories.opportunity(org_a, assigned_to=rep)
    login(rep)
    url = f"/sales/opportunities/{deal.pk}/activities/"

    def measure() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    factories.activity(org_a, opportunity=deal, owner=rep)
    client.get(url)
    few = measure()
    for i in range(30):
        factories.activity(
            org_a,
            opportunity=deal,
            owner=factories.user(org_a) if i % 10 == 0 else rep,
            completed_at=timezone.now() if i % 2 else None,
        )
    assert measure() == few


def test_logging_a_call_on_the_deal_reaches_the_customer_timeline_and_offers_a_follow_up(
    client, login, org_a, rep
):
    deal = factories.opportunity(org_a, assigned_to=rep, name="Globex expansion")
    login(rep)
    response = client.post(
        f"/sales/opportunities/{deal.pk}/activities/new/",
        {"action": "log_call", "subject": "Pricing call", "outcome": "Wants 3 seats", "owner": str(rep.pk)},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Pricing call" in html and 'data-testid="follow-up-offer"' in html
    customer_page = client.get(f"/customers/{deal.customer_id}/").content.decode()
    assert "Wants 3 seats" in customer_page and "Opportunity: Globex expansion" in customer_page


def test_scheduling_a_task_with_a_reminder_on_the_deal(client, login, org_a, rep):
    deal = factories.opportunity(org_a, assigned_to=rep)
    login(rep)
    client.post(
        f"/sales/opportunities/{deal.pk}/activities/new/",
        {
            "action": "task",
            "subject": "Send contract",
            "when": "2031-05-06T10:00",
            "remind": "60",
            "owner": str(rep.pk),
        },
        headers={"HX-Request": "true"},
    )
    with tenant_context(org_a.pk):
        task = Activity.objects.get(opportunity=deal)
    # Entered as Lola's wall-clock time (Los Angeles, daylight time in May: UTC-7).
    assert task.due_at == datetime.datetime(2031, 5, 6, 17, 0, tzinfo=datetime.UTC)
    assert task.reminder_at == task.due_at - datetime.timedelta(hours=1)
    assert (task.kind, task.completed_at, task.owner_id) == ("task", None, rep.pk)


def test_an_invalid_log_comes_back_with_its_errors(client, login, org_a, rep):
    deal = factories.opportunity(org_a, assigned_to=rep)
    login(rep)
    response = client.post(
        f"/sales/opportunities/{deal.pk}/activities/new/",
        {"action": "log_call", "subject": "", "owner": str(rep.pk)},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "Give it a subject." in response.content.decode()
    with tenant_context(org_a.pk):
        assert not Activity.objects.filter(opportunity=deal).exists()


# --- visibility -------------------------------------------------------------------------------------------------------


def test_another_organizations_deal_and_activities_are_404(client, login, org_a, org_b, rep):
    theirs = factories.opportunity(org_b)
    their_task = factories.activity(org_b, opportunity=theirs)
    login(rep)
    assert client.get(f"/sales/opportunities/{theirs.pk}/activities/").status_code == 404
    assert (
        client.post(f"/sales/opportunities/{theirs.pk}/activities/new/", {"action": "note"}).status_code
        == 404
    )
    for action in ("complete", "snooze", "follow-up", "delete"):
        assert client.post(f"/sales/activities/{their_task.pk}/{action}/").status_code == 404
    assert client.get(f"/sales/activities/{their_task.pk}/edit/").status_code == 404
    assert client.get("/sales/activities/new/", {"customer": str(theirs.customer_id)}).status_code == 404
    with system_context():
        assert Activity.objects.get(pk=their_task.pk).completed_at is None


def test_in_own_only_mode_a_rep_gets_404_on_a_colleagues_deal_but_keeps_their_own_tasks(
    client, login, org_a, rep
):
    colleague = factories.user(org_a, role="sales_rep")
    theirs = factories.opportunity(org_a, assigned_to=colleague)
    their_call = factories.activity(org_a, opportunity=theirs, owner=colleague, kind="call")
    given_to_me = factories.activity(org_a, opportunity=theirs, owner=rep, subject="Help with the demo")
    with system_context():
        SalesSettings.objects.update_or_create(organization=org_a, defaults={"opportunity_visibility": "own"})
    login(rep)
    assert client.get(f"/sales/opportunities/{theirs.pk}/activities/").status_code == 404
    assert client.post(f"/sales/activities/{their_call.pk}/complete/").status_code == 404
    # A task given to the rep stays theirs to see and complete.
    assert "Help with the demo" in client.get("/sales/my-day/").content.decode()
    assert client.post(f"/sales/activities/{given_to_me.pk}/complete/").status_code == 302
    # The manager sees everything.
    manager = factories.user(org_a, role="sales_manager")
    login(manager)
    assert client.get(f"/sales/opportunities/{theirs.pk}/activities/").status_code == 200


# --- the customer 360 panel and the create page --------------------------------------------------------------------


def test_customer_360_shows_upcoming_activities_in_a_fixed_number_of_queries(client, login, org_a, rep):
    customer = factories.customer(org_a)
    deal = factories.opportunity(org_a, assigned_to=rep, customer=customer, name="Panel deal")
    factories.activity(
        org_a,
        opportunity=deal,
        owner=rep,
        subject="Prepare the proposal",
        due_at=timezone.now() + datetime.timedelta(days=1),
    )
    factories.activity(
        org_a, customer=customer, owner=rep, subject="Already done", completed_at=timezone.now()
    )
    login(rep)
    url = f"/customers/{customer.pk}/"
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        html = client.get(url).content.decode()
    assert "Upcoming activities" in html and "Prepare the proposal" in html and "Panel deal" in html
    assert "Already done" not in html
    for i in range(8):
        factories.activity(
            org_a,
            customer=customer,
            owner=rep,
            subject=f"Later {i}",
            due_at=timezone.now() + datetime.timedelta(days=10 + i),
        )
    with CaptureQueriesContext(connection) as many:
        html = client.get(url).content.decode()
    assert len(many) == len(few)
    assert html.count("Later ") == 4  # five shown: the proposal and the four soonest


def test_scheduling_on_a_customer_from_the_create_page(client, login, org_a, rep):
    customer = factories.customer(org_a)
    login(rep)
    page = client.get("/sales/activities/new/", {"customer": str(customer.pk)})
    assert page.status_code == 200
    response = client.post(
        "/sales/activities/new/",
        {
            "customer": str(customer.pk),
            "action": "meeting",
            "subject": "Lunch",
            "when": "2031-01-02T12:30",
            "owner": str(rep.pk),
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/customers/{customer.pk}/"
    with tenant_context(org_a.pk):
        meeting = Activity.objects.get(customer=customer)
    assert (meeting.kind, meeting.opportunity_id, meeting.completed_at) == ("meeting", None, None)


def test_editing_an_activity(client, login, org_a, rep):
    task = factories.activity(org_a, owner=rep, subject="Old subject")
    login(rep)
    assert client.get(f"/sales/activities/{task.pk}/edit/").status_code == 200
    response = client.post(
        f"/sales/activities/{task.pk}/edit/",
        {"subject": "New subject", "kind": "call", "due_at": "2031-03-04T08:15", "owner": str(rep.pk)},
    )
    assert response.status_code == 302
    with tenant_context(org_a.pk):
        saved = Activity.objects.get(pk=task.pk)
    assert (saved.subject, saved.kind) == ("New subject", "call")
    assert saved.due_at == datetime.datetime(2031, 3, 4, 8, 15, tzinfo=LA)
