"""The knowledge base inside the CRM (MANAGE_KNOWLEDGE_BASE): the article list with full-text search, the
editor with a live preview of the sanitized rendering, publish / unpublish and delete. Readers use the
public knowledge base (support/views/public_kb.py)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.pagination import keyset_page
from crm.permissions import Capability, requires
from crm.views import _apply_errors
from support import kb
from support.forms_kb import ArticleFilterForm, ArticleForm, PreviewForm
from support.models import Article
from support.services import articles as services

MANAGE = Capability.MANAGE_KNOWLEDGE_BASE
PER_PAGE = 25
SEARCH_PAGES = kb.SEARCH_CAP // PER_PAGE


def _article(request, pk) -> Article:
    return get_object_or_404(
        Article.objects.select_related("author"), pk=pk, organization_id=request.user.organization_id
    )


def categories_of(organization_id) -> list[str]:
    """The organization's article categories (for the filter and the editor's suggestions)."""
    return list(
        Article.objects.filter(organization_id=organization_id)
        .exclude(category="")
        .order_by("category")
        .values_list("category", flat=True)
        .distinct()[:200]
    )


def _page_number(request) -> int:
    try:
        return max(1, min(int(request.GET.get("page", 1)), SEARCH_PAGES))
    except ValueError:
        return 1


@requires(MANAGE)
def article_list(request):
    form = ArticleFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    query = filters.get("q", "")
    status = filters.get("status", "")
    category = filters.get("category", "")
    organization_id = request.user.organization_id
    context = {
        "title": _("Knowledge base"),
        "form": form,
        "query": query,
        "status": status,
        "category": category,
        "categories": categories_of(organization_id),
        "statuses": Article.Status.choices,
        "filtered": bool(query or status or category),
        "public_url_slug": request.user.organization.slug,
    }
    base = {key: value for key, value in (("q", query), ("status", status), ("category", category)) if value}
    if query:
        # Ranked results: capped pages (nobody pages past the best hundred), no COUNT(*).
        number = _page_number(request)
        rows = kb.search_articles(
            organization_id=organization_id,
            query=query,
            status=status,
            category=category,
            limit=PER_PAGE + 1,
            offset=(number - 1) * PER_PAGE,
        )
        context.update(
            searching=True,
            articles=rows[:PER_PAGE],
            page_number=number,
            previous_query=urlencode({**base, "page": number - 1}) if number > 1 else "",
            next_query=urlencode({**base, "page": number + 1})
            if len(rows) > PER_PAGE and number < SEARCH_PAGES
            else "",
        )
    else:
        queryset = Article.objects.filter(organization_id=organization_id).defer(
            "body", "body_html", "search_vector"
        )
        if status:
            queryset = queryset.filter(status=status)
        if category:
            queryset = queryset.filter(category=category)
        page = keyset_page(
            queryset.select_related("author"),
            ordering=("-updated_at", "-id"),
            cursor=request.GET.get("cursor"),
            per_page=PER_PAGE,
        )
        context.update(searching=False, articles=page.items, page=page, querystring=urlencode(base))
    return render(request, "support/kb/list.html", context)


def _form_page(request, form, *, article=None):
    context = {
        "form": form,
        "article": article,
        "creating": article is None,
        "body_html": kb.article_html(article) if article is not None else "",
        "title": _("New article") if article is None else _("Edit %(title)s") % {"title": article.title},
        "categories": categories_of(request.user.organization_id),
    }
    return render(request, "support/kb/form.html", context)


def _changes(form) -> dict:
    data = form.cleaned_data
    return {name: data[name] for name in ("title", "slug", "category", "tags", "status", "body")}


@requires(MANAGE)
def article_create(request):
    form = ArticleForm.for_article(None, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            article = services.article_create(
                organization=request.user.organization, actor=request.user, **_changes(form)
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("“%(title)s” is saved.") % {"title": article.title})
            return redirect("support:kb_detail", pk=article.pk)
    return _form_page(request, form)


@requires(MANAGE)
def article_detail(request, pk):
    article = _article(request, pk)
    votes = article.helpful_count + article.not_helpful_count
    context = {
        "title": article.title,
        "article": article,
        "body_html": kb.article_html(article),
        "votes": votes,
        "helpful_percent": round(100 * article.helpful_count / votes) if votes else None,
        "organization_slug": request.user.organization.slug,
    }
    return render(request, "support/kb/detail.html", context)


@requires(MANAGE)
def article_edit(request, pk):
    article = _article(request, pk)
    form = ArticleForm.for_article(article, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            article = services.article_update(article=article, actor=request.user, **_changes(form))
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("“%(title)s” is saved.") % {"title": article.title})
            return redirect("support:kb_detail", pk=article.pk)
    return _form_page(request, form, article=article)


@requires(MANAGE)
@require_POST
def article_publish(request, pk):
    article = _article(request, pk)
    publish = request.POST.get("publish") == "1"
    status = Article.Status.PUBLISHED if publish else Article.Status.DRAFT
    article = services.article_set_status(article=article, actor=request.user, status=status)
    if publish:
        messages.success(request, _("“%(title)s” is published.") % {"title": article.title})
    else:
        messages.success(request, _("“%(title)s” is back to draft.") % {"title": article.title})
    return redirect("support:kb_detail", pk=article.pk)


@requires(MANAGE)
@require_POST
def article_delete(request, pk):
    article = _article(request, pk)
    services.article_delete(article=article, actor=request.user)
    messages.success(request, _("“%(title)s” is deleted.") % {"title": article.title})
    return redirect("support:kb_list")


@requires(MANAGE)
@require_POST
def article_preview(request):
    """The editor's preview (htmx): the body rendered and sanitized exactly as it will be stored."""
    form = PreviewForm(request.POST)
    body = form.cleaned_data["body"] if form.is_valid() else ""
    return render(request, "support/kb/_preview.html", {"body_html": kb.preview_html(body)})
