"""Erasure and anonymization of customers, through the personal-data registry only (compliance/registry.py).

`erase_customers()` is set-based: per registry declaration, the rows of all the given customers are found
with one SELECT (their ids, kept for the audit trail) and changed with one UPDATE (in batches of ids when
there are many), never a statement per row. Every row stays, so counts and statistics survive (a
campaign's sent and opened totals, a deal's amount, a ticket's SLA); only the personal fields change, as each
declaration says (blank, pseudonym, redacted; statements.py). Then the audit trail is redacted for the
same records (audit.py), after the updates: the erasure's own UPDATEs write audit rows whose old values
hold the personal data. Stored files (ticket attachments, request exports) are deleted once the transaction
commits.

One transaction: a failure anywhere rolls everything back, so no customer is ever half erased. Idempotent:
an UPDATE changes only rows whose values differ from the erased ones, and the audit redaction only records
with a value left to redact, so erasing twice changes nothing the second time.

Modes: "erase" (a GDPR erasure or CCPA deletion: `erased_at`, "Erased customer C-000042") and "anonymize"
(the nightly retention job: `anonymized_at`, "Anonymized customer C-000042"); both change the same fields.
The customer row also loses its email opt-in; its active sequence enrollments exit. The audience, scoring and
segment queries already leave erased and anonymized customers out (compliance.selectors.consent), and a
blank email is never mailable, so an erased customer is never emailed again. The processing-restricted flag
is left as it was: it records a fact of the past, and erasure supersedes it.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable

from django.core.files.storage import default_storage
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from compliance.erasure import audit
from compliance.erasure.statements import erased_columns, statement_for
from compliance.registry import PersonalData, SubjectIdentity, personal_data
from crm.models import User
from crm.permissions import Capability, require_capability
from crm.tenancy import TenantContextError
from customers.models import Customer
from marketing.models import Enrollment

MODES = ("erase", "anonymize")
BATCH = 5000


def _label(mode: str) -> str:
    return gettext("Erased customer") if mode == "erase" else gettext("Anonymized customer")


def _require_context(organization_id) -> None:
    """The audit redaction acts in the organization of the transaction's tenant context: refuse any other."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.organization_id', true)")
        (current,) = cursor.fetchone()
    if not current or str(current) != str(organization_id):
        raise TenantContextError(
            "erase_customers() runs in the tenant context of the customers' organization."
        )


