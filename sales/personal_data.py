"""What personal data the sales app holds (compliance/registry.py): the subject's deals, their activities,
quotes with their lines and events, and orders.

Amounts, dates and statuses are kept (exported, not erased): they are the subject's purchase history, but on
rows whose customer is erased they identify no one, and forecasts, win rates and revenue must keep adding
up. Every free text is redacted, line descriptions too (staff may type anything there; the product link and
the amounts stay).
"""

from django.db.models import Q

from compliance.registry import (
    Category,
    Erase,
    NotPersonal,
    PersonalData,
    PersonalField,
    SubjectIdentity,
    register,
)
from sales import models

C = Category
KEEP = Erase.KEEP
CONFIG = "the organization's sales configuration, no one's personal data"


def activities_of(identity: SubjectIdentity) -> Q:
    """An activity belongs to the subject through its customer or through its deal's customer."""
    return activities_of_many([identity])


def activities_of_many(identities: list[SubjectIdentity]) -> Q:
    ids = [identity.customer_id for identity in identities]
    return Q(customer_id__in=ids) | Q(opportunity__customer_id__in=ids)


register(
    PersonalData(
        model=models.Opportunity,
        subject="customer",
        label="opportunities",
        fields=(
            PersonalField("name", Erase.REDACT, C.COMMERCIAL),
            PersonalField("amount", KEEP, C.COMMERCIAL),
            PersonalField("currency", KEEP, C.COMMERCIAL),
            PersonalField("status", KEEP, C.COMMERCIAL),
            PersonalField("expected_close_date", KEEP, C.COMMERCIAL),
            PersonalField("actual_close_date", KEEP, C.COMMERCIAL),
            PersonalField("lost_reason", Erase.REDACT, C.COMMERCIAL),
            PersonalField("next_step", Erase.REDACT, C.COMMERCIAL),
            PersonalField("notes", Erase.REDACT, C.COMMERCIAL),
            PersonalField("created_at", KEEP, C.COMMERCIAL),
        ),
    ),
    PersonalData(
        model=models.OpportunityChange,
        subject="opportunity__customer",
        label="opportunity_changes",
        fields=(
            PersonalField("field", KEEP, C.COMMERCIAL),
            PersonalField("changed_at", KEEP, C.COMMERCIAL),
            PersonalField("note", Erase.REDACT, C.COMMERCIAL),
        ),
        not_personal={
            "old_value": "a stage id, an amount, a date, a status or an owner id (see the model)",
            "new_value": "a stage id, an amount, a date, a status or an owner id (see the model)",
        },
    ),
    PersonalData(
        model=models.Activity,
        subject=activities_of,
        subject_many=activities_of_many,
        label="activities",
        fields=(
            PersonalField("kind", KEEP, C.COMMERCIAL),
            PersonalField("subject", Erase.REDACT, C.COMMERCIAL),
            PersonalField("description", Erase.REDACT, C.COMMERCIAL),
            PersonalField("outcome", Erase.REDACT, C.COMMERCIAL),
            PersonalField("due_at", KEEP, C.COMMERCIAL),
            PersonalField("completed_at", KEEP, C.COMMERCIAL),
        ),
        not_personal={"rule_key": "the rule that created the task and the deal's id (generated)"},
    ),
    PersonalData(
        model=models.Quote,
        subject="opportunity__customer",
        label="quotes",
        fields=(
            PersonalField("title", Erase.REDACT, C.COMMERCIAL),
            PersonalField("status", KEEP, C.COMMERCIAL),
            PersonalField("currency", KEEP, C.COMMERCIAL),
            PersonalField("valid_until", KEEP, C.COMMERCIAL),
            PersonalField("total", KEEP, C.COMMERCIAL),
            PersonalField("terms", Erase.REDACT, C.COMMERCIAL),
            PersonalField("decision_comment", Erase.REDACT, C.COMMERCIAL),
            PersonalField("created_at", KEEP, C.COMMERCIAL),
        ),
        not_personal={
            "approval_reasons": "the approval rules the quote tripped (generated: discount limits)"
        },
    ),
    PersonalData(
        model=models.QuoteItem,
        subject="quote__opportunity__customer",
        label="quote_items",
        fields=(
            PersonalField("product", KEEP, C.COMMERCIAL),
            PersonalField("description", Erase.REDACT, C.COMMERCIAL),
            PersonalField("quantity", KEEP, C.COMMERCIAL),
            PersonalField("unit_price", KEEP, C.COMMERCIAL),
            PersonalField("line_total", KEEP, C.COMMERCIAL),
        ),
    ),
    PersonalData(
        model=models.QuoteEvent,
        subject="quote__opportunity__customer",
        label="quote_events",
        fields=(
            PersonalField("at", KEEP, C.COMMERCIAL),
            PersonalField("comment", Erase.REDACT, C.COMMERCIAL),
        ),
        not_personal={
            "action": "a workflow step's code",
            "from_status": "a status code",
            "to_status": "a status code",
        },
    ),
    PersonalData(
        model=models.Order,
        subject="customer",
        label="orders",
        fields=(
            PersonalField("order_date", KEEP, C.COMMERCIAL),
            PersonalField("status", KEEP, C.COMMERCIAL),
            PersonalField("currency", KEEP, C.COMMERCIAL),
            PersonalField("total", KEEP, C.COMMERCIAL),
            # The order's id in the ERP: a key to the subject's record there.
            PersonalField("external_reference", Erase.BLANK, C.COMMERCIAL),
        ),
    ),
    PersonalData(
        model=models.OrderLine,
        subject="order__customer",
        label="order_lines",
        fields=(
            PersonalField("product", KEEP, C.COMMERCIAL),
            PersonalField("description", Erase.REDACT, C.COMMERCIAL),
            PersonalField("quantity", KEEP, C.COMMERCIAL),
            PersonalField("unit_price", KEEP, C.COMMERCIAL),
            PersonalField("line_total", KEEP, C.COMMERCIAL),
        ),
    ),
    NotPersonal(model=models.SalesSettings, fields={}),
    NotPersonal(model=models.Pipeline, fields={"name": CONFIG}),
    NotPersonal(model=models.Stage, fields={"name": CONFIG}),
    NotPersonal(
        model=models.Product,
        fields={"sku": "the catalogue", "name": "the catalogue", "description": "the catalogue"},
    ),
    NotPersonal(model=models.Quota, fields={}),
)
