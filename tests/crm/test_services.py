"""Services of the platform app: seats, users, invitations, organization settings, notifications."""

import re
import threading
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from crm import services
from crm.models import Notification, Organization, User
from crm.services import SeatLimitReached
from crm.tenancy import system_context, tenant_context
from tests import factories

STRONG_PASSWORD = "plum-harbour-violin-2026"


def _active_count(org) -> int:
    with system_context():
        return User.objects.filter(organization=org, is_active=True).count()


def _all_emails() -> set[str]:
    with system_context():
        return set(User.objects.values_list("email", flat=True))


def _create(org, actor, email, **fields):
    with tenant_context(org.pk, user=actor):
        return services.user_create(
            organization=org, actor=actor, email=email, role=fields.pop("role", "sales_rep"), **fields
        )


# --- Seats ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def full_org(db):
    """seat_limit 3, three active users: every seat taken."""
    org = factories.organization(seat_limit=3)
    admin = factories.user(org, role="admin")
    reps = [factories.user(org), factories.user(org)]
    return org, admin, reps


def test_user_create_is_refused_when_every_seat_is_taken(full_org):
    org, admin, _ = full_org
    with pytest.raises(SeatLimitReached):
        _create(org, admin, "fourth@full.test")
    assert _active_count(org) == 3
    assert "fourth@full.test" not in _all_emails()


def test_deactivating_a_user_frees_a_seat_and_reactivating_beyond_the_limit_is_refused(full_org):
    org, admin, (rep, _) = full_org
    with tenant_context(org.pk, user=admin):
        services.user_deactivate(user=rep, actor=admin)
    assert _active_count(org) == 2
    newcomer = _create(org, admin, "newcomer@full.test")
    assert newcomer.is_active
    assert _active_count(org) == 3
    with tenant_context(org.pk, user=admin), pytest.raises(SeatLimitReached):
        services.user_reactivate(user=rep, actor=admin)
    with system_context():
        assert User.objects.get(pk=rep.pk).is_active is False
    assert _active_count(org) == 3


