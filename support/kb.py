"""The knowledge base's domain logic: Markdown rendered and sanitized, full-text search, suggestions.

Rendering: CommonMark (markdown-it-py) with tables and strike-through; raw HTML in the Markdown is allowed
through the parser and then everything goes through one allow-list sanitizer (nh3, the Rust `ammonia`
crate): no scripts, iframes, forms or styles, no `on*` attributes, only http(s) and mailto URLs, and every
link gets `rel="noopener noreferrer nofollow"`. The result is stored in `body_html` when the article is
saved, so pages never render Markdown per request, and the sanitizer is the single wall.

Search: `kb_articles.search_vector` is kept by a trigger (title A, category and tags B, body C; English
stemming) and indexed with GIN. A visitor's words go through `websearch_to_tsquery('english', q)` (quotes,
`or`, `-word`; never a syntax error), results are ranked with `ts_rank_cd` and the excerpt comes from
`ts_headline`, whose markers are private-use characters swapped for <mark> only after the excerpt has been
HTML-escaped (the excerpt is cut from the sanitized HTML's text, never from the raw Markdown).

Suggestions: a ticket's subject and description reduced to their significant words, OR-ed into a
`to_tsquery('english', ...)`, so an article sharing any of them matches and the ones sharing more, and in
the title, rank first.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from html import unescape

import nh3
from django.db.models import BooleanField, F, FloatField, Func, QuerySet, TextField, Value
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from support.models import Article

# --- Markdown -----------------------------------------------------------------------------------------

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "mark", "ol", "p", "pre", "q",
        "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
        "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "code": {"class"},  # language-xyz from fenced code blocks (filtered below)
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"
# Removed together with their content (a stripped <script> must not leave its source as text).
DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "template", "noscript"})

_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "code" and attribute == "class":
        return value if re.fullmatch(r"language-[A-Za-z0-9_+-]{1,30}", value) else None
    return value


def sanitize_html(html: str) -> str:
    """Reduce `html` to the allow-list above (the one wall between an article author and a reader)."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


def article_html(article: Article) -> SafeString:
    """The article's stored HTML for a page, sanitized once more on the way out: a row written by any other
    path (an import, the admin, SQL) still cannot carry a script into a page. nh3 takes microseconds."""
    return mark_safe(sanitize_html(article.body_html or ""))  # noqa: S308  sanitized just now


def render_markdown(text: str) -> str:
    """Markdown -> sanitized HTML, ready to store in `Article.body_html`."""
    return sanitize_html(_markdown.render(text or ""))


def preview_html(text: str) -> SafeString:
    """The editor's preview: exactly what saving `text` would store."""
    return mark_safe(render_markdown(text))  # noqa: S308  sanitized by render_markdown


# --- Search -------------------------------------------------------------------------------------------

# ts_headline's markers: private-use characters (never in a real article; removed from the text first).
_START, _STOP = "\ue000", "\ue001"
_HEADLINE_OPTIONS = f"StartSel={_START}, StopSel={_STOP}, MaxWords=35, MinWords=15"
# The excerpt is cut from the stored, sanitized HTML with its tags removed (no Markdown syntax, nothing a
# sanitizer dropped); entities are decoded in Python and the whole excerpt escaped again.
_TAGS = r"<[^>]*>|\ue000|\ue001"
SEARCH_MAX_CHARS = 200
SEARCH_CAP = 100  # results a search pages through at most (ranked; nobody reads past them)


class WebSearchQuery(Func):
    """websearch_to_tsquery('english', text): a visitor's words, never a syntax error."""

    function = "websearch_to_tsquery"
    output_field = TextField()

    def __init__(self, text: str):
        super().__init__(Value("english"), Value(text))


class ToTsQuery(Func):
    function = "to_tsquery"
    output_field = TextField()

    def __init__(self, text: str):
        super().__init__(Value("english"), Value(text))


class _Matches(Func):
    """search_vector @@ query: the condition the GIN index serves."""

    template = "%(expressions)s"
    arg_joiner = " @@ "
    output_field = BooleanField()
    conditional = True


def highlight(headline: str | None) -> SafeString:
    """An excerpt from ts_headline, escaped, with its matches wrapped in <mark>."""
    text = escape(unescape(" ".join((headline or "").split())))
    return mark_safe(text.replace(_START, "<mark>").replace(_STOP, "</mark>"))  # noqa: S308  escaped above


