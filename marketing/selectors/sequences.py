"""Reads of drip / nurture sequences: the list with enrollment counts, the builder's steps, the enrollment
list with counts per status and the per-step funnel, an enrollment's path, and the customer 360 panel.

Every read is scoped to the actor's organization (RLS is the second wall) and runs a fixed number of
queries, whatever the number of steps or enrollments.
"""

from __future__ import annotations

import uuid

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse

from crm.models import User
from crm.pagination import KeysetPage, keyset_page
from customers.models import Customer, Segment
from marketing.models import Campaign, EmailSend, EmailTemplate, Enrollment, Sequence, Step, StepRun

ENROLLMENT_ORDERING = ("-enrolled_at", "-id")
ENROLLMENTS_PER_PAGE = 50
PANEL_ENROLLMENTS = 10


def sequences_of(*, actor: User) -> QuerySet[Sequence]:
    return Sequence.objects.filter(organization_id=actor.organization_id)


def sequence_get(*, actor: User, pk) -> Sequence:
    return get_object_or_404(sequences_of(actor=actor).select_related("campaign", "enroll_segment"), pk=pk)


def sequence_list(*, actor: User, status: str = "") -> list[Sequence]:
    """The organization's sequences (optionally of one status) with their step count and enrollments per
    status (`active_count`, `completed_count`, `exited_count`). Two queries."""
    sequences = sequences_of(actor=actor).select_related("campaign")
    if status in Sequence.Status.values:
        sequences = sequences.filter(status=status)
    sequences = list(sequences.annotate(step_count=Count("steps", distinct=True)).order_by("name", "id"))
    counts = (
        {
            row["sequence_id"]: row
            for row in Enrollment.objects.filter(
                organization_id=actor.organization_id, sequence_id__in=[s.pk for s in sequences]
            )
            .values("sequence_id")
            .annotate(
                active=Count("id", filter=Q(status=Enrollment.Status.ACTIVE)),
                completed=Count("id", filter=Q(status=Enrollment.Status.COMPLETED)),
                exited=Count("id", filter=Q(status=Enrollment.Status.EXITED)),
            )
            .order_by()
        }
        if sequences
        else {}
    )
    for sequence in sequences:
        row = counts.get(sequence.pk, {})
        sequence.active_count = row.get("active", 0)
        sequence.completed_count = row.get("completed", 0)
        sequence.exited_count = row.get("exited", 0)
    return sequences


def steps_of(*, sequence: Sequence) -> list[Step]:
    return list(
        Step.objects.filter(organization_id=sequence.organization_id, sequence_id=sequence.pk)
        .select_related("template")
        .order_by("position", "id")
    )


def step_get(*, actor: User, pk) -> Step:
    return get_object_or_404(
        Step.objects.filter(organization_id=actor.organization_id).select_related("sequence", "template"),
        pk=pk,
    )


def status_counts(*, sequence: Sequence) -> dict[str, int]:
    """Enrollments per status, every status present (zeros included), and the total. One query."""
    counts = dict.fromkeys(Enrollment.Status.values, 0)
    for row in (
        Enrollment.objects.filter(organization_id=sequence.organization_id, sequence_id=sequence.pk)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts[s] for s in Enrollment.Status.values)
    return counts


def exit_counts(*, sequence: Sequence) -> dict[str, int]:
    """Exited enrollments per reason. One query."""
    return {
        row["exit_reason"]: row["n"]
        for row in Enrollment.objects.filter(
            organization_id=sequence.organization_id, sequence_id=sequence.pk, status=Enrollment.Status.EXITED
        )
        .values("exit_reason")
        .annotate(n=Count("id"))
        .order_by()
    }


def step_funnel(*, sequence: Sequence, steps: list[Step]) -> list[dict]:
    """Per step: how many enrollments reached it (ran it: a step run exists), how many of those took each
    branch, and how many are waiting to run it now (active, next position = the step). Two queries."""
    runs = {
        row["step_id"]: row
        for row in StepRun.objects.filter(
            organization_id=sequence.organization_id, step__sequence_id=sequence.pk
        )
        .values("step_id")
        .annotate(
            reached=Count("id"),
            yes=Count("id", filter=Q(outcome=StepRun.Outcome.BRANCH_YES)),
            no=Count("id", filter=Q(outcome=StepRun.Outcome.BRANCH_NO)),
            skipped=Count("id", filter=Q(outcome=StepRun.Outcome.SKIPPED)),
        )
        .order_by()
    }
    waiting = dict(
        Enrollment.objects.filter(
            organization_id=sequence.organization_id, sequence_id=sequence.pk, status=Enrollment.Status.ACTIVE
        )
        .values("next_position")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("next_position", "n")
    )
    first = None
    funnel = []
    for step in steps:
        row = runs.get(step.pk, {})
        reached = row.get("reached", 0)
        if first is None:
            first = reached
        funnel.append(
            {
                "step": step,
                "reached": reached,
                "percent": round(100 * reached / first) if first else 0,
                "yes": row.get("yes", 0),
                "no": row.get("no", 0),
                "skipped": row.get("skipped", 0),
                "waiting": waiting.get(step.position, 0),
            }
        )
    return funnel


