"""Pages of the platform app, with every number a user sees recomputed from a small hand-made data set."""

import datetime
import re
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Notification, Organization, User
from crm.permissions import Role
from crm.tenancy import system_context
from tests import factories

# --- Home dashboard ---------------------------------------------------------------------------------------------

# (role, active) of everyone in the organization besides the viewing admin.
TEAM = [
    ("sales_rep", True),
    ("sales_rep", True),
    ("sales_rep", False),
    ("support_agent", True),
    ("sales_manager", True),
    ("marketing_manager", False),
]


@pytest.fixture
def dashboard_org(db, org_b):
    org = factories.organization(slug="team", name="Team Co", seat_limit=10)
    viewer = factories.user(org, role="admin", first_name="Vera")
    others = [factories.user(org, role=role, is_active=active) for role, active in TEAM]
    # The viewer: 3 unread, 2 read. A teammate's unread ones are not the viewer's.
    for n in range(5):
        factories.notification(
            viewer, title=f"For Vera {n}", read_at=None if n < 3 else datetime.datetime.now(datetime.UTC)
        )
    for _ in range(4):
        factories.notification(others[0])
    # Another organization's people and notifications count nowhere here.
    noise = [factories.user(org_b, role="sales_rep") for _ in range(3)]
    factories.notification(noise[0])
    return org, viewer


def _expected_dashboard() -> dict:
    members = [("admin", True), *TEAM]
    active = Counter(role for role, is_active in members if is_active)
    used, limit = sum(active.values()), 10
    top = max(active.values())
    return {
        "used": used,
        "limit": limit,
        "available": limit - used,
        "percent": round(100 * used / limit),
        "team": {role: active.get(role, 0) for role in Role.values},
        "team_percent": {role: round(100 * active.get(role, 0) / top) for role in Role.values},
        "unread": 3,
    }


def test_home_dashboard_numbers_match_an_independent_count(client, login, dashboard_org):
    _, viewer = dashboard_org
    expected = _expected_dashboard()
    assert (expected["used"], expected["available"], expected["team"]["sales_rep"]) == (5, 5, 2)
    login(viewer)
    response = client.get("/")
    assert response.status_code == 200
    data = response.context["data"]
    assert (data["seats"].used, data["seats"].limit, data["seats"].available) == (
        expected["used"],
        expected["limit"],
        expected["available"],
    )
    assert data["seats"].percent == expected["percent"]
    assert [row["role"] for row in data["team"]] == list(Role.values)
    assert {row["role"]: row["count"] for row in data["team"]} == expected["team"]
    assert {row["role"]: row["percent"] for row in data["team"]} == expected["team_percent"]
    assert data["unread"] == expected["unread"]

    page = response.content.decode()
    for role, count in expected["team"].items():
        assert f'data-role="{role}">{count}<' in page
    assert f'{expected["used"]} <span class="stat-of">/ {expected["limit"]}</span>' in page
    assert f'aria-valuenow="{expected["percent"]}"' in page
    assert f"{expected['available']} seats available" in page
    assert f'data-testid="stat-unread">{expected["unread"]}<' in page


def test_notification_bell_shows_the_viewers_unread_count(client, login, dashboard_org):
    _, viewer = dashboard_org
    login(viewer)
    response = client.get("/notifications/bell/")
    assert response.status_code == 200
    assert response.context["unread"] == 3
    assert len(response.context["latest"]) == 5
    assert {n.recipient_id for n in response.context["latest"]} == {viewer.pk}
    assert 'data-testid="unread-count">3<' in response.content.decode()


def test_notification_bell_caps_the_badge_at_99_plus(client, login, org_a, admin_a):
    with system_context():
        Notification.objects.bulk_create(
            Notification(organization=org_a, recipient=admin_a, title=f"n{n}") for n in range(100)
        )
    login(admin_a)
    response = client.get("/notifications/bell/")
    assert response.context["unread"] == 100
    assert 'data-testid="unread-count">99+<' in response.content.decode()


