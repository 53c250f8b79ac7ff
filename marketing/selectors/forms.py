"""Reads of lead capture: the form list, one form with its numbers, and a form's submissions.

Every read is scoped to the acting user's organization (row-level security scopes it again underneath).
Query counts are fixed: the list is one page query plus one GROUP BY for the page's new-lead counts; a
form's submissions are one keyset page query with the customers joined.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q
from django.http import Http404

from crm.models import User
from crm.pagination import KeysetPage, keyset_page
from marketing.models import Campaign, FormSubmission, LeadForm, Sequence

LIST_PER_PAGE = 25
SUBMISSIONS_PER_PAGE = 50


def lead_form_list(
    *, actor: User, query: str = "", campaign_id=None, state: str = "", cursor: str | None = None
) -> KeysetPage:
    """A page of the organization's lead forms, newest first, each with `new_leads` (submissions that
    created a customer) set from one GROUP BY over the page's forms."""
    queryset = LeadForm.objects.filter(organization_id=actor.organization_id).select_related(
        "campaign", "sequence"
    )
    if query:
        queryset = queryset.filter(Q(name__icontains=query) | Q(title__icontains=query))
    if campaign_id:
        queryset = queryset.filter(campaign_id=campaign_id)
    if state == "open":
        queryset = queryset.filter(is_active=True)
    elif state == "closed":
        queryset = queryset.filter(is_active=False)
    page = keyset_page(queryset, ordering=("-created_at", "-id"), cursor=cursor, per_page=LIST_PER_PAGE)
    new_leads = _new_leads_by_form(actor.organization_id, [form.pk for form in page.items])
    for form in page.items:
        form.new_leads = new_leads.get(form.pk, 0)
    return page


def _new_leads_by_form(organization_id, form_ids: list) -> dict:
    if not form_ids:
        return {}
    rows = (
        FormSubmission.objects.filter(
            organization_id=organization_id, form_id__in=form_ids, created_customer=True
        )
        .values("form_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["form_id"]: row["n"] for row in rows}


def lead_form_get(*, actor: User, pk) -> LeadForm:
    """One of the organization's forms (with campaign and sequence); 404 for any other id."""
    found = (
        LeadForm.objects.select_related("campaign", "sequence")
        .filter(organization_id=actor.organization_id, pk=pk)
        .first()
    )
    if found is None:
        raise Http404
    return found


@dataclass(frozen=True)
class SubmissionCounts:
    submissions: int
    new_leads: int
    consented: int

    @property
    def existing_customers(self) -> int:
        return self.submissions - self.new_leads


def submission_counts(*, actor: User, lead_form: LeadForm) -> SubmissionCounts:
    """How many submissions the form has, how many created a new lead and how many gave consent (one
    aggregate over the form's rows, on the (organization, form, submitted_at) index)."""
    row = FormSubmission.objects.filter(
        organization_id=actor.organization_id, form_id=lead_form.pk
    ).aggregate(
        submissions=Count("id"),
        new_leads=Count("id", filter=Q(created_customer=True)),
        consented=Count("id", filter=Q(consent_given=True)),
    )
    return SubmissionCounts(**row)


def submission_page(*, actor: User, lead_form: LeadForm, cursor: str | None = None) -> KeysetPage:
    """A keyset page of the form's submissions, newest first, with each customer's name."""
    queryset = (
        FormSubmission.objects.filter(organization_id=actor.organization_id, form_id=lead_form.pk)
        .select_related("customer")
        .only(
            "id",
            "organization_id",
            "form_id",
            "customer_id",
            "data",
            "consent_given",
            "created_customer",
            "submitted_at",
            "customer__id",
            "customer__number",
            "customer__first_name",
            "customer__last_name",
            "customer__company_name",
            "customer__email",
        )
    )
    return keyset_page(
        queryset, ordering=("-submitted_at", "-id"), cursor=cursor, per_page=SUBMISSIONS_PER_PAGE
    )


def form_choices(*, actor: User, current: LeadForm | None = None) -> tuple[list[Campaign], list[Sequence]]:
    """The campaigns a form can belong to (the newest 500) and the sequences it can enroll in (not
    archived); the edited form's own campaign and sequence are always among them."""
    organization_id = actor.organization_id
    keep_campaign = Q(pk=current.campaign_id) if current is not None else Q(pk__in=[])
    keep_sequence = Q(pk=current.sequence_id) if current is not None and current.sequence_id else Q(pk__in=[])
    recent = (
        Campaign.objects.filter(organization_id=organization_id)
        .order_by("-created_at", "-id")
        .values("pk")[:500]
    )
    campaigns = list(
        Campaign.objects.filter(Q(pk__in=recent) | keep_campaign, organization_id=organization_id)
        .only("id", "organization_id", "name", "created_at")
        .order_by("-created_at", "-id")
    )
    sequences = list(
        Sequence.objects.filter(
            ~Q(status=Sequence.Status.ARCHIVED) | keep_sequence, organization_id=organization_id
        )
        .only("id", "organization_id", "name")
        .order_by("name")[:500]
    )
    return campaigns, sequences
