"""Keyset pagination on a small hand-made set with tied timestamps (the id breaks the tie)."""

import datetime

import pytest
from django.core import signing

from crm.models import Notification
from crm.pagination import keyset_page
from crm.tenancy import tenant_context
from tests import factories

ORDERING = ("-created_at", "-id")


@pytest.fixture
def notifications(org_a, admin_a):
    """25 notifications; created_at repeats in runs of three (microseconds included), so the id decides."""
    base = datetime.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=datetime.UTC)
    made = [
        factories.notification(
            admin_a, title=f"n{n:02d}", created_at=base + datetime.timedelta(minutes=n // 3)
        )
        for n in range(25)
    ]
    assert len({n.created_at for n in made}) == 9
    # Newest first, then the larger id first: what every page must follow.
    expected = sorted(made, key=lambda n: (n.created_at, n.id), reverse=True)
    return org_a, admin_a, [n.pk for n in expected]


def _page(org, user, cursor=None, per_page=10):
    with tenant_context(org.pk, user=user):
        return keyset_page(
            Notification.objects.filter(recipient=user), ordering=ORDERING, cursor=cursor, per_page=per_page
        )


def _ids(page) -> list:
    return [n.pk for n in page.items]


def test_pages_of_ten_cover_all_25_exactly_once_in_order(notifications):
    org, user, expected = notifications
    first = _page(org, user)
    second = _page(org, user, first.next_cursor)
    third = _page(org, user, second.next_cursor)
    assert [_ids(first), _ids(second), _ids(third)] == [expected[:10], expected[10:20], expected[20:]]
    assert (first.has_previous, first.has_next) == (False, True)
    assert (second.has_previous, second.has_next) == (True, True)
    assert (third.has_previous, third.has_next) == (True, False)
    assert third.next_cursor is None


def test_previous_from_the_last_page_gives_the_middle_page_and_then_the_first(notifications):
    org, user, expected = notifications
    second = _page(org, user, _page(org, user).next_cursor)
    third = _page(org, user, second.next_cursor)
    back = _page(org, user, third.previous_cursor)
    assert _ids(back) == expected[10:20]
    assert (back.has_previous, back.has_next) == (True, True)
    front = _page(org, user, back.previous_cursor)
    assert _ids(front) == expected[:10]
    assert front.has_previous is False
    assert _ids(_page(org, user, front.next_cursor)) == expected[10:20]


def test_page_size_that_divides_the_set_exactly_has_no_empty_last_page(notifications):
    org, user, expected = notifications
    first = _page(org, user, per_page=25)
    assert _ids(first) == expected
    assert first.has_next is False


def _tampered_cursors(real: str) -> list[str]:
    flipped = real[:-3] + ("A" if real[-3] != "A" else "B") + real[-2:]
    return [
        "",
        "garbage",
        "not:a:cursor",
        real[:-5],
        flipped,
        real + "x",
        "ünïcödé:☃",
        # Well formed but signed with the wrong salt (a cursor of something else).
        signing.dumps({"v": ["2026-01-01", "x"], "d": "next"}, salt="another.salt"),
        # Correctly signed but for a different ordering (one value): ignored, not misapplied.
        signing.dumps({"v": ["x"], "d": "next"}, salt="crm.pagination.cursor", compress=True),
    ]


def test_a_tampered_cursor_is_ignored_and_starts_from_the_beginning(notifications):
    org, user, expected = notifications
    real = _page(org, user).next_cursor
    for cursor in _tampered_cursors(real):
        page = _page(org, user, cursor)
        assert _ids(page) == expected[:10], cursor
        assert (page.has_previous, page.has_next) == (False, True), cursor


def test_the_notifications_page_survives_a_tampered_cursor(client, login, notifications):
    _, user, expected = notifications
    login(user)
    response = client.get("/notifications/", {"cursor": "garbage"})
    assert response.status_code == 200
    assert [n.pk for n in response.context["page"].items] == expected