def test_home_page_query_count_does_not_grow_with_users_or_notifications(client, login, org_a, admin_a):
    def grow(count):
        for _ in range(count):
            factories.user(org_a)
            factories.notification(admin_a)

    grow(2)
    login(admin_a)
    client.get("/")  # warm-up: session and caches settle

    def measure():
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/")
        assert response.status_code == 200
        return response.context["data"]["seats"].used, len(queries)

    few_users, few_queries = measure()
    grow(18)
    many_users, many_queries = measure()
    assert (few_users, many_users) == (3, 21)
    assert many_queries == few_queries


# --- Users list ---------------------------------------------------------------------------------------------------

# first, last, email, role, department, job title, active
PEOPLE = [
    ("Ada", "Zed", "ada@people.test", "admin", "", "Operations lead", True),
    ("Bruno", "Alves", "bruno@people.test", "sales_rep", "sales", "Account executive", True),
    ("Carla", "Mendes", "carla@people.test", "sales_manager", "sales", "Head of sales", True),
    ("Dan", "Okafor", "dan.support@people.test", "support_agent", "support", "Support engineer", False),
    ("Eve", "Alves", "eve@people.test", "marketing_manager", "marketing", "Growth", True),
    ("Frank", "Baker", "frank@people.test", "support_agent", "technical", "Support engineer", True),
]


@pytest.fixture
def people_org(db, org_b):
    org = factories.organization(slug="people", name="People Inc")
    users = [
        factories.user(
            org,
            first_name=first,
            last_name=last,
            email=email,
            role=role,
            department=department,
            job_title=title,
            is_active=active,
        )
        for first, last, email, role, department, title, active in PEOPLE
    ]
    factories.user(org_b, first_name="Bruno", last_name="Alves", email="bruno@other.test")
    return org, users[0]


def _listed(response) -> list[str]:
    """The emails in the table as rendered, top to bottom."""
    body = response.content.decode().split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<div class="small text-body-secondary">([^<\s]+@[^<\s]+?)(?: · [^<]*)?</div>', body)


def _by_name(rows) -> list[str]:
    return [p[2] for p in sorted(rows, key=lambda p: (p[0], p[1]))]


@pytest.mark.parametrize(
    "params, keep",
    [
        ({"q": "alves"}, lambda p: p[1] == "Alves"),
        ({"q": "SUPPORT ENGINEER"}, lambda p: p[5] == "Support engineer"),
        ({"q": "dan.support@"}, lambda p: p[2] == "dan.support@people.test"),
        ({"role": "support_agent"}, lambda p: p[3] == "support_agent"),
        ({"department": "sales"}, lambda p: p[4] == "sales"),
        ({"status": "inactive"}, lambda p: not p[6]),
        ({"status": "active"}, lambda p: p[6]),
        ({"role": "support_agent", "status": "active"}, lambda p: p[3] == "support_agent" and p[6]),
        ({}, lambda p: True),
    ],
    ids=["q-name", "q-title", "q-email", "role", "department", "inactive", "active", "role+status", "all"],
)
def test_users_list_filters(client, login, people_org, params, keep):
    _, viewer = people_org
    login(viewer)
    response = client.get("/settings/users/", params)
    assert response.status_code == 200
    expected = _by_name([p for p in PEOPLE if keep(p)])
    assert _listed(response) == expected
    summary = re.search(r'data-testid="user-summary">\s*(.*?)\s*</p>', response.content.decode(), re.S)
    active = sum(1 for p in PEOPLE if p[6])
    assert summary.group(1) == f"{len(expected)} shown · {active} of 50 seats in use"


def test_users_list_sorts_by_column(client, login, people_org):
    _, viewer = people_org
    login(viewer)
    assert _listed(client.get("/settings/users/")) == _by_name(PEOPLE)
    assert _listed(client.get("/settings/users/", {"sort": "-name"})) == _by_name(PEOPLE)[::-1]
    by_email = {p[2]: p for p in PEOPLE}
    departments = [by_email[e][4] for e in _listed(client.get("/settings/users/", {"sort": "department"}))]
    assert departments == sorted(p[4] for p in PEOPLE)
    roles = [by_email[e][3] for e in _listed(client.get("/settings/users/", {"sort": "-role"}))]
    assert roles == sorted((p[3] for p in PEOPLE), reverse=True)


