"""Email template pages and services: the list (search, archived, in-use badge, fixed query count), the form
(merge-field errors naming each problem, unique names, the unsubscribe warning), the live preview against a
customer of the organization (escaped, sandboxed; a foreign customer is a 404), plain text from HTML, the
test send, duplicate, the archive rules, the role matrix and other organizations' ids."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.permissions import MATRIX, Capability, Role
from crm.tenancy import system_context, tenant_context
from marketing.models import EmailTemplate, Sequence, Step, Variant
from marketing.services import templates as services
from tests import factories
from tests.marketing import factories as mf

HTML = '<p>Hi {{ customer.first_name|default:"there" }},</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
XSS = "<script>alert(1)</script>"


@pytest.fixture
def marketer(org_a):
    return factories.user(org_a, role="marketing_manager", first_name="Mara", email="mara@org-a.test")


def form_data(**fields) -> dict:
    data = {
        "name": "Welcome",
        "description": "First email",
        "subject": 'Welcome {{ customer.first_name|default:"friend" }}',
        "html_body": HTML,
        "text_body": "Hi {{ customer.first_name }}\nUnsubscribe: {{ unsubscribe_url }}",
    }
    return {**data, **fields}


def fresh(template) -> EmailTemplate:
    with system_context():
        return EmailTemplate.objects.get(pk=template.pk)


def srcdoc(page: str) -> str:
    """The preview frame's srcdoc, as the browser decodes the attribute."""
    match = re.search(r'<iframe sandbox srcdoc="([^"]*)"', page)
    assert match, "no sandboxed preview frame"
    return html.unescape(match.group(1))


# --- Roles -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", Role.values)
def test_only_roles_that_manage_campaigns_open_the_template_pages(client, login, org_a, role):
    user = factories.user(org_a, role=role)
    template = mf.email_template(org_a)
    allowed = Capability.MANAGE_CAMPAIGNS in MATRIX[role]
    login(user)
    expected = 200 if allowed else 403
    assert client.get("/marketing/templates/").status_code == expected
    assert client.get("/marketing/templates/new/").status_code == expected
    assert client.get(f"/marketing/templates/{template.pk}/").status_code == expected
    assert client.post("/marketing/templates/preview/", form_data()).status_code == expected
    assert client.post("/marketing/templates/new/", form_data()).status_code == (302 if allowed else 403)
    page = client.get("/").content.decode()
    assert ('href="/marketing/templates/"' in page) == allowed  # the nav item


def test_services_refuse_an_actor_without_the_capability(org_a):
    rep = factories.user(org_a, role="sales_rep")
    template = mf.email_template(org_a)
    with tenant_context(org_a.pk), pytest.raises(PermissionDenied):
        services.email_template_create(organization=org_a, actor=rep, **form_data())
    for call in (services.email_template_archive, services.email_template_duplicate):
        with tenant_context(org_a.pk), pytest.raises(PermissionDenied):
            call(template=template, actor=rep)
    with tenant_context(org_a.pk), pytest.raises(PermissionDenied):
        services.email_template_send_test(actor=rep, subject="x", html_body="", text_body="")


# --- Create, edit, form errors -----------------------------------------------------------------------------


def test_create_and_edit_a_template(client, login, org_a, marketer):
    login(marketer)
    response = client.post("/marketing/templates/new/", form_data())
    with system_context():
        template = EmailTemplate.objects.get(organization=org_a)
    assert response.status_code == 302 and response.url == f"/marketing/templates/{template.pk}/"
    assert (template.name, template.created_by_id, template.is_archived) == ("Welcome", marketer.pk, False)
    response = client.post(f"/marketing/templates/{template.pk}/", form_data(name="Welcome 2", text_body=""))
    assert response.status_code == 302
    template = fresh(template)
    assert (template.name, template.text_body, template.html_body) == ("Welcome 2", "", HTML)


def field_errors(page: str, field: str) -> str:
    match = re.search(rf'id="id_{field}-error">(.*?)</div>', page, re.DOTALL)
    return html.unescape(match.group(1)) if match else ""


