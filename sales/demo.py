"""Demo sales data for `seed_demo`: a pipeline, a year of opportunities with their stage history, quotas,
activities, a product catalogue, quotes in every status and orders, so every sales page shows real-looking
numbers.

Deterministic (seeded by the organization's slug) and idempotent (each part is skipped when the organization
already has rows of its kind). Opportunity history is written with past timestamps directly (the services
stamp "now"), following the same rules the services apply. Quotes go through the quote services (create,
lines, submit, approve by a manager who is not the creator, send, accept, decline, revise, expire) and their
steps are then moved into the past; ERP orders go through the orders CSV import.
"""

from __future__ import annotations

import datetime
import random
import zoneinfo
from decimal import Decimal

from django.utils import timezone

from crm.models import User
from crm.permissions import Role
from customers.models import Customer
from sales.models import (
    Activity,
    Opportunity,
    OpportunityChange,
    Order,
    Product,
    Quota,
    Quote,
    QuoteEvent,
    Stage,
)
from sales.services.opportunities import organization_today
from sales.services.pipelines import pipeline_ensure_default, sales_settings_for

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
        # Deals are lost at every stage, negotiation included (or no stage would show a realistic win rate).
        reached = rng.randint(1, len(open_stages))
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


# --- Products, quotes and orders ---------------------------------------------------------------------------

# sku, name, description, unit price, tax class, active
CATALOGUE = [
    ("LIC-PRO", "Professional licence", "Per user and year: pipelines, quotes, reports.", 480, "software", True),
    (
        "LIC-ENT",
        "Enterprise licence",
        "Per user and year: everything in Professional, plus SSO, audit trail and a sandbox.",
        900,
        "software",
        True,
    ),
    ("ADD-ANL", "Analytics add-on", "Per user and year: dashboards and forecasting.", 180, "software", True),
    ("SUP-PRM", "Premium support", "A year of 24/7 support with a named engineer.", 6000, "software", True),
    ("SVC-ONB", "Onboarding package", "Kick-off, configuration and two admin sessions.", 4500, "services", True),
    ("SVC-MIG", "Data migration (day)", "A consultant day: mapping, test loads, cut-over.", 1200, "services", True),
    ("SVC-INT", "Integration services (day)", "A consultant day on ERP and e-mail integration.", 1400, "services", True),
    ("TRN-WS", "Training workshop", "One day on site, up to 12 people.", 2500, "training", True),
    ("SVC-PLT", "Pilot project (8 weeks)", "A fixed-price pilot with one team.", 9500, "services", True),
    ("HW-GW", "Edge gateway appliance", "On-premise connector for offline sites.", 3200, "goods", True),
    ("LIC-STD", "Standard licence (retired)", "Replaced by the Professional licence.", 300, "software", False),
]  # fmt: skip
# Tax rate (%) per tax class: US sales tax on goods and software, services exempt; German VAT, reduced on
# training. Other currencies: no tax.
TAX_RATES = {
    "USD": {"software": "6.25", "services": "0", "training": "0", "goods": "8.25"},
    "EUR": {"software": "19", "services": "19", "training": "7", "goods": "19"},
}
TERMS = (
    "Payment within 30 days of invoice. Licences are billed annually in advance; services monthly as "
    "delivered. Prices exclude travel."
)
# The quotes every organization gets, one flow each: (final status, largest discount %, age in days).
# Discounts above the approval limit (15 % by default) go to a manager.
QUOTE_FLOWS = [
    ("draft", 0, 1),
    ("draft", 10, 2),
    ("pending_approval", 20, 3),
    ("pending_approval", 25, 2),
    ("rejected", 35, 6),
    ("approved", 5, 4),
    ("approved", 20, 5),
    ("sent", 0, 8),
    ("sent", 10, 12),
    ("accepted", 0, 18),
    ("accepted", 10, 14),
    ("accepted", 20, 9),
    ("accepted", 5, 4),
    ("declined", 10, 16),
    ("expired", 0, 55),
    ("revised", 10, 21),
]
COMMENTS = {
    "submit_discount": "The customer commits to two years: asking for a better first-year price.",
    "approve": "Fine for a two-year commitment.",
    "reject": "Too deep for a first year. Try 20 % with a two-year term.",
    "accept": "Signed order form received.",
    "decline": "They went with a competitor on price.",
    "revise": "Customer asked for more seats at a better price.",
}


