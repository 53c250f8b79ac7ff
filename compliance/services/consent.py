"""Consent statements: the one writer of `consent_records` and of the consent columns mirrored on customers.

Every statement is recorded, even one that repeats the current state (the history is the proof of what the
customer said, when and through which channel); the mirrored column (`email_opt_in`, `profiling_allowed`,
`sale_allowed`, `sharing_allowed`) is rewritten only when the customer's latest statement changes it, so
the customers audit trigger logs real changes only. The column always follows the latest statement by
`recorded_at`, so a back-dated statement (an import of old paper forms) never overrides a newer one.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.models import ConsentPurpose, ConsentRecord, ConsentSource
from compliance.selectors.consent import purpose_column
from crm.models import User
from crm.permissions import Capability, require_capability
from customers.models import Customer

# Point the mirrored column of the given customers at their latest statement; only rows that differ change.
_MIRROR_SQL = """
UPDATE customers AS c SET {column} = l.granted, updated_at = now()
FROM (
    SELECT DISTINCT ON (r.customer_id) r.customer_id, r.granted
    FROM consent_records r
    WHERE r.organization_id = %(org)s AND r.purpose = %(purpose)s AND r.customer_id = ANY(%(ids)s::uuid[])
    ORDER BY r.customer_id, r.recorded_at DESC, r.id DESC
) AS l
WHERE c.organization_id = %(org)s AND c.id = l.customer_id AND c.{column} IS DISTINCT FROM l.granted
"""

_BULK_INSERT_SQL = """
INSERT INTO consent_records
    (id, organization_id, customer_id, purpose, granted, source, proof, ip_address, recorded_at,
     recorded_by_id)
SELECT gen_random_uuid(), c.organization_id, c.id, %(purpose)s, %(granted)s, %(source)s, %(proof)s, NULL,
       %(at)s, %(actor)s
FROM customers AS c
WHERE c.organization_id = %(org)s AND c.id = ANY(%(ids)s::uuid[])
  AND c.erased_at IS NULL AND c.anonymized_at IS NULL
"""


def _check(purpose: str, source: str, proof: str) -> None:
    if purpose not in ConsentPurpose.values:
        raise ValidationError({"purpose": _("Choose a purpose.")})
    if source not in ConsentSource.values:
        raise ValidationError({"source": _("Choose a source.")})
    if len(proof) > ConsentRecord._meta.get_field("proof").max_length:
        raise ValidationError({"proof": _("The proof is too long (500 characters at most).")})


def mirror_consent(*, organization_id, purpose: str, customer_ids: list) -> int:
    """Set the purpose's column of `customer_ids` from their latest statements; returns the rows changed."""
    column = purpose_column(purpose)
    with connection.cursor() as cursor:
        cursor.execute(
            _MIRROR_SQL.format(column=column),
            {"org": organization_id, "purpose": purpose, "ids": [uuid.UUID(str(pk)) for pk in customer_ids]},
        )
        return cursor.rowcount


@transaction.atomic
def consent_record(
    *,
    customer: Customer,
    purpose: str,
    granted: bool,
    source: str,
    proof: str = "",
    actor: User | None = None,
    ip_address: str | None = None,
    recorded_at: datetime.datetime | None = None,
) -> ConsentRecord:
    """Record that `customer` granted or withdrew consent for `purpose`, and mirror their current state on
    the customer row. An erased or anonymized customer has nobody left to consent: refused."""
    require_capability(actor, Capability.EDIT_CUSTOMERS)
    proof = (proof or "").strip()
    _check(purpose, source, proof)
    # The row lock serializes two statements about one customer, so the mirror follows the later one.
    stored = (
        Customer.objects.select_for_update()
        .filter(organization_id=customer.organization_id, pk=customer.pk)
        .values("erased_at", "anonymized_at")
        .get()
    )
    if stored["erased_at"] or stored["anonymized_at"]:
        raise ValidationError(_("This customer's personal data was erased; no consent can be recorded."))
    record = ConsentRecord.objects.create(
        organization_id=customer.organization_id,
        customer=customer,
        purpose=purpose,
        granted=bool(granted),
        source=source,
        proof=proof,
        ip_address=ip_address or None,
        recorded_at=recorded_at or timezone.now(),
        recorded_by=actor,
    )
    mirror_consent(organization_id=customer.organization_id, purpose=purpose, customer_ids=[customer.pk])
    column = purpose_column(purpose)
    setattr(
        customer,
        column,
        Customer.objects.filter(pk=customer.pk).values_list(column, flat=True).get(),
    )
    return record


@transaction.atomic
def consent_record_bulk(
    *,
    organization_id,
    customer_ids: Iterable,
    purpose: str,
    granted: bool,
    source: str,
    proof: str = "",
    actor: User | None = None,
    recorded_at: datetime.datetime | None = None,
) -> int:
    """One statement for many customers at once (an import, a list opted out by staff): one INSERT ...
    SELECT and one UPDATE, whatever the number. Erased and anonymized customers (and ids of other
    organizations) are ignored. Returns how many statements were recorded."""
    require_capability(actor, Capability.EDIT_CUSTOMERS)
    proof = (proof or "").strip()
    _check(purpose, source, proof)
    ids = [uuid.UUID(str(pk)) for pk in customer_ids]
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            _BULK_INSERT_SQL,
            {
                "org": organization_id,
                "ids": ids,
                "purpose": purpose,
                "granted": bool(granted),
                "source": source,
                "proof": proof,
                "at": recorded_at or timezone.now(),
                "actor": actor.pk if actor else None,
            },
        )
        recorded = cursor.rowcount
    mirror_consent(organization_id=organization_id, purpose=purpose, customer_ids=ids)
    return recorded


def consent_records_reassign(*, organization_id, source_id, target_id) -> int:
    """Merging customers (customers/merging.py): the source's statements move to the target, so the proof
    survives the source's deletion; then the target's columns follow its latest statement per purpose
    (the merge's own email opt-in pick, applied after, is recorded as a staff statement)."""
    moved = ConsentRecord.objects.filter(organization_id=organization_id, customer_id=source_id).update(
        customer_id=target_id
    )
    if moved:
        for purpose in ConsentPurpose.values:
            mirror_consent(organization_id=organization_id, purpose=purpose, customer_ids=[target_id])
    return moved


def consent_records_count(*, organization_id, customer_id) -> int:
    """How many statements a merge would move (one query)."""
    return ConsentRecord.objects.filter(organization_id=organization_id, customer_id=customer_id).count()