def _ranked(queryset: QuerySet, query: Func, *, headline: bool) -> QuerySet:
    """`queryset` narrowed to the articles matching `query`, with their `rank` (and `headline`)."""
    queryset = (
        queryset.alias(kb_query=query)
        .filter(_Matches(F("search_vector"), F("kb_query")))
        .annotate(
            rank=Func(F("search_vector"), F("kb_query"), function="ts_rank_cd", output_field=FloatField())
        )
    )
    if headline:
        plain_body = Func(F("body_html"), Value(_TAGS), Value(" "), Value("g"), function="regexp_replace")
        queryset = queryset.annotate(
            headline=Func(
                Value("english"),
                plain_body,
                F("kb_query"),
                Value(_HEADLINE_OPTIONS),
                function="ts_headline",
                output_field=TextField(),
            )
        )
    return queryset


def search_articles(
    *,
    organization_id: uuid.UUID,
    query: str,
    status: str = Article.Status.PUBLISHED,
    category: str = "",
    limit: int = 20,
    offset: int = 0,
) -> list[Article]:
    """Articles of one organization matching `query` (web-search syntax), best first, each with `rank` and
    an escaped `excerpt` (matches in <mark>). Published ones unless `status` says otherwise ("" for any).
    Capped: `offset + limit` never passes SEARCH_CAP."""
    text = (query or "").strip()[:SEARCH_MAX_CHARS]
    if not text:
        return []
    offset = max(0, min(offset, SEARCH_CAP))
    limit = max(0, min(limit, SEARCH_CAP - offset))
    if not limit:
        return []
    queryset = Article.objects.filter(organization_id=organization_id)
    if status:
        queryset = queryset.filter(status=status)
    if category:
        queryset = queryset.filter(category=category)
    rows = list(
        _ranked(queryset, WebSearchQuery(text), headline=True)
        .defer("body", "body_html", "search_vector")
        .order_by("-rank", "-id")[offset : offset + limit]
    )
    for row in rows:
        row.excerpt = highlight(row.headline)
    return rows


# --- Suggestions ---------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]{3,40}", re.UNICODE)
# English words too common in support requests to say anything about the topic (PostgreSQL drops its own
# stop words; these are the ones it keeps).
_NOISE = frozenset(
    {
        "hello", "hi", "hey", "dear", "thanks", "thank", "please", "regards", "best", "kind", "cheers",
        "help", "issue", "problem", "question", "ticket", "support", "team", "get", "got", "would",
        "could", "need", "want", "know", "like", "just", "also", "still", "since", "sent", "send",
    }
)  # fmt: skip
SUGGEST_MAX_WORDS = 24


def significant_words(text: str) -> list[str]:
    """The words of `text` that can say what it is about: 3+ letters, not numbers, not greetings; the most
    frequent first, at most SUGGEST_MAX_WORDS (a long description must not make a huge query)."""
    counts = Counter(
        word
        for word in (match.group(0).lower() for match in _WORD.finditer(text or ""))
        if not word.isdigit() and word not in _NOISE
    )
    return [word for word, _count in counts.most_common(SUGGEST_MAX_WORDS)]


def suggest_for_text(*, organization_id: uuid.UUID, text: str, limit: int = 5) -> list[Article]:
    """Published articles of the organization sharing significant words with `text`, best first."""
    words = significant_words(text)
    if not words or limit <= 0:
        return []
    # Only letters and digits reach to_tsquery (see _WORD), so the OR-ed query cannot be a syntax error.
    query = ToTsQuery(" | ".join(words))
    queryset = Article.objects.filter(organization_id=organization_id, status=Article.Status.PUBLISHED)
    return list(
        _ranked(queryset, query, headline=False)
        .only("id", "organization_id", "title", "slug", "category", "status", "updated_at")
        .order_by("-rank", "-id")[:limit]
    )


def suggest_articles(*, ticket, limit: int = 5) -> list[Article]:
    """Published articles ranked by similarity to the ticket's subject and description (the ticket page's
    suggestions and the auto-reply's). The subject counts twice: it is what the customer chose to say."""
    text = f"{ticket.subject}\n{ticket.subject}\n{ticket.description or ''}"
    return suggest_for_text(organization_id=ticket.organization_id, text=text, limit=limit)