def seed_products(*, organization) -> int:
    """A small software-and-services catalogue priced in the organization's currency, with tax rates."""
    from sales.services.products import product_create

    if Product.objects.filter(organization=organization).exists():
        return 0
    rates = TAX_RATES.get(organization.currency, {})
    for sku, name, description, price, tax_class, active in CATALOGUE:
        product_create(
            organization=organization,
            actor=None,
            sku=sku,
            name=name,
            description=description,
            unit_price=Decimal(price),
            currency=organization.currency,
            tax_rate=Decimal(rates.get(tax_class, "0")),
            active=active,
        )
    return len(CATALOGUE)


def _products(organization) -> dict[str, Product]:
    return {p.sku: p for p in Product.objects.filter(organization=organization)}


def _order_lines(rng: random.Random, products: dict[str, Product], amount: Decimal, discount: int) -> list:
    """Quote lines worth about `amount`: licences for a number of seats (at `discount` %) and two extras."""
    licence = products["LIC-ENT"] if amount >= 30000 else products["LIC-PRO"]
    seats = max(3, int(amount * Decimal("0.55") / licence.unit_price))
    lines = [{"product": licence, "quantity": Decimal(seats), "discount_pct": Decimal(discount)}]
    for sku in sorted(rng.sample(["SVC-ONB", "SUP-PRM", "ADD-ANL", "TRN-WS", "SVC-MIG", "SVC-INT"], k=2)):
        if sku == "ADD-ANL":
            quantity = seats
        elif sku in ("SVC-MIG", "SVC-INT"):
            quantity = rng.choice([3, 5, 8])  # consultant days
        else:
            quantity = 1
        lines.append(
            {
                "product": products[sku],
                "quantity": Decimal(quantity),
                "discount_pct": Decimal(min(discount, 10)),
            }
        )
    return lines


def _approver(organization, creator: User) -> User | None:
    """A sales manager (or else an admin) who is not the quote's creator: no one approves their own."""
    for role in (Role.SALES_MANAGER, Role.ADMIN):
        user = (
            User.objects.filter(organization=organization, role=role, is_active=True)
            .exclude(pk=creator.pk)
            .order_by("email")
            .first()
        )
        if user is not None:
            return user
    return None


def _run_quote_flow(deal: Opportunity, status: str, lines: list, approver: User) -> Quote:
    """Take a new quote on `deal` to `status` through the quote services, as its owner and `approver`
    would (an expired quote stops at sent: the expiry sweep runs once its dates are in the past)."""
    from sales.services import quotes as svc

    owner = deal.assigned_to
    quote = svc.quote_create(opportunity=deal, actor=owner, terms=TERMS)
    for line in lines:
        svc.quote_item_add(quote=quote, actor=owner, **line)
    if status == "draft":
        return quote
    needs_manager = max(line["discount_pct"] for line in lines) > 15
    comment = COMMENTS["submit_discount"] if needs_manager else ""
    quote = svc.quote_submit(quote=quote, actor=owner, comment=comment)
    if quote.status == Quote.Status.PENDING_APPROVAL:
        if status == "pending_approval":
            return quote
        if status == "rejected":
            return svc.quote_reject(quote=quote, actor=approver, comment=COMMENTS["reject"])
        quote = svc.quote_approve(quote=quote, actor=approver, comment=COMMENTS["approve"])
    if status == "approved":
        return quote
    quote = svc.quote_mark_sent(quote=quote, actor=owner)
    if status == "accepted":
        svc.quote_accept(quote=quote, actor=owner, comment=COMMENTS["accept"])
    elif status == "declined":
        svc.quote_decline(quote=quote, actor=owner, comment=COMMENTS["decline"])
    elif status == "revised":
        revision = svc.quote_revise(quote=quote, actor=owner, comment=COMMENTS["revise"])
        first = revision.items.order_by("position").first()
        svc.quote_item_update(
            item=first, actor=owner, quantity=first.quantity + 5, discount_pct=Decimal("18")
        )
        revision = svc.quote_submit(quote=revision, actor=owner, comment=COMMENTS["submit_discount"])
        svc.quote_approve(quote=revision, actor=approver, comment=COMMENTS["approve"])
    return Quote.objects.get(pk=quote.pk)


