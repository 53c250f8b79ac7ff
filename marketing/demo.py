"""Demo marketing data for `seed_demo`: email templates, campaigns in every status with itemized costs, sends
with deliveries, opens, clicks, bounces and an unsubscribe, an A/B test with a winner, a running nurture
sequence with enrollments at every step, and a lead capture form with submissions.

Deterministic (seeded by the organization's slug) and idempotent (an organization that already has campaigns
is left alone). The rows are written as the send pipeline and tracking would have left them — every open and
click is also an interaction of the customer with the campaign (so lead scores, segments and attribution
see them) — and the campaign counters are then recomputed from the rows, never invented.
"""

from __future__ import annotations

import datetime
import random
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from crm.db.partitions import ensure_month_partitions
from customers.models import Customer, Interaction, InteractionType, Segment
from marketing.models import (
    ABTest,
    Campaign,
    CampaignSegment,
    CostEntry,
    EmailSend,
    EmailTemplate,
    Enrollment,
    FormSubmission,
    LeadForm,
    Sequence,
    Step,
    StepRun,
    Suppression,
    Variant,
)
from marketing.selectors.audience import mailable_customers
from sales.models import Opportunity

UNSUBSCRIBE = '<p style="font-size:12px;color:#667085"><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
TEMPLATES = [
    (
        "Product launch",
        'Meet the new Analytics Suite, {{ customer.first_name|default:"friend" }}',
        '<h1>The Analytics Suite is here</h1><p>Hi {{ customer.first_name|default:"there" }},</p>'
        "<p>Dashboards your whole team will read, live in minutes.</p>"
        '<p><a href="https://www.example.com/analytics">See what is new</a></p>'
        "<p>{{ owner.signature }}</p>" + UNSUBSCRIBE,
    ),
    (
        "Webinar invitation",
        "You're invited: forecasting that holds up — live on Thursday",
        '<p>Hi {{ customer.first_name|default:"there" }},</p><p>Join our 45-minute webinar on pipeline '
        'forecasting.</p><p><a href="https://www.example.com/webinar">Save my seat</a></p>' + UNSUBSCRIBE,
    ),
    (
        "Monthly newsletter",
        '{{ organization.name }} news for {{ customer.company_name|default:"you" }}',
        '<p>Hello {{ customer.first_name|default:"there" }},</p><p>Three things we shipped this month.</p>'
        '<p><a href="https://www.example.com/blog">Read the blog</a></p>' + UNSUBSCRIBE,
    ),
    (
        "Nurture: welcome",
        'Welcome aboard, {{ customer.first_name|default:"friend" }}',
        "<p>Thanks for signing up! Here is where to start.</p>"
        '<p><a href="https://www.example.com/start">Getting started guide</a></p>' + UNSUBSCRIBE,
    ),
    (
        "Nurture: case study",
        "How Northwind cut reporting time by 60%",
        '<p>A short read.</p><p><a href="https://www.example.com/case-study">Read the case study</a></p>'
        + UNSUBSCRIBE,
    ),
]
# name, channels, status, days from now (start), budget, costs, send days ago (None: no email send)
CAMPAIGNS = [
    ("Spring product launch", ["email", "social", "ads"], "completed", -75, 12000, 9650, 70),
    ("Q3 webinar series", ["email", "webinar"], "active", -20, 6000, 2400, 12),
    ("Autumn newsletter", ["email"], "scheduled", 3, 500, 0, None),
    ("Trade show 2026", ["events"], "active", -10, 18000, 14250, None),
    ("Partner direct mail", ["direct_mail"], "paused", -40, 4000, 1800, None),
    ("Holiday promotion", ["email", "ads"], "draft", 25, 8000, 0, None),
]
COST_ITEMS = {
    "ads": ("LinkedIn and search ads", CostEntry.Category.ADS),
    "social": ("Social creative", CostEntry.Category.CONTENT),
    "email": ("Email design", CostEntry.Category.CONTENT),
    "webinar": ("Webinar platform", CostEntry.Category.SOFTWARE),
    "events": ("Booth and travel", CostEntry.Category.EVENTS),
    "direct_mail": ("Print and postage", CostEntry.Category.PRINT),
}


