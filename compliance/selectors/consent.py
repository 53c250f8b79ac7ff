"""Who may be processed for a purpose: THE consent rule, as a queryset filter and as SQL.

A customer may be processed for a purpose when their processing is not restricted (GDPR art. 18), they were
neither erased nor anonymized, and their current consent for the purpose (mirrored on the customer row by
`compliance.services.consent.consent_record`) is on. Marketing's audience, sequences, segment refresh,
scoring and NPS surveys all ask this module, in the ORM (`consenting`, `consent_q`) or in raw SQL
(`consent_sql`, `eligible_sql`): both forms live here so they cannot drift apart.

Also the reads of the customer 360 "Consent and privacy" panel.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from compliance.models import ConsentPurpose, ConsentRecord, ConsentSource
from crm.models import User
from crm.permissions import Capability, has_capability
from customers.models import Customer

# The customer column that mirrors the current consent of each purpose.
PURPOSE_COLUMNS: dict[str, str] = {
    ConsentPurpose.EMAIL_MARKETING: "email_opt_in",
    ConsentPurpose.PROFILING: "profiling_allowed",
    ConsentPurpose.SALE: "sale_allowed",
    ConsentPurpose.SHARING: "sharing_allowed",
}

# Not restricted, not erased, not anonymized: no purpose may process a customer outside this wall.
ELIGIBLE = Q(processing_restricted=False, erased_at__isnull=True, anonymized_at__isnull=True)

PANEL_HISTORY = 50

# The sources staff may pick when recording a statement by hand (unsubscribes and privacy requests record
# themselves).
STAFF_SOURCES = [
    (value, label)
    for value, label in ConsentSource.choices
    if value in {ConsentSource.STAFF, ConsentSource.FORM, ConsentSource.IMPORT}
]


def purpose_column(purpose: str) -> str:
    """The customer column mirroring `purpose` (KeyError for an unknown purpose: never a silent pass)."""
    return PURPOSE_COLUMNS[ConsentPurpose(purpose)]


def consent_q(purpose: str) -> Q:
    """The rule as a Q over Customer."""
    return ELIGIBLE & Q(**{purpose_column(purpose): True})


def consenting(queryset: QuerySet[Customer], purpose: str) -> QuerySet[Customer]:
    """The customers of `queryset` that may be processed for `purpose` (see the module docstring)."""
    return queryset.filter(consent_q(purpose))


def may_process(customer: Customer, purpose: str | None = None) -> bool:
    """The rule for one loaded customer, in Python (no query): the wall, and `purpose`'s consent if given."""
    if customer.processing_restricted or customer.erased_at or customer.anonymized_at:
        return False
    return purpose is None or bool(getattr(customer, purpose_column(purpose)))


def eligible_sql(alias: str = "c") -> str:
    """The wall alone as SQL over the `customers` row `alias`: not restricted, erased or anonymized."""
    return (
        f"(NOT {alias}.processing_restricted AND {alias}.erased_at IS NULL AND {alias}.anonymized_at IS NULL)"
    )


def consent_sql(purpose: str, alias: str = "c") -> str:
    """The rule as a SQL predicate over the `customers` row `alias` (no parameters: safe to format in)."""
    if not alias.isidentifier():
        raise ValueError(f"not an SQL alias: {alias!r}")
    return f"({eligible_sql(alias)} AND {alias}.{purpose_column(purpose)})"


def consent_history(*, customer: Customer, limit: int = PANEL_HISTORY) -> QuerySet[ConsentRecord]:
    """The customer's consent statements, latest first (one query)."""
    return (
        ConsentRecord.objects.filter(organization_id=customer.organization_id, customer_id=customer.pk)
        .select_related("recorded_by")
        .order_by("-recorded_at", "-id")[:limit]
    )


def consent_panel_for_customer(*, customer: Customer, actor: User) -> dict:
    """The customer 360 "Consent and privacy" panel: the current state per purpose (with the statement that
    set it), the restriction and objection banners, and the history, latest first. One query whatever the
    history: the latest PANEL_HISTORY statements; the current state of a purpose whose last statement is
    older than those is the mirrored column without its "since"."""
    history = list(consent_history(customer=customer))
    latest: dict[str, ConsentRecord] = {}
    for record in history:
        latest.setdefault(record.purpose, record)
    purposes = []
    for purpose in ConsentPurpose:
        record = latest.get(purpose.value)
        purposes.append(
            {
                "purpose": purpose.value,
                "label": str(purpose.label),
                "granted": bool(getattr(customer, PURPOSE_COLUMNS[purpose])),
                "since": record.recorded_at.isoformat() if record else "",
                "source": str(record.get_source_display()) if record else "",
                "default": record is None,
            }
        )
    objecting = [
        p["label"] for p in purposes if p["purpose"] in _OBJECTION and not p["granted"] and not p["default"]
    ]
    return {
        "purposes": purposes,
        "restricted": customer.processing_restricted,
        "restriction_reason": customer.restriction_reason,
        "restricted_at": customer.restricted_at.isoformat() if customer.restricted_at else "",
        "erased": bool(customer.erased_at or customer.anonymized_at),
        "objecting": objecting,
        "history": [
            {
                "id": str(record.pk),
                "purpose": record.purpose,
                "purpose_label": str(record.get_purpose_display()),
                "granted": record.granted,
                "source": record.source,
                "source_label": str(record.get_source_display()),
                "proof": record.proof,
                "ip_address": record.ip_address or "",
                "recorded_at": record.recorded_at.isoformat(),
                "recorded_by": str(record.recorded_by) if record.recorded_by else "",
            }
            for record in history
        ],
        "history_truncated": len(history) >= PANEL_HISTORY,
        "sources": [[value, str(label)] for value, label in STAFF_SOURCES],
        "can_record": has_capability(actor, Capability.EDIT_CUSTOMERS)
        and not (customer.erased_at or customer.anonymized_at),
    }


# Purposes whose withdrawal is an objection (GDPR art. 21: direct marketing and the profiling behind it).
_OBJECTION = {ConsentPurpose.EMAIL_MARKETING.value, ConsentPurpose.PROFILING.value}