# --- User create form ------------------------------------------------------------------------------------------------


def _new_user_form(**changes) -> dict:
    return {
        "email": "new.hire@org-a.test",
        "first_name": "New",
        "last_name": "Hire",
        "role": "sales_rep",
        "department": "",
        "job_title": "",
        "send_invite": "on",
        **changes,
    }


def _emails() -> set[str]:
    with system_context():
        return set(User.objects.values_list("email", flat=True))


@pytest.mark.parametrize(
    "email, message",
    [
        ("", "This field is required."),
        ("not-an-email", "Enter a valid email address."),
        ("TAKEN@org-b.test", "An account with this email already exists."),
    ],
    ids=["missing", "malformed", "duplicate-in-another-org"],
)
def test_user_create_form_shows_field_errors_and_creates_nothing(
    client, login, org_a, org_b, admin_a, mailoutbox, email, message
):
    factories.user(org_b, email="taken@org-b.test")
    before = _emails()
    login(admin_a)
    response = client.post("/settings/users/new/", _new_user_form(email=email))
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [message]
    page = response.content.decode()
    assert f'<div class="invalid-feedback d-block" id="id_email-error">{message}</div>' in page
    assert 'aria-invalid="true"' in page
    assert _emails() == before
    assert mailoutbox == []


def test_user_create_form_reports_a_full_plan_and_creates_nothing(client, login, db):
    org = factories.organization(seat_limit=1)
    admin = factories.user(org, role="admin")
    login(admin)
    before = _emails()
    response = client.post("/settings/users/new/", _new_user_form())
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "All 1 seats of your plan are in use. Deactivate a user or raise the seat limit."
    ]
    assert _emails() == before


