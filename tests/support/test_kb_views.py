"""The knowledge base inside the CRM: list with search, editor, preview, publish, delete; who may open it;
fixed query counts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from support.models import Article
from tests import factories


@pytest.fixture
def agent(org_a):
    return factories.user(org_a, role="support_agent")


def test_an_agent_writes_an_article_whose_stored_html_is_sanitized(org_a, agent, login, as_tenant):
    client = login(agent)
    response = client.post(
        reverse("support:kb_create"),
        {
            "title": "Export invoices",
            "slug": "",
            "category": "Billing",
            "tags": "invoices, Export",
            "status": "published",
            "body": "Click **Export**.<script>alert(1)</script><img src=x onerror=alert(2)>",
        },
    )
    with as_tenant(org_a):
        article = Article.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("support:kb_detail", args=[article.pk])
    assert article.slug == "export-invoices"
    assert article.tags == ["export", "invoices"]
    assert article.author_id == agent.pk and article.published_at is not None
    assert "<script" not in article.body_html and "onerror" not in article.body_html
    assert "<strong>Export</strong>" in article.body_html

    page = client.get(reverse("support:kb_detail", args=[article.pk])).content.decode()
    assert "<strong>Export</strong>" in page
    assert "alert(1)" not in page
    assert reverse("kb:article", args=["org-a", "export-invoices"]) in page


def test_the_form_shows_errors_beside_the_fields(org_a, agent, login):
    factories.article(org_a, title="Taken", slug="taken")
    client = login(agent)
    response = client.post(
        reverse("support:kb_create"), {"title": "", "slug": "taken", "status": "draft", "body": ""}
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) >= {"title", "body"}

    response = client.post(
        reverse("support:kb_create"), {"title": "T", "slug": "taken", "status": "draft", "body": "b"}
    )
    assert "slug" in response.context["form"].errors


def test_editing_publishing_and_deleting(org_a, agent, login, as_tenant):
    article = factories.article(org_a, title="Draft one", status="draft")
    client = login(agent)
    assert client.get(reverse("support:kb_edit", args=[article.pk])).status_code == 200
    client.post(
        reverse("support:kb_edit", args=[article.pk]),
        {"title": "Draft one", "slug": "", "status": "draft", "body": "_new_", "category": "", "tags": ""},
    )
    with as_tenant(org_a):
        article.refresh_from_db()
    assert article.slug == "draft-one"  # an emptied address keeps the old one
    assert article.body_html == "<p><em>new</em></p>\n"

    client.post(reverse("support:kb_publish", args=[article.pk]), {"publish": "1"})
    with as_tenant(org_a):
        article.refresh_from_db()
    assert article.status == "published"
    client.post(reverse("support:kb_publish", args=[article.pk]), {"publish": "0"})
    with as_tenant(org_a):
        article.refresh_from_db()
    assert article.status == "draft"

    response = client.post(reverse("support:kb_delete", args=[article.pk]))
    assert response.status_code == 302
    with as_tenant(org_a):
        assert not Article.objects.exists()


def test_the_preview_renders_exactly_what_will_be_stored(org_a, agent, login):
    client = login(agent)
    response = client.post(
        reverse("support:kb_preview"), {"body": "# Hi\n<script>x()</script>"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert "<h1>Hi</h1>" in html and "<script" not in html


def test_the_list_searches_drafts_too_with_marked_excerpts(org_a, org_b, agent, login):
    factories.article(org_a, title="Refund policy", body="Refunds within 30 days.", status="draft")
    factories.article(org_a, title="Shipping", body="We ship worldwide.")
    factories.article(org_b, title="Refund policy of B", body="Refunds never.")
    client = login(agent)

    response = client.get(reverse("support:kb_list"), {"q": "refund"})

    titles = [a.title for a in response.context["articles"]]
    assert titles == ["Refund policy"]
    assert "<mark>Refunds</mark>" in response.content.decode()


def test_the_list_filters_by_status_and_category_and_pages_by_keyset(org_a, agent, login):
    for n in range(30):
        factories.article(org_a, title=f"Billing {n:02d}", category="Billing")
    factories.article(org_a, title="Account", category="Account", status="draft")
    client = login(agent)

    first = client.get(reverse("support:kb_list"), {"category": "Billing"})
    assert len(first.context["articles"]) == 25 and first.context["page"].has_next
    second = client.get(
        reverse("support:kb_list"), {"category": "Billing", "cursor": first.context["page"].next_cursor}
    )
    seen = {a.title for a in first.context["articles"]} | {a.title for a in second.context["articles"]}
    assert seen == {f"Billing {n:02d}" for n in range(30)}
    drafts = client.get(reverse("support:kb_list"), {"status": "draft"})
    assert [a.title for a in drafts.context["articles"]] == ["Account"]


def test_the_list_and_detail_run_a_fixed_number_of_queries(
    org_a, agent, login, django_assert_max_num_queries
):
    for n in range(5):
        factories.article(org_a, title=f"Article {n}", tags=["a", "b"], category="C")
    client = login(agent)
    client.get(reverse("support:kb_list"))  # warm the session and caches
    with django_assert_max_num_queries(14):
        assert client.get(reverse("support:kb_list")).status_code == 200
    for n in range(20):
        factories.article(org_a, title=f"More {n}", tags=["a"])
    with django_assert_max_num_queries(14):
        assert client.get(reverse("support:kb_list")).status_code == 200
    with django_assert_max_num_queries(14):
        assert client.get(reverse("support:kb_list"), {"q": "article"}).status_code == 200


@pytest.mark.parametrize(
    "role, allowed",
    [
        ("sales_rep", False),
        ("marketing_manager", False),
        ("support_agent", True),
        ("support_manager", True),
        ("admin", True),
    ],
)
def test_only_knowledge_base_editors_open_the_area(org_a, login, role, allowed):
    user = factories.user(org_a, role=role)
    status = login(user).get(reverse("support:kb_list")).status_code
    assert (status == 200) is allowed and (status == 403) is (not allowed)


def test_another_organizations_article_is_404(org_a, org_b, agent, login):
    theirs = factories.article(org_b)
    client = login(agent)
    for name in ("support:kb_detail", "support:kb_edit"):
        assert client.get(reverse(name, args=[theirs.pk])).status_code == 404
    for name in ("support:kb_publish", "support:kb_delete"):
        assert client.post(reverse(name, args=[theirs.pk]), {"publish": "0"}).status_code == 404
