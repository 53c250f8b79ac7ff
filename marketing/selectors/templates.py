"""Reads of email templates: the managed list (search, active / archived, keyset pages), one template, what
still needs a template (the archive rule), and the preview's customer picker. Scoped to the actor's
organization; every read here is a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from crm.models import User
from crm.pagination import KeysetPage, keyset_page
from crm.permissions import Capability, has_capability
from customers.models import Customer
from marketing.models import Campaign, EmailTemplate, Sequence, Step, Variant

LIST_ORDERING = ("name", "id")
PICKER_LIMIT = 8
USAGE_LIMIT = 10

# A campaign in one of these still needs its template (and its variants' templates) to send.
BUSY_SEND_STATES = (
    Campaign.SendState.MATERIALIZING,
    Campaign.SendState.SENDING,
    Campaign.SendState.TESTING,
    Campaign.SendState.PAUSED,
)


def _busy_campaigns(prefix: str = "") -> Q:
    """Campaigns that still need their templates: scheduled, or with a send under way or paused."""
    return Q(**{f"{prefix}status": Campaign.Status.SCHEDULED}) | Q(
        **{f"{prefix}send_state__in": BUSY_SEND_STATES}
    )


def templates_of(*, actor: User) -> QuerySet[EmailTemplate]:
    """The organization's email templates, for whoever may see campaigns."""
    if not has_capability(actor, Capability.VIEW_CAMPAIGNS):
        return EmailTemplate.objects.none()
    return EmailTemplate.objects.filter(organization_id=actor.organization_id)


def template_get(*, actor: User, pk) -> EmailTemplate:
    template = templates_of(actor=actor).filter(pk=pk).first()
    if template is None:
        raise Http404
    return template


def _in_use() -> Exists:
    """Whether a scheduled or sending campaign, one of its variants, or an active sequence uses the row."""
    campaigns = Campaign.objects.filter(
        _busy_campaigns(), organization_id=OuterRef("organization_id"), template_id=OuterRef("pk")
    )
    variants = Variant.objects.filter(
        _busy_campaigns("campaign__"), organization_id=OuterRef("organization_id"), template_id=OuterRef("pk")
    )
    steps = Step.objects.filter(
        organization_id=OuterRef("organization_id"),
        template_id=OuterRef("pk"),
        sequence__status=Sequence.Status.ACTIVE,
    )
    return Exists(campaigns) | Exists(variants) | Exists(steps)


def template_page(
    *, actor: User, query: str = "", status: str = "active", cursor: str | None = None, per_page: int = 50
) -> KeysetPage:
    """Templates by name, searched on name, description and subject, active or archived (or both), each
    with `in_use` (one query)."""
    queryset = templates_of(actor=actor).select_related("created_by").annotate(in_use=_in_use())
    query = (query or "").strip()
    if query:
        queryset = queryset.filter(
            Q(name__icontains=query) | Q(description__icontains=query) | Q(subject__icontains=query)
        )
    if status == "active":
        queryset = queryset.filter(is_archived=False)
    elif status == "archived":
        queryset = queryset.filter(is_archived=True)
    return keyset_page(queryset, ordering=LIST_ORDERING, cursor=cursor, per_page=per_page)


def template_counts(*, actor: User) -> dict[str, int]:
    """How many active and archived templates the organization has (one query; a handful of rows per
    organization, so an exact count is cheap)."""
    return templates_of(actor=actor).aggregate(
        active=Count("pk", filter=Q(is_archived=False)), archived=Count("pk", filter=Q(is_archived=True))
    )


@dataclass(frozen=True)
class TemplateUse:
    """Something that still needs a template: a campaign (its own template or a variant's) or a sequence."""

    kind_label: str
    name: str


def template_usage(*, template: EmailTemplate, limit: int = USAGE_LIMIT) -> list[TemplateUse]:
    """The scheduled or sending campaigns and active sequences that use `template` (two queries)."""
    campaigns = (
        Campaign.objects.filter(_busy_campaigns(), organization_id=template.organization_id)
        .filter(Q(template_id=template.pk) | Q(variants__template_id=template.pk))
        .distinct()
        .order_by("name", "id")
        .values_list("name", flat=True)[:limit]
    )
    sequences = (
        Sequence.objects.filter(
            organization_id=template.organization_id,
            status=Sequence.Status.ACTIVE,
            steps__template_id=template.pk,
        )
        .distinct()
        .order_by("name", "id")
        .values_list("name", flat=True)[:limit]
    )
    return [TemplateUse(str(_("campaign")), name) for name in campaigns] + [
        TemplateUse(str(_("sequence")), name) for name in sequences
    ]


def preview_customer_options(*, actor: User, query: str, limit: int = PICKER_LIMIT) -> list[Customer]:
    """Customers of the organization for the preview's picker: by name, company, email or number (the
    customers list's typo-tolerant search); the newest when nothing is typed."""
    from customers import selectors as customer_selectors

    query = (query or "").strip()
    base = customer_selectors.customers_of(actor=actor)
    if not query:
        return list(base.order_by("-created_at", "-id")[:limit])
    if query.upper().startswith("C-") and query[2:].isdigit():
        return list(base.filter(number=int(query[2:]))[:limit])
    matches = customer_selectors.search(base, query, organization_id=actor.organization_id)
    return list(matches.order_by("-similarity", "-id")[:limit])


def preview_customer_get(*, actor: User, pk) -> Customer:
    """A customer of the actor's organization, with their owner (the merge fields read both); 404 for any
    other id."""
    from customers import selectors as customer_selectors

    customer = (
        customer_selectors.customers_of(actor=actor).select_related("assigned_to").filter(pk=pk).first()
    )
    if customer is None:
        raise Http404
    return customer
