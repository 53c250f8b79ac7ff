"""The public knowledge base at /kb/<org-slug>/: no login, published articles only, one organization per
URL.

How a request with no signed-in user reaches one organization's rows under row-level security: the slug is
looked up in a short `system_context()` that reads nothing but that one organization's id, name and slug
(and only for an active or trial organization); everything else then runs in `tenant_context(org.id)`, so
RLS itself confines every article query to that organization, on top of the explicit
`organization_id=` filters (a slug of one organization never shows another's articles, even through a
mistake in a query). Drafts answer 404 exactly like missing articles.

Votes: one per browser session and article (the ids voted on are kept in the session), counted with an
atomic UPDATE (support/services/articles.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

from django.db.models import Count
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.models import Organization
from crm.pagination import keyset_page
from crm.tenancy import system_context, tenant_context
from support import kb
from support.models import Article
from support.services.articles import article_vote

PER_PAGE = 20
SEARCH_PAGES = kb.SEARCH_CAP // PER_PAGE
POPULAR = 8
SESSION_VOTES = "kb_votes"
MAX_REMEMBERED_VOTES = 500
LIST_FIELDS = ("id", "organization_id", "title", "slug", "category", "status", "updated_at")


@contextmanager
def public_tenant(org_slug: str) -> Iterator[Organization]:
    """The organization behind a public URL, with its tenant context open for the block; 404 if none."""
    with system_context():
        organization = (
            Organization.objects.filter(
                slug=org_slug, status__in=(Organization.Status.ACTIVE, Organization.Status.TRIAL)
            )
            .only("id", "name", "slug")
            .first()
        )
    if organization is None:
        raise Http404
    with tenant_context(organization.pk):
        yield organization


def _published(organization: Organization):
    return Article.objects.filter(organization_id=organization.pk, status=Article.Status.PUBLISHED)


def _page_number(request) -> int:
    try:
        return max(1, min(int(request.GET.get("page", 1)), SEARCH_PAGES))
    except ValueError:
        return 1


def home(request, org_slug):
    query = (request.GET.get("q") or "").strip()[: kb.SEARCH_MAX_CHARS]
    category = (request.GET.get("category") or "").strip()[:100]
    with public_tenant(org_slug) as organization:
        context = {
            "organization": organization,
            "query": query,
            "category": category,
            "title": _("%(name)s help center") % {"name": organization.name},
        }
        # The categories with how many published articles each: one GROUP BY on the status index.
        context["categories"] = list(
            _published(organization)
            .exclude(category="")
            .values("category")
            .annotate(articles=Count("id"))
            .order_by("category")[:100]
        )
        if query:
            number = _page_number(request)
            rows = kb.search_articles(
                organization_id=organization.pk,
                query=query,
                category=category,
                limit=PER_PAGE + 1,
                offset=(number - 1) * PER_PAGE,
            )
            base = {"q": query, **({"category": category} if category else {})}
            context.update(
                mode="search",
                results=rows[:PER_PAGE],
                previous_query=urlencode({**base, "page": number - 1}) if number > 1 else "",
                next_query=urlencode({**base, "page": number + 1})
                if len(rows) > PER_PAGE and number < SEARCH_PAGES
                else "",
            )
        elif category:
            page = keyset_page(
                _published(organization).filter(category=category).only(*LIST_FIELDS),
                ordering=("title", "id"),
                cursor=request.GET.get("cursor"),
                per_page=PER_PAGE,
            )
            context.update(mode="category", page=page, querystring=urlencode({"category": category}))
        else:
            context.update(
                mode="home",
                popular=list(
                    _published(organization)
                    .only(*LIST_FIELDS, "helpful_count")
                    .order_by("-helpful_count", "-published_at", "-id")[:POPULAR]
                ),
                recent=list(
                    _published(organization).only(*LIST_FIELDS).order_by("-published_at", "-id")[:POPULAR]
                ),
            )
        return render(request, "support/public_kb/home.html", context)


def _article(organization: Organization, slug: str) -> Article:
    article = _published(organization).filter(slug=slug).first()
    if article is None:
        raise Http404
    return article


def _voted(request) -> list[str]:
    return list(request.session.get(SESSION_VOTES, []))


def article(request, org_slug, slug):
    with public_tenant(org_slug) as organization:
        found = _article(organization, slug)
        related = [
            other
            for other in kb.suggest_for_text(
                organization_id=organization.pk, text=f"{found.title} {' '.join(found.tags)}", limit=4
            )
            if other.pk != found.pk
        ][:3]
        context = {
            "organization": organization,
            "article": found,
            "body_html": kb.article_html(found),
            "related": related,
            "voted": str(found.pk) in _voted(request),
            "title": found.title,
        }
        return render(request, "support/public_kb/article.html", context)


@require_POST
def vote(request, org_slug, slug):
    answer = request.POST.get("helpful")
    with public_tenant(org_slug) as organization:
        found = _article(organization, slug)  # 404 first: a bad vote on a missing article says nothing
        if answer not in ("yes", "no"):
            return HttpResponseBadRequest(_("Say whether the article helped."))
        voted = _voted(request)
        if str(found.pk) not in voted:
            article_vote(article=found, helpful=answer == "yes")
            request.session[SESSION_VOTES] = [*voted, str(found.pk)][-MAX_REMEMBERED_VOTES:]
        if request.htmx:
            return render(
                request,
                "support/public_kb/_vote.html",
                {"organization": organization, "article": found, "voted": True},
            )
        return redirect("kb:article", org_slug=organization.slug, slug=found.slug)