def seed_marketing(*, organization, users) -> int:
    """Create the demo marketing data; returns the number of campaigns created (0 if there were some)."""
    if Campaign.objects.filter(organization_id=organization.pk).exists():
        return 0
    rng = random.Random(f"demo-marketing:{organization.slug}")  # noqa: S311  (reproducible demo data)
    now = timezone.now()
    today = timezone.localdate()
    owner = next((u for u in users if u.role == "marketing_manager"), None) or users[0]
    ensure_month_partitions("email_sends", months_ahead=3, months_back=4)
    templates = [
        EmailTemplate.objects.create(
            organization=organization, name=name, subject=subject, html_body=html, created_by=owner
        )
        for name, subject, html in TEMPLATES
    ]
    segments = list(Segment.objects.filter(organization_id=organization.pk).order_by("name"))
    campaigns = []
    for name, channels, status, start, budget, cost, sent_days_ago in CAMPAIGNS:
        campaign = Campaign.objects.create(
            organization=organization,
            name=name,
            description=f"{name}: demo campaign.",
            channels=channels,
            status=status,
            owner=owner,
            start_date=today + datetime.timedelta(days=start),
            end_date=today + datetime.timedelta(days=start + 45),
            currency=organization.currency,
            budget=Decimal(budget),
            goal_leads=rng.choice([40, 60, 100]),
            goal_conversions=rng.choice([5, 8, 12]),
            goal_revenue=Decimal(rng.choice([50_000, 80_000, 120_000])),
            template=templates[len(campaigns) % 3] if "email" in channels else None,
            from_name=owner.get_full_name(),
            send_at=now + datetime.timedelta(days=3) if status == "scheduled" else None,
            created_by=owner,
        )
        campaigns.append(campaign)
        if "email" in channels and segments:
            CampaignSegment.objects.create(organization=organization, campaign=campaign, segment=segments[0])
            if len(segments) > 1 and sent_days_ago:
                CampaignSegment.objects.create(
                    organization=organization, campaign=campaign, segment=segments[-1]
                )
        _seed_costs(organization, campaign, channels, Decimal(cost), rng, owner)
        if not {"email"} & set(channels) and status != "draft":
            campaign.impressions = rng.randint(8_000, 40_000)
            campaign.clicks = rng.randint(300, 1_500)
            campaign.conversions = rng.randint(5, 30)
            campaign.save(update_fields=["impressions", "clicks", "conversions"])
        if sent_days_ago:
            _seed_send(organization, campaign, now - datetime.timedelta(days=sent_days_ago), rng)
    launch, webinar = campaigns[0], campaigns[1]
    _seed_ab_test(organization, launch, templates)
    _seed_attribution(organization, launch, rng)
    sequence = _seed_sequence(organization, webinar, templates, owner, rng, now)
    _seed_form(organization, webinar, sequence, owner, rng, now)
    _recount(organization)
    return len(campaigns)


def _seed_costs(organization, campaign, channels, total: Decimal, rng, owner) -> None:
    if not total:
        return
    shares = [rng.randint(2, 6) for _ in channels]
    remaining = total
    for i, channel in enumerate(channels):
        amount = (
            remaining if i == len(channels) - 1 else (total * shares[i] / sum(shares)).quantize(Decimal("1"))
        )
        remaining -= amount
        description, category = COST_ITEMS[channel]
        CostEntry.objects.create(
            organization=organization,
            campaign=campaign,
            incurred_on=(campaign.start_date or timezone.localdate()) + datetime.timedelta(days=i),
            category=category,
            description=description,
            amount=amount,
            created_by=owner,
        )
    Campaign.objects.filter(pk=campaign.pk).update(actual_cost=total)


