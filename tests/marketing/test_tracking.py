"""The open pixel and click redirects (marketing/views/tracking.py, marketing/events.py): signed tokens, no
open redirect, unique counts, interactions with the campaign, and counters that match the rows."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from crm.tenancy import tenant_context
from customers.models import Interaction
from marketing import events, tracking
from marketing.models import Campaign, EmailSend, Variant
from tests import factories
from tests.marketing import factories as mf

OFFER = "https://example.com/offer"


@pytest.fixture
def setup(org_a):
    template = mf.email_template(org_a)
    campaign = mf.campaign(org_a, template=template)
    customer = factories.customer(org_a, first_name="Ada", email_opt_in=True)
    send = mf.sent_email(org_a, campaign=campaign, customer=customer)
    return campaign, customer, send


def _path(url: str) -> str:
    """The path of an absolute tracking URL (the test client takes paths)."""
    return urlsplit(url).path


def _reload(org, model, pk):
    with tenant_context(org.pk):
        return model.objects.get(pk=pk)


def _interactions(org, customer, kind):
    with tenant_context(org.pk):
        return list(
            Interaction.objects.filter(customer_id=customer.pk, interaction_type=kind).order_by("created_at")
        )


def _tampered(token: str) -> str:
    """The token with one character of its payload changed: the signature no longer matches."""
    position = len(token) // 3
    return token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]


def test_tracking_urls_are_absolute_links_under_m(setup):
    _, _, send = setup
    assert tracking.open_pixel_url(send).startswith("http")
    assert "/m/o/" in tracking.open_pixel_url(send)
    assert "/m/c/" in tracking.click_url(send, OFFER)
    assert "/m/u/" in tracking.unsubscribe_url(send)


@pytest.mark.parametrize("name", ["open", "click", "unsubscribe"])
def test_a_tampered_or_malformed_token_is_404_on_every_endpoint(setup, org_a, name):
    _, _, send = setup
    token = tracking.make_token(send, OFFER if name == "click" else "")
    client = Client()
    for bad in (
        _tampered(token),
        "not-a-token",
        token + "x",
        signing.dumps(["only", "two"], salt=tracking.SALT),
    ):
        assert client.get(reverse(f"tracking:{name}", args=[bad])).status_code == 404
    if name == "unsubscribe":
        bad = _tampered(token)
        assert (
            client.post(
                reverse("tracking:unsubscribe", args=[bad]), {"List-Unsubscribe": "One-Click"}
            ).status_code
            == 404
        )
    row = _reload(org_a, EmailSend, send.pk)
    assert (row.opened_at, row.clicked_at, row.unsubscribed_at) == (None, None, None)


def test_open_pixel_is_a_transparent_gif_that_is_never_cached(setup):
    _, _, send = setup
    response = Client().get(_path(tracking.open_pixel_url(send)))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a") and len(response.content) == 42
    assert "no-store" in response["Cache-Control"]


def test_open_pixel_counts_a_unique_open_once_and_every_fetch_on_the_row(setup, org_a):
    campaign, customer, send = setup
    url = _path(tracking.open_pixel_url(send))
    client = Client()
    for _ in range(3):
        assert client.get(url).status_code == 200
    row = _reload(org_a, EmailSend, send.pk)
    assert row.opened_at is not None and row.open_count == 3
    assert _reload(org_a, Campaign, campaign.pk).opened_count == 1
    opened = _interactions(org_a, customer, "email_opened")
    assert len(opened) == 1 and opened[0].campaign_id == campaign.pk and opened[0].channel == "email"


def test_a_head_probe_of_the_pixel_or_a_link_is_answered_but_not_counted(setup, org_a):
    """Mail scanners and link previews send HEAD: neither an open nor a click for anyone."""
    campaign, customer, send = setup
    client = Client()
    assert client.head(_path(tracking.open_pixel_url(send))).status_code == 200
    assert client.head(_path(tracking.click_url(send, OFFER))).status_code == 302
    row = _reload(org_a, EmailSend, send.pk)
    assert (row.opened_at, row.open_count, row.clicked_at, row.click_count) == (None, 0, None, 0)
    assert _reload(org_a, Campaign, campaign.pk).opened_count == 0
    assert _interactions(org_a, customer, "email_opened") == []


def test_click_on_a_template_link_redirects_there_and_records_it(setup, org_a):
    campaign, customer, send = setup
    response = Client().get(_path(tracking.click_url(send, OFFER)))
    assert response.status_code == 302
    assert response["Location"] == OFFER
    row = _reload(org_a, EmailSend, send.pk)
    assert row.clicked_at is not None and row.click_count == 1
    # A click proves an open (the pixel may have been blocked), without a pixel fetch on the row.
    assert row.opened_at is not None and row.open_count == 0
    c = _reload(org_a, Campaign, campaign.pk)
    assert (c.clicked_count, c.opened_count, c.clicks) == (1, 1, 0)  # `clicks` is the manual figure
    clicked = _interactions(org_a, customer, "email_clicked")
    assert [(i.notes, i.campaign_id) for i in clicked] == [(OFFER, campaign.pk)]
    assert len(_interactions(org_a, customer, "email_opened")) == 1


def test_every_click_is_an_interaction_but_the_campaign_counts_the_recipient_once(setup, org_a):
    campaign, customer, send = setup
    client = Client()
    for _ in range(2):
        client.get(_path(tracking.click_url(send, OFFER)))
    client.get(_path(tracking.open_pixel_url(send)))
    row = _reload(org_a, EmailSend, send.pk)
    assert (row.click_count, row.open_count) == (2, 1)
    c = _reload(org_a, Campaign, campaign.pk)
    assert (c.clicked_count, c.opened_count) == (1, 1)
    assert len(_interactions(org_a, customer, "email_clicked")) == 2
    assert len(_interactions(org_a, customer, "email_opened")) == 1


def test_click_to_a_url_that_is_not_a_link_of_the_template_is_refused(setup, org_a):
    campaign, customer, send = setup
    client = Client()
    for target in (
        "https://evil.example/phish",
        "https://example.com/offer/../../evil",
        "javascript:alert(1)",
    ):
        token = tracking.make_token(send, target)  # a validly signed token: only the template decides
        assert client.get(reverse("tracking:click", args=[token])).status_code == 404
    # A token without a URL (an open or unsubscribe token) is no click token either.
    assert client.get(reverse("tracking:click", args=[tracking.make_token(send)])).status_code == 404
    row = _reload(org_a, EmailSend, send.pk)
    assert (row.clicked_at, row.click_count, row.opened_at) == (None, 0, None)
    assert _reload(org_a, Campaign, campaign.pk).clicked_count == 0
    assert _interactions(org_a, customer, "email_clicked") == []


def test_the_unsubscribe_merge_link_is_not_a_link_of_the_template(setup, org_a):
    _, _, send = setup
    # {{ unsubscribe_url }} is a merge field, not a literal link, so a click token for it is refused.
    with tenant_context(org_a.pk):
        links = events.template_links(send)
    assert links == [OFFER]
    assert tracking.unsubscribe_url(send) not in links


def test_rewrite_links_wraps_template_links_but_not_the_unsubscribe_link(setup):
    _, _, send = setup
    unsubscribe = tracking.unsubscribe_url(send)
    html = f'<a href="{OFFER}">Offer</a> <a href="{unsubscribe}">Unsubscribe</a>'
    rewritten = tracking.rewrite_links(html, send)
    assert f'href="{unsubscribe}"' in rewritten
    assert f'href="{OFFER}"' not in rewritten
    assert tracking.click_url(send, OFFER) in rewritten


def test_a_variant_email_may_lead_only_to_its_own_templates_links(org_a):
    template = mf.email_template(org_a)
    other = mf.email_template(
        org_a, name="Variant B", html_body='<a href="https://example.com/b-offer">B</a>'
    )
    campaign = mf.campaign(org_a, template=template)
    with tenant_context(org_a.pk):
        variant = Variant.objects.create(organization=org_a, campaign=campaign, label="B", template=other)
    customer = factories.customer(org_a)
    send = mf.sent_email(org_a, campaign=campaign, customer=customer, variant=variant)
    client = Client()
    assert client.get(_path(tracking.click_url(send, OFFER))).status_code == 404
    response = client.get(_path(tracking.click_url(send, "https://example.com/b-offer")))
    assert response.status_code == 302 and response["Location"] == "https://example.com/b-offer"


def test_campaign_counters_equal_a_recount_of_the_rows(org_a):
    """Five recipients, a mix of opens, clicks and unsubscribes (some repeated): every counter equals the
    number of rows whose time is set, counted independently here."""
    template = mf.email_template(org_a)
    campaign = mf.campaign(org_a, template=template)
    sends = [
        mf.sent_email(org_a, campaign=campaign, customer=factories.customer(org_a, email_opt_in=True))
        for _ in range(5)
    ]
    client = Client()
    plan = {
        0: ["open", "open", "click"],
        1: ["click", "click"],
        2: ["open"],
        3: ["unsubscribe", "unsubscribe"],
    }
    for index, actions in plan.items():
        for action in actions:
            send = sends[index]
            if action == "open":
                client.get(_path(tracking.open_pixel_url(send)))
            elif action == "click":
                client.get(_path(tracking.click_url(send, OFFER)))
            else:
                client.post(_path(tracking.unsubscribe_url(send)), {"List-Unsubscribe": "One-Click"})
    with tenant_context(org_a.pk):
        rows = list(EmailSend.objects.filter(campaign_id=campaign.pk))
        c = Campaign.objects.get(pk=campaign.pk)
    assert c.opened_count == sum(1 for r in rows if r.opened_at) == 3  # recipients 0, 1 (by click), 2
    assert c.clicked_count == sum(1 for r in rows if r.clicked_at) == 2
    assert c.unsubscribed_count == sum(1 for r in rows if r.unsubscribed_at) == 1
    assert sum(r.open_count for r in rows) == 3  # pixel fetches only
    assert sum(r.click_count for r in rows) == 3


def test_interactions_appear_on_the_customers_timeline(setup, org_a, admin_a, login):
    _, customer, send = setup
    Client().get(_path(tracking.click_url(send, OFFER)))
    page = login(admin_a).get(reverse("customers:timeline", args=[customer.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Email clicked" in body and "Email opened" in body


def test_a_token_naming_another_organizations_email_touches_nothing(org_a, org_b):
    """A token is signed with its organization: one that names org A but org B's email (as a leaked
    signing key would allow) finds nothing, because the lookup runs as org A (RLS) and filters by it."""
    template_b = mf.email_template(org_b)
    campaign_b = mf.campaign(org_b, template=template_b)
    send_b = mf.sent_email(org_b, campaign=campaign_b, customer=factories.customer(org_b, email_opt_in=True))
    payload = [str(org_a.pk), str(send_b.pk), send_b.scheduled_send_time.isoformat()]
    client = Client()
    open_token = signing.dumps(payload, salt=tracking.SALT, compress=True)
    click_token = signing.dumps([*payload, OFFER], salt=tracking.SALT, compress=True)
    assert client.get(reverse("tracking:open", args=[open_token])).status_code == 404
    assert client.get(reverse("tracking:click", args=[click_token])).status_code == 404
    assert client.get(reverse("tracking:unsubscribe", args=[open_token])).status_code == 404
    assert (
        client.post(
            reverse("tracking:unsubscribe", args=[open_token]), {"List-Unsubscribe": "One-Click"}
        ).status_code
        == 404
    )
    row = _reload(org_b, EmailSend, send_b.pk)
    assert (row.opened_at, row.clicked_at, row.unsubscribed_at) == (None, None, None)
    assert _reload(org_b, Campaign, campaign_b.pk).opened_count == 0


def test_links_of_a_suspended_organization_are_404(setup, org_a):
    from crm.models import Organization
    from crm.tenancy import system_context

    _, _, send = setup
    with system_context():
        Organization.objects.filter(pk=org_a.pk).update(status="suspended")
    assert Client().get(_path(tracking.open_pixel_url(send))).status_code == 404


def test_a_sequence_email_may_lead_only_to_the_links_of_its_steps_template(org_a):
    """A sequence email is made from its step's template, not the campaign's: the click redirect follows
    the step template's links and refuses the campaign template's."""
    from django.utils import timezone

    from marketing.models import Enrollment, Step, StepRun

    campaign_template = mf.email_template(org_a, name="Campaign template")  # links to OFFER
    step_template = mf.email_template(
        org_a,
        name="Step template",
        html_body='<p><a href="https://example.com/guide">Guide</a> <a href="{{ unsubscribe_url }}">Stop</a></p>',
    )
    campaign = mf.campaign(org_a, template=campaign_template)
    sequence = mf.sequence(org_a, for_campaign=campaign, steps=[("send_email", {"template": step_template})])
    customer = factories.customer(org_a, first_name="Lin", email_opt_in=True)
    now = timezone.now().replace(microsecond=0)
    with tenant_context(org_a.pk):
        enrollment = Enrollment.objects.create(organization=org_a, sequence=sequence, customer=customer)
        step = Step.objects.get(sequence=sequence, position=1)
        run = StepRun.objects.create(
            organization=org_a, enrollment=enrollment, step=step, due_at=now, outcome=StepRun.Outcome.SENT
        )
        send = EmailSend.objects.create(
            organization=org_a,
            campaign=campaign,
            customer=customer,
            step_run=run,
            scheduled_send_time=now,
            email=customer.email,
            status="sent",
            sent_at=now,
        )
    client = Client()
    response = client.get(_path(tracking.click_url(send, "https://example.com/guide")))
    assert response.status_code == 302 and response["Location"] == "https://example.com/guide"
    assert client.get(_path(tracking.click_url(send, OFFER))).status_code == 404
    row = _reload(org_a, EmailSend, send.pk)
    assert row.click_count == 1
    clicked = _interactions(org_a, customer, "email_clicked")
    assert [(i.notes, i.campaign_id) for i in clicked] == [("https://example.com/guide", campaign.pk)]
