"""Lead capture forms: the public page and what a submission does (new lead or update without overwriting,
consent, interaction with the campaign, sequence enrollment), spam protection, and the staff pages with
their numbers recomputed here."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Organization
from crm.tenancy import system_context, tenant_context
from customers.models import Customer, Interaction
from marketing.models import Enrollment, FormSubmission, LeadForm, Sequence
from marketing.views import public_forms
from tests import factories
from tests.marketing import factories as mf


@pytest.fixture
def lead_form(org_a):
    return mf.lead_form(org_a, slug="newsletter", thank_you_text="Thanks, talk soon!")


def _url(org_slug="org-a", slug="newsletter") -> str:
    return reverse("forms:form", kwargs={"org_slug": org_slug, "slug": slug})


def _submit(data, *, org_slug="org-a", slug="newsletter", ip="203.0.113.10"):
    return Client(REMOTE_ADDR=ip).post(_url(org_slug, slug), data)


def _customer(org, email) -> Customer:
    with tenant_context(org.pk):
        return Customer.objects.get(organization=org, email__iexact=email)


def _submissions(org) -> list[FormSubmission]:
    with tenant_context(org.pk):
        return list(FormSubmission.objects.filter(organization=org).order_by("submitted_at", "id"))


def _refreshed(org, form: LeadForm) -> LeadForm:
    with tenant_context(org.pk):
        return LeadForm.objects.get(pk=form.pk)


# --- The public page ---------------------------------------------------------------------------------------


def test_the_public_page_shows_the_chosen_fields_with_labels_consent_and_a_hidden_honeypot(org_a, lead_form):
    response = Client().get(_url())
    page = response.content.decode()
    assert response.status_code == 200
    assert "Get our newsletter" in page
    for label in ("Email", "First name", "Last name", "Company"):
        assert f">{label}" in page
    assert 'name="job_title"' not in page and 'name="phone"' not in page  # not chosen
    assert 'name="consent"' in page and "I can unsubscribe at any time." in page
    # The honeypot: inside an aria-hidden, visually hidden wrapper, out of the tab order, no autofill.
    honeypot = page[page.index('<div class="visually-hidden" aria-hidden="true">') :]
    honeypot = honeypot[: honeypot.index("</div>")]
    assert 'name="website"' in honeypot and 'tabindex="-1"' in honeypot and 'autocomplete="off"' in honeypot
    # Its own layout: no CRM navigation; the site-wide framing refusal is kept (docs/marketing.md).
    assert "sidebar" not in page
    assert response["X-Frame-Options"] == "DENY"


def test_the_public_page_escapes_what_staff_typed(org_a):
    mf.lead_form(
        org_a, slug="xss", title="<script>alert(1)</script>", intro="<b>hi</b>", consent_text="<i>ok</i>"
    )
    page = Client().get(_url(slug="xss")).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>hi</b>" not in page and "<i>ok</i>" not in page


def test_an_inactive_or_unknown_form_is_404_for_get_and_post(org_a):
    mf.lead_form(org_a, slug="closed", is_active=False)
    assert Client().get(_url(slug="closed")).status_code == 404
    assert _submit({"email": "a@example.com"}, slug="closed").status_code == 404
    assert Client().get(_url(slug="no-such-form")).status_code == 404
    assert _submissions(org_a) == []


def test_a_form_under_another_organizations_slug_or_an_unknown_organization_is_404(org_a, org_b, lead_form):
    assert Client().get(_url(org_slug="org-b")).status_code == 404
    assert _submit({"email": "a@example.com"}, org_slug="org-b").status_code == 404
    assert Client().get(_url(org_slug="no-such-org")).status_code == 404
    assert _submissions(org_a) == [] and _submissions(org_b) == []


def test_a_suspended_organizations_form_is_404(org_a, lead_form):
    with system_context():
        Organization.objects.filter(pk=org_a.pk).update(status=Organization.Status.SUSPENDED)
    assert Client().get(_url()).status_code == 404


# --- Submissions ---------------------------------------------------------------------------------------------


def test_a_new_address_becomes_a_lead_with_the_interaction_and_the_campaign(org_a, lead_form):
    response = _submit(
        {"email": "New.Person@Example.com", "first_name": " Ada ", "last_name": "Lovelace", "consent": "on"}
    )
    assert response.status_code == 302 and response.url == f"{_url()}?sent=1"
    customer = _customer(org_a, "new.person@example.com")
    assert customer.email == "new.person@example.com"
    assert (customer.first_name, customer.last_name, customer.company_name) == ("Ada", "Lovelace", "")
    assert customer.lifecycle_stage == "lead"
    assert customer.source == "form:newsletter"
    assert customer.email_opt_in is True
    assert customer.number > 0 and customer.last_contact_date is not None
    with tenant_context(org_a.pk):
        interactions = list(Interaction.objects.filter(customer_id=customer.pk))
    assert [(i.interaction_type, i.campaign_id, i.channel) for i in interactions] == [
        ("form_submission", lead_form.campaign_id, "web")
    ]
    (submission,) = _submissions(org_a)
    assert submission.customer_id == customer.pk and submission.form_id == lead_form.pk
    assert submission.created_customer is True and submission.consent_given is True
    assert submission.data == {
        "email": "new.person@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
    }
    assert _refreshed(org_a, lead_form).submission_count == 1


def test_the_thank_you_page_shows_the_forms_text(org_a, lead_form):
    response = Client().get(_url(), {"sent": "1"})
    assert response.status_code == 200
    assert "Thanks, talk soon!" in response.content.decode()
    assert 'name="email"' not in response.content.decode()


def test_an_existing_customer_is_matched_by_email_and_only_empty_fields_are_filled(org_a, lead_form):
    existing = factories.customer(
        org_a,
        first_name="Grace",
        last_name="",
        company_name="",
        email="grace@example.com",
        email_opt_in=False,
    )
    response = _submit(
        {"email": "GRACE@example.com", "first_name": "Gracie", "last_name": "Hopper", "company_name": "Navy"}
    )
    assert response.status_code == 302
    customer = _customer(org_a, "grace@example.com")
    assert customer.pk == existing.pk
    # Staff-entered first name kept; empty last name and company filled in.
    assert (customer.first_name, customer.last_name, customer.company_name) == ("Grace", "Hopper", "Navy")
    assert customer.lifecycle_stage == existing.lifecycle_stage and customer.source == existing.source
    with tenant_context(org_a.pk):
        assert Customer.objects.filter(organization=org_a).count() == 1
        assert (
            Interaction.objects.filter(customer_id=existing.pk, interaction_type="form_submission").count()
            == 1
        )
    (submission,) = _submissions(org_a)
    assert submission.created_customer is False and submission.customer_id == existing.pk


@pytest.mark.parametrize(
    "opted_in_before, consent, opted_in_after",
    [
        (False, True, True),  # consent given now opts in
        (True, False, True),  # no consent never opts out
        (False, False, False),
    ],
)
def test_consent_opts_an_existing_customer_in_but_never_out(
    org_a, lead_form, opted_in_before, consent, opted_in_after
):
    factories.customer(org_a, email="c@example.com", email_opt_in=opted_in_before)
    _submit({"email": "c@example.com", **({"consent": "on"} if consent else {})})
    assert _customer(org_a, "c@example.com").email_opt_in is opted_in_after
    assert _submissions(org_a)[0].consent_given is consent


def test_a_new_lead_without_consent_is_not_opted_in(org_a, lead_form):
    _submit({"email": "quiet@example.com"})
    assert _customer(org_a, "quiet@example.com").email_opt_in is False


def test_required_consent_not_given_is_a_field_error_and_saves_nothing(org_a):
    mf.lead_form(org_a, slug="strict", require_consent=True)
    response = _submit({"email": "x@example.com", "first_name": "Xena"}, slug="strict")
    assert response.status_code == 200
    assert response.context["form"].errors["consent"] == ["Please tick the box to continue."]
    assert _submissions(org_a) == []
    with tenant_context(org_a.pk):
        assert not Customer.objects.filter(organization=org_a).exists()


def test_field_errors_keep_the_input_and_save_nothing(org_a, lead_form):
    response = _submit({"email": "not-an-email", "first_name": "Keep <me>", "company_name": "x" * 201})
    page = response.content.decode()
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"email", "company_name"}
    assert 'value="Keep &lt;me&gt;"' in page and 'value="not-an-email"' in page
    assert 'aria-invalid="true"' in page
    assert _submissions(org_a) == []
    with tenant_context(org_a.pk):
        assert not Customer.objects.filter(organization=org_a).exists()
        assert _refreshed(org_a, lead_form).submission_count == 0


def test_a_filled_honeypot_looks_like_success_and_saves_nothing(org_a, lead_form):
    response = _submit({"email": "bot@example.com", "first_name": "Bot", "website": "http://spam.example"})
    assert response.status_code == 302 and response.url == f"{_url()}?sent=1"
    assert _submissions(org_a) == []
    with tenant_context(org_a.pk):
        assert not Customer.objects.filter(organization=org_a).exists()
    assert _refreshed(org_a, lead_form).submission_count == 0


def test_the_rate_limit_refuses_the_sixth_submission_from_one_ip_with_a_429(org_a, lead_form):
    for n in range(public_forms.RATE_LIMIT):
        assert _submit({"email": f"p{n}@example.com"}, ip="198.51.100.1").status_code == 302
    response = _submit({"email": "p-last@example.com"}, ip="198.51.100.1")
    assert response.status_code == 429
    assert "Too many submissions" in response.content.decode()
    assert len(_submissions(org_a)) == public_forms.RATE_LIMIT
    # Another visitor is not affected; invalid attempts do not count against anyone.
    assert _submit({"email": "other@example.com"}, ip="198.51.100.2").status_code == 302
    assert _submit({"email": "bad"}, ip="198.51.100.3").status_code == 200
    assert len(_submissions(org_a)) == public_forms.RATE_LIMIT + 1


def _sequence(org, campaign, status=Sequence.Status.ACTIVE) -> Sequence:
    with tenant_context(org.pk):
        return Sequence.objects.create(
            organization=org, name=f"Nurture {status}", campaign=campaign, status=status
        )


def test_a_submission_enrolls_the_customer_in_the_forms_sequence_once(org_a):
    campaign = mf.campaign(org_a)
    sequence = _sequence(org_a, campaign)
    mf.lead_form(org_a, campaign=campaign, slug="drip", sequence=sequence)
    _submit({"email": "drip@example.com"}, slug="drip")
    _submit({"email": "DRIP@example.com", "first_name": "Dee"}, slug="drip")
    customer = _customer(org_a, "drip@example.com")
    with tenant_context(org_a.pk):
        enrollments = list(Enrollment.objects.filter(sequence=sequence))
    assert [(e.customer_id, e.source, e.status) for e in enrollments] == [(customer.pk, "form", "active")]
    assert len(_submissions(org_a)) == 2


def test_a_form_without_a_sequence_enrolls_nobody(org_a, lead_form):
    _submit({"email": "nobody@example.com"})
    with tenant_context(org_a.pk):
        assert not Enrollment.objects.filter(organization=org_a).exists()


def test_a_processing_restricted_customer_is_not_updated_but_the_submission_is_kept(org_a, lead_form):
    customer = factories.customer(org_a, first_name="", email="r@example.com", email_opt_in=False)
    with system_context():
        Customer.objects.filter(pk=customer.pk).update(processing_restricted=True)
    _submit({"email": "r@example.com", "first_name": "Rita", "consent": "on"})
    customer = _customer(org_a, "r@example.com")
    assert customer.first_name == "" and customer.email_opt_in is False
    assert len(_submissions(org_a)) == 1


# --- Staff pages ---------------------------------------------------------------------------------------------


@pytest.fixture
def marketer(org_a):
    return factories.user(org_a, role="marketing_manager")


def _seed_submissions(org_a, lead_form):
    """Hand-made: 4 submissions from 3 addresses. New leads: a@ and b@ (2); c@ existed before (its two
    submissions are updates). Consent given by a@ and by c@'s second submission (2)."""
    factories.customer(org_a, email="c@example.com")
    _submit({"email": "a@example.com", "consent": "on"}, ip="192.0.2.1")
    _submit({"email": "b@example.com"}, ip="192.0.2.2")
    _submit({"email": "c@example.com"}, ip="192.0.2.3")
    _submit({"email": "c@example.com", "consent": "on"}, ip="192.0.2.3")