def _mailable(organization) -> list[Customer]:
    """Who the pipeline would email (the one definition: marketing.selectors.audience), with their owners."""
    return list(mailable_customers(organization.pk).select_related("assigned_to").order_by("number"))


def _seed_send(organization, campaign, sent_at: datetime.datetime, rng) -> None:
    """Sends as the pipeline leaves them: most delivered, some opened and clicked, a few bounced."""
    Campaign.objects.filter(pk=campaign.pk).update(send_at=sent_at)
    campaign.send_at = sent_at
    recipients = _mailable(organization)
    sends, interactions = [], []
    for customer in recipients:
        at = sent_at + datetime.timedelta(seconds=rng.randint(0, 900))
        row = EmailSend(
            organization_id=organization.pk,
            campaign_id=campaign.pk,
            customer_id=customer.pk,
            blast_at=sent_at,
            scheduled_send_time=sent_at,
            email=customer.email,
            status="delivered",
            queued_at=sent_at,
            sent_at=at,
            delivered_at=at + datetime.timedelta(seconds=5),
            message_id=f"<demo-{customer.pk}-{campaign.pk}@crm.example>",
        )
        roll = rng.random()
        if roll < 0.03:
            row.status, row.delivered_at, row.bounced_at = "bounced", None, at + datetime.timedelta(minutes=1)
        elif roll < 0.45:
            row.opened_at = at + datetime.timedelta(hours=rng.randint(1, 48))
            row.open_count = rng.randint(1, 4)
            interactions.append(
                _touch(organization, customer, campaign, InteractionType.EMAIL_OPENED, row.opened_at)
            )
            if roll < 0.15:
                row.clicked_at = row.opened_at + datetime.timedelta(minutes=rng.randint(1, 30))
                row.click_count = rng.randint(1, 2)
                interactions.append(
                    _touch(organization, customer, campaign, InteractionType.EMAIL_CLICKED, row.clicked_at)
                )
        sends.append(row)
    if len(sends) > 3:
        # One recipient unsubscribed from this campaign: suppressed, opted out.
        quitter = sends[3]
        quitter.unsubscribed_at = (quitter.delivered_at or sent_at) + datetime.timedelta(hours=2)
        Suppression.objects.create(
            organization=organization,
            email=quitter.email.lower(),
            reason=Suppression.Reason.UNSUBSCRIBED,
            campaign=campaign,
            created_at=quitter.unsubscribed_at,
        )
        Customer.objects.filter(pk=quitter.customer_id).update(email_opt_in=False)
    EmailSend.objects.bulk_create(sends, batch_size=2000)
    Interaction.objects.bulk_create(interactions, batch_size=2000)
    Campaign.objects.filter(pk=campaign.pk).update(
        send_state=Campaign.SendState.DONE,
        send_started_at=sent_at,
        send_finished_at=sent_at + datetime.timedelta(minutes=20),
    )


def _touch(organization, customer, campaign, kind, at) -> Interaction:
    return Interaction(
        organization_id=organization.pk,
        customer_id=customer.pk,
        interaction_type=kind,
        channel="email",
        interaction_date=at,
        campaign_id=campaign.pk,
        outcome=campaign.name,
    )


