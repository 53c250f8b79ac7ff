"""Factories for the platform models. Each creates its rows inside a system context (the way the
platform itself provisions tenants) and returns plain model instances."""

from __future__ import annotations

import itertools

from crm.models import Notification, Organization, User
from crm.permissions import Role
from crm.tenancy import system_context

PASSWORD = "correct-horse-battery-staple"
_sequence = itertools.count(1)


def organization(**fields) -> Organization:
    n = next(_sequence)
    defaults = {"name": f"Organization {n}", "slug": f"org-{n}", "seat_limit": 50, "time_zone": "UTC"}
    with system_context():
        return Organization.objects.create(**{**defaults, **fields})


def user(org: Organization, *, role: str = Role.SALES_REP, password: str = PASSWORD, **fields) -> User:
    n = next(_sequence)
    defaults = {
        "email": f"{role}-{n}@{org.slug}.test",
        "first_name": role.replace("_", " ").title().split()[0],
        "last_name": f"Number{n}",
    }
    with system_context():
        return User.objects.create_user(
            organization=org, role=role, password=password, **{**defaults, **fields}
        )


def superuser(**fields) -> User:
    n = next(_sequence)
    with system_context():
        return User.objects.create_superuser(
            fields.pop("email", f"root-{n}@platform.test"), PASSWORD, **fields
        )


def team(org: Organization) -> dict[str, User]:
    """One user per role."""
    return {role: user(org, role=role) for role in Role.values}


def notification(recipient: User, **fields) -> Notification:
    defaults = {"title": f"Notification {next(_sequence)}"}
    with system_context():
        return Notification.objects.create(
            organization_id=recipient.organization_id, recipient=recipient, **{**defaults, **fields}
        )


# --- customers ------------------------------------------------------------------------------------------


def customer(org: Organization, **fields):
    """A customer with the next customer number (through the service, as the app creates them)."""
    from customers.services.customers import customer_create

    n = next(_sequence)
    defaults = {"first_name": "Casey", "last_name": f"Customer{n}", "email": f"casey{n}@{org.slug}.example"}
    with system_context():
        return customer_create(organization=org, actor=None, **{**defaults, **fields})


def interaction(cust, **fields):
    """An interaction of `cust` (type `note` unless given), logged through the service."""
    from customers.services.customers import interaction_log

    fields.setdefault("interaction_type", "note")
    with system_context():
        return interaction_log(customer=cust, actor=None, **fields)


# --- sales ----------------------------------------------------------------------------------------------


def pipeline(org: Organization):
    """The organization's default pipeline with the standard stages (prospecting ... closed lost)."""
    from sales.services.pipelines import pipeline_ensure_default

    with system_context():
        return pipeline_ensure_default(organization=org)


def stage(org: Organization, name: str):
    """A stage of the default pipeline by name ("Proposal", "Closed won", ...)."""
    from sales.models import Stage

    default = pipeline(org)
    with system_context():
        return Stage.objects.get(pipeline=default, name=name)


def opportunity(org: Organization, **fields):
    """An open opportunity through the service (a new customer unless given; stage by object or name)."""
    import datetime
    from decimal import Decimal

    from sales.services.opportunities import opportunity_create

    n = next(_sequence)
    if isinstance(fields.get("stage"), str):
        fields["stage"] = stage(org, fields["stage"])
    if fields.get("customer") is None:
        fields["customer"] = customer(org)
    defaults = {
        "name": f"Deal {n}",
        "amount": Decimal("1000.00"),
        "expected_close_date": datetime.date.today() + datetime.timedelta(days=30),
    }
    with system_context():
        return opportunity_create(organization=org, actor=None, **{**defaults, **fields})


def product(org: Organization, **fields):
    from decimal import Decimal

    from sales.models import Product

    n = next(_sequence)
    defaults = {"sku": f"SKU-{n}", "name": f"Product {n}", "unit_price": Decimal("100.00"), "currency": "USD"}
    with system_context():
        return Product.objects.create(organization=org, **{**defaults, **fields})