def test_the_detail_page_counts_submissions_new_leads_and_consent(org_a, lead_form, marketer, login):
    _seed_submissions(org_a, lead_form)
    response = login(marketer).get(reverse("marketing:form_detail", args=[lead_form.pk]))
    assert response.status_code == 200
    counts = response.context["counts"]
    assert (counts.submissions, counts.new_leads, counts.consented, counts.existing_customers) == (4, 2, 2, 2)
    assert _refreshed(org_a, lead_form).submission_count == 4
    rows = response.context["submissions"]
    assert [s.customer.email for s in rows] == [
        "c@example.com",
        "c@example.com",
        "b@example.com",
        "a@example.com",
    ]
    assert [s.created_customer for s in rows] == [False, False, True, True]
    page = response.content.decode()
    assert 'data-testid="lead-form-count-new-leads">2<' in page
    assert reverse("customers:detail", args=[rows[0].customer.pk]) in page


def test_the_detail_page_gives_the_public_address_and_an_escaped_link_snippet(org_a, marketer, login):
    form = mf.lead_form(org_a, slug="quote", title='Say "hi" <now>')
    page = login(marketer).get(reverse("marketing:form_detail", args=[form.pk])).content.decode()
    url = "http://testserver/forms/org-a/quote/"
    assert f'value="{url}"' in page
    # The snippet is shown as text (escaped once more for the page), with the title escaped inside it.
    assert (
        f"&lt;a href=&quot;{url}&quot; target=&quot;_blank&quot; rel=&quot;noopener&quot;&gt;"
        "Say &amp;quot;hi&amp;quot; &amp;lt;now&amp;gt;&lt;/a&gt;"
    ) in page