def _retime_quote(organization, quote: Quote, *, age_days: float, started, rng: random.Random) -> None:
    """Spread a quote's steps (all versions) over the `age_days` before today, as if the flow had taken
    that long: the services stamp "now". The order and the won deal it made move with its acceptance."""
    now = timezone.now()
    zone = zoneinfo.ZoneInfo(organization.time_zone or "UTC")
    valid_days = sales_settings_for(organization.pk).quote_valid_days
    events = list(
        QuoteEvent.objects.filter(organization=organization, quote__number=quote.number).order_by("at", "id")
    )
    start = now - datetime.timedelta(days=age_days)
    span = max(min(age_days * 0.8, 10), 0.05)  # the steps take at most ten days
    moments = sorted(start + datetime.timedelta(days=rng.uniform(0.05, span)) for _ in events[1:])
    times = [start, *moments]
    for n, event in enumerate(events):
        if n and event.action == "created" and events[n - 1].action == "revised":
            times[n] = times[n - 1]  # the revision is made in the same moment
        event.at = times[n]
    QuoteEvent.objects.bulk_update(events, ["at"])
    stamps = {
        "submitted": "submitted_at",
        "approved": "decided_at",
        "rejected": "decided_at",
        "sent": "sent_at",
        "accepted": "accepted_at",
        "declined": "declined_at",
    }
    for version in Quote.objects.filter(organization=organization, number=quote.number):
        mine = [e for e in events if e.quote_id == version.pk]
        created = mine[0].at
        fields = {"created_at": created, "updated_at": mine[-1].at}
        fields["valid_until"] = created.astimezone(zone).date() + datetime.timedelta(days=valid_days)
        for event in mine:
            if event.action in stamps:
                fields[stamps[event.action]] = event.at
        Quote.objects.filter(pk=version.pk).update(**fields)
        accepted = next((e.at for e in mine if e.action == "accepted"), None)
        if accepted is not None:
            day = accepted.astimezone(zone).date()
            Order.objects.filter(organization=organization, quote=version).update(
                order_date=day, created_at=accepted
            )
            Opportunity.objects.filter(pk=version.opportunity_id).update(
                actual_close_date=day, stage_changed_at=accepted
            )
            OpportunityChange.objects.filter(
                organization=organization, opportunity_id=version.opportunity_id, changed_at__gte=started
            ).update(changed_at=accepted)


def seed_quotes(*, organization) -> tuple[int, int]:
    """Quotes in every status on open deals (a revised one with two versions), made through the quote
    services by the deals' owners and approved by a manager; accepted ones win their deal and make an
    order. Returns (quote versions, orders) created."""
    from sales.services.quotes import quotes_expire_due

    if Quote.objects.filter(organization=organization).exists():
        return 0, 0
    products = _products(organization)
    if not all(sku in products for sku, *_rest in CATALOGUE):
        return 0, 0
    rng = random.Random(f"demo-quotes:{organization.slug}")  # noqa: S311
    open_deals = list(
        Opportunity.objects.filter(
            organization=organization, status=Opportunity.Status.OPEN, assigned_to__isnull=False
        )
        .select_related("stage", "assigned_to")
        .order_by("-stage__position", "created_at", "id")
    )
    if len(open_deals) < len(QUOTE_FLOWS):
        return 0, 0
    # Quotes go out on deals in the later stages first (proposal, negotiation), in a stable order.
    deals = open_deals[: len(QUOTE_FLOWS)]
    rng.shuffle(deals)
    orders_before = Order.objects.filter(organization=organization).count()
    for deal, (status, discount, age) in zip(deals, QUOTE_FLOWS, strict=True):
        approver = _approver(organization, deal.assigned_to)
        if approver is None:
            continue
        started = timezone.now()
        lines = _order_lines(rng, products, deal.amount, discount)
        quote = _run_quote_flow(deal, "sent" if status == "expired" else status, lines, approver)
        _retime_quote(organization, quote, age_days=age + rng.random(), started=started, rng=rng)
        if status == "expired":
            # Its valid-until date is in the past now: the daily sweep expires it (it ran the next night).
            quotes_expire_due(organization_id=organization.pk, quote_ids=[quote.pk])
            quote.refresh_from_db()
            swept = datetime.datetime.combine(
                quote.valid_until + datetime.timedelta(days=1),
                datetime.time(2, 0),
                tzinfo=zoneinfo.ZoneInfo(organization.time_zone or "UTC"),
            )
            QuoteEvent.objects.filter(quote=quote, action="expired").update(at=swept)
            Quote.objects.filter(pk=quote.pk).update(updated_at=swept)
    made = Quote.objects.filter(organization=organization).count()
    return made, Order.objects.filter(organization=organization).count() - orders_before


