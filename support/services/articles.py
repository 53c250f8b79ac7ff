"""Writes to knowledge-base articles: create, edit, publish / unpublish, delete, and the public votes.

The Markdown body is rendered and sanitized here, on save (support/kb.py), so `body_html` always matches
`body` and pages only ever show the stored, sanitized HTML. The search document is the database's job (a
trigger on kb_articles keeps `search_vector`). Slugs are unique per organization: a clash with a slug the
author typed is an error beside the field; one derived from the title gets a -2, -3 ... suffix.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from crm.models import Organization, User
from crm.permissions import Capability, has_capability
from customers.services.customers import normalise_tags
from support.kb import render_markdown
from support.models import Article

FIELDS = frozenset({"title", "slug", "body", "category", "tags", "status"})


def _require(actor: User | None) -> None:
    if actor is not None and not has_capability(actor, Capability.MANAGE_KNOWLEDGE_BASE):
        raise PermissionDenied


def _free_slug(organization_id, base: str, *, exclude_pk=None) -> str:
    base = (base or "article")[:190].strip("-") or "article"
    taken = set(
        Article.objects.filter(organization_id=organization_id, slug__startswith=base)
        .exclude(pk=exclude_pk)
        .values_list("slug", flat=True)
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _prepare(article: Article, fields: dict, *, typed_slug: bool) -> None:
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    if "tags" in fields:
        fields["tags"] = normalise_tags(fields["tags"])
    if "category" in fields:
        fields["category"] = (fields["category"] or "").strip()
    if "title" in fields:
        fields["title"] = (fields["title"] or "").strip()
    for name, value in fields.items():
        setattr(article, name, value)
    if typed_slug:
        article.slug = slugify(article.slug)
        if not article.slug:
            raise ValidationError({"slug": _("Use letters, digits and hyphens.")})
        clash = (
            Article.objects.filter(organization_id=article.organization_id, slug=article.slug)
            .exclude(pk=article.pk)
            .exists()
        )
        if clash:
            raise ValidationError({"slug": _("Another article already uses this address.")})
    elif not article.slug:
        article.slug = _free_slug(article.organization_id, slugify(article.title), exclude_pk=article.pk)
    if article.status == Article.Status.PUBLISHED and article.published_at is None:
        article.published_at = timezone.now()
    article.body_html = render_markdown(article.body)
    article.full_clean(exclude=["organization", "author"], validate_unique=False, validate_constraints=False)


def _save(article: Article, **options) -> Article:
    try:
        with transaction.atomic():
            article.save(**options)
    except IntegrityError as error:  # two authors took the same slug at the same moment
        raise ValidationError({"slug": _("Another article already uses this address.")}) from error
    return article


@transaction.atomic
def article_create(
    *,
    organization: Organization,
    actor: User | None,
    title: str,
    body: str,
    category: str = "",
    tags: Iterable[str] | str = (),
    status: str = Article.Status.DRAFT,
    slug: str = "",
) -> Article:
    """A new article; the slug comes from the title unless one is given."""
    _require(actor)
    article = Article(organization=organization, author=actor)
    _prepare(
        article,
        {"title": title, "body": body, "category": category, "tags": tags, "status": status, "slug": slug},
        typed_slug=bool(slug and slug.strip()),
    )
    return _save(article, force_insert=True)


@transaction.atomic
def article_update(*, article: Article, actor: User | None, **fields) -> Article:
    """Change an article; publishing for the first time stamps `published_at`."""
    _require(actor)
    stored = Article.objects.select_for_update().get(pk=article.pk, organization_id=article.organization_id)
    typed_slug = "slug" in fields and bool((fields["slug"] or "").strip())
    if "slug" in fields and not typed_slug:
        fields["slug"] = stored.slug  # an emptied slug field keeps the address readers already have
    _prepare(stored, fields, typed_slug=typed_slug and fields["slug"] != stored.slug)
    return _save(stored)


@transaction.atomic
def article_set_status(*, article: Article, actor: User | None, status: str) -> Article:
    """Publish (visible in the public knowledge base and in suggestions) or take back to draft."""
    if status not in Article.Status.values:
        raise ValidationError({"status": _("Unknown status.")})
    return article_update(article=article, actor=actor, status=status)


@transaction.atomic
def article_delete(*, article: Article, actor: User | None) -> None:
    _require(actor)
    Article.objects.filter(pk=article.pk, organization_id=article.organization_id).delete()


def article_vote(*, article: Article, helpful: bool) -> None:
    """Count a reader's "helpful" / "not helpful": one UPDATE adding 1 in the database (no read-modify-
    write, so simultaneous votes are all counted). Who may vote once is the caller's rule (the public page
    allows one vote per browser session and article)."""
    column = "helpful_count" if helpful else "not_helpful_count"
    Article.objects.filter(
        pk=article.pk, organization_id=article.organization_id, status=Article.Status.PUBLISHED
    ).update(**{column: F(column) + 1})