def test_user_create_form_adds_the_user_and_sends_the_invitation(
    client, login, org_a, admin_a, mailoutbox, django_capture_on_commit_callbacks
):
    login(admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/settings/users/new/", _new_user_form(email="New.Hire@Org-A.test"))
    assert response.status_code == 302
    assert response["Location"] == "/settings/users/"
    with system_context():
        created = User.objects.get(email="new.hire@org-a.test")
    assert (created.organization_id, created.role, created.has_usable_password()) == (
        org_a.pk,
        "sales_rep",
        False,
    )
    assert [m.to for m in mailoutbox] == [["new.hire@org-a.test"]]


# --- Profile and time zones ------------------------------------------------------------------------------------------


def test_profile_saves_time_zone_and_preferences_and_later_pages_use_that_zone(client, login, db):
    org = factories.organization(time_zone="America/New_York")
    user = factories.user(org, first_name="Tess", last_name="Zone", job_title="Rep")
    factories.notification(user, created_at=datetime.datetime(2026, 1, 15, 12, 0, tzinfo=datetime.UTC))
    login(user)
    # No zone of their own: the organization's (12:00 UTC is 07:00 in New York in January).
    assert 'datetime="2026-01-15T07:00:00-05:00"' in client.get("/notifications/").content.decode()

    response = client.post(
        "/profile/",
        {
            "first_name": "Tess",
            "last_name": "Zone",
            "job_title": "Rep",
            "time_zone": "Asia/Tokyo",
            "email_signature": "Tess Zone\nRep, Org",
            "theme": "dark",
            "density": "compact",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/profile/"
    with system_context():
        saved = User.objects.get(pk=user.pk)
    assert saved.time_zone == "Asia/Tokyo"
    # The signature is the owner.signature merge field of marketing email.
    assert saved.email_signature == "Tess Zone\nRep, Org"
    assert saved.preferences == {"theme": "dark", "density": "compact", "email_notifications": False}

    page = client.get("/notifications/").content.decode()
    assert 'datetime="2026-01-15T21:00:00+09:00"' in page
    assert 'data-bs-theme="dark"' in page
    assert "density-compact" in page


def test_profile_rejects_an_unknown_time_zone(client, login, org_a, admin_a):
    login(admin_a)
    response = client.post(
        "/profile/",
        {
            "first_name": "A",
            "last_name": "B",
            "job_title": "",
            "time_zone": "Mars/Olympus",
            "theme": "light",
            "density": "comfortable",
        },
    )
    assert response.status_code == 200
    assert "time_zone" in response.context["form"].errors
    with system_context():
        assert User.objects.get(pk=admin_a.pk).time_zone == ""


# --- Organization settings -------------------------------------------------------------------------------------------


def _organization(org) -> Organization:
    with system_context():
        return Organization.objects.get(pk=org.pk)


@pytest.mark.parametrize("role", [r for r in Role.values if r != Role.ADMIN])
def test_non_admins_see_read_only_organization_facts_and_cannot_post(client, login, org_a, admin_a, role):
    login(factories.user(org_a, role=role))
    page = client.get("/settings/organization/")
    assert page.status_code == 200
    assert page.context["can_edit"] is False
    html = page.content.decode()
    assert "Only admins can change these settings." in html
    assert 'name="name"' not in html
    assert "<dd>Org A</dd>" in html
    assert 'data-testid="seat-usage">2 / 50<' in html

    response = client.post(
        "/settings/organization/", {"name": "Hijacked", "time_zone": "Asia/Tokyo", "currency": "EUR"}
    )
    assert response.status_code == 403
    saved = _organization(org_a)
    assert (saved.name, saved.time_zone, saved.currency) == ("Org A", "UTC", "USD")


def test_admin_changes_organization_settings_but_not_the_seat_limit(client, login, org_a, admin_a):
    login(admin_a)
    page = client.get("/settings/organization/")
    assert page.context["can_edit"] is True
    response = client.post(
        "/settings/organization/",
        {"name": "Org A Renamed", "time_zone": "Europe/Paris", "currency": "EUR", "seat_limit": "999"},
    )
    assert response.status_code == 302
    saved = _organization(org_a)
    assert (saved.name, saved.time_zone, saved.currency, saved.seat_limit) == (
        "Org A Renamed",
        "Europe/Paris",
        "EUR",
        50,
    )


# --- Global search ----------------------------------------------------------------------------------------------------


def _groups(response) -> dict[str, list[tuple[str, str]]]:
    return {str(kind): [(r.title, r.url) for r in results] for kind, results in response.context["groups"]}


@pytest.fixture
def search_org(org_a, org_b):
    zelda = factories.user(
        org_a, first_name="Zelda", last_name="Quartz", email="zq@org-a.test", job_title="Architect"
    )
    factories.user(org_b, first_name="Zelda", last_name="Elsewhere", email="zelda@org-b.test")
    return zelda


def test_search_finds_teammates_by_name_and_email_for_roles_that_view_users(client, login, org_a, search_org):
    login(factories.user(org_a, role="sales_manager"))
    by_name = _groups(client.get("/search/", {"q": "zelda"}))
    assert [title for title, _ in by_name["People"]] == ["Zelda Quartz"]
    # Without users.manage the result leads to the filtered users list.
    assert by_name["People"][0][1] == "/settings/users/?q=zq%40org-a.test"
    assert [t for t, _ in _groups(client.get("/search/", {"q": "zq@org"}))["People"]] == ["Zelda Quartz"]


def test_search_leads_admins_to_the_teammates_edit_page(client, login, admin_a, search_org):
    login(admin_a)
    assert _groups(client.get("/search/", {"q": "quartz"}))["People"] == [
        ("Zelda Quartz", f"/settings/users/{search_org.pk}/")
    ]


def test_search_shows_no_people_to_roles_without_users_view(client, login, org_a, search_org):
    login(factories.user(org_a, role="sales_rep"))
    response = client.get("/search/", {"q": "zelda"})
    assert response.status_code == 200
    assert "People" not in _groups(response)


def test_search_finds_pages_the_user_may_open(client, login, org_a, admin_a):
    login(admin_a)
    assert _groups(client.get("/search/", {"q": "Audit"}))["Pages"] == [("Audit log", "/settings/audit/")]
    login(factories.user(org_a, role="sales_manager"))
    assert "Pages" not in _groups(client.get("/search/", {"q": "Audit"}))
    assert _groups(client.get("/search/", {"q": "organiz"}))["Pages"] == [
        ("Organization", "/settings/organization/")
    ]


def test_search_answers_htmx_with_the_results_partial(client, login, admin_a, search_org):
    login(admin_a)
    full = client.get("/search/", {"q": "zelda"})
    assert full.templates[0].name == "crm/search/page.html"
    partial = client.get("/search/", {"q": "zelda"}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert partial.templates[0].name == "crm/search/_results.html"
    html = partial.content.decode()
    assert "<html" not in html
    assert "Zelda Quartz" in html
    assert "Elsewhere" not in html


def test_search_ignores_one_letter_queries(client, login, admin_a, search_org):
    login(admin_a)
    assert client.get("/search/", {"q": "z"}).context["groups"] == []


# --- Notifications ----------------------------------------------------------------------------------------------------


def _read_at(notification):
    with system_context():
        return Notification.objects.get(pk=notification.pk).read_at


@pytest.mark.parametrize(
    "url, target",
    [
        ("/profile/", "/profile/"),
        ("https://evil.example/phish", "/notifications/"),
        ("//evil.example/phish", "/notifications/"),
        ("javascript:alert(1)", "/notifications/"),
        ("", "/notifications/"),
    ],
    ids=["own-page", "off-site", "scheme-relative", "javascript", "none"],
)
def test_opening_a_notification_marks_it_read_and_goes_to_its_page_if_ours(
    client, login, org_a, admin_a, url, target
):
    notification = factories.notification(admin_a, url=url)
    login(admin_a)
    assert client.get(f"/notifications/{notification.pk}/open/").status_code == 405
    assert _read_at(notification) is None
    response = client.post(f"/notifications/{notification.pk}/open/")
    assert response.status_code == 302
    assert response["Location"] == target
    assert _read_at(notification) is not None


def test_opening_someone_elses_notification_is_not_found(client, login, org_a, admin_a):
    theirs = factories.notification(factories.user(org_a), url="/profile/")
    login(admin_a)
    assert client.post(f"/notifications/{theirs.pk}/open/").status_code == 404
    assert _read_at(theirs) is None


# --- Password reset ----------------------------------------------------------------------------------------------------


def test_password_reset_emails_existing_accounts_only_and_answers_the_same_either_way(
    client, org_a, mailoutbox
):
    factories.user(org_a, email="reset.me@org-a.test")
    factories.user(org_a, email="gone@org-a.test", is_active=False)

    known = client.post("/accounts/password/reset/", {"email": "Reset.Me@org-a.test"}, follow=True)
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["reset.me@org-a.test"]
    assert re.search(r"http://testserver/accounts/password/reset/[^/\s]+/[^/\s]+/", mailoutbox[0].body)

    unknown = client.post("/accounts/password/reset/", {"email": "nobody@nowhere.test"}, follow=True)
    inactive = client.post("/accounts/password/reset/", {"email": "gone@org-a.test"}, follow=True)
    assert len(mailoutbox) == 1
    for response in (known, unknown, inactive):
        assert response.redirect_chain == [("/accounts/password/reset/done/", 302)]
        assert response.status_code == 200
    assert _without_csrf(unknown) == _without_csrf(known) == _without_csrf(inactive)


def _without_csrf(response) -> str:
    """The page, minus the per-response masked CSRF token."""
    return re.sub(
        r'("X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+', r"\1", response.content.decode()
    )
