"""Merge fields in email templates, rendered in a sandbox.

A template is plain text (subject, plain-text body) or HTML (HTML body) with merge fields in double braces:

    Hello {{ customer.first_name|default:"there" }},
    ...
    {{ owner.signature }}
    <a href="{{ unsubscribe_url }}">Unsubscribe</a>

The sandbox is not a template engine: this module finds `{{ name }}` and `{{ name|default:"fallback" }}`,
looks `name` up in a fixed allow-list of values computed here from the customer, their owner and the
organization, and substitutes it. Nothing else is evaluated: no attribute access, no method calls, no
filters besides `default`, no template tags. A name outside the allow-list, a `{% ... %}` tag or a malformed
field is a validation error (`validate`); at send time it can never reach anything, because the values are
plain strings prepared before substitution, and anything in braces that is not a well-formed allow-listed
field renders as nothing. In HTML every value (the fallback too) is HTML-escaped; substitution is one pass,
so a value that itself looks like a merge field stays literal text.

`text_from_html` makes the plain-text body from the HTML one (the editor's "generate from HTML"), keeping the
merge fields as they are so the text renders like the HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from django.core.exceptions import ValidationError
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

# {{ name }} or {{ name|default:"fallback" }} (single quotes too); whitespace allowed around the parts.
FIELD_RE = re.compile(
    r"""\{\{\s*(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*"""
    r"""(?:\|\s*default\s*:\s*(?:"(?P<dq>[^"{}]*)"|'(?P<sq>[^'{}]*)'))?\s*\}\}"""
)
ANY_BRACES_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
# What is left of a brace token once the complete ones are taken out: an unclosed or stray delimiter.
STRAY_BRACES_RE = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
# Literal http(s) links in an HTML body: the only targets a click redirect may lead to.
HREF_RE = re.compile(r"""href\s*=\s*(?P<q>["'])(?P<url>https?://[^"'\s<>]+)(?P=q)""", re.IGNORECASE)


@dataclass(frozen=True)
class MergeField:
    name: str
    label: str
    example: str


# The allow-list: every value a template can reach. Adding one means adding it to `values_for` too.
FIELDS: tuple[MergeField, ...] = (
    MergeField("customer.first_name", _("First name"), "Ada"),
    MergeField("customer.last_name", _("Last name"), "Lovelace"),
    MergeField("customer.full_name", _("Full name"), "Ada Lovelace"),
    MergeField("customer.company_name", _("Company"), "Analytical Engines Ltd"),
    MergeField("customer.email", _("Email"), "ada@example.com"),
    MergeField("customer.job_title", _("Job title"), "Mathematician"),
    MergeField("customer.city", _("City"), "London"),
    MergeField("customer.country", _("Country"), "GB"),
    MergeField("customer.customer_number", _("Customer number"), "C-000042"),
    MergeField("owner.name", _("Owner's name"), "Grace Hopper"),
    MergeField("owner.first_name", _("Owner's first name"), "Grace"),
    MergeField("owner.email", _("Owner's email"), "grace@example.com"),
    MergeField("owner.job_title", _("Owner's job title"), "Account executive"),
    MergeField("owner.signature", _("Owner's signature"), "Grace Hopper\nAccount executive"),
    MergeField("organization.name", _("Organization name"), "Acme"),
    MergeField("unsubscribe_url", _("Unsubscribe link"), "https://crm.example.com/m/u/…"),
)
FIELD_NAMES = frozenset(field.name for field in FIELDS)


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


def validate(source: str) -> None:
    """Raise ValidationError naming every unknown merge field, tag or malformed field in `source`."""
    problems: list[str] = []
    for match in ANY_BRACES_RE.finditer(source):
        token = match.group(0)
        if token.startswith("{%"):
            problems.append(_("Template tags are not allowed: %(tag)s") % {"tag": token})
            continue
        if token.startswith("{#"):
            problems.append(_("Comments are not allowed: %(tag)s") % {"tag": token})
            continue
        field = FIELD_RE.fullmatch(token)
        if field is None:
            problems.append(_("Not a merge field: %(field)s") % {"field": token})
        elif field.group("name") not in FIELD_NAMES:
            problems.append(_("Unknown merge field: %(name)s") % {"name": field.group("name")})
    for stray in STRAY_BRACES_RE.finditer(ANY_BRACES_RE.sub("", source)):
        problems.append(_("Unclosed or stray merge field braces: %(braces)s") % {"braces": stray.group(0)})
    if problems:
        raise ValidationError(list(dict.fromkeys(str(p) for p in problems)))


def fields_used(source: str) -> list[str]:
    """The merge field names `source` uses, in order, without duplicates."""
    return list(dict.fromkeys(m.group("name") for m in FIELD_RE.finditer(source)))


def links_in(html: str) -> list[str]:
    """The literal http(s) links of an HTML body, in order, without duplicates (merge-field links such as
    the unsubscribe URL are not literal, so they are not here)."""
    return list(dict.fromkeys(m.group("url") for m in HREF_RE.finditer(html)))


def values_for(*, customer, organization, unsubscribe_url: str = "") -> dict[str, str]:
    """The allow-listed values for one recipient: plain strings, computed here and nowhere else."""
    owner = getattr(customer, "assigned_to", None) if customer is not None else None
    full_name = f"{customer.first_name} {customer.last_name}".strip() if customer is not None else ""
    return {
        "customer.first_name": customer.first_name if customer else "",
        "customer.last_name": customer.last_name if customer else "",
        "customer.full_name": full_name,
        "customer.company_name": customer.company_name if customer else "",
        "customer.email": customer.email if customer else "",
        "customer.job_title": customer.job_title if customer else "",
        "customer.city": customer.city if customer else "",
        "customer.country": customer.country if customer else "",
        "customer.customer_number": customer.customer_number if customer else "",
        "owner.name": owner.get_full_name() if owner else "",
        "owner.first_name": owner.first_name if owner else "",
        "owner.email": owner.email if owner else "",
        "owner.job_title": owner.job_title if owner else "",
        "owner.signature": owner.email_signature if owner else "",
        "organization.name": organization.name if organization else "",
        "unsubscribe_url": unsubscribe_url,
    }


def has_unsubscribe_link(html: str) -> bool:
    """Whether an HTML body carries the unsubscribe link (the editor warns when it does not)."""
    return "unsubscribe_url" in fields_used(html)


def example_values() -> dict[str, str]:
    """Stand-in values for a preview without a customer: the examples of FIELDS."""
    return {field.name: str(field.example) for field in FIELDS}


def render_string(source: str, values: dict[str, str], *, html: bool) -> str:
    """Substitute every merge field of `source`; unknown names render as their fallback (or nothing), and
    any other brace token (a tag, a filter, a comment) as nothing, so a template that slipped past validation
    still reaches nothing outside `values`. One pass: substituted values are never scanned again."""

    def substitute(match: re.Match) -> str:
        field = FIELD_RE.fullmatch(match.group(0))
        if field is None:
            return ""
        name = field.group("name")
        value = values.get(name, "") if name in FIELD_NAMES else ""
        if not value:
            value = field.group("dq") if field.group("dq") is not None else (field.group("sq") or "")
        if not html:
            return value
        escaped = escape(value)
        # A multi-line value (a signature) keeps its lines in HTML.
        return escaped.replace("\n", "<br>\n") if name == "owner.signature" else escaped

    return ANY_BRACES_RE.sub(substitute, source)


def render(*, subject: str, html_body: str, text_body: str, values: dict[str, str]) -> Rendered:
    """The three parts of one email. The subject is a header: no HTML escaping, and no line breaks. An empty
    plain-text body is generated from the HTML one (`text_from_html`), so every email has a readable text
    part and the preview shows the one that is sent."""
    rendered_subject = " ".join(render_string(subject, values, html=False).split())
    if not text_body.strip():
        text_body = text_from_html(html_body)
    return Rendered(
        subject=rendered_subject,
        html=render_string(html_body, values, html=True),
        text=render_string(text_body, values, html=False),
    )


# --- Plain text from HTML -------------------------------------------------------------------------------------

_SKIPPED_TAGS = frozenset({"head", "script", "style", "title", "template", "noscript"})
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "div", "dl", "dt", "dd", "footer", "form", "h1", "h2",
        "h3", "h4", "h5", "h6", "header", "hr", "main", "nav", "ol", "p", "pre", "section", "table", "tr",
        "ul",
    }
)  # fmt: skip


class _TextExtractor(HTMLParser):
    """Collects the readable text of an HTML document: paragraphs as blank-line separated blocks, line
    breaks, list items as "- " lines, links as "text (url)", images as their alt text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.preformatted = 0
        self.links: list[tuple[str, int]] = []  # (href, where the link text starts in parts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
            return
        if self.skipping:
            return
        attributes = dict(attrs)
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag == "img" and attributes.get("alt"):
            self.parts.append(attributes["alt"] or "")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        if tag == "pre":
            self.preformatted += 1
        if tag == "a":
            self.links.append(((attributes.get("href") or "").strip(), len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
            return
        if self.skipping:
            return
        if tag == "pre":
            self.preformatted = max(0, self.preformatted - 1)
        if tag == "a" and self.links:
            href, start = self.links.pop()
            text = "".join(self.parts[start:]).strip()
            if href and not href.startswith("#") and href != text:
                self.parts.append(f" ({href})" if text else href)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        self.parts.append(data if self.preformatted else re.sub(r"\s+", " ", data))


def text_from_html(html: str) -> str:
    """A plain-text version of an HTML email body, for mail clients that show no HTML. Merge fields stay as
    written (they are text to the parser), so the result renders with the same values as the HTML."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).replace("\xa0", " ").split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