def seed_imported_orders(*, organization) -> int:
    """Orders from the ERP for deals won before the CRM had quotes (with their external references), some
    customers with a second, later order, through the orders CSV import."""
    import tempfile
    from pathlib import Path

    from django.db import transaction

    from sales.importing_orders import import_orders

    if Order.objects.filter(organization=organization).exclude(external_reference="").exists():
        return 0
    products = _products(organization)
    if not all(sku in products for sku, *_rest in CATALOGUE):
        return 0
    rng = random.Random(f"demo-orders:{organization.slug}")  # noqa: S311
    won = list(
        Opportunity.objects.filter(
            organization=organization, status=Opportunity.Status.WON, actual_close_date__isnull=False
        )
        .exclude(customer__email="")
        .select_related("customer")
        .order_by("actual_close_date", "id")[:14]
    )
    if not won:
        return 0
    today = organization_today(organization)
    rows = []
    for n, deal in enumerate(won):
        email, closed = deal.customer.email, deal.actual_close_date
        # Every fourth customer bought the old Standard licence a year or more before this deal.
        if n % 4 == 1:
            earlier = closed - datetime.timedelta(days=rng.randint(380, 600))
            line = {"product": products["LIC-STD"], "quantity": rng.choice([5, 8, 12, 20])}
            rows.append((f"ERP-{earlier:%Y}-{2100 + n * 11:05d}", email, earlier, line))
        reference = f"ERP-{closed:%Y}-{4100 + n * 7:05d}"
        for line in _order_lines(rng, products, deal.amount, rng.choice([0, 0, 5, 10])):
            rows.append((reference, email, closed, line))
        # Every third customer came back for more (more seats of analytics, a workshop or integration
        # days) a few weeks to months later.
        days_since = (today - closed).days
        if n % 3 == 0 and days_since > 21:
            later = closed + datetime.timedelta(days=rng.randint(14, min(days_since - 1, 150)))
            reference = f"ERP-{later:%Y}-{4100 + n * 7 + 3:05d}"
            extra = rng.choice(
                [
                    {"product": products["TRN-WS"], "quantity": rng.choice([1, 2])},
                    {"product": products["SVC-INT"], "quantity": rng.choice([2, 4, 6])},
                ]
            )
            analytics = {"product": products["ADD-ANL"], "quantity": rng.choice([5, 8, 12, 15, 25, 40])}
            rows += [(reference, email, later, analytics), (reference, email, later, extra)]
    rows.sort(key=lambda row: (row[2], row[0]))  # the ERP numbered its orders by date: so do we
    header = "external_reference,customer_email,order_date,currency,sku,quantity,unit_price,discount_pct,tax_rate\n"
    body = "".join(
        f"{ref},{email},{day.isoformat()},{organization.currency},{line['product'].sku},{line['quantity']},"
        f"{line['product'].unit_price},{line.get('discount_pct', 0)},{line['product'].tax_rate}\n"
        for ref, email, day, line in rows
    )
    admin = User.objects.filter(organization=organization, role=Role.ADMIN).order_by("email").first()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "erp-orders.csv"
        path.write_text(header + body, encoding="utf-8")
        with transaction.atomic():
            outcome = import_orders(
                path=path, organization=organization, actor_id=admin.pk if admin else None
            )
    if not outcome.ok:  # demo data that does not import is a bug in this module
        raise RuntimeError(f"Demo orders did not import: {outcome.errors[:3]}")
    # The ERP has delivered what was ordered more than a month ago (the import makes every order open).
    Order.objects.filter(
        organization=organization, order_date__lt=today - datetime.timedelta(days=30)
    ).exclude(external_reference="").update(status=Order.Status.FULFILLED)
    return outcome.orders_created
