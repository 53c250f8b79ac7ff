"""Unsubscribing (marketing/views/tracking.py `unsubscribe`, marketing/events.py `record_unsubscribe`): the
confirmation page, the RFC 8058 one-click POST, and that it is respected everywhere at once."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.tenancy import tenant_context
from customers.models import Customer, Interaction, Segment, SegmentMember
from marketing import tracking
from marketing.events import UNSUBSCRIBE_OUTCOME
from marketing.models import (
    Campaign,
    CampaignSegment,
    EmailSend,
    Enrollment,
    Sequence,
    Suppression,
)
from marketing.selectors.audience import mailable_customers
from marketing.sending import materialize_recipients
from tests import factories
from tests.marketing import factories as mf

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def setup(org_a):
    campaign = mf.campaign(org_a, template=mf.email_template(org_a))
    customer = factories.customer(org_a, first_name="Ada", email="Ada@Example.com", email_opt_in=True)
    send = mf.sent_email(org_a, campaign=campaign, customer=customer, email="Ada@Example.com")
    return campaign, customer, send


def _url(send) -> str:
    return urlsplit(tracking.unsubscribe_url(send)).path


def _state(org, campaign, customer, send):
    with tenant_context(org.pk):
        return {
            "suppressions": list(Suppression.objects.values_list("email", "reason", "campaign_id")),
            "opt_in": Customer.objects.get(pk=customer.pk).email_opt_in,
            "unsubscribed_at": EmailSend.objects.get(pk=send.pk).unsubscribed_at,
            "count": Campaign.objects.get(pk=campaign.pk).unsubscribed_count,
            "notes": list(
                Interaction.objects.filter(customer_id=customer.pk, interaction_type="note").values_list(
                    "outcome", "campaign_id"
                )
            ),
        }


def test_get_shows_a_branded_confirmation_and_changes_nothing(setup, org_a):
    campaign, customer, send = setup
    response = Client().get(_url(send))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Org A" in body and "Ada@Example.com" in body and "Spring launch" in body
    assert 'data-testid="unsubscribe-confirm"' in body
    assert 'name="List-Unsubscribe" value="One-Click"' in body
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    state = _state(org_a, campaign, customer, send)
    assert state == {
        "suppressions": [],
        "opt_in": True,
        "unsubscribed_at": None,
        "count": 0,
        "notes": [],
    }


def test_get_then_post_the_confirmation_form_unsubscribes(setup, org_a):
    campaign, customer, send = setup
    client = Client(enforce_csrf_checks=True)
    page = client.get(_url(send))
    assert page.status_code == 200
    # The form posts its hidden one-click field (and the CSRF token a browser has).
    csrf = client.cookies["csrftoken"].value if "csrftoken" in client.cookies else ""
    response = client.post(_url(send), {**ONE_CLICK, "csrfmiddlewaretoken": csrf})
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    state = _state(org_a, campaign, customer, send)
    assert state["suppressions"] == [("ada@example.com", "unsubscribed", campaign.pk)]
    assert state["opt_in"] is False
    assert state["unsubscribed_at"] is not None
    assert state["count"] == 1
    assert state["notes"] == [(UNSUBSCRIBE_OUTCOME, campaign.pk)]


def test_one_click_post_from_a_mail_client_works_without_csrf_or_cookies(setup, org_a):
    campaign, customer, send = setup
    response = Client(enforce_csrf_checks=True).post(_url(send), ONE_CLICK)
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    assert _state(org_a, campaign, customer, send)["count"] == 1


def test_any_other_post_without_a_csrf_token_is_refused(setup, org_a):
    campaign, customer, send = setup
    response = Client(enforce_csrf_checks=True).post(_url(send), {"unsubscribe": "yes"})
    assert response.status_code == 403
    assert _state(org_a, campaign, customer, send)["count"] == 0


def test_unsubscribing_twice_counts_once_and_then_says_already(setup, org_a):
    campaign, customer, send = setup
    client = Client()
    client.post(_url(send), ONE_CLICK)
    client.post(_url(send), ONE_CLICK)
    state = _state(org_a, campaign, customer, send)
    assert state["count"] == 1 and len(state["notes"]) == 1 and len(state["suppressions"]) == 1
    page = client.get(_url(send))
    assert 'data-testid="unsubscribe-already"' in page.content.decode()


def test_unsubscribe_keeps_an_existing_suppression_reason(setup, org_a):
    campaign, customer, send = setup
    with tenant_context(org_a.pk):
        Suppression.objects.create(organization=org_a, email="ada@example.com", reason="manual")
    Client().post(_url(send), ONE_CLICK)
    state = _state(org_a, campaign, customer, send)
    assert [(e, r) for e, r, _ in state["suppressions"]] == [("ada@example.com", "manual")]
    assert state["opt_in"] is False and state["count"] == 1


def test_unsubscribed_customer_is_no_longer_mailable_and_a_later_campaign_leaves_them_out(setup, org_a):
    _, customer, send = setup
    other = factories.customer(org_a, email_opt_in=True)
    with tenant_context(org_a.pk):
        assert set(mailable_customers(org_a.pk).values_list("pk", flat=True)) >= {customer.pk, other.pk}
    Client().post(_url(send), ONE_CLICK)
    later = mf.campaign(org_a, name="Summer sale", template=mf.email_template(org_a, name="Summer"))
    with tenant_context(org_a.pk):
        assert customer.pk not in set(mailable_customers(org_a.pk).values_list("pk", flat=True))
        segment = Segment.objects.create(organization=org_a, name="Everyone", kind=Segment.Kind.STATIC)
        for member in (customer, other):
            SegmentMember.objects.create(organization=org_a, segment=segment, customer=member)
        CampaignSegment.objects.create(organization=org_a, campaign=later, segment=segment)
        materialize_recipients(campaign=later)
        recipients = set(EmailSend.objects.filter(campaign_id=later.pk).values_list("customer_id", flat=True))
    assert recipients == {other.pk}


def test_even_opting_back_in_does_not_override_the_suppression(setup, org_a):
    """Suppressions are checked on their own: a customer whose opt-in is set again by hand is still not
    emailed while their address is on the list (staff must remove it deliberately)."""
    _, customer, send = setup
    Client().post(_url(send), ONE_CLICK)
    with tenant_context(org_a.pk):
        Customer.objects.filter(pk=customer.pk).update(email_opt_in=True)
        assert not mailable_customers(org_a.pk).filter(pk=customer.pk).exists()


def test_active_enrollments_exit_when_their_sequence_exits_on_unsubscribe(setup, org_a):
    campaign, customer, send = setup
    with tenant_context(org_a.pk):
        exits = Sequence.objects.create(
            organization=org_a, name="Nurture", campaign=campaign, status="active"
        )
        stays = Sequence.objects.create(
            organization=org_a,
            name="Onboarding",
            campaign=campaign,
            status="active",
            exit_on_unsubscribe=False,
        )
        done = Sequence.objects.create(organization=org_a, name="Done", campaign=campaign, status="active")
        exiting = Enrollment.objects.create(organization=org_a, sequence=exits, customer=customer)
        staying = Enrollment.objects.create(organization=org_a, sequence=stays, customer=customer)
        finished = Enrollment.objects.create(
            organization=org_a, sequence=done, customer=customer, status="completed"
        )
    Client().post(_url(send), ONE_CLICK)
    with tenant_context(org_a.pk):
        exiting.refresh_from_db()
        staying.refresh_from_db()
        finished.refresh_from_db()
    assert (exiting.status, exiting.exit_reason) == ("exited", "unsubscribed")
    assert exiting.finished_at is not None and exiting.next_run_at is None
    # Stays enrolled, but its emails are skipped: the audience no longer includes the customer.
    assert (staying.status, staying.exit_reason) == ("active", "")
    assert (finished.status, finished.exit_reason) == ("completed", "")


# --- The suppression list page (marketing/views/suppressions.py) ---------------------------------------


def _suppress(org, email, reason="manual", **fields):
    with tenant_context(org.pk):
        return Suppression.objects.create(organization=org, email=email, reason=reason, **fields)


def test_suppression_list_shows_filters_and_counts_the_addresses(org_a, admin_a, login):
    _suppress(org_a, "a@example.com", "unsubscribed")
    _suppress(org_a, "b@example.com", "bounced")
    _suppress(org_a, "c@other.example", "manual")
    client = login(admin_a)
    page = client.get(reverse("marketing:suppression_list"))
    body = page.content.decode()
    assert page.status_code == 200
    assert body.count('data-testid="suppression-row"') == 3
    assert "3 addresses" in body
    bounced = client.get(reverse("marketing:suppression_list"), {"reason": "bounced"}).content.decode()
    assert "b@example.com" in bounced and "a@example.com" not in bounced and "1 address" in bounced
    found = client.get(reverse("marketing:suppression_list"), {"q": "OTHER"}).content.decode()
    assert "c@other.example" in found and "b@example.com" not in found
    empty = client.get(reverse("marketing:suppression_list"), {"q": "nobody"}).content.decode()
    assert "No address matches these filters" in empty


def test_suppression_list_runs_a_fixed_number_of_queries(org_a, admin_a, login):
    client = login(admin_a)
    url = reverse("marketing:suppression_list")
    campaign = mf.campaign(org_a)
    _suppress(org_a, "first@example.com", "unsubscribed", campaign=campaign)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(6):
        _suppress(org_a, f"more{n}@example.com", "unsubscribed", campaign=campaign)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).content.decode().count('data-testid="suppression-row"') == 7
    assert len(many) == len(few)


def test_suppression_list_needs_send_campaigns(org_a, login):
    team = factories.team(org_a)
    assert login(team["sales_rep"]).get(reverse("marketing:suppression_list")).status_code == 403
    assert login(team["marketing_manager"]).get(reverse("marketing:suppression_list")).status_code == 200


def test_adding_an_address_by_hand_stores_it_lower_cased_as_manual(org_a, admin_a, login):
    client = login(admin_a)
    response = client.post(reverse("marketing:suppression_add"), {"email": " Someone@Example.COM "})
    assert response.status_code == 302
    with tenant_context(org_a.pk):
        assert list(Suppression.objects.values_list("email", "reason")) == [("someone@example.com", "manual")]
    again = client.post(reverse("marketing:suppression_add"), {"email": "someone@example.com"})
    assert again.status_code == 200 and "already on the suppression list" in again.content.decode()
    bad = client.post(reverse("marketing:suppression_add"), {"email": "not an address"})
    assert bad.status_code == 200 and "Enter a valid email address" in bad.content.decode()


def test_removing_an_address_asks_first_and_does_not_opt_the_customer_back_in(setup, org_a, admin_a, login):
    _, customer, send = setup
    Client().post(_url(send), ONE_CLICK)
    with tenant_context(org_a.pk):
        suppression = Suppression.objects.get()
    client = login(admin_a)
    url = reverse("marketing:suppression_remove", args=[suppression.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and "ada@example.com" in confirm.content.decode()
    with tenant_context(org_a.pk):
        assert Suppression.objects.exists()
    assert client.post(url).status_code == 302
    with tenant_context(org_a.pk):
        assert not Suppression.objects.exists()
        assert Customer.objects.get(pk=customer.pk).email_opt_in is False
        assert not mailable_customers(org_a.pk).filter(pk=customer.pk).exists()


def test_another_organizations_suppression_is_404(org_a, org_b, admin_a, login):
    foreign = _suppress(org_b, "b@example.com")
    client = login(admin_a)
    url = reverse("marketing:suppression_remove", args=[foreign.pk])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    with tenant_context(org_b.pk):
        assert Suppression.objects.filter(pk=foreign.pk).exists()


# --- The customer 360 "Marketing email" panel (marketing/selectors/suppressions.py) --------------------


def _restricted(customer):
    """The customer with processing restricted (GDPR art. 18), as the compliance app leaves them."""
    with tenant_context(customer.organization_id):
        Customer.objects.filter(pk=customer.pk).update(processing_restricted=True)
    return customer


def _panel(org, customer, actor):
    from marketing.selectors.suppressions import email_panel_for_customer

    with tenant_context(org.pk):
        customer = Customer.objects.get(pk=customer.pk)
        return email_panel_for_customer(customer=customer, actor=actor)


def test_panel_says_a_consenting_customer_can_be_emailed(org_a, admin_a):
    customer = factories.customer(org_a, email_opt_in=True)
    data = _panel(org_a, customer, admin_a)
    assert data == {"mailable": True, "reasons": [], "sends": []}


def test_panel_says_why_a_customer_cannot_be_emailed(setup, org_a, admin_a):
    _, customer, send = setup
    Client().post(_url(send), ONE_CLICK)
    data = _panel(org_a, customer, admin_a)
    assert data["mailable"] is False
    (reason,) = data["reasons"]
    assert reason["code"] == "unsubscribed" and reason["campaign"] == "Spring launch"
    restricted = _restricted(factories.customer(org_a, email_opt_in=False))
    assert [r["code"] for r in _panel(org_a, restricted, admin_a)["reasons"]] == ["restricted", "no_opt_in"]
    no_email = factories.customer(org_a, email="", email_opt_in=True)
    assert [r["code"] for r in _panel(org_a, no_email, admin_a)["reasons"]] == ["no_email"]
    bounced = factories.customer(org_a, email="gone@example.com", email_opt_in=True)
    _suppress(org_a, "gone@example.com", "bounced")
    assert [r["code"] for r in _panel(org_a, bounced, admin_a)["reasons"]] == ["bounced"]


def test_panel_agrees_with_the_audience_selector(org_a, admin_a):
    people = [
        factories.customer(org_a, email_opt_in=True),
        factories.customer(org_a, email_opt_in=False),
        factories.customer(org_a, email_opt_in=True, status="inactive"),
        _restricted(factories.customer(org_a, email_opt_in=True)),
        factories.customer(org_a, email="", email_opt_in=True),
        factories.customer(org_a, email="Suppressed@Example.com", email_opt_in=True),
    ]
    _suppress(org_a, "suppressed@example.com", "complained")
    with tenant_context(org_a.pk):
        mailable = set(mailable_customers(org_a.pk).values_list("pk", flat=True))
    assert {p.pk for p in people if _panel(org_a, p, admin_a)["mailable"]} == mailable & {
        p.pk for p in people
    }


def test_panel_lists_the_last_ten_emails_in_a_fixed_number_of_queries(org_a, admin_a):
    from marketing.selectors.suppressions import email_panel_for_customer

    customer = factories.customer(org_a, email_opt_in=True)
    first = mf.campaign(org_a, name="Campaign 0")
    mf.sent_email(org_a, campaign=first, customer=customer)
    with tenant_context(org_a.pk):
        fresh = Customer.objects.get(pk=customer.pk)
        with CaptureQueriesContext(connection) as one:
            email_panel_for_customer(customer=fresh, actor=admin_a)
    for n in range(1, 12):
        mf.sent_email(org_a, campaign=mf.campaign(org_a, name=f"Campaign {n}"), customer=customer)
    with tenant_context(org_a.pk):
        with CaptureQueriesContext(connection) as twelve:
            data = email_panel_for_customer(customer=fresh, actor=admin_a)
    assert len(twelve) == len(one) == 2
    assert len(data["sends"]) == 10


def test_panel_is_on_the_customer_page(setup, org_a, admin_a, login):
    _, customer, send = setup
    Client().get(urlsplit(tracking.open_pixel_url(send)).path)
    body = login(admin_a).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert 'data-testid="email-panel"' in body
    assert "Spring launch" in body and "opened" in body