def activity(org: Organization, **fields):
    """An activity straight into the table (no side effects: no touch, no interaction). A task on a new
    deal unless given; `opportunity` fills in its customer, as the service does."""
    from sales.models import Activity

    n = next(_sequence)
    if fields.get("opportunity") is None and fields.get("customer") is None:
        fields["opportunity"] = opportunity(org)
    if fields.get("opportunity") is not None and fields.get("customer") is None:
        fields["customer"] = fields["opportunity"].customer
    defaults = {"kind": "task", "subject": f"Activity {n}"}
    with system_context():
        return Activity.objects.create(organization=org, **{**defaults, **fields})


def quote(org: Organization, *, lines=(), status: str | None = None, **fields):
    """A draft quote through the services (on a new open deal unless `opportunity=` is given), with `lines`
    (dicts of quote_item_add's arguments). `status` then forces a status straight into the row (for tests
    of later steps; no events)."""
    from sales.models import Quote
    from sales.services.quotes import quote_create, quote_item_add

    if fields.get("opportunity") is None:
        fields["opportunity"] = opportunity(org)
    with system_context():
        made = quote_create(actor=None, **fields)
        for line in lines:
            quote_item_add(quote=made, actor=None, **line)
        if status is not None:
            Quote.objects.filter(pk=made.pk).update(status=status)
        return Quote.objects.get(pk=made.pk)


def order(org: Organization, *, customer=None, lines=(), **fields):
    """An order straight into the tables (number allocated; totals summed from `lines`, dicts of
    quantity / unit_price / discount_pct / tax_rate priced with sales.pricing)."""
    import datetime
    from decimal import Decimal

    from crm.db.numbering import allocate_numbers
    from sales import pricing
    from sales.models import Order, OrderLine
    from tests import factories  # `customer` is the argument here, not the factory

    customer = customer or factories.customer(org)
    with system_context():
        priced = [
            (
                line,
                pricing.line_amounts(**{k: Decimal(str(v)) for k, v in line.items() if k != "description"}),
            )
            for line in lines
        ]
        summary = pricing.totals(amounts for _line, amounts in priced)
        defaults = {
            "order_date": datetime.date.today(),
            "currency": "USD",
            "subtotal": summary.subtotal,
            "discount_total": summary.discount,
            "tax_total": summary.tax,
            "total": summary.total,
        }
        made = Order.objects.create(
            organization=org,
            customer=customer,
            number=allocate_numbers("orders", org.pk),
            **{**defaults, **fields},
        )
        OrderLine.objects.bulk_create(
            OrderLine(
                organization=org,
                order=made,
                position=position,
                description=line.get("description", f"Line {position + 1}"),
                quantity=Decimal(str(line["quantity"])),
                unit_price=Decimal(str(line["unit_price"])),
                discount_pct=Decimal(str(line.get("discount_pct", 0))),
                tax_rate=Decimal(str(line.get("tax_rate", 0))),
                line_total=amounts.total,
            )
            for position, (line, amounts) in enumerate(priced)
        )
        return made


# --- support --------------------------------------------------------------------------------------------


def ticket(org: Organization, *, route: bool = False, **fields):
    """A ticket through the service (a new customer unless given; not routed unless `route=True`)."""
    from support.services.tickets import ticket_create

    n = next(_sequence)
    if fields.get("customer") is None:
        fields["customer"] = customer(org)
    defaults = {"subject": f"Ticket {n}", "description": "Something is not working.", "channel": "email"}
    with system_context():
        return ticket_create(organization=org, actor=None, route=route, **{**defaults, **fields})


def article(org: Organization, **fields):
    """A knowledge-base article through the service (Markdown rendered and sanitized; published unless
    `status="draft"`)."""
    from support.services.articles import article_create

    n = next(_sequence)
    defaults = {"title": f"Article {n}", "body": f"Body of article {n}.", "status": "published"}
    with system_context():
        return article_create(organization=org, actor=None, **{**defaults, **fields})
