"""Demo support data for `seed_demo`: agents with departments and capacity, the default SLA policies on a
business-hours calendar, tickets in every status with their threads over the last six weeks (some of them
breached and escalated), CSAT and NPS answers, canned responses and knowledge-base articles.

Deterministic (seeded by the organization's slug) and idempotent (an organization that already has tickets
is left alone). Tickets go through the real services (numbering, SLA, routing, replies, status changes);
their history is then spread over past days — each event, message and stamp moved to a plausible time — and
the SLA deadlines recomputed from the moved events, exactly as the services derive them.
"""

from __future__ import annotations

import datetime
import random

from django.db import connection
from django.utils import timezone

from crm.models import Department, User
from crm.permissions import Role
from customers.models import Customer
from support import sla
from support.escalation import escalation_sweep
from support.models import (
    Article,
    CannedResponse,
    Channel,
    Priority,
    Status,
    Survey,
    Ticket,
    TicketEvent,
    TicketMessage,
    TicketType,
)
from support.services.articles import article_create
from support.services.tickets import ticket_create, ticket_note, ticket_reply, ticket_set_status

SUBJECTS = {
    TicketType.QUESTION: [
        "How do I export my invoices?",
        "Where can I change my password?",
        "Can I add a user?",
    ],
    TicketType.INCIDENT: ["Dashboard not loading", "Sync stopped this morning", "Login page times out"],
    TicketType.PROBLEM: ["Reports are slow every Monday", "Recurring duplicate notifications"],
    TicketType.BUG_REPORT: [
        "Date picker shows the wrong month",
        "CSV export drops accents",
        "Chart legend overlaps",
    ],
    TicketType.BILLING_ISSUE: [
        "Charged twice this month",
        "Invoice has the wrong VAT number",
        "Refund request",
    ],
    TicketType.ACCOUNT_ISSUE: [
        "Cannot access my account",
        "Please merge our two accounts",
        "2FA device lost",
    ],
    TicketType.FEATURE_REQUEST: ["Dark mode, please", "API access for our ERP", "Custom fields on contacts"],
}
CATEGORY_OF = {
    TicketType.BILLING_ISSUE: Department.BILLING,
    TicketType.ACCOUNT_ISSUE: Department.ACCOUNT,
    TicketType.BUG_REPORT: Department.TECHNICAL,
    TicketType.INCIDENT: Department.TECHNICAL,
    TicketType.PROBLEM: Department.TECHNICAL,
    TicketType.QUESTION: Department.SUPPORT,
    TicketType.FEATURE_REQUEST: Department.PRODUCT,
}
CUSTOMER_LINES = [
    "Hi, {subject_lower}. Could you help? Thanks!",
    "Hello team — {subject_lower}. This is blocking our work today.",
    "Good morning, {subject_lower}. Screenshot attached in my next mail.",
]
AGENT_LINES = [
    "Thanks for reaching out! I'm looking into this now and will update you shortly.",
    "I've reproduced the issue and passed it to our engineers. I'll keep you posted.",
    "Could you send the exact time it happened and your browser version?",
    "This is fixed on our side — could you try again and confirm?",
]
NOTES = [
    "Customer is on the annual plan; renewal next month, handle with care.",
    "Same issue reported by two other customers this week.",
    "Checked the logs: timeouts between 08:00 and 08:15 UTC.",
]
COMMENTS = {
    5: ["Fast and friendly, thank you!", "Solved in minutes. Great service."],
    4: ["Good help, took a little while.", "Resolved, thanks."],
    3: ["OK in the end, but I had to explain twice."],
    2: ["Slow answer, and the first fix did not work."],
    1: ["Nobody answered for two days."],
}
ARTICLES = [
    (
        "Exporting invoices as PDF or CSV",
        "Billing",
        ["invoices", "export"],
        "## Export your invoices\n\nOpen **Billing → Invoices**, choose a period and click **Export**.\n\n"
        "- *PDF* gives one file per invoice\n- *CSV* gives one row per invoice line\n",
    ),
    (
        "Resetting your password",
        "Account",
        ["password", "login"],
        "## Forgot your password?\n\nOn the sign-in page click **Forgot password** and follow the email.\n\n"
        "The link is valid for one hour.",
    ),
    (
        "Adding users to your organization",
        "Account",
        ["users", "seats"],
        "Admins add users under **Settings → Users**. Each user needs a seat on your plan.",
    ),
    (
        "Why was I charged twice?",
        "Billing",
        ["billing", "refund", "charge"],
        "A second charge is usually a pending authorisation that disappears within 3 business days. "
        "If it stays, reply to your ticket and we will refund it.",
    ),
    (
        "Fixing sync errors",
        "Technical",
        ["sync", "errors", "integration"],
        "## Sync stopped?\n\n1. Check the integration's token under **Settings → Integrations**.\n"
        "2. Reconnect it.\n3. Run **Sync now**.\n\nStill failing? Send us the time it stopped.",
    ),
    (
        "Two-factor authentication: lost device",
        "Account",
        ["2fa", "security", "login"],
        "Use one of your recovery codes to sign in, then set up a new device under **Profile → Security**.",
    ),
    (
        "Browser support and the date picker",
        "Technical",
        ["browser", "bug", "date"],
        "We support the last two versions of Chrome, Firefox, Safari and Edge. Clear the cache if dates look off.",
    ),
    (
        "Draft: upcoming API changes",
        "Technical",
        ["api"],
        "Notes for the next API version (not published yet).",
    ),
]
EXTRA_AGENTS = {
    "acme": [
        ("Nina", "Schulz", Department.BILLING, "Billing specialist"),
        ("Omar", "Farouk", Department.TECHNICAL, "Support engineer"),
    ],
    "globex": [("Ines", "Moreau", Department.TECHNICAL, "Technical support")],
}