def test_each_merge_problem_is_a_field_error_naming_it(client, login, org_a, marketer):
    login(marketer)
    response = client.post(
        "/marketing/templates/new/",
        form_data(
            subject="Hi {{ customer.nickname }}",
            html_body="{% load static %}<p>{{ settings.SECRET_KEY }}</p>{{ customer.email|safe }}",
            text_body="Hi {{ customer.first_name",
        ),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Please correct the highlighted fields." in page
    assert field_errors(page, "subject") == "Unknown merge field: customer.nickname"
    html_errors = field_errors(page, "html_body")
    assert "Template tags are not allowed: {% load static %}" in html_errors
    assert "Unknown merge field: settings.SECRET_KEY" in html_errors
    assert "Not a merge field: {{ customer.email|safe }}" in html_errors
    assert field_errors(page, "text_body") == "Unclosed or stray merge field braces: {{"
    with system_context():
        assert not EmailTemplate.objects.filter(organization=org_a).exists()


def test_names_are_unique_per_organization_whatever_the_case(client, login, org_a, org_b, marketer):
    mf.email_template(org_a, name="Welcome")
    mf.email_template(org_b, name="Onboarding")
    login(marketer)
    page = client.post("/marketing/templates/new/", form_data(name="WELCOME")).content.decode()
    assert field_errors(page, "name") == "Another email template already has this name."
    assert client.post("/marketing/templates/new/", form_data(name="Onboarding")).status_code == 302


def test_the_subject_must_be_one_line(org_a, marketer):
    with tenant_context(org_a.pk), pytest.raises(ValidationError) as error:
        services.email_template_create(
            organization=org_a, actor=marketer, **form_data(subject="Hi\r\nBcc: x@y.test")
        )
    assert error.value.message_dict == {"subject": ["The subject must be one line."]}


def test_saving_without_an_unsubscribe_link_warns_but_saves(client, login, org_a, marketer):
    login(marketer)
    response = client.post("/marketing/templates/new/", form_data(html_body="<p>No way out</p>"), follow=True)
    page = response.content.decode()
    assert "“Welcome” is saved." in page
    assert "has no unsubscribe link" in page
    assert 'data-testid="unsubscribe-warning"' in page  # and the preview says so too
    with system_context():
        assert EmailTemplate.objects.filter(organization=org_a, name="Welcome").exists()


def test_the_editor_page_has_the_picker_the_preview_and_a_csp_for_email_html(client, login, org_a, marketer):
    template = mf.email_template(org_a)
    login(marketer)
    response = client.get(f"/marketing/templates/{template.pk}/")
    page = response.content.decode()
    for code in ("{{ customer.first_name }}", "{{ owner.signature }}", "{{ unsubscribe_url }}"):
        assert f'data-merge-field="{code}"' in page
    assert 'data-testid="template-preview"' in page and "With example values." in page
    assert srcdoc(page) == (
        '<p>Hi Ada,</p><p><a href="https://example.com/offer">Offer</a></p>'
        '<p><a href="https://crm.example.com/m/u/…">Unsubscribe</a></p>'
    )
    directives = {
        part.split()[0]: part.split()[1:]
        for part in response["Content-Security-Policy"].split(";")
        if part.split()
    }
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" in directives["style-src"] and "https:" in directives["img-src"]
    assert directives["frame-ancestors"] == ["'none'"]


# --- Preview -----------------------------------------------------------------------------------------------


def preview(client, **fields):
    return client.post("/marketing/templates/preview/", form_data(**fields))


def test_preview_renders_unsaved_edits_for_a_customer_of_the_organization(client, login, org_a, marketer):
    owner = factories.user(org_a, role="sales_rep", first_name="Olive", last_name="Owner", job_title="AE")
    customer = factories.customer(org_a, first_name="Ada", last_name="Lovelace", assigned_to=owner)
    login(marketer)
    response = preview(
        client,
        subject="Hi {{ customer.first_name }} from {{ organization.name }}",
        html_body="<p>{{ customer.full_name }} / {{ owner.name }} / {{ customer.customer_number }}</p>",
        text_body="",
        preview_customer=str(customer.pk),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "As Ada Lovelace would receive it." in page
    assert re.search(r'data-testid="preview-subject">Hi Ada from Org A<', page)
    assert srcdoc(page) == f"<p>Ada Lovelace / Olive Owner / {customer.customer_number}</p>"
    # The empty plain-text body is generated from the HTML, and says so.
    assert "(generated from the HTML)" in page
    assert f"Ada Lovelace / Olive Owner / {customer.customer_number}</pre>" in page
    assert 'data-testid="unsubscribe-warning"' in page


def test_preview_escapes_a_customer_named_script_and_sandboxes_the_html(client, login, org_a, marketer):
    customer = factories.customer(org_a, first_name=XSS, last_name="X")
    login(marketer)
    page = preview(
        client,
        html_body="<p>{{ customer.first_name }}</p><script>alert(2)</script>",
        preview_customer=customer.pk,
    ).content.decode()
    assert XSS not in page and "<script>alert(2)" not in page  # nothing runs in the CRM page
    assert re.search(r"<iframe sandbox srcdoc=", page)  # a bare sandbox: no allow-scripts, no same origin
    assert "allow-" not in page.split("<iframe", 1)[1].split(">", 1)[0]
    document = srcdoc(page)
    assert "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>" in document  # the value escaped in the email
    assert "<script>alert(2)</script>" in document  # the template's own HTML, inert in the sandbox
    assert f"{html.escape(XSS)} X" in page  # "As ... would receive it", escaped
    text = re.search(r'data-testid="preview-text">(.*?)</pre>', page, re.DOTALL).group(1)
    assert html.unescape(text).startswith(f"Hi {XSS}\n")  # the raw value: the page alone escapes it


def test_preview_of_another_organizations_customer_is_404(client, login, org_a, org_b, marketer):
    foreign = factories.customer(org_b, first_name="Secret")
    login(marketer)
    response = preview(client, preview_customer=str(foreign.pk))
    assert response.status_code == 404
    assert "Secret" not in response.content.decode()
    assert (
        client.post("/marketing/templates/send-test/", form_data(preview_customer=foreign.pk)).status_code
        == 404
    )


def test_preview_lists_merge_problems_without_rendering_them(client, login, org_a, marketer, settings):
    settings.SECRET_KEY = "sekrit-" + "x" * 50
    login(marketer)
    page = preview(client, html_body="<p>{{ settings.SECRET_KEY }}{% debug %}</p>").content.decode()
    assert "These will be refused when you save:" in page
    assert "Unknown merge field: settings.SECRET_KEY" in page
    assert "sekrit-" not in page
    assert srcdoc(page) == "<p></p>"


def test_preview_customer_picker_searches_the_organizations_customers(client, login, org_a, org_b, marketer):
    ada = factories.customer(org_a, first_name="Ada", last_name="Lovelace", email="ada@a.test")
    factories.customer(org_a, first_name="Grace", last_name="Hopper")
    factories.customer(org_b, first_name="Ada", last_name="Foreign")
    login(marketer)
    page = client.get("/marketing/templates/customers/", {"customer_query": "lovelace"}).content.decode()
    assert re.findall(r'data-customer-id="([^"]+)"', page) == [str(ada.pk)]
    page = client.get("/marketing/templates/customers/", {"customer_query": "ada"}).content.decode()
    assert "Foreign" not in page and "Lovelace" in page
    page = client.get(
        "/marketing/templates/customers/", {"customer_query": ada.customer_number}
    ).content.decode()
    assert re.findall(r'data-customer-id="([^"]+)"', page) == [str(ada.pk)]
    page = client.get("/marketing/templates/customers/", {"customer_query": "zzzz"}).content.decode()
    assert "No customer matches" in page


def test_generate_plain_text_from_html(client, login, org_a, marketer):
    login(marketer)
    response = client.post(
        "/marketing/templates/plain-text/",
        {"html_body": '<p>Hi {{ customer.first_name }}</p><p><a href="https://x.test/a">Read</a></p>'},
    )
    assert response.status_code == 200
    assert "template-changed" in json.loads(response["HX-Trigger"])  # the preview refreshes
    textarea = re.search(
        r'<textarea name="text_body"[^>]*>(.*?)</textarea>', response.content.decode(), re.DOTALL
    )
    assert (
        html.unescape(textarea.group(1)).strip() == "Hi {{ customer.first_name }}\n\nRead (https://x.test/a)"
    )


# --- Test send ---------------------------------------------------------------------------------------------


def test_send_me_a_test_renders_for_the_customer_and_mails_the_user(
    client, login, org_a, marketer, django_capture_on_commit_callbacks
):
    customer = factories.customer(org_a, first_name="Ada", last_name="Lovelace")
    login(marketer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/marketing/templates/send-test/",
            form_data(html_body=f"<p>{{{{ customer.first_name }}}}</p>{HTML}", preview_customer=customer.pk),
        )
    assert response.status_code == 200
    assert "A test email is on its way to mara@org-a.test." in response.content.decode()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["mara@org-a.test"]
    assert message.subject == "[Test] Welcome Ada"
    assert message.body == "Hi Ada\nUnsubscribe: https://crm.example.com/m/u/…"
    (alternative, mimetype), *_ = message.alternatives
    assert mimetype == "text/html" and alternative.startswith("<p>Ada</p><p>Hi Ada,</p>")


def test_a_test_with_merge_problems_is_not_sent(
    client, login, org_a, marketer, django_capture_on_commit_callbacks
):
    login(marketer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/marketing/templates/send-test/", form_data(subject="{{ nope }}"))
    page = response.content.decode()
    assert "The test was not sent:" in page and "Unknown merge field: nope" in page
    assert mail.outbox == []


def test_a_test_without_a_customer_uses_example_values(org_a, marketer, django_capture_on_commit_callbacks):
    with tenant_context(org_a.pk), django_capture_on_commit_callbacks(execute=True):
        services.email_template_send_test(
            actor=marketer, **{k: form_data()[k] for k in ("subject", "html_body")}
        )
    assert mail.outbox[0].subject == "[Test] Welcome Ada"
    assert mail.outbox[0].body == "Hi Ada,\n\nUnsubscribe (https://crm.example.com/m/u/…)"  # generated text


# --- Duplicate, archive, restore ---------------------------------------------------------------------------


def test_duplicate_takes_the_next_free_copy_name(client, login, org_a, marketer):
    template = mf.email_template(org_a, name="Newsletter")
    login(marketer)
    first = client.post(f"/marketing/templates/{template.pk}/duplicate/")
    second = client.post(f"/marketing/templates/{template.pk}/duplicate/")
    with system_context():
        copies = {t.name: t for t in EmailTemplate.objects.filter(organization=org_a).exclude(pk=template.pk)}
    assert set(copies) == {"Newsletter (copy)", "Newsletter (copy 2)"}
    assert first.url == f"/marketing/templates/{copies['Newsletter (copy)'].pk}/"
    assert second.url == f"/marketing/templates/{copies['Newsletter (copy 2)'].pk}/"
    copy = copies["Newsletter (copy)"]
    assert (copy.subject, copy.html_body, copy.text_body) == (
        template.subject,
        template.html_body,
        template.text_body,
    )
    assert copy.created_by_id == marketer.pk


def archive(client, template):
    return client.post(f"/marketing/templates/{template.pk}/archive/", follow=True)


def test_archive_and_restore(client, login, org_a, marketer):
    template = mf.email_template(org_a, name="Old news")
    login(marketer)
    page = archive(client, template).content.decode()
    assert "“Old news” is archived" in page
    assert fresh(template).is_archived
    # Archived templates leave the default list and show under "Archived".
    assert "Old news" not in client.get("/marketing/templates/").content.decode()
    assert "Old news" in client.get("/marketing/templates/", {"status": "archived"}).content.decode()
    client.post(f"/marketing/templates/{template.pk}/restore/")
    assert not fresh(template).is_archived


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "scheduled"},
        {"status": "active", "send_state": "sending"},
        {"status": "active", "send_state": "materializing"},
        {"status": "active", "send_state": "testing"},
        {"status": "paused", "send_state": "paused"},
    ],
)
def test_a_template_a_scheduled_or_sending_campaign_uses_cannot_be_archived(
    client, login, org_a, marketer, fields
):
    template = mf.email_template(org_a, name="Launch")
    mf.campaign(org_a, name="Spring launch", template=template, **fields)
    login(marketer)
    page = archive(client, template).content.decode()
    assert "“Launch” cannot be archived: it is still used by campaign “Spring launch”." in page
    assert not fresh(template).is_archived
    assert "In use" in client.get("/marketing/templates/").content.decode()


