"""Demo customers for `seed_demo`: ~200 realistic customers per organization with a year of interactions.

Deterministic (seeded by the organization's slug), so two runs describe the same people; idempotent (an
organization that already has demo customers is left alone).
"""

from __future__ import annotations

import datetime
import random
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from customers.models import (
    Channel,
    Customer,
    CustomerType,
    EducationLevel,
    Interaction,
    InteractionType,
    LifecycleStage,
    Sentiment,
)
from customers.services.customers import customer_create

FIRST = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Elijah",
    "Sophia",
    "Mateo",
    "Isabella",
    "Lucas",
    "Mia",
    "Levi",
    "Amelia",
    "Ethan",
    "Harper",
    "James",
    "Evelyn",
    "Aiden",
    "Luna",
    "Leo",
    "Chloe",
    "Kai",
    "Nora",
    "Ravi",
    "Yuki",
    "Fatima",
    "Diego",
    "Ingrid",
    "Kwame",
    "Mei",
    "Anya",
    "Tomás",
    "Zara",
    "Omar",
    "Freya",
    "Hugo",
]
LAST = [
    "Johnson",
    "Garcia",
    "Müller",
    "Nguyen",
    "Smith",
    "Rossi",
    "Kowalski",
    "Haddad",
    "Okafor",
    "Tanaka",
    "Silva",
    "Dubois",
    "Andersson",
    "Patel",
    "Kim",
    "O'Brien",
    "Novak",
    "Jensen",
    "Costa",
    "Ibrahim",
    "Schmidt",
    "Lopez",
    "Wright",
    "Chen",
    "Moreau",
    "Yilmaz",
    "Larsen",
    "Fischer",
]
COMPANIES = [
    "Northwind Traders",
    "Contoso",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Foods",
    "Hooli",
    "Vandelay Imports",
    "Soylent Labs",
    "Cyberdyne Systems",
    "Globo Gym",
    "Pied Piper",
    "Tyrell Analytics",
    "Wonka Confections",
    "Aperture Science",
    "Massive Dynamic",
    "Oscorp",
    "Gringotts Finance",
    "Prestige Worldwide",
    "Dunder Mifflin",
    "Sterling Cooper",
    "Monarch Solutions",
]
TITLES = [
    "CEO",
    "VP of Sales",
    "Director of Marketing",
    "Head of Operations",
    "Procurement Manager",
    "IT Director",
    "Office Manager",
    "Engineer",
    "Founder",
    "CFO",
    "Analyst",
    "Consultant",
    "VP Engineering",
    "Purchasing Lead",
    "Student",
    "",
]
CITIES = [
    ("New York", "NY", "US"),
    ("San Francisco", "CA", "US"),
    ("Los Angeles", "CA", "US"),
    ("Austin", "TX", "US"),
    ("Chicago", "IL", "US"),
    ("Berlin", "", "DE"),
    ("Munich", "", "DE"),
    ("London", "", "GB"),
    ("Paris", "", "FR"),
    ("Toronto", "ON", "CA"),
    ("Madrid", "", "ES"),
    ("Stockholm", "", "SE"),
    ("Sydney", "NSW", "AU"),
]
SOURCES = ["website", "referral", "trade show", "webinar", "linkedin", "cold outreach", "partner"]
TAGS = [
    "newsletter",
    "enterprise",
    "smb",
    "trial",
    "partner",
    "renewal-q1",
    "event-2026",
    "high-touch",
    "apac",
]
STAGE_WEIGHTS = [
    (LifecycleStage.SUBSCRIBER, 12),
    (LifecycleStage.LEAD, 30),
    (LifecycleStage.MARKETING_QUALIFIED, 15),
    (LifecycleStage.SALES_QUALIFIED, 10),
    (LifecycleStage.OPPORTUNITY, 8),
    (LifecycleStage.CUSTOMER, 15),
    (LifecycleStage.CHAMPION, 5),
    (LifecycleStage.CHURNED, 5),
]
TYPE_WEIGHTS = [
    (InteractionType.EMAIL_SENT, 20),
    (InteractionType.EMAIL_OPENED, 18),
    (InteractionType.EMAIL_CLICKED, 7),
    (InteractionType.WEBSITE_VISIT, 18),
    (InteractionType.FORM_SUBMISSION, 4),
    (InteractionType.CALL, 10),
    (InteractionType.MEETING, 5),
    (InteractionType.NOTE, 8),
    (InteractionType.CHAT, 4),
    (InteractionType.SOCIAL, 3),
    (InteractionType.PURCHASE, 3),
]
CHANNEL_OF = {
    "email_sent": Channel.EMAIL,
    "email_opened": Channel.EMAIL,
    "email_clicked": Channel.EMAIL,
    "website_visit": Channel.WEB,
    "form_submission": Channel.WEB,
    "call": Channel.PHONE,
    "meeting": Channel.IN_PERSON,
    "note": "",
    "chat": Channel.CHAT,
    "social": Channel.SOCIAL,
    "purchase": Channel.WEB,
}
OUTCOMES = {
    "call": [
        "Left voicemail",
        "Discussed pricing",
        "Booked a demo",
        "Not interested right now",
        "Asked for a proposal",
    ],
    "meeting": ["Demo went well", "Met the buying committee", "Contract review", "Quarterly review"],
    "purchase": ["Annual plan", "Add-on seats", "Upgrade"],
}


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