def test_the_list_shows_each_forms_submissions_and_new_leads(org_a, lead_form, marketer, login):
    _seed_submissions(org_a, lead_form)
    other = mf.lead_form(org_a, slug="other", name="Other")
    response = login(marketer).get(reverse("marketing:form_list"))
    by_slug = {f.slug: f for f in response.context["forms"]}
    assert (by_slug["newsletter"].submission_count, by_slug["newsletter"].new_leads) == (4, 2)
    assert (by_slug["other"].submission_count, by_slug["other"].new_leads) == (0, 0)
    assert other.pk in {f.pk for f in response.context["forms"]}


def test_the_list_runs_the_same_number_of_queries_for_one_form_or_many(org_a, marketer, login):
    client = login(marketer)
    mf.lead_form(org_a, slug="first")
    client.get(reverse("marketing:form_list"))  # warm up (session, content types)
    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("marketing:form_list")).status_code == 200
    campaign = mf.campaign(org_a, name="Second")
    for n in range(6):
        form = mf.lead_form(org_a, campaign=campaign, slug=f"more-{n}")
        _submit({"email": f"m{n}@example.com"}, slug=form.slug, ip=f"192.0.2.{n + 10}")
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("marketing:form_list"))
    assert len(response.context["forms"]) == 7
    assert len(many) == len(one)


