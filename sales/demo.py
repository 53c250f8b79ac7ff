"""Demo sales data for `seed_demo`: a pipeline, a year of opportunities with their stage history, quotas,
activities, quotes in every status and orders, so every sales page shows real-looking numbers.

Deterministic (seeded by the organization's slug) and idempotent (an organization that already has
opportunities is left alone). History is written with past timestamps directly (the services stamp "now"),
following the same rules the services apply.
"""

from __future__ import annotations

import datetime
import random
from decimal import Decimal

from django.utils import timezone

from crm.models import User
from crm.permissions import Role
from customers.models import Customer
from sales.models import Activity, Opportunity, OpportunityChange, Quota, Stage
from sales.services.pipelines import pipeline_ensure_default

DEALS = [
    "Annual licence",
    "Platform upgrade",
    "Support renewal",
    "Onboarding package",
    "Data migration",
    "Team expansion",
    "Enterprise rollout",
    "Pilot project",
    "Analytics add-on",
    "Multi-year agreement",
    "Training workshop",
    "Integration services",
]
LOST_REASONS = ["Budget cut", "Went with a competitor", "No decision", "Timing: next fiscal year", "Price"]
NEXT_STEPS = [
    "Send proposal",
    "Schedule demo",
    "Call with procurement",
    "Security review",
    "Contract redlines",
]


def _sellers(organization) -> list[User]:
    return list(
        User.objects.filter(
            organization=organization, is_active=True, role__in=[Role.SALES_REP, Role.SALES_MANAGER]
        ).order_by("email")
    )


def seed_opportunities(*, organization, count: int = 90) -> int:
    """Deals across the pipeline over the last nine months, with stage history, wins and losses."""
    if Opportunity.objects.filter(organization=organization).exists():
        return 0
    rng = random.Random(f"demo-sales:{organization.slug}")  # noqa: S311  (reproducible demo data)
    pipeline = pipeline_ensure_default(organization=organization)
    stages = list(pipeline.stages.order_by("position"))
    open_stages = [s for s in stages if s.outcome == Stage.Outcome.OPEN]
    won = next(s for s in stages if s.outcome == Stage.Outcome.WON)
    lost = next(s for s in stages if s.outcome == Stage.Outcome.LOST)
    sellers = _sellers(organization)
    customers = list(
        Customer.objects.filter(organization=organization, customer_type="business").order_by("number")[:120]
    ) or list(Customer.objects.filter(organization=organization).order_by("number")[:120])
    if not sellers or not customers:
        return 0
    now = timezone.now()
    today = timezone.localdate()
    opportunities, changes = [], []
    for _n in range(count):
        customer = rng.choice(customers)
        owner = rng.choice(sellers)
        created = now - datetime.timedelta(days=rng.randint(5, 270), hours=rng.randint(0, 23))
        amount = Decimal(rng.choice([2, 3, 5, 8, 12, 15, 20, 30, 45, 60, 90])) * 1000
        # Older deals are more likely closed; the rest sit somewhere in the open stages.
        age = (now - created).days
        roll = rng.random()
        outcome = ("won" if rng.random() < 0.55 else "lost") if age > 60 and roll < 0.45 else "open"
        reached = (
            rng.randint(1, len(open_stages)) if outcome != "lost" else rng.randint(1, len(open_stages) - 1)
        )
        path = open_stages[:reached] + ([won] if outcome == "won" else [lost] if outcome == "lost" else [])
        # Stage moves spread between creation and today (or the close).
        span = max(age - 1, len(path))
        moments = sorted(created + datetime.timedelta(days=rng.uniform(0.5, span)) for _ in path[1:])
        last_stage = path[-1]
        closed_at = moments[-1] if outcome != "open" and moments else None
        expected = (
            closed_at.date()
            if closed_at
            else today + datetime.timedelta(days=rng.choice([-12, -3, 6, 14, 21, 35, 50, 70, 95, 130]))
        )
        opp = Opportunity(
            organization=organization,
            name=f"{customer.company_name or customer.display_name} — {rng.choice(DEALS)}",
            customer=customer,
            pipeline=pipeline,
            stage=last_stage,
            assigned_to=owner,
            created_by=owner,
            amount=amount,
            currency=organization.currency,
            probability=last_stage.probability,
            forecast_category=last_stage.forecast_category,
            expected_close_date=expected,
            actual_close_date=closed_at.date() if closed_at else None,
            status=outcome,
            lost_reason=rng.choice(LOST_REASONS) if outcome == "lost" else "",
            next_step="" if outcome != "open" else rng.choice(NEXT_STEPS),
            stage_changed_at=moments[-1] if moments else created,
            last_activity_at=None,
            created_at=created,
        )
        opportunities.append(opp)
        previous = path[0]
        for stage, at in zip(path[1:], moments, strict=True):
            changes.append(
                OpportunityChange(
                    organization=organization,
                    opportunity=opp,
                    field="stage",
                    old_value=str(previous.pk),
                    new_value=str(stage.pk),
                    changed_at=at,
                    changed_by=owner,
                )
            )
            if stage.probability != previous.probability:
                changes.append(
                    OpportunityChange(
                        organization=organization,
                        opportunity=opp,
                        field="probability",
                        old_value=str(previous.probability),
                        new_value=str(stage.probability),
                        changed_at=at,
                        changed_by=owner,
                    )
                )
            previous = stage
        if outcome != "open":
            changes.append(
                OpportunityChange(
                    organization=organization,
                    opportunity=opp,
                    field="status",
                    old_value="open",
                    new_value=outcome,
                    changed_at=closed_at,
                    changed_by=owner,
                )
            )
        # Some open deals slipped: their close date moved later, once or twice.
        if outcome == "open" and rng.random() < 0.3:
            moved = expected
            for _ in range(rng.choice([1, 1, 2])):
                earlier = moved - datetime.timedelta(days=rng.choice([14, 21, 30]))
                changes.append(
                    OpportunityChange(
                        organization=organization,
                        opportunity=opp,
                        field="expected_close_date",
                        old_value=earlier.isoformat(),
                        new_value=moved.isoformat(),
                        changed_at=created + datetime.timedelta(days=rng.uniform(1, max(age, 2))),
                        changed_by=owner,
                    )
                )
                moved = earlier
    Opportunity.objects.bulk_create(opportunities)
    OpportunityChange.objects.bulk_create(changes)
    return len(opportunities)


