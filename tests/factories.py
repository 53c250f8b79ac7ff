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