def test_the_list_is_empty_with_a_call_to_action(org_a, marketer, login):
    page = login(marketer).get(reverse("marketing:form_list")).content.decode()
    assert "No lead forms yet" in page and reverse("marketing:form_create") in page


def test_staff_create_a_form_and_the_address_comes_from_the_name(org_a, marketer, login):
    campaign = mf.campaign(org_a)
    sequence = _sequence(org_a, campaign)
    response = login(marketer).post(
        reverse("marketing:form_create"),
        {
            "campaign": str(campaign.pk),
            "name": "Webinar sign-up",
            "slug": "",
            "title": "Join the webinar",
            "asked": ["phone", "first_name"],
            "consent_text": "Email me",
            "require_consent": "on",
            "thank_you_text": "See you there",
            "sequence": str(sequence.pk),
            "is_active": "on",
        },
    )
    with tenant_context(org_a.pk):
        form = LeadForm.objects.get(organization=org_a, name="Webinar sign-up")
    assert response.status_code == 302 and response.url == reverse("marketing:form_detail", args=[form.pk])
    assert form.slug == "webinar-sign-up"
    assert form.fields == ["first_name", "phone"]  # in the order of LeadForm.FIELD_CHOICES
    assert (form.campaign_id, form.sequence_id, form.require_consent, form.is_active) == (
        campaign.pk,
        sequence.pk,
        True,
        True,
    )
    assert form.created_by_id == marketer.pk


