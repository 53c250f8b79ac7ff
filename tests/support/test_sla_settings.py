"""The SLA settings pages: policies in order (install the defaults, create with field errors, edit, reorder,
delete), calendars with the weekly hours editor and holidays, the counts they show, who may open them."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse

from crm.tenancy import system_context
from support import sla
from support.models import BusinessCalendar, Holiday, SlaPolicy
from tests import factories
from tests.support.test_sla_apply import make_ticket, reload, status_change

UTC = dt.UTC


@pytest.fixture
def org(db):
    return factories.organization(time_zone="UTC")


@pytest.fixture
def manager(org):
    return factories.user(org, role="support_manager")


@pytest.fixture
def client_of(login, client):
    return lambda user: login(user)


def names_in_order(org) -> list[str]:
    with system_context():
        return list(
            SlaPolicy.objects.filter(organization=org)
            .order_by("position", "id")
            .values_list("name", flat=True)
        )


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_only_support_settings_managers_open_the_pages(org, login, client):
    login(factories.user(org, role="support_agent"))
    assert client.get(reverse("support:sla_policy_list")).status_code == 403
    assert client.get(reverse("support:calendar_list")).status_code == 403
    login(factories.user(org, role="admin"))
    assert client.get(reverse("support:sla_policy_list")).status_code == 200


def test_the_standard_policies_from_the_empty_state(org, manager, login, client):
    login(manager)
    empty = client.get(reverse("support:sla_policy_list"))
    assert b"No SLA policies yet" in empty.content
    response = client.post(reverse("support:sla_policy_defaults"), follow=True)
    assert names_in_order(org) == [
        "VIP customers",
        "Billing and account issues",
        "Urgent (marked by the customer)",
        "Bug reports",
        "Standard",
    ]
    html = response.content.decode()
    cells = re.findall(r'data-testid="resolution">([^<]*)<', html)
    assert cells == ["2h", "4h", "1h", "24h", "48h"]
    assert re.findall(r'data-testid="first-response">([^<]*)<', html) == ["30m", "1h", "15m", "4h", "8h"]


def test_the_list_counts_each_policys_active_tickets(
    org, manager, login, client, django_assert_max_num_queries
):
    make_ticket(org, type="billing_issue")
    make_ticket(org, type="account_issue")
    done = make_ticket(org, type="billing_issue")
    status_change(done, "closed", dt.datetime(2026, 3, 2, 10, tzinfo=UTC))
    make_ticket(org, type="bug_report")
    # Independently: billing 2 active (the closed one does not count), bugs 1, the others 0.
    expected = {
        "VIP customers": 0,
        "Billing and account issues": 2,
        "Urgent (marked by the customer)": 0,
        "Bug reports": 1,
        "Standard": 0,
    }
    login(manager)
    with django_assert_max_num_queries(12):
        html = client.get(reverse("support:sla_policy_list")).content.decode()
    names = re.findall(r'href="/support/settings/sla/[0-9a-f-]+/">([^<]*)</a>', html)
    counts = [int(n) for n in re.findall(r'data-testid="active-tickets">(\d+)<', html)]
    assert dict(zip(names, counts, strict=True)) == expected


def test_creating_a_policy_shows_errors_beside_the_fields(org, manager, login, client):
    login(manager)
    url = reverse("support:sla_policy_create")
    response = client.post(url, {"name": "", "first_response_minutes": "soon", "resolution_minutes": "2h"})
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"name", "first_response_minutes"}
    assert 'id="id_first_response_minutes-error"' in response.content.decode()
    late = client.post(url, {"name": "Odd", "first_response_minutes": "3h", "resolution_minutes": "2h"})
    assert "first_response_minutes" in late.context["form"].errors
    assert names_in_order(org) == []

    created = client.post(
        url,
        {
            "name": "Phone calls",
            "active": "on",
            "match_channels": ["phone"],
            "match_types": ["incident", "problem"],
            "set_priority": "high",
            "first_response_minutes": "1h 30m",
            "resolution_minutes": "90",
            "calendar": "",
        },
    )
    assert created.status_code == 302
    with system_context():
        policy = SlaPolicy.objects.get(organization=org, name="Phone calls")
    assert (policy.first_response_minutes, policy.resolution_minutes) == (90, 90)
    assert (policy.match_channels, policy.match_types, policy.set_priority) == (
        ["phone"],
        ["incident", "problem"],
        "high",
    )
    assert policy.calendar is None


def test_a_new_policy_goes_last_and_moves_up(org, manager, login, client):
    with system_context():
        sla.ensure_default_policies(org)
    login(manager)
    client.post(
        reverse("support:sla_policy_create"),
        {
            "name": "Chat",
            "active": "on",
            "match_channels": ["chat"],
            "first_response_minutes": "5m",
            "resolution_minutes": "1h",
        },
    )
    assert names_in_order(org)[-1] == "Chat"
    with system_context():
        chat = SlaPolicy.objects.get(organization=org, name="Chat")
    client.post(reverse("support:sla_policy_move", kwargs={"pk": chat.pk}), {"direction": "up"})
    assert names_in_order(org)[-2:] == ["Chat", "Standard"]
    html = client.get(reverse("support:sla_policy_list")).content.decode()
    first_row = html.index('data-testid="policy-row"')
    assert "disabled" in html[first_row : html.index("</tr>", first_row)]  # the first cannot move up


def test_editing_a_policys_target_says_how_many_tickets_were_recomputed(org, manager, login, client):
    ticket = make_ticket(org, type="billing_issue")
    policy = reload(ticket).sla_policy
    login(manager)
    data = {
        "name": policy.name,
        "active": "on",
        "match_types": policy.match_types,
        "set_priority": "high",
        "first_response_minutes": "1h",
        "resolution_minutes": "6h",
        "calendar": str(policy.calendar_id),
    }
    response = client.post(reverse("support:sla_policy_edit", kwargs={"pk": policy.pk}), data, follow=True)
    assert "The deadlines of 1 active ticket were recomputed." in " ".join(page_messages(response))
    # 6 working hours from Monday 09:00: 15:00.
    assert reload(ticket).resolution_due_at == dt.datetime(2026, 3, 2, 15, tzinfo=UTC)


def test_deleting_a_policy(org, manager, login, client):
    ticket = make_ticket(org, type="billing_issue")
    login(manager)
    response = client.post(
        reverse("support:sla_policy_delete", kwargs={"pk": reload(ticket).sla_policy_id}), follow=True
    )
    assert "1 active ticket moved to the next matching policy." in " ".join(page_messages(response))
    assert reload(ticket).sla_policy.name == "Standard"


def test_another_organizations_policy_or_calendar_is_not_found(org, manager, login, client):
    other = factories.organization()
    with system_context():
        policies = sla.ensure_default_policies(other)
        calendar = BusinessCalendar.objects.get(organization=other)
        holiday = Holiday.objects.create(organization=other, calendar=calendar, date=dt.date(2026, 12, 25))
    login(manager)
    for name, pk in (
        ("support:sla_policy_edit", policies[0].pk),
        ("support:calendar_edit", calendar.pk),
    ):
        assert client.get(reverse(name, kwargs={"pk": pk})).status_code == 404
    for name, pk in (
        ("support:sla_policy_move", policies[0].pk),
        ("support:sla_policy_delete", policies[0].pk),
        ("support:calendar_delete", calendar.pk),
        ("support:holiday_add", calendar.pk),
        ("support:holiday_delete", holiday.pk),
    ):
        assert (
            client.post(
                reverse(name, kwargs={"pk": pk}), {"direction": "up", "date": "2026-12-24"}
            ).status_code
            == 404
        )
    assert len(names_in_order(other)) == 5
    with system_context():
        assert Holiday.objects.filter(organization=other).count() == 1


# --- calendars ------------------------------------------------------------------------------------------------


def test_creating_a_calendar_with_the_weekly_hours_editor(org, manager, login, client):
    login(manager)
    url = reverse("support:calendar_create")
    form = client.get(url).context["form"]
    assert form["day_1"].value() == "09:00-17:00" and not form["day_6"].value()
    bad = client.post(
        url,
        {
            "name": "Support desk",
            "time_zone": "Europe/Berlin",
            "day_1": "09:00-12:00, 11:00-13:00",
            "day_2": "nine to five",
        },
    )
    assert bad.status_code == 200
    assert set(bad.context["form"].errors) == {"day_1", "day_2"}
    nothing = client.post(url, {"name": "Support desk", "time_zone": "Europe/Berlin"})
    assert nothing.context["form"].non_field_errors()
    created = client.post(
        url,
        {
            "name": "Support desk",
            "time_zone": "Europe/Berlin",
            "day_1": "13:00-17:00, 9:00-12:00",
            "day_6": "10:00 - 14:00",
        },
    )
    with system_context():
        calendar = BusinessCalendar.objects.get(organization=org, name="Support desk")
    assert created.status_code == 302 and created["Location"] == reverse(
        "support:calendar_edit", kwargs={"pk": calendar.pk}
    )
    assert calendar.hours == {"1": [["09:00", "12:00"], ["13:00", "17:00"]], "6": [["10:00", "14:00"]]}
    assert calendar.time_zone == "Europe/Berlin"


def test_saving_a_calendar_recomputes_its_tickets_and_says_how_many(org, manager, login, client):
    ticket = make_ticket(org, type="billing_issue", created=dt.datetime(2026, 3, 2, 15, tzinfo=UTC))
    make_ticket(org, type="bug_report")
    make_ticket(org, customer=factories.customer(org, vip_status=True))  # around the clock: not affected
    with system_context():
        calendar = BusinessCalendar.objects.get(organization=org)
    login(manager)
    edit = reverse("support:calendar_edit", kwargs={"pk": calendar.pk})
    assert client.get(edit).context["form"]["day_5"].value() == "09:00-17:00"
    data = {"name": calendar.name, "time_zone": "UTC", **{f"day_{d}": "08:00-18:00" for d in range(1, 6)}}
    response = client.post(edit, data, follow=True)
    assert "The deadlines of 2 active tickets were recomputed." in " ".join(page_messages(response))
    # 4 h from Monday 15:00 on 08-18: 15-18 (3 h), Tuesday 08:00 + 1 h.
    assert reload(ticket).resolution_due_at == dt.datetime(2026, 3, 3, 9, tzinfo=UTC)

    added = client.post(
        reverse("support:holiday_add", kwargs={"pk": calendar.pk}),
        {"date": "2026-03-03", "name": "Staff day"},
        follow=True,
    )
    assert "2026-03-03 is a holiday. The deadlines of 2 active tickets were recomputed." in page_messages(
        added
    )
    assert reload(ticket).resolution_due_at == dt.datetime(2026, 3, 4, 9, tzinfo=UTC)
    again = client.post(reverse("support:holiday_add", kwargs={"pk": calendar.pk}), {"date": "2026-03-03"})
    assert "date" in again.context["holiday_form"].errors

    with system_context():
        holiday = Holiday.objects.get(organization=org, calendar=calendar)
    removed = client.post(reverse("support:holiday_delete", kwargs={"pk": holiday.pk}), follow=True)
    assert (
        "2026-03-03 is a working day again. The deadlines of 2 active tickets were recomputed."
        in page_messages(removed)
    )
    assert reload(ticket).resolution_due_at == dt.datetime(2026, 3, 3, 9, tzinfo=UTC)


def test_the_calendar_list_shows_hours_holidays_and_users(org, manager, login, client):
    with system_context():
        sla.ensure_default_policies(org)
        calendar = BusinessCalendar.objects.get(organization=org)
        for day in (dt.date(2026, 12, 25), dt.date(2026, 12, 26)):
            Holiday.objects.create(organization=org, calendar=calendar, date=day)
        BusinessCalendar.objects.create(
            organization=org, name="Weekend desk", hours={"6": [["10:00", "14:00"]]}
        )
    login(manager)
    html = client.get(reverse("support:calendar_list")).content.decode()
    assert re.findall(r'data-testid="holiday-count">(\d+)<', html) == ["2", "0"]
    assert "Mon\u2013Fri 09:00\u201317:00" in html and "Sat 10:00\u201314:00" in html
    assert "Billing and account issues" in html and "No policy" in html


def test_a_calendar_in_use_is_not_deleted_but_an_unused_one_is(org, manager, login, client):
    with system_context():
        sla.ensure_default_policies(org)
        used = BusinessCalendar.objects.get(organization=org)
        spare = BusinessCalendar.objects.create(
            organization=org, name="Spare", hours={"1": [["09:00", "10:00"]]}
        )
    login(manager)
    refused = client.post(reverse("support:calendar_delete", kwargs={"pk": used.pk}), follow=True)
    assert any("is used by" in m for m in page_messages(refused))
    client.post(reverse("support:calendar_delete", kwargs={"pk": spare.pk}))
    with system_context():
        assert list(BusinessCalendar.objects.filter(organization=org).values_list("name", flat=True)) == [
            "Business hours"
        ]


def test_the_sidebar_offers_sla_policies_to_managers(org, manager, login, client):
    login(manager)
    html = client.get(reverse("support:calendar_list")).content.decode()
    assert reverse("support:sla_policy_list") in html and "SLA policies" in html