def test_a_variant_of_a_scheduled_campaign_blocks_its_template(client, login, org_a, marketer):
    main, variant_body = mf.email_template(org_a, name="Main"), mf.email_template(org_a, name="Variant B")
    campaign = mf.campaign(org_a, name="Tested", template=main, status="scheduled")
    with tenant_context(org_a.pk):
        Variant.objects.create(organization=org_a, campaign=campaign, label="B", template=variant_body)
    login(marketer)
    assert "still used by campaign “Tested”" in archive(client, variant_body).content.decode()
    assert not fresh(variant_body).is_archived


def test_an_active_sequence_blocks_its_templates_a_paused_one_does_not(client, login, org_a, marketer):
    template = mf.email_template(org_a, name="Drip 1")
    campaign = mf.campaign(org_a, name="Nurture")
    with tenant_context(org_a.pk):
        sequence = Sequence.objects.create(
            organization=org_a, name="Onboarding", campaign=campaign, status="active"
        )
        Step.objects.create(
            organization=org_a, sequence=sequence, position=1, kind="send_email", template=template
        )
    login(marketer)
    assert "still used by sequence “Onboarding”" in archive(client, template).content.decode()
    assert not fresh(template).is_archived
    page = client.get(f"/marketing/templates/{template.pk}/").content.decode()
    assert 'data-testid="template-usage"' in page and "sequence “Onboarding”" in page
    with tenant_context(org_a.pk):
        Sequence.objects.filter(pk=sequence.pk).update(status="paused")
    archive(client, template)
    assert fresh(template).is_archived


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "draft"},
        {"status": "completed", "send_state": "done"},
        {"status": "active", "send_state": "failed"},
    ],
)
def test_draft_and_finished_campaigns_do_not_block_archiving(client, login, org_a, marketer, fields):
    template = mf.email_template(org_a)
    mf.campaign(org_a, template=template, **fields)
    login(marketer)
    archive(client, template)
    assert fresh(template).is_archived