def test_seat_limit_holds_when_two_admins_add_the_last_seat_at_once(transactional_db):
    org = factories.organization(seat_limit=3)
    admin = factories.user(org, role="admin")
    factories.user(org)  # 2 of 3 seats used: one left, two admins want it
    outcomes: dict[int, str] = {}

    def add(n: int) -> None:
        try:
            with tenant_context(org.pk, user=admin):
                services.user_create(
                    organization=org, actor=admin, email=f"racer-{n}@race.test", role="sales_rep"
                )
            outcomes[n] = "created"
        except SeatLimitReached:
            outcomes[n] = "refused"
        except Exception as error:  # reported below, with the thread's own error
            outcomes[n] = repr(error)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=add, args=(n,)) for n in (1, 2)]
    # Hold the organization row, start both, and let go only once both wait for it: they are truly inside
    # user_create at the same time, each on its own connection.
    with tenant_context(org.pk):
        Organization.objects.select_for_update().get(pk=org.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _lock_waiters() < 2:
            assert time.monotonic() < deadline, f"both threads should wait for the seat lock: {outcomes}"
            time.sleep(0.02)
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(outcomes.values()) == ["created", "refused"]
    assert _active_count(org) == 3


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        # Activity statistics are a per-transaction snapshot: drop it to see the other sessions now.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


# --- Creating users ----------------------------------------------------------------------------------------------


def test_user_create_rejects_an_unknown_role(org_a, admin_a):
    with pytest.raises(ValidationError) as error:
        _create(org_a, admin_a, "someone@org-a.test", role="wizard")
    assert "role" in error.value.error_dict
    assert "someone@org-a.test" not in _all_emails()


@pytest.mark.parametrize("same_organization", [True, False], ids=["same-org", "other-org"])
def test_user_create_rejects_a_duplicate_email_whatever_its_case(
    org_a, org_b, admin_a, admin_b, same_organization
):
    owner_org, owner_admin = (org_a, admin_a) if same_organization else (org_b, admin_b)
    _create(owner_org, owner_admin, "Taken@Example.com")
    before = _all_emails()
    with pytest.raises(ValidationError) as error:
        _create(org_a, admin_a, "  TAKEN@example.COM ")
    assert error.value.message_dict["email"] == ["An account with this email already exists."]
    assert _all_emails() == before


@pytest.mark.parametrize(
    "password",
    ["short-pw", "password1234", "jonathan.smithers"],
    ids=["too-short", "too-common", "like-the-email"],
)
def test_user_create_rejects_weak_passwords(org_a, admin_a, password):
    with pytest.raises(ValidationError):
        _create(org_a, admin_a, "jonathan.smithers@org-a.test", password=password)
    assert "jonathan.smithers@org-a.test" not in _all_emails()


def test_user_create_with_a_strong_password_or_none(org_a, admin_a):
    with_password = _create(org_a, admin_a, "Strong@Org-A.test", password=STRONG_PASSWORD)
    invited = _create(org_a, admin_a, "invited@org-a.test")
    assert with_password.email == "strong@org-a.test"
    assert with_password.check_password(STRONG_PASSWORD)
    assert not invited.has_usable_password()


def test_only_user_managers_create_or_deactivate_users(org_a, admin_a):
    manager = factories.user(org_a, role="sales_manager")
    rep = factories.user(org_a)
    with pytest.raises(PermissionDenied):
        _create(org_a, manager, "nope@org-a.test")
    with tenant_context(org_a.pk, user=manager), pytest.raises(PermissionDenied):
        services.user_deactivate(user=rep, actor=manager)
    assert _active_count(org_a) == 3


def test_user_cannot_deactivate_themselves(org_a, admin_a):
    with tenant_context(org_a.pk, user=admin_a), pytest.raises(ValidationError):
        services.user_deactivate(user=admin_a, actor=admin_a)
    with system_context():
        assert User.objects.get(pk=admin_a.pk).is_active


def test_user_cannot_change_their_own_role_but_another_admin_can(org_a, admin_a):
    with tenant_context(org_a.pk, user=admin_a):
        with pytest.raises(ValidationError) as error:
            services.user_update(user=admin_a, actor=admin_a, role="sales_rep")
        assert "role" in error.value.error_dict
        # Their own profile fields are fine.
        services.user_update(user=admin_a, actor=admin_a, first_name="Ada", role="admin")
    with system_context():
        assert User.objects.get(pk=admin_a.pk).role == "admin"
        assert User.objects.get(pk=admin_a.pk).first_name == "Ada"

    other_admin = factories.user(org_a, role="admin")
    with tenant_context(org_a.pk, user=other_admin):
        services.user_update(user=User.objects.get(pk=admin_a.pk), actor=other_admin, role="sales_manager")
    with system_context():
        assert User.objects.get(pk=admin_a.pk).role == "sales_manager"


# --- Invitations ---------------------------------------------------------------------------------------------------


def test_invitation_email_carries_a_working_set_password_link(
    client, org_a, admin_a, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), tenant_context(org_a.pk, user=admin_a):
        invited = services.user_create(
            organization=org_a, actor=admin_a, email="ivy@org-a.test", role="sales_rep", first_name="Ivy"
        )
        services.user_invite_send(user=invited, base_url="http://testserver/")
        assert mailoutbox == []  # only once the transaction commits
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["ivy@org-a.test"]
    assert "Hello Ivy" in mail.body
    assert org_a.name in mail.body
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/\S+/)", mail.body).group(1)

    # Before choosing a password the account cannot sign in.
    refused = client.post("/accounts/login/", {"username": "ivy@org-a.test", "password": STRONG_PASSWORD})
    assert refused.status_code == 200

    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    assert form_page.context["validlink"] is True
    assert {"new_password1", "new_password2"} <= set(form_page.context["form"].fields)
    set_password_url = form_page.redirect_chain[-1][0]
    saved = client.post(
        set_password_url, {"new_password1": STRONG_PASSWORD, "new_password2": STRONG_PASSWORD}
    )
    assert saved.status_code == 302
    assert saved["Location"] == "/accounts/password/reset/complete/"

    signed_in = client.post("/accounts/login/", {"username": "IVY@org-a.test", "password": STRONG_PASSWORD})
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert home.context["user"].pk == invited.pk

    # The link is single-use.
    client.post("/accounts/logout/")
    assert client.get(link, follow=True).context["validlink"] is False


