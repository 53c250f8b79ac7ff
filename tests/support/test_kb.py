"""Knowledge base domain and services (support/kb.py, support/services/articles.py): Markdown sanitizing,
full-text search ranking and excerpts, suggestions for tickets, slugs and votes."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from support import kb
from support.models import Article
from support.services import articles as services
from tests import factories

# --- sanitizing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "markdown, forbidden",
    [
        ("Hello <script>alert('x')</script> world", ["<script", "alert("]),
        ('<img src="https://cdn.example/a.png" onerror="alert(1)">', ["onerror", "alert"]),
        ('<a href="javascript:alert(1)">click</a>', ["javascript:"]),
        ("[click](javascript:alert(1))", ['href="javascript']),
        ("[click](JaVaScRiPt:alert(1))", ['href="javascript', 'href="JaVaScRiPt']),
        ('<iframe src="https://evil.example"></iframe>after', ["<iframe", "evil.example"]),
        ('<p style="position:fixed" onclick="steal()">x</p>', ["style=", "onclick", "steal"]),
        ("<style>body{display:none}</style>text", ["<style", "display:none"]),
        ('<img src="data:image/svg+xml;base64,PHN2Zz4=">', ["data:"]),
        ('<form action="https://evil.example"><input name="pw"></form>', ["<form", "<input"]),
        ('<svg onload="alert(1)"><circle/></svg>', ["<svg", "onload"]),
        ('<object data="x.swf"></object><embed src="x.swf">', ["<object", "<embed"]),
    ],
)
def test_rendering_strips_scripts_event_handlers_and_dangerous_urls(markdown, forbidden):
    html = kb.render_markdown(markdown)
    for fragment in forbidden:
        assert fragment.lower() not in html.lower(), (fragment, html)


def test_links_get_rel_noopener_noreferrer_nofollow_and_safe_markup_stays():
    html = kb.render_markdown(
        "# Title\n\n**bold** and _it_ and [docs](https://docs.example/a)\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint(1)\n```\n"
    )
    assert '<a href="https://docs.example/a" rel="noopener noreferrer nofollow">docs</a>' in html
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html and "<em>it</em>" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert '<code class="language-python">' in html


def test_a_hostile_code_class_is_dropped():
    html = kb.render_markdown('<code class="x onmouseover=alert(1)">c</code>')
    assert "class" not in html


def test_saving_an_article_stores_the_sanitized_rendering(org_a, as_tenant):
    article = factories.article(org_a, body="Hi <script>alert(1)</script>**there**")
    with as_tenant(org_a):
        stored = Article.objects.get(pk=article.pk)
    assert stored.body_html == "<p>Hi <strong>there</strong></p>\n"
    assert stored.body == "Hi <script>alert(1)</script>**there**"  # the source is kept as written


# --- full-text search ------------------------------------------------------------------------------------


@pytest.fixture
def library(org_a, org_b):
    """Hand-made articles whose order for "invoice export" is known by construction."""
    return {
        # Both words in the title (weight A) and the body.
        "title": factories.article(
            org_a, title="Exporting invoices", body="Choose the invoices, then export them as PDF."
        ),
        # Both words only in the body (weight C), far apart.
        "body": factories.article(
            org_a,
            title="Billing overview",
            body="Each invoice lists its lines. " + "Totals include tax. " * 30 + "You can export a summary.",
        ),
        # One word only: not a match for "invoice export" (both words are required).
        "one_word": factories.article(org_a, title="Invoice numbering", body="Numbers are sequential."),
        # A draft and another organization's article match but are never shown.
        "draft": factories.article(
            org_a, title="Invoice export (draft)", body="export invoice", status="draft"
        ),
        "other_org": factories.article(org_b, title="Exporting invoices", body="export invoices"),
    }


def test_search_ranks_title_matches_first_and_requires_every_word(org_a, library, as_tenant):
    with as_tenant(org_a):
        results = kb.search_articles(organization_id=org_a.pk, query="invoice export")
    assert [a.pk for a in results] == [library["title"].pk, library["body"].pk]
    assert results[0].rank > results[1].rank > 0


def test_search_understands_web_syntax_or_and_exclusion(org_a, library, as_tenant):
    with as_tenant(org_a):
        either = kb.search_articles(organization_id=org_a.pk, query="numbering or overview")
        without = kb.search_articles(organization_id=org_a.pk, query="invoice -export")
        nonsense = kb.search_articles(organization_id=org_a.pk, query='"&|!(:*')
    assert {a.pk for a in either} == {library["one_word"].pk, library["body"].pk}
    assert [a.pk for a in without] == [library["one_word"].pk]
    assert nonsense == []


def test_search_can_include_drafts_for_the_team_but_never_another_organization(org_a, library, as_tenant):
    with as_tenant(org_a):
        results = kb.search_articles(organization_id=org_a.pk, query="invoice export", status="")
    assert {a.pk for a in results} == {library["title"].pk, library["body"].pk, library["draft"].pk}


def test_search_excerpts_are_escaped_with_matches_marked(org_a, as_tenant):
    factories.article(
        org_a,
        title="Hostile",
        body="Before <script>alert(1)</script> the **refund** policy: `a < b & c > d`.",
    )
    with as_tenant(org_a):
        [result] = kb.search_articles(organization_id=org_a.pk, query="refund")
    assert "<script" not in result.excerpt and "alert" not in result.excerpt  # sanitized away on save
    assert "**" not in result.excerpt  # cut from the rendered text, not the Markdown
    assert "a &lt; b &amp; c &gt; d" in result.excerpt  # escaped once, not twice
    assert "<mark>refund</mark>" in result.excerpt


def test_search_is_capped(org_a, as_tenant):
    with as_tenant(org_a):
        assert kb.search_articles(organization_id=org_a.pk, query="x", offset=kb.SEARCH_CAP) == []
        assert kb.search_articles(organization_id=org_a.pk, query="   ") == []


# --- suggestions -------------------------------------------------------------------------------------------


def test_suggestions_rank_published_articles_by_the_tickets_words(org_a, org_b, as_tenant):
    best = factories.article(
        org_a, title="Exporting invoices as PDF", body="Open billing and export the invoices."
    )
    partial = factories.article(org_a, title="Invoice numbering", body="How invoice numbers are chosen.")
    factories.article(org_a, title="Changing your password", body="Go to your profile.")
    factories.article(org_a, title="Exporting invoices (draft)", body="export invoices", status="draft")
    factories.article(org_b, title="Exporting invoices", body="export invoices")
    ticket = factories.ticket(
        org_a,
        subject="Cannot export my invoices",
        description="Hello, the export button does nothing. Thanks!",
    )

    with as_tenant(org_a):
        suggested = kb.suggest_articles(ticket=ticket)

    assert [a.pk for a in suggested] == [best.pk, partial.pk]


def test_suggestions_for_a_ticket_without_significant_words_are_empty(org_a, as_tenant):
    factories.article(org_a, title="Hello there")
    ticket = factories.ticket(org_a, subject="Hi", description="Thanks! 123")
    with as_tenant(org_a):
        assert kb.suggest_articles(ticket=ticket) == []


def test_significant_words_drop_greetings_numbers_and_short_words_and_keep_the_most_frequent():
    words = kb.significant_words("Hello hello, the PDF export export export fails at 10:30 on invoice 123 ok")
    assert words[0] == "export"
    assert "hello" not in words and "123" not in words and "ok" not in words and "10" not in words
    assert set(words) == {"export", "the", "pdf", "fails", "invoice"}


def test_suggestion_queries_are_bounded_and_safe_for_any_text(org_a, as_tenant):
    factories.article(org_a, title="Quotes & apostrophes", body="It's fine")
    text = "it's a 'quoted' (paren) & | ! <tag> " + " ".join(f"word{i}" for i in range(200))
    assert len(kb.significant_words(text)) == kb.SUGGEST_MAX_WORDS
    with as_tenant(org_a):
        kb.suggest_for_text(organization_id=org_a.pk, text=text)  # no syntax error


# --- services ----------------------------------------------------------------------------------------------


def test_slugs_come_from_titles_and_are_unique_per_organization(org_a, org_b):
    one = factories.article(org_a, title="Reset your password")
    two = factories.article(org_a, title="Reset your password")
    elsewhere = factories.article(org_b, title="Reset your password")
    assert (one.slug, two.slug, elsewhere.slug) == (
        "reset-your-password",
        "reset-your-password-2",
        "reset-your-password",
    )


def test_a_typed_slug_that_is_taken_is_an_error_beside_the_field(org_a, as_tenant):
    factories.article(org_a, title="A", slug="taken")
    with as_tenant(org_a), pytest.raises(ValidationError) as error:
        services.article_create(organization=org_a, actor=None, title="B", body="b", slug="taken")
    assert "slug" in error.value.message_dict


def test_publishing_stamps_published_at_once_and_editing_rerenders(org_a, as_tenant):
    article = factories.article(org_a, status="draft", body="old")
    assert article.published_at is None
    with as_tenant(org_a):
        published = services.article_set_status(article=article, actor=None, status="published")
        first = published.published_at
        assert first is not None
        edited = services.article_update(article=published, actor=None, body="*new*", tags="B, a, b")
    assert edited.published_at == first
    assert edited.body_html == "<p><em>new</em></p>\n"
    assert edited.tags == ["a", "b"]


def test_only_knowledge_base_editors_may_write(org_a, as_tenant):
    rep = factories.user(org_a, role="sales_rep")
    with as_tenant(org_a), pytest.raises(PermissionDenied):
        services.article_create(organization=org_a, actor=rep, title="T", body="b")
    agent = factories.user(org_a, role="support_agent")
    with as_tenant(org_a):
        assert services.article_create(organization=org_a, actor=agent, title="T", body="b").author == agent


def test_votes_add_one_in_the_database_and_only_on_published_articles(org_a, as_tenant):
    article = factories.article(org_a)
    draft = factories.article(org_a, status="draft")
    stale = Article(pk=article.pk, organization_id=org_a.pk)  # a copy whose counters are not loaded
    with as_tenant(org_a):
        services.article_vote(article=article, helpful=True)
        services.article_vote(article=stale, helpful=True)
        services.article_vote(article=article, helpful=False)
        services.article_vote(article=draft, helpful=True)
        article.refresh_from_db()
        draft.refresh_from_db()
    assert (article.helpful_count, article.not_helpful_count) == (2, 1)
    assert draft.helpful_count == 0