# --- The list ----------------------------------------------------------------------------------------------


def test_the_list_searches_and_shows_an_empty_state(client, login, org_a, marketer):
    login(marketer)
    page = client.get("/marketing/templates/").content.decode()
    assert "No email templates yet" in page and "Write your first template" in page
    mf.email_template(org_a, name="Welcome", subject="Hello there")
    mf.email_template(org_a, name="Invoice", description="Monthly", subject="Your invoice")
    page = client.get("/marketing/templates/", {"q": "hello"}).content.decode()
    assert "Welcome" in page and "Invoice" not in page
    page = client.get("/marketing/templates/", {"q": "monthly"}).content.decode()
    assert "Invoice" in page and "Welcome" not in page
    page = client.get("/marketing/templates/", {"q": "nothing like it"}).content.decode()
    assert "No template matches" in page


def test_the_list_counts_active_and_archived_templates_of_the_organization(
    client, login, org_a, org_b, marketer
):
    for name in ("A", "B", "C"):
        mf.email_template(org_a, name=name)
    mf.email_template(org_a, name="Old", is_archived=True)
    mf.email_template(org_b, name="Theirs")
    mf.email_template(org_b, name="Theirs too", is_archived=True)
    login(marketer)
    page = client.get("/marketing/templates/").content.decode()
    counts = re.search(r'data-testid="template-counts">(.*?)</p>', page).group(1)
    assert html.unescape(counts) == "3 active templates · 1 archived"
    assert len(re.findall('data-testid="template-row"', page)) == 3