# --- Organization settings ------------------------------------------------------------------------------------------


def _org(org) -> Organization:
    with system_context():
        return Organization.objects.get(pk=org.pk)


def test_org_admin_changes_name_time_zone_and_currency(org_a, admin_a):
    with tenant_context(org_a.pk, user=admin_a):
        services.organization_update(
            organization=org_a, actor=admin_a, name="Renamed", time_zone="Europe/Paris", currency="EUR"
        )
    saved = _org(org_a)
    assert (saved.name, saved.time_zone, saved.currency) == ("Renamed", "Europe/Paris", "EUR")


@pytest.mark.parametrize("field, value", [("seat_limit", 99), ("plan", "enterprise"), ("slug", "mine")])
def test_org_admin_cannot_change_plan_seats_or_slug(org_a, admin_a, field, value):
    before = _org(org_a)
    with tenant_context(org_a.pk, user=admin_a), pytest.raises(PermissionDenied):
        services.organization_update(organization=org_a, actor=admin_a, **{field: value})
    assert getattr(_org(org_a), field) == getattr(before, field)


def test_non_admin_cannot_change_organization_settings(org_a):
    manager = factories.user(org_a, role="sales_manager")
    with tenant_context(org_a.pk, user=manager), pytest.raises(PermissionDenied):
        services.organization_update(organization=org_a, actor=manager, name="Hijacked")
    assert _org(org_a).name == "Org A"


def test_platform_and_superuser_change_plan_and_seats(org_a, superuser):
    with tenant_context(org_a.pk):
        services.organization_update(organization=org_a, actor=None, seat_limit=99, plan="enterprise")
    assert (_org(org_a).seat_limit, _org(org_a).plan) == (99, "enterprise")
    with system_context(user=superuser):
        services.organization_update(organization=_org(org_a), actor=superuser, seat_limit=120)
    assert _org(org_a).seat_limit == 120


def test_organization_update_validates_values(org_a, admin_a):
    with tenant_context(org_a.pk, user=admin_a), pytest.raises(ValidationError):
        services.organization_update(organization=org_a, actor=admin_a, time_zone="Mars/Olympus")
    assert _org(org_a).time_zone == "UTC"


# --- Notifications -------------------------------------------------------------------------------------------------


def test_notifications_mark_read_marks_only_the_recipients_own(org_a):
    alice, bob = factories.user(org_a), factories.user(org_a)
    a1, a2 = factories.notification(alice), factories.notification(alice)
    earlier = timezone.now() - timezone.timedelta(days=1)
    a3 = factories.notification(alice, read_at=earlier)
    b1 = factories.notification(bob)

    with tenant_context(org_a.pk, user=alice):
        assert services.notifications_mark_read(recipient=alice, ids=[a1.pk, b1.pk, a3.pk]) == 1
    with system_context():
        read = dict(Notification.objects.values_list("pk", "read_at"))
    assert read[a1.pk] is not None
    assert read[a2.pk] is None
    assert read[a3.pk] == earlier  # already read: untouched
    assert read[b1.pk] is None

    with tenant_context(org_a.pk, user=alice):
        assert services.notifications_mark_read(recipient=alice) == 1
        assert services.notifications_mark_read(recipient=alice) == 0
    with system_context():
        assert Notification.objects.get(pk=b1.pk).read_at is None