def _batches(items: list, size: int = BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _stored_files(declaration: PersonalData, ids: list) -> list[tuple[object, str]]:
    """(storage, name) of every file the rows name in a stored-file field."""
    files = []
    model = declaration.model
    for personal in declaration.fields:
        if not personal.stored_file:
            continue
        model_field = model._meta.get_field(personal.name)
        storage = getattr(model_field, "storage", None) or default_storage
        for batch in _batches(ids):
            names = model.objects.filter(pk__in=batch).exclude(**{personal.name: ""})
            files.extend((storage, str(name)) for name in names.values_list(personal.name, flat=True) if name)
    return files


def _delete_files(files: list[tuple[object, str]]) -> None:
    for storage, name in files:
        storage.delete(name)


def _update(statement, organization_id, ids: list) -> int:
    changed = 0
    with connection.cursor() as cursor:
        for batch in _batches(ids):
            sql, params = statement.sql(organization_id, batch)
            cursor.execute(sql, params)
            changed += len(cursor.fetchall())
    return changed


def _mark_customers(*, organization_id, customer_ids: list, mode: str, now: datetime.datetime) -> int:
    """The customers' own trace of the erasure: when (kept from a first run), and no email opt-in."""
    stamp = "erased_at" if mode == "erase" else "anonymized_at"
    return (
        Customer.objects.filter(organization_id=organization_id, pk__in=customer_ids)
        .filter(Q(**{f"{stamp}__isnull": True}) | Q(email_opt_in=True))
        .update(
            **{stamp: models.functions.Coalesce(models.F(stamp), models.Value(now))},
            email_opt_in=False,
            updated_at=now,
        )
    )


def _exit_enrollments(*, organization_id, customer_ids: list, now: datetime.datetime) -> int:
    return Enrollment.objects.filter(
        organization_id=organization_id, customer_id__in=customer_ids, status=Enrollment.Status.ACTIVE
    ).update(
        status=Enrollment.Status.EXITED,
        exit_reason=Enrollment.ExitReason.RESTRICTED,
        finished_at=now,
        next_run_at=None,
    )


@transaction.atomic
def erase_customers(
    *,
    organization_id: uuid.UUID | str,
    customer_ids: list,
    mode: str,
    actor: User | None = None,
    reason: str = "",
) -> dict:
    """Erase (or anonymize) the personal data of the given customers of one organization across every app,
    and return the receipt: {mode, customers: [numbers], tables: {label: rows changed}, audit_rows_redacted,
    files_deleted, enrollments_exited, at, by, reason}. Runs in the organization's tenant context; a customer
    id that is not the organization's raises Customer.DoesNotExist (and nothing changes)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    require_capability(actor, Capability.PROCESS_PRIVACY_REQUESTS)
    _require_context(organization_id)
    now = timezone.now()
    wanted = {str(pk) for pk in customer_ids}
    # Locked, so a concurrent save cannot write personal data back between our SELECTs and UPDATEs.
    customers = list(
        Customer.objects.select_for_update()
        .filter(organization_id=organization_id, pk__in=wanted)
        .order_by("number")
        .values("id", "number", "email", "first_name", "last_name")
    )
    if len(customers) != len(wanted):
        raise Customer.DoesNotExist("No such customer in this organization.")
    # Read before anything changes: the values that find rows pointing at a subject by value.
    identities = [
        SubjectIdentity(
            customer_id=row["id"],
            organization_id=organization_id,
            email=row["email"],
            full_name=f"{row['first_name']} {row['last_name']}".strip(),
        )
        for row in customers
    ]
    ids_of_customers = [row["id"] for row in customers]
    label = _label(mode)
    audited = audit.audited_tables()
    tables: dict[str, int] = {}
    to_redact: list[tuple[PersonalData, list]] = []
    files: list[tuple[object, str]] = []
    for declaration in personal_data():
        statement = statement_for(declaration, label=label)
        if statement is None:
            continue
        model = declaration.model
        rows = model.objects.filter(organization_id=organization_id).filter(
            declaration.subjects_filter(identities)
        )
        ids = list(rows.values_list("pk", flat=True).distinct())
        if not ids:
            continue
        files.extend(_stored_files(declaration, ids))
        changed = _update(statement, organization_id, ids)
        if changed:
            tables[declaration.label] = changed
        if statement.table in audited:
            to_redact.append((declaration, ids))
    marked = _mark_customers(
        organization_id=organization_id, customer_ids=ids_of_customers, mode=mode, now=now
    )
    if marked and "profile" not in tables:
        tables["profile"] = marked
    exited = _exit_enrollments(organization_id=organization_id, customer_ids=ids_of_customers, now=now)
    # After the updates: their own audit rows hold the personal data in old_values.
    redacted = 0
    customer_keys = [str(pk) for pk in ids_of_customers]
    for declaration, ids in to_redact:
        table = declaration.model._meta.db_table
        records = {str(pk) for pk in ids}
        if declaration.subject == "customer":
            records |= audit.records_of_deleted_rows(
                organization_id=organization_id, table=table, key="customer_id", customer_ids=customer_keys
            )
        redacted += audit.redact(
            organization_id=organization_id, table=table, record_ids=records, keys=erased_columns(declaration)
        )
    if files:
        transaction.on_commit(lambda: _delete_files(files), robust=True)
    return {
        "mode": mode,
        "customers": [f"C-{row['number']:06d}" for row in customers],
        "tables": tables,
        "audit_rows_redacted": redacted,
        "files_deleted": len(files),
        "enrollments_exited": exited,
        "at": now.isoformat(),
        "by": str(actor.pk) if actor is not None else None,
        "reason": reason,
    }


def erase_customer(*, customer: Customer, actor: User | None, reason: str = "") -> dict:
    """Erase one customer (a GDPR erasure, a CCPA deletion); the receipt of erase_customers()."""
    return erase_customers(
        organization_id=customer.organization_id,
        customer_ids=[customer.pk],
        mode="erase",
        actor=actor,
        reason=reason,
    )