def seed_quotas(*, organization) -> int:
    """A monthly quota for every seller, six months back and six ahead."""
    if Quota.objects.filter(organization=organization).exists():
        return 0
    rng = random.Random(f"demo-quotas:{organization.slug}")  # noqa: S311
    first = timezone.localdate().replace(day=1)
    months = []
    for offset in range(-6, 7):
        year, month = divmod(first.month - 1 + offset, 12)
        months.append(datetime.date(first.year + year, month + 1, 1))
    quotas = [
        Quota(
            organization=organization,
            user=seller,
            month=month,
            amount=Decimal(rng.choice([40, 50, 60, 75])) * 1000,
        )
        for seller in _sellers(organization)
        for month in months
    ]
    Quota.objects.bulk_create(quotas)
    return len(quotas)


def seed_activities(*, organization) -> int:
    """Calls and meetings done on the deals, and open tasks: some overdue, some today, some upcoming."""
    if Activity.objects.filter(organization=organization).exists():
        return 0
    rng = random.Random(f"demo-activities:{organization.slug}")  # noqa: S311
    now = timezone.now()
    activities = []
    touched: dict = {}
    for opp in (
        Opportunity.objects.filter(organization=organization)
        .select_related("customer")
        .order_by("created_at")
    ):
        for _ in range(rng.randint(1, 4)):
            at = opp.created_at + datetime.timedelta(days=rng.uniform(0, max((now - opp.created_at).days, 1)))
            kind = rng.choice([Activity.Kind.CALL, Activity.Kind.MEETING, Activity.Kind.EMAIL])
            activities.append(
                Activity(
                    organization=organization,
                    opportunity=opp,
                    customer_id=opp.customer_id,
                    kind=kind,
                    subject=f"{kind.label}: {opp.customer.display_name}",
                    due_at=at,
                    owner_id=opp.assigned_to_id,
                    created_by_id=opp.assigned_to_id,
                    completed_at=at,
                    outcome=rng.choice(
                        ["Interested", "Needs pricing", "Left a message", "Positive", "Follow up"]
                    ),
                    created_at=at,
                )
            )
            touched[opp.pk] = max(touched.get(opp.pk, at), at)
        if opp.status == Opportunity.Status.OPEN:
            due = now + datetime.timedelta(
                days=rng.choice([-3, -1, 0, 0, 1, 2, 4, 6]), hours=rng.randint(-3, 5)
            )
            activities.append(
                Activity(
                    organization=organization,
                    opportunity=opp,
                    customer_id=opp.customer_id,
                    kind=Activity.Kind.TASK,
                    subject=opp.next_step or "Follow up",
                    due_at=due,
                    reminder_at=due - datetime.timedelta(hours=1),
                    reminded_at=now if due < now else None,
                    owner_id=opp.assigned_to_id,
                    created_by_id=opp.assigned_to_id,
                )
            )
    Activity.objects.bulk_create(activities)
    for opp_id, at in touched.items():
        Opportunity.objects.filter(pk=opp_id).update(last_activity_at=at)
    return len(activities)