def seed_customers(*, organization, users, count: int = 200) -> int:
    """Create the demo customers and their interactions; returns how many customers were created."""
    if Customer.objects.filter(organization_id=organization.pk).exists():
        return 0
    rng = random.Random(f"demo:{organization.slug}")  # noqa: S311  (reproducible demo data, not security)
    now = timezone.now()
    owners = [u for u in users if u.role in ("sales_rep", "sales_manager", "admin")] or list(users)
    created = []
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        business = rng.random() < 0.7
        company = rng.choice(COMPANIES) if business else ""
        city, state, country = rng.choice(CITIES)
        domain = (company or "mail").lower().replace(" ", "").replace("'", "") + ".example"
        fields = {
            "first_name": first,
            "last_name": last,
            "company_name": company,
            "email": f"{first}.{last}.{n}@{domain}".lower()
            .replace("'", "")
            .replace("ü", "u")
            .replace("á", "a"),
            "phone": f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
            "job_title": rng.choice(TITLES)
            if business
            else rng.choice(["", "Student", "Teacher", "Designer"]),
            "customer_type": CustomerType.BUSINESS if business else CustomerType.INDIVIDUAL,
            "lifecycle_stage": _weighted(rng, STAGE_WEIGHTS),
            "education_level": rng.choice([c for c, _ in EducationLevel.choices] + ["", ""]),
            "date_of_birth": (datetime.date(1960, 1, 1) + datetime.timedelta(days=rng.randint(0, 15000)))
            if rng.random() < 0.6
            else None,
            "annual_revenue": Decimal(rng.choice([50_000, 250_000, 2_000_000, 15_000_000, 800_000]))
            if business
            else None,
            "assigned_to": rng.choice(owners) if rng.random() < 0.85 else None,
            "tags": rng.sample(TAGS, k=rng.randint(0, 3)),
            "vip_status": rng.random() < 0.08,
            "city": city,
            "state": state,
            "country": country,
            "source": rng.choice(SOURCES),
            "email_opt_in": rng.random() < 0.7,
            "do_not_call": rng.random() < 0.05,
        }
        created.append(customer_create(organization=organization, actor=None, reason="Demo data", **fields))

    interactions = []
    for customer in created:
        engaged = rng.random()
        for _ in range(int(engaged * 30)):
            kind = _weighted(rng, TYPE_WEIGHTS)
            # Engaged customers were in touch recently; the rest drifted off during the year.
            days_ago = rng.expovariate(1 / (20 if engaged > 0.6 else 120))
            when = now - datetime.timedelta(days=min(days_ago, 360), minutes=rng.randint(0, 1440))
            interactions.append(
                Interaction(
                    organization_id=organization.pk,
                    customer=customer,
                    interaction_type=kind,
                    channel=CHANNEL_OF.get(kind, ""),
                    interaction_date=when,
                    outcome=rng.choice(OUTCOMES.get(kind, [""])),
                    sentiment=rng.choice(
                        [Sentiment.POSITIVE, Sentiment.POSITIVE, Sentiment.NEUTRAL, Sentiment.NEGATIVE]
                    )
                    if kind in ("call", "meeting", "chat")
                    else "",
                    logged_by=customer.assigned_to if kind in ("call", "meeting", "note") else None,
                    notes="Follow up next week." if kind == "note" else "",
                )
            )
    Interaction.objects.bulk_create(interactions, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers c SET last_contact_date = l.last FROM ("
            " SELECT customer_id, max(interaction_date) AS last FROM interaction_logs WHERE organization_id = %s"
            " GROUP BY customer_id) l WHERE c.organization_id = %s AND c.id = l.customer_id",
            [organization.pk, organization.pk],
        )
    return len(created)


DEMO_SEGMENTS = [
    (
        "Hot leads",
        "Scored 60 or more: ready for a sales conversation.",
        {
            "match": "all",
            "rules": [
                {"field": "lead_score", "op": "gte", "value": 60},
                {"field": "lifecycle_stage", "op": "not_in", "value": ["customer", "champion", "churned"]},
            ],
        },
    ),
    (
        "Engaged this month",
        "Three or more touchpoints in the last 30 days.",
        {
            "match": "all",
            "rules": [{"field": "interactions", "type": "any", "op": "gte", "count": 3, "days": 30}],
        },
    ),
    (
        "Enterprise accounts",
        "Tagged enterprise, or over $10M in annual revenue.",
        {
            "match": "any",
            "rules": [
                {"field": "tags", "op": "has", "value": "enterprise"},
                {"field": "annual_revenue", "op": "gt", "value": 10_000_000},
            ],
        },
    ),
    (
        "Newsletter, opted in",
        "Email opt-in and the newsletter tag.",
        {
            "match": "all",
            "rules": [
                {"field": "email_opt_in", "op": "is", "value": True},
                {"field": "tags", "op": "has", "value": "newsletter"},
            ],
        },
    ),
]


def seed_segments(*, organization) -> int:
    """Build a few segments (dynamic ones filled from their rules, a static one hand-picked), unless the
    organization has segments already; returns the number created."""
    from customers.models import Segment
    from customers.services.segments import segment_add_members, segment_create

    if Segment.objects.filter(organization_id=organization.pk).exists():
        return 0
    for name, description, criteria in DEMO_SEGMENTS:
        segment_create(
            organization=organization, actor=None, name=name, description=description, criteria=criteria
        )
    vips = segment_create(
        organization=organization,
        actor=None,
        name="Conference VIPs",
        kind=Segment.Kind.STATIC,
        description="Met at the spring conference.",
    )
    picked = Customer.objects.filter(organization_id=organization.pk, vip_status=True).values_list(
        "pk", flat=True
    )
    segment_add_members(segment=vips, customer_ids=list(picked), actor=None)
    return len(DEMO_SEGMENTS) + 1