def test_a_typed_address_already_in_use_is_a_field_error(org_a, lead_form, marketer, login):
    response = login(marketer).post(
        reverse("marketing:form_create"),
        {
            "campaign": str(lead_form.campaign_id),
            "name": "Another",
            "slug": "newsletter",
            "title": "Another",
            "consent_text": "ok",
            "thank_you_text": "thanks",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["slug"] == ["Another form already uses this address."]


def test_another_organizations_campaign_cannot_be_chosen(org_a, org_b, marketer, login):
    foreign = mf.campaign(org_b, name="Foreign")
    response = login(marketer).post(
        reverse("marketing:form_create"),
        {"campaign": str(foreign.pk), "name": "X", "title": "X", "consent_text": "ok", "thank_you_text": "t"},
    )
    assert response.status_code == 200 and "campaign" in response.context["form"].errors


def test_staff_edit_and_close_a_form(org_a, lead_form, marketer, login):
    client = login(marketer)
    response = client.post(
        reverse("marketing:form_edit", args=[lead_form.pk]),
        {
            "campaign": str(lead_form.campaign_id),
            "name": "Renamed",
            "slug": "newsletter",
            "title": "New heading",
            "asked": ["city"],
            "consent_text": "ok",
            "thank_you_text": "thanks",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    form = _refreshed(org_a, lead_form)
    assert (form.name, form.title, form.fields, form.is_active) == ("Renamed", "New heading", ["city"], True)
    client.post(reverse("marketing:form_set_active", args=[lead_form.pk]), {"active": "0"})
    assert _refreshed(org_a, lead_form).is_active is False
    assert Client().get(_url()).status_code == 404


def test_a_sales_rep_can_read_forms_but_not_create_or_change_them(org_a, lead_form, login):
    rep = factories.user(org_a, role="sales_rep")
    client = login(rep)
    assert client.get(reverse("marketing:form_list")).status_code == 200
    page = client.get(reverse("marketing:form_detail", args=[lead_form.pk])).content.decode()
    assert reverse("marketing:form_edit", args=[lead_form.pk]) not in page
    assert client.get(reverse("marketing:form_create")).status_code == 403
    assert client.get(reverse("marketing:form_edit", args=[lead_form.pk])).status_code == 403
    assert (
        client.post(reverse("marketing:form_set_active", args=[lead_form.pk]), {"active": "0"}).status_code
        == 403
    )
    assert _refreshed(org_a, lead_form).is_active is True


@pytest.mark.parametrize(
    "name", ["marketing:form_detail", "marketing:form_edit", "marketing:form_set_active"]
)
def test_another_organizations_form_is_404_on_every_staff_page(org_a, org_b, admin_b, login, name):
    foreign = mf.lead_form(org_a, slug="foreign")
    client = login(admin_b)
    response = (
        client.post(reverse(name, args=[foreign.pk]), {"active": "0"})
        if name.endswith("set_active")
        else client.get(reverse(name, args=[foreign.pk]))
    )
    assert response.status_code == 404
    assert _refreshed(org_a, foreign).is_active is True


def test_the_navigation_shows_lead_forms_to_marketers(org_a, marketer, login):
    page = login(marketer).get(reverse("home")).content.decode()
    assert reverse("marketing:form_list") in page