def test_the_list_runs_a_fixed_number_of_queries(client, login, org_a, marketer):
    login(marketer)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/marketing/templates/").status_code == 200
        return len(captured)

    template = mf.email_template(org_a, name="T0", created_by=marketer)
    mf.campaign(org_a, template=template, status="scheduled")
    few = queries()
    for n in range(1, 8):
        mf.email_template(org_a, name=f"T{n}", created_by=factories.user(org_a, role="marketing_manager"))
    assert queries() == few
    page = client.get("/marketing/templates/").content.decode()
    assert len(re.findall('data-testid="template-row"', page)) == 8


# --- Other organizations -----------------------------------------------------------------------------------


def test_another_organizations_template_is_404_and_untouched(client, login, org_b, marketer):
    foreign = mf.email_template(org_b, name="Theirs")
    login(marketer)
    assert client.get(f"/marketing/templates/{foreign.pk}/").status_code == 404
    assert client.post(f"/marketing/templates/{foreign.pk}/", form_data()).status_code == 404
    for action in ("duplicate", "archive", "restore"):
        assert client.post(f"/marketing/templates/{foreign.pk}/{action}/").status_code == 404
    with system_context():
        assert EmailTemplate.objects.filter(organization=org_b).count() == 1
        assert not fresh(foreign).is_archived
    assert "Theirs" not in client.get("/marketing/templates/", {"status": "all"}).content.decode()