def enrollment_page(*, sequence: Sequence, status: str = "", cursor: str | None = None) -> KeysetPage:
    """One keyset page of the sequence's enrollments, newest first, optionally of one status. One query."""
    enrollments = Enrollment.objects.filter(
        organization_id=sequence.organization_id, sequence_id=sequence.pk
    ).select_related("customer")
    if status in Enrollment.Status.values:
        enrollments = enrollments.filter(status=status)
    return keyset_page(
        enrollments, ordering=ENROLLMENT_ORDERING, cursor=cursor, per_page=ENROLLMENTS_PER_PAGE
    )


def enrollment_get(*, actor: User, pk) -> Enrollment:
    return get_object_or_404(
        Enrollment.objects.filter(organization_id=actor.organization_id).select_related(
            "sequence", "sequence__campaign", "customer"
        ),
        pk=pk,
    )


def enrollment_path(*, enrollment: Enrollment) -> list[dict]:
    """The steps the enrollment ran, in order, each with its email (status, opened, clicked) when it sent
    one. Two queries."""
    runs = list(
        StepRun.objects.filter(organization_id=enrollment.organization_id, enrollment_id=enrollment.pk)
        .select_related("step", "step__template")
        .order_by("ran_at", "id")
    )
    emails = (
        {
            e.step_run_id: e
            for e in EmailSend.objects.filter(
                organization_id=enrollment.organization_id, step_run_id__in=[r.pk for r in runs]
            )
        }
        if runs
        else {}
    )
    return [{"run": run, "step": run.step, "email": emails.get(run.pk)} for run in runs]


def template_choices(*, actor: User) -> QuerySet[EmailTemplate]:
    return EmailTemplate.objects.filter(organization_id=actor.organization_id, is_archived=False).order_by(
        "name"
    )


def campaign_choices(*, actor: User) -> QuerySet[Campaign]:
    return Campaign.objects.filter(organization_id=actor.organization_id).order_by("name", "id")


def segment_choices(*, actor: User) -> QuerySet[Segment]:
    return Segment.objects.filter(organization_id=actor.organization_id).order_by("name", "id")


def owner_choices(*, actor: User) -> QuerySet[User]:
    return User.objects.filter(organization_id=actor.organization_id, is_active=True).order_by(
        "first_name", "last_name", "email"
    )


def users_by_id(*, actor: User, ids) -> dict[str, User]:
    """Users named by update-owner steps, for the builder's cards. One query."""
    valid = []
    for value in ids:
        try:
            valid.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    if not valid:
        return {}
    return {str(u.pk): u for u in User.objects.filter(organization_id=actor.organization_id, pk__in=valid)}


def customer_options(*, actor: User, query: str, limit: int = 20) -> list[Customer]:
    """Customers to pick for enrolling by hand: by name, company, email or number (the customers list's
    typo-tolerant search); the newest when nothing is typed."""
    from customers import selectors as customer_selectors

    query = (query or "").strip()
    base = customer_selectors.customers_of(actor=actor)
    if not query:
        return list(base.order_by("-created_at", "-id")[:limit])
    if query.upper().startswith("C-") and query[2:].isdigit():
        return list(base.filter(number=int(query[2:]))[:limit])
    matches = customer_selectors.search(base, query, organization_id=actor.organization_id)
    return list(matches.order_by("-similarity", "-id")[:limit])


def enrollments_for_customer(*, customer: Customer, actor: User) -> dict:
    """The customer 360 page's "Sequences" panel: the customer's enrollments, newest first (at most
    PANEL_ENROLLMENTS), and how many are active. Two queries."""
    enrollments = Enrollment.objects.filter(
        organization_id=actor.organization_id, customer_id=customer.pk
    ).select_related("sequence")
    active = enrollments.filter(status=Enrollment.Status.ACTIVE).count()
    rows = list(enrollments.order_by("-enrolled_at", "-id")[:PANEL_ENROLLMENTS])
    return {
        "active": active,
        "enrollments": [
            {
                "enrollment_id": str(e.pk),
                "sequence": e.sequence.name,
                "status": e.status,
                "status_label": str(e.get_status_display()),
                "exit_reason": str(e.get_exit_reason_display()) if e.exit_reason else "",
                "enrolled": e.enrolled_at.isoformat(),
                "next_run": e.next_run_at.isoformat() if e.next_run_at else None,
                "url": reverse("marketing:enrollment_detail", kwargs={"pk": e.pk}),
            }
            for e in rows
        ],
    }
