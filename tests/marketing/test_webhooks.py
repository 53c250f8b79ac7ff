"""Delivery reports from the provider (marketing/webhooks.py): anymail's tracking signal, sent here with
AnymailTrackingEvent objects (no network), and the mounted webhook URL behind its shared secret."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from crm.tenancy import tenant_context
from customers.models import Customer
from marketing.models import Campaign, EmailSend, Suppression
from tests import factories
from tests.marketing import factories as mf

SECRET = "hooks:s3cret-pass"
WHEN = datetime.datetime(2026, 11, 2, 9, 30, tzinfo=datetime.UTC)


@pytest.fixture
def setup(org_a):
    campaign = mf.campaign(org_a, template=mf.email_template(org_a))
    customer = factories.customer(org_a, email="Bo@Example.com", email_opt_in=True)
    send = mf.sent_email(org_a, campaign=campaign, customer=customer, message_id="msg-1@provider")
    return campaign, customer, send


def _signal(event_type: str, message_id: str = "msg-1@provider", **fields) -> None:
    event = AnymailTrackingEvent(event_type=event_type, message_id=message_id, timestamp=WHEN, **fields)
    tracking.send(sender=object, event=event, esp_name="TestESP")


def _row(org, send) -> EmailSend:
    with tenant_context(org.pk):
        return EmailSend.objects.get(pk=send.pk)


def _campaign(org, campaign) -> Campaign:
    with tenant_context(org.pk):
        return Campaign.objects.get(pk=campaign.pk)


def _suppressions(org) -> list[tuple[str, str]]:
    with tenant_context(org.pk):
        return list(Suppression.objects.values_list("email", "reason"))


def test_delivered_marks_the_row_once(setup, org_a):
    campaign, _, send = setup
    _signal("delivered")
    _signal("delivered")  # a retried webhook
    row = _row(org_a, send)
    assert (row.status, row.delivered_at) == ("delivered", WHEN)
    assert _campaign(org_a, campaign).delivered_count == 1


def test_hard_bounce_marks_the_row_and_suppresses_the_address(setup, org_a):
    campaign, customer, send = setup
    _signal("bounced", description="Mailbox does not exist", mta_response="550 5.1.1 unknown user")
    _signal("bounced")
    row = _row(org_a, send)
    assert (row.status, row.bounced_at) == ("bounced", WHEN)
    assert "550 5.1.1" in row.error and "Mailbox does not exist" in row.error
    assert _campaign(org_a, campaign).bounced_count == 1
    assert _suppressions(org_a) == [("bo@example.com", "bounced")]
    with tenant_context(org_a.pk):
        from marketing.selectors.audience import mailable_customers

        assert not mailable_customers(org_a.pk).filter(pk=customer.pk).exists()


def test_soft_bounce_and_provider_opens_change_nothing(setup, org_a):
    campaign, _, send = setup
    for event_type in ("deferred", "queued", "sent", "opened", "clicked", "unknown"):
        _signal(event_type)
    row = _row(org_a, send)
    assert (row.status, row.opened_at, row.clicked_at, row.bounced_at) == ("sent", None, None, None)
    c = _campaign(org_a, campaign)
    assert (c.opened_count, c.clicked_count, c.bounced_count) == (0, 0, 0)
    assert _suppressions(org_a) == []


def test_complaint_suppresses_and_clears_the_opt_in(setup, org_a):
    campaign, customer, send = setup
    _signal("complained")
    assert _row(org_a, send).complained_at == WHEN
    assert _campaign(org_a, campaign).complained_count == 1
    assert _suppressions(org_a) == [("bo@example.com", "complained")]
    with tenant_context(org_a.pk):
        assert Customer.objects.get(pk=customer.pk).email_opt_in is False


def test_rejected_marks_the_row_failed_once(setup, org_a):
    campaign, _, send = setup
    _signal("rejected", description="Blocked")
    _signal("failed")
    row = _row(org_a, send)
    assert (row.status, row.failed_at, row.error) == ("failed", WHEN, "Blocked")
    assert _campaign(org_a, campaign).failed_count == 1


def test_a_bounce_after_delivery_keeps_the_delivery_time(setup, org_a):
    campaign, _, send = setup
    _signal("delivered")
    _signal("bounced")
    row = _row(org_a, send)
    assert row.status == "bounced" and row.delivered_at == WHEN and row.bounced_at == WHEN
    c = _campaign(org_a, campaign)
    assert (c.delivered_count, c.bounced_count) == (1, 1)


def test_provider_unsubscribe_is_recorded_like_the_link(setup, org_a):
    campaign, _, send = setup
    _signal("unsubscribed")
    assert _row(org_a, send).unsubscribed_at == WHEN
    assert _campaign(org_a, campaign).unsubscribed_count == 1
    assert _suppressions(org_a) == [("bo@example.com", "unsubscribed")]


def test_an_unknown_message_id_is_ignored(setup, org_a):
    _, _, send = setup
    _signal("bounced", message_id="someone-else@provider")
    _signal("bounced", message_id="")
    assert _row(org_a, send).status == "sent"
    assert _suppressions(org_a) == []


def test_events_reach_the_organization_that_sent_the_email_only(setup, org_a, org_b):
    campaign_a, _, send_a = setup
    campaign_b = mf.campaign(org_b, template=mf.email_template(org_b))
    customer_b = factories.customer(org_b, email="bo@example.com", email_opt_in=True)
    send_b = mf.sent_email(org_b, campaign=campaign_b, customer=customer_b, message_id="msg-b@provider")
    _signal("bounced", message_id="msg-b@provider")
    assert _row(org_b, send_b).status == "bounced"
    assert _suppressions(org_b) == [("bo@example.com", "bounced")]
    # Org A's email to the same address is untouched, and its list is empty.
    assert _row(org_a, send_a).status == "sent"
    assert _suppressions(org_a) == []
    assert _campaign(org_a, campaign_a).bounced_count == 0


def _postmark_post(client, payload, auth: str | None):
    headers = {}
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return client.post(
        reverse("anymail:postmark_tracking_webhook"),
        data=json.dumps(payload),
        content_type="application/json",
        **headers,
    )


@override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET})
def test_the_mounted_webhook_records_a_bounce_when_it_carries_the_secret(setup, org_a):
    campaign, _, send = setup
    payload = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "MessageID": "msg-1@provider",
        "Email": "bo@example.com",
        "BouncedAt": timezone.now().isoformat(),
        "Description": "The server was unable to deliver your message",
        "Details": "550 unknown user",
    }
    client = Client(enforce_csrf_checks=True)
    assert _postmark_post(client, payload, None).status_code == 403  # no secret: the CSRF check refuses
    assert _postmark_post(client, payload, "hooks:wrong").status_code == 403
    assert _row(org_a, send).status == "sent"
    assert _postmark_post(client, payload, SECRET).status_code == 200
    assert _row(org_a, send).status == "bounced"
    assert _campaign(org_a, campaign).bounced_count == 1
    assert _suppressions(org_a) == [("bo@example.com", "bounced")]


def test_only_usable_tracking_webhooks_are_mounted(db):
    """Tracking webhooks only (no inbound mail), and only of providers that work with these settings:
    Mailgun without its signing key (or Amazon SES without boto3) would answer 500."""
    from marketing.webhooks import urlpatterns

    names = {pattern.name for pattern in urlpatterns}
    assert "postmark_tracking_webhook" in names
    assert "mailgun_tracking_webhook" not in names
    assert not any("inbound" in name for name in names)
    client = Client(enforce_csrf_checks=True)
    for pattern in urlpatterns:  # none answers without the secret (none is configured here)
        assert (
            client.post(
                reverse(f"anymail:{pattern.name}"), data="{}", content_type="application/json"
            ).status_code
            == 403
        )
