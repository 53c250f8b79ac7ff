"""The public knowledge base at /kb/<org-slug>/: no login, published articles of that organization only,
categories with counts recomputed here, search, article pages, one vote per browser session."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from crm.models import Organization
from support.models import Article
from tests import factories


@pytest.fixture
def kb(org_a, org_b):
    return {
        "billing_1": factories.article(
            org_a, title="Paying by card", category="Billing", body="Card payments."
        ),
        "billing_2": factories.article(org_a, title="Refunds", category="Billing", body="Refund rules."),
        "billing_3": factories.article(org_a, title="Invoices", category="Billing", body="Invoice rules."),
        "account": factories.article(org_a, title="Reset your password", category="Account", body="Profile."),
        "draft": factories.article(
            org_a, title="Secret draft", category="Billing", status="draft", body="Refund"
        ),
        "draft_only": factories.article(org_a, title="Draft category", category="Hidden", status="draft"),
        "other": factories.article(org_b, title="Org B refund policy", category="Billing", body="Refund B."),
    }


def test_the_home_lists_published_categories_with_counts_and_nothing_else(org_a, kb):
    response = Client().get(reverse("kb:home", args=["org-a"]))
    assert response.status_code == 200
    # Counted by hand from the fixture: Billing has 3 published (the draft and org B's do not count),
    # Account 1; "Hidden" has only a draft.
    assert [(row["category"], row["articles"]) for row in response.context["categories"]] == [
        ("Account", 1),
        ("Billing", 3),
    ]
    page = response.content.decode()
    assert "Paying by card" in page and "Reset your password" in page
    assert "Secret draft" not in page and "Org B refund policy" not in page and "Hidden" not in page
    assert "Org A help center" in page


def test_a_category_lists_its_published_articles(org_a, kb):
    response = Client().get(reverse("kb:home", args=["org-a"]), {"category": "Billing"})
    assert [a.title for a in response.context["page"].items] == ["Invoices", "Paying by card", "Refunds"]


def test_search_finds_only_published_articles_of_that_organization(org_a, kb):
    response = Client().get(reverse("kb:home", args=["org-a"]), {"q": "refund"})
    assert [a.title for a in response.context["results"]] == ["Refunds"]
    assert "<mark>" in response.content.decode()


def test_an_article_page_shows_the_sanitized_body(org_a):
    article = factories.article(org_a, title="Hostile", body="**Hi**<script>alert(1)</script>")
    response = Client().get(reverse("kb:article", args=["org-a", article.slug]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "<strong>Hi</strong>" in page and "alert(1)" not in page


@pytest.mark.parametrize(
    "org_slug, key",
    [
        ("org-a", "draft"),  # a draft is not public
        ("org-a", "other"),  # org B's article under org A's address
        ("org-b", "billing_1"),  # org A's article under org B's address
        ("no-such-org", "billing_1"),
    ],
)
def test_drafts_other_organizations_articles_and_unknown_organizations_are_404(org_a, kb, org_slug, key):
    assert Client().get(reverse("kb:article", args=[org_slug, kb[key].slug])).status_code == 404


def test_a_suspended_organizations_knowledge_base_is_404(org_a, kb, as_system):
    with as_system():
        Organization.objects.filter(pk=org_a.pk).update(status="suspended")
    assert Client().get(reverse("kb:home", args=["org-a"])).status_code == 404


def test_a_signed_in_user_of_another_organization_sees_the_same_public_page(org_a, org_b, kb, login):
    client = login(factories.user(org_b, role="admin"))
    response = client.get(reverse("kb:home", args=["org-a"]), {"category": "Billing"})
    assert [a.title for a in response.context["page"].items] == ["Invoices", "Paying by card", "Refunds"]
    # ... and their own pages still work afterwards (the context was put back).
    assert client.get(reverse("home")).status_code == 200


def _counts(as_tenant, org, article):
    with as_tenant(org):
        fresh = Article.objects.get(pk=article.pk)
    return fresh.helpful_count, fresh.not_helpful_count


def test_one_vote_per_browser_session_and_article(org_a, kb, as_tenant):
    article = kb["billing_1"]
    url = reverse("kb:vote", args=["org-a", article.slug])
    reader = Client()
    reader.get(reverse("kb:article", args=["org-a", article.slug]))

    assert reader.post(url, {"helpful": "yes"}).status_code == 302
    reader.post(url, {"helpful": "yes"})
    reader.post(url, {"helpful": "no"})
    assert _counts(as_tenant, org_a, article) == (1, 0)
    page = reader.get(reverse("kb:article", args=["org-a", article.slug])).content.decode()
    assert "Thank you for your feedback." in page

    Client().post(url, {"helpful": "no"})
    Client().post(url, {"helpful": "yes"})
    assert _counts(as_tenant, org_a, article) == (2, 1)

    # The same reader may vote on another article.
    other = kb["billing_2"]
    reader.post(reverse("kb:vote", args=["org-a", other.slug]), {"helpful": "no"})
    assert _counts(as_tenant, org_a, other) == (0, 1)


def test_votes_on_drafts_or_through_another_organization_count_nothing(org_a, kb, as_tenant):
    def vote(article, answer):
        return (
            Client().post(reverse("kb:vote", args=["org-a", article.slug]), {"helpful": answer}).status_code
        )

    assert vote(kb["draft"], "yes") == 404
    assert vote(kb["other"], "yes") == 404
    assert vote(kb["billing_1"], "maybe") == 400
    assert _counts(as_tenant, org_a, kb["draft"]) == (0, 0)


def test_an_htmx_vote_returns_the_thank_you_partial(org_a, kb):
    response = Client().post(
        reverse("kb:vote", args=["org-a", kb["account"].slug]), {"helpful": "yes"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "Thank you for your feedback." in response.content.decode()


def test_public_pages_run_a_fixed_number_of_queries(org_a, kb, django_assert_max_num_queries):
    client = Client()
    for n in range(15):
        factories.article(org_a, title=f"Extra {n}", category=f"Category {n % 5}")
    with django_assert_max_num_queries(18):
        assert client.get(reverse("kb:home", args=["org-a"])).status_code == 200
    with django_assert_max_num_queries(18):
        assert client.get(reverse("kb:home", args=["org-a"]), {"q": "refund"}).status_code == 200
    with django_assert_max_num_queries(18):
        assert client.get(reverse("kb:article", args=["org-a", kb["billing_1"].slug])).status_code == 200


def test_html_written_around_the_service_is_sanitized_again_on_the_way_out(org_a, as_tenant):
    article = factories.article(org_a, title="Imported")
    with as_tenant(org_a):
        Article.objects.filter(pk=article.pk).update(
            body_html='<p onclick="x()">Hi</p><script>alert(1)</script>'
        )
    page = Client().get(reverse("kb:article", args=["org-a", article.slug])).content.decode()
    assert "<p>Hi</p>" in page and "alert(1)" not in page and "onclick" not in page