def _seed_ab_test(organization, campaign, templates) -> None:
    """The launch campaign's subject-line test: variant B won on open rate."""
    a = Variant.objects.create(organization=organization, campaign=campaign, label="A", subject="")
    b = Variant.objects.create(
        organization=organization,
        campaign=campaign,
        label="B",
        subject='{{ customer.first_name|default:"Hi" }}, your dashboards just got smarter',
    )
    rows = list(
        EmailSend.objects.filter(organization_id=organization.pk, campaign_id=campaign.pk).order_by("id")
    )
    sample = rows[: max(2, len(rows) * 3 // 10)]
    for i, row in enumerate(sample):
        row.in_test, row.variant_id = True, (a.pk if i % 2 else b.pk)
    for row in rows[len(sample) :]:
        row.variant_id = b.pk
    EmailSend.objects.bulk_update(rows, ["in_test", "variant"], batch_size=2000)
    stats = {}
    for variant in (a, b):
        arm = [r for r in sample if r.variant_id == variant.pk]
        stats[variant.label] = (len(arm), sum(1 for r in arm if r.opened_at))
        variant.recipients, variant.successes = stats[variant.label]
        variant.save(update_fields=["recipients", "successes"])
    started = campaign.send_at
    ABTest.objects.create(
        organization=organization,
        campaign=campaign,
        test_share=30,
        metric=ABTest.Metric.OPEN_RATE,
        duration_hours=24,
        min_sample=20,
        default_variant=a,
        status=ABTest.Status.DECIDED,
        started_at=started,
        decide_at=started + datetime.timedelta(hours=24),
        decided_at=started + datetime.timedelta(hours=24),
        winner=b,
        p_value=0.03,
        confidence=0.97,
        explanation=(
            f"B opened {stats['B'][1]} of {stats['B'][0]}, A {stats['A'][1]} of {stats['A'][0]}: "
            "B sent to the rest of the audience."
        ),
    )


def _seed_attribution(organization, campaign, rng) -> None:
    """A few won deals came from the launch campaign: their customers clicked before the win."""
    won = list(
        Opportunity.objects.filter(organization_id=organization.pk, status=Opportunity.Status.WON)
        .exclude(actual_close_date=None)
        .order_by("id")[:8]
    )
    touches = []
    for i, opportunity in enumerate(won):
        closed = datetime.datetime.combine(
            opportunity.actual_close_date, datetime.time(9), tzinfo=datetime.UTC
        ) - datetime.timedelta(days=rng.randint(3, 20))
        touches.append(
            Interaction(
                organization_id=organization.pk,
                customer_id=opportunity.customer_id,
                interaction_type=InteractionType.EMAIL_CLICKED if i % 2 else InteractionType.FORM_SUBMISSION,
                channel="email" if i % 2 else "web",
                interaction_date=closed,
                campaign_id=campaign.pk,
                outcome=campaign.name,
            )
        )
        if i < 3:
            Opportunity.objects.filter(pk=opportunity.pk).update(source_campaign_id=campaign.pk)
    Interaction.objects.bulk_create(touches)


def _seed_sequence(organization, campaign, templates, owner, rng, now) -> Sequence:
    """ "Webinar follow-up": welcome, wait, branch on the open, case study or a task for the owner."""
    welcome, case_study = templates[3], templates[4]
    sequence = Sequence.objects.create(
        organization=organization,
        name="Webinar follow-up",
        description="Nurtures webinar registrants towards a demo.",
        campaign=campaign,
        status=Sequence.Status.ACTIVE,
        created_by=owner,
    )
    spec = [
        {"kind": Step.Kind.SEND_EMAIL, "template": welcome},
        {"kind": Step.Kind.WAIT, "wait_days": 3},
        {"kind": Step.Kind.BRANCH, "condition": {"kind": "opened_previous"}, "else_position": 6},
        {"kind": Step.Kind.SEND_EMAIL, "template": case_study},
        {"kind": Step.Kind.WAIT, "wait_days": 4},
        {
            "kind": Step.Kind.CREATE_TASK,
            "task_subject": "Offer a demo to the webinar attendee",
            "task_due_days": 2,
        },
    ]
    steps = [
        Step.objects.create(organization=organization, sequence=sequence, position=i + 1, **fields)
        for i, fields in enumerate(spec)
    ]
    customers = _mailable(organization)[10:22]
    for n, customer in enumerate(customers):
        enrolled = now - datetime.timedelta(days=rng.randint(1, 11), hours=rng.randint(0, 12))
        enrollment = Enrollment.objects.create(
            organization=organization,
            sequence=sequence,
            customer=customer,
            source=Enrollment.Source.FORM,
            enrolled_at=enrolled,
        )
        # How far each has come: the first runs the welcome only, the last reached the end.
        reached = min(len(steps), 1 + n // 2)
        at = enrolled
        for step in steps[:reached]:
            outcome = {
                Step.Kind.SEND_EMAIL: StepRun.Outcome.SENT,
                Step.Kind.WAIT: StepRun.Outcome.WAITED,
                Step.Kind.BRANCH: StepRun.Outcome.BRANCH_YES,
                Step.Kind.CREATE_TASK: StepRun.Outcome.TASK,
            }[step.kind]
            run = StepRun.objects.create(
                organization=organization,
                enrollment=enrollment,
                step=step,
                due_at=at,
                ran_at=at,
                outcome=outcome,
            )
            if step.kind == Step.Kind.SEND_EMAIL:
                EmailSend.objects.create(
                    organization_id=organization.pk,
                    campaign_id=campaign.pk,
                    customer_id=customer.pk,
                    step_run_id=run.pk,
                    scheduled_send_time=at,
                    email=customer.email,
                    status="delivered",
                    queued_at=at,
                    sent_at=at,
                    delivered_at=at,
                    opened_at=at + datetime.timedelta(hours=3),
                    open_count=1,
                )
            if step.kind == Step.Kind.WAIT:
                at += datetime.timedelta(days=step.wait_days)
        if reached == len(steps):
            enrollment.status, enrollment.finished_at = Enrollment.Status.COMPLETED, at
        else:
            enrollment.next_position = steps[reached].position
            enrollment.next_run_at = max(at, now + datetime.timedelta(hours=1))
        enrollment.save()
    return sequence


def _seed_form(organization, campaign, sequence, owner, rng, now) -> None:
    form = LeadForm.objects.create(
        organization=organization,
        campaign=campaign,
        name="Webinar registration",
        slug="webinar",
        title="Register for the forecasting webinar",
        intro="45 minutes, live, with questions at the end.",
        fields=["first_name", "last_name", "company_name", "job_title"],
        sequence=sequence,
        created_by=owner,
    )
    customers = _mailable(organization)[10:22]
    for customer in customers:
        at = now - datetime.timedelta(days=rng.randint(1, 12))
        FormSubmission.objects.create(
            organization=organization,
            form=form,
            customer=customer,
            data={
                "email": customer.email,
                "first_name": customer.first_name,
                "last_name": customer.last_name,
            },
            consent_given=True,
            submitted_at=at,
        )
    Interaction.objects.bulk_create(
        [_touch(organization, c, campaign, InteractionType.FORM_SUBMISSION, now) for c in customers]
    )
    LeadForm.objects.filter(pk=form.pk).update(submission_count=len(customers))


def _recount(organization) -> None:
    """Campaign counters from the rows, as the pipeline keeps them."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns c SET
                recipients_total = s.total, sent_count = s.sent, delivered_count = s.delivered,
                bounced_count = s.bounced, failed_count = s.failed, opened_count = s.opened,
                clicked_count = s.clicked, unsubscribed_count = s.unsubscribed
            FROM (
                SELECT campaign_id,
                       count(*) AS total,
                       count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,
                       count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
                       count(*) FILTER (WHERE status = 'bounced') AS bounced,
                       count(*) FILTER (WHERE status = 'failed') AS failed,
                       count(*) FILTER (WHERE opened_at IS NOT NULL) AS opened,
                       count(*) FILTER (WHERE clicked_at IS NOT NULL) AS clicked,
                       count(*) FILTER (WHERE unsubscribed_at IS NOT NULL) AS unsubscribed
                FROM email_sends WHERE organization_id = %s GROUP BY campaign_id
            ) s
            WHERE c.organization_id = %s AND c.id = s.campaign_id
            """,
            [organization.pk, organization.pk],
        )