def seed_agents(*, organization, password: str) -> int:
    """A couple more agents with departments, so routing has choices to make."""
    from crm import services

    made = 0
    for first, last, department, title in EXTRA_AGENTS.get(organization.slug, ()):
        email = f"{first.lower()}.{last.lower()}@{organization.slug}.example"
        if User.objects.filter(email=email).exists():
            continue
        services.user_create(
            organization=organization,
            actor=None,
            email=email,
            role=Role.SUPPORT_AGENT,
            first_name=first,
            last_name=last,
            department=department,
            job_title=title,
            password=password,
        )
        made += 1
    return made


def _spread(ticket: Ticket, start: datetime.datetime, rng: random.Random, now: datetime.datetime) -> None:
    """Move the ticket's history to start at `start`, each later step some minutes to hours after the last
    (never past `now`), then recompute the SLA from the moved events."""
    steps = sorted(
        [("event", e.pk, e.at) for e in TicketEvent.objects.filter(ticket=ticket)]
        + [("message", m.pk, m.created_at) for m in TicketMessage.objects.filter(ticket=ticket)],
        key=lambda step: step[2],
    )
    at = start
    moved: dict[tuple[str, object], datetime.datetime] = {}
    previous_real = None
    for kind, pk, real in steps:
        if previous_real is not None and (real - previous_real).total_seconds() > 0.05:
            at = min(
                at + datetime.timedelta(minutes=rng.randint(15, 600)), now - datetime.timedelta(minutes=5)
            )
        moved[(kind, pk)] = at
        previous_real = real
    with connection.cursor() as cursor:
        for (kind, pk), when in moved.items():
            table, column = ("ticket_events", "at") if kind == "event" else ("ticket_messages", "created_at")
            cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [when, pk])
    events = {e.kind: e.at for e in TicketEvent.objects.filter(ticket=ticket).order_by("at")}
    resolved = (
        TicketEvent.objects.filter(
            ticket=ticket, kind=TicketEvent.Kind.STATUS, new_value__in=["resolved", "closed"]
        )
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    assigned = events.get(TicketEvent.Kind.ASSIGNED)
    Ticket.objects.filter(pk=ticket.pk).update(
        created_at=start,
        assigned_at=assigned if ticket.assigned_to_id else None,
        first_response_at=events.get(TicketEvent.Kind.FIRST_RESPONSE),
        resolved_at=resolved if ticket.status in (Status.RESOLVED, Status.CLOSED) else None,
        closed_at=resolved if ticket.status == Status.CLOSED else None,
    )
    ticket.refresh_from_db()
    sla.ticket_apply_sla(ticket=ticket, now=now)


def seed_tickets(*, organization, count: int = 45) -> int:
    if Ticket.objects.filter(organization=organization).exists():
        return 0
    rng = random.Random(f"demo-support:{organization.slug}")  # noqa: S311  (reproducible demo data)
    sla.ensure_default_policies(organization)
    customers = list(Customer.objects.filter(organization=organization).order_by("number")[:150])
    agents = list(
        User.objects.filter(organization=organization, role__in=[Role.SUPPORT_AGENT, Role.SUPPORT_MANAGER])
    )
    if not customers or not agents:
        return 0
    now = timezone.now()
    # Most tickets are done; the rest are spread over the working statuses, a few left to breach.
    plan = (
        [Status.CLOSED] * 14
        + [Status.RESOLVED] * 10
        + [Status.OPEN] * 6
        + [Status.IN_PROGRESS] * 5
        + [Status.PENDING] * 4
        + [Status.ON_HOLD] * 2
        + [Status.NEW] * 4
    )
    made = 0
    for n in range(count):
        final = plan[n % len(plan)]
        kind = rng.choice(list(SUBJECTS))
        subject = rng.choice(SUBJECTS[kind])
        customer = rng.choice(customers)
        # Done tickets are older; open ones recent (some old enough to have breached their SLA).
        days_ago = rng.uniform(3, 40) if final in (Status.CLOSED, Status.RESOLVED) else rng.uniform(0.05, 6)
        start = now - datetime.timedelta(days=days_ago)
        ticket = ticket_create(
            organization=organization,
            actor=None,
            customer=customer,
            subject=subject,
            description=rng.choice(CUSTOMER_LINES).format(subject_lower=subject[0].lower() + subject[1:]),
            channel=rng.choice([Channel.EMAIL, Channel.EMAIL, Channel.WEB, Channel.PHONE, Channel.CHAT]),
            type=kind,
            category=CATEGORY_OF[kind],
            requested_priority=rng.choice(
                [Priority.NORMAL, Priority.NORMAL, Priority.HIGH, Priority.LOW, Priority.URGENT]
            ),
        )
        agent = ticket.assigned_to or rng.choice(agents)
        if final != Status.NEW:
            ticket_reply(ticket=ticket, actor=agent, body=rng.choice(AGENT_LINES))
            if rng.random() < 0.4:
                ticket_note(ticket=ticket, actor=agent, body=rng.choice(NOTES))
            if rng.random() < 0.6:
                ticket_reply(
                    ticket=ticket,
                    actor=None,
                    from_customer=True,
                    body="Thanks — here are the details you asked for.",
                )
            if final != Status.OPEN:
                ticket_set_status(ticket=ticket, actor=agent, status=final)
        ticket.refresh_from_db()
        _spread(ticket, start, rng, now)
        made += 1
    seed_surveys(organization=organization, rng=rng, now=now)
    escalation_sweep(organization_id=organization.pk, now=now)
    return made


def seed_surveys(*, organization, rng: random.Random, now: datetime.datetime) -> int:
    """CSAT answers on most resolved tickets, and a round of NPS answers."""
    surveys = []
    for ticket in Ticket.objects.filter(
        organization=organization, status__in=[Status.RESOLVED, Status.CLOSED]
    ):
        existing = Survey.objects.filter(ticket=ticket, kind=Survey.Kind.CSAT).first()
        sent = (ticket.resolved_at or now) + datetime.timedelta(minutes=5)
        if rng.random() < 0.75:
            score = rng.choice([5, 5, 5, 4, 4, 4, 3, 2, 1])
            answer = {
                "responded_at": min(sent + datetime.timedelta(hours=rng.randint(1, 30)), now),
                "score": score,
                "comment": rng.choice(COMMENTS[score]) if rng.random() < 0.7 else "",
            }
        else:
            answer = {}
        if existing is not None:
            Survey.objects.filter(pk=existing.pk).update(sent_at=sent, **answer)
        else:
            surveys.append(
                Survey(
                    organization=organization,
                    kind=Survey.Kind.CSAT,
                    customer_id=ticket.customer_id,
                    ticket=ticket,
                    agent_id=ticket.assigned_to_id,
                    category=ticket.category,
                    sent_at=sent,
                    expires_at=sent + datetime.timedelta(days=14),
                    **answer,
                )
            )
        if answer:
            Ticket.objects.filter(pk=ticket.pk).update(satisfaction_rating=answer["score"])
    for customer in Customer.objects.filter(organization=organization, email_opt_in=True).order_by("number")[
        :40
    ]:
        sent = now - datetime.timedelta(days=rng.uniform(1, 60))
        answered = rng.random() < 0.6
        surveys.append(
            Survey(
                organization=organization,
                kind=Survey.Kind.NPS,
                customer=customer,
                sent_at=sent,
                expires_at=sent + datetime.timedelta(days=14),
                responded_at=sent + datetime.timedelta(hours=rng.randint(1, 48)) if answered else None,
                score=rng.choice([10, 10, 9, 9, 9, 8, 8, 7, 6, 5, 3]) if answered else None,
            )
        )
    Survey.objects.bulk_create(surveys)
    return len(surveys)


def seed_knowledge_base(*, organization) -> int:
    if Article.objects.filter(organization=organization).exists():
        return 0
    author = User.objects.filter(organization=organization, role=Role.SUPPORT_MANAGER).first()
    for title, category, tags, body in ARTICLES:
        article_create(
            organization=organization,
            actor=None,
            title=title,
            body=body,
            category=category,
            tags=tags,
            status=Article.Status.DRAFT if title.startswith("Draft") else Article.Status.PUBLISHED,
        )
    Article.objects.filter(organization=organization, author__isnull=True).update(author=author)
    return len(ARTICLES)


def seed_canned_responses(*, organization) -> int:
    if CannedResponse.objects.filter(organization=organization).exists():
        return 0
    responses = [
        (
            "Greeting",
            "Hi {{customer.first_name}},\n\nThanks for contacting us about ticket {{ticket.number}}.",
        ),
        ("Need more details", "Could you tell us when this happened and which browser you use?"),
        ("Closing", "Glad we could help! I'll close this ticket now.\n\n{{agent.first_name}}"),
    ]
    CannedResponse.objects.bulk_create(
        CannedResponse(organization=organization, title=title, body=body) for title, body in responses
    )
    return len(responses)
