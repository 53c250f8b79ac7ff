"""Writes to customer profiles: create, update, lifecycle changes, interactions, bulk changes."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import CharField, F, Func, Q, Value
from django.db.models.functions import Greatest, Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.models import ConsentPurpose, ConsentSource
from compliance.services.consent import consent_record
from crm.db.numbering import allocate_numbers
from crm.models import User
from crm.permissions import Capability, has_capability
from customers.models import Customer, Interaction, LifecycleChange, LifecycleStage

EDITABLE_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "company_name",
        "email",
        "phone",
        "date_of_birth",
        "education_level",
        "job_title",
        "annual_revenue",
        "customer_type",
        "lifecycle_stage",
        "assigned_to",
        "tags",
        "vip_status",
        "status",
        "street",
        "city",
        "state",
        "postal_code",
        "country",
        "source",
        "email_opt_in",
        "do_not_call",
    }
)


TAGS = ArrayField(CharField(max_length=50))


def _require(actor: User | None, capability: Capability) -> None:
    if actor is not None and not has_capability(actor, capability):
        raise PermissionDenied


def _normalise(fields: dict) -> dict:
    if "email" in fields:
        fields["email"] = (fields["email"] or "").strip().lower()
    if "tags" in fields:
        fields["tags"] = normalise_tags(fields["tags"])
    if "country" in fields:
        fields["country"] = (fields["country"] or "").strip().upper()
    return fields


def normalise_tags(tags: Iterable[str] | str | None) -> list[str]:
    """Tags are trimmed, lower-cased, de-duplicated and sorted (so a filter on a tag always matches)."""
    if isinstance(tags, str):
        tags = tags.replace(";", ",").split(",")
    return sorted({t.strip().lower()[:50] for t in tags or () if t and t.strip()})


def _check_owner(customer: Customer) -> None:
    if customer.assigned_to_id and customer.assigned_to.organization_id != customer.organization_id:
        raise ValidationError({"assigned_to": _("The owner must be a user of this organization.")})


def _check_email_free(customer: Customer) -> None:
    # lower(email) = lower(value) on non-empty emails: the shape of the partial unique index
    # customers_org_email_ci_key, so this is one index probe (email__iexact would scan the organization).
    if customer.email and (
        Customer.objects.alias(email_lower=Lower("email"))
        .filter(organization_id=customer.organization_id, email_lower=customer.email.lower())
        .exclude(email="")
        .exclude(pk=customer.pk)
        .exists()
    ):
        raise ValidationError({"email": _("Another customer already uses this email.")})


def _record_email_consent(customer: Customer, actor: User | None, proof: str) -> None:
    """Email opt-in set on the profile by staff is a consent statement: recorded with its proof (the
    customer row already holds the new value, so the record's mirror rewrites nothing)."""
    consent_record(
        customer=customer,
        purpose=ConsentPurpose.EMAIL_MARKETING,
        granted=customer.email_opt_in,
        source=ConsentSource.STAFF,
        proof=proof % {"user": (actor.get_full_name() or actor.email) if actor else _("the system")},
        actor=actor,
    )


@transaction.atomic
def customer_create(*, organization, actor: User | None, reason: str = "", **fields) -> Customer:
    """Create a customer with the next customer number; its first lifecycle stage is recorded."""
    _require(actor, Capability.EDIT_CUSTOMERS)
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    customer = Customer(organization=organization, created_by=actor, **_normalise(fields))
    customer.number = allocate_numbers("customers", organization.pk)
    customer.full_clean(exclude=["number"], validate_unique=False, validate_constraints=False)
    _check_owner(customer)
    _check_email_free(customer)
    customer.save()
    if customer.email_opt_in:
        _record_email_consent(customer, actor, _("entered by %(user)s"))
    LifecycleChange.objects.create(
        organization=organization,
        customer=customer,
        from_stage="",
        to_stage=customer.lifecycle_stage,
        changed_by=actor,
        reason=reason or _("Created"),
    )
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, actor: User | None, reason: str = "", **fields) -> Customer:
    """Change a customer's profile; a lifecycle stage change is recorded with `reason`."""
    _require(actor, Capability.EDIT_CUSTOMERS)
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    # The stored stage, not the instance's: a bound ModelForm has already written the new one onto it.
    previous_stage, previous_opt_in = (
        Customer.objects.filter(pk=customer.pk).values_list("lifecycle_stage", "email_opt_in").get()
    )
    for name, value in _normalise(fields).items():
        setattr(customer, name, value)
    customer.full_clean(exclude=["number"], validate_unique=False, validate_constraints=False)
    _check_owner(customer)
    _check_email_free(customer)
    customer.save()
    if customer.email_opt_in != previous_opt_in:
        _record_email_consent(customer, actor, _("edited by %(user)s"))
    if customer.lifecycle_stage != previous_stage:
        LifecycleChange.objects.create(
            organization_id=customer.organization_id,
            customer=customer,
            from_stage=previous_stage,
            to_stage=customer.lifecycle_stage,
            changed_by=actor,
            reason=reason,
        )
    return customer


@transaction.atomic
def interaction_log(
    *,
    customer: Customer,
    actor: User | None,
    interaction_type: str,
    channel: str = "",
    outcome: str = "",
    sentiment: str = "",
    notes: str = "",
    interaction_date: datetime.datetime | None = None,
    campaign_id=None,
) -> Interaction:
    """Record a touchpoint and move the customer's last contact date forward (never backward)."""
    _require(actor, Capability.EDIT_CUSTOMERS)
    interaction = Interaction(
        organization_id=customer.organization_id,
        customer=customer,
        interaction_type=interaction_type,
        channel=channel,
        outcome=outcome,
        sentiment=sentiment,
        notes=notes,
        interaction_date=interaction_date or timezone.now(),
        campaign_id=campaign_id,
        logged_by=actor,
    )
    interaction.full_clean(exclude=["customer", "organization", "logged_by"])
    interaction.save(force_insert=True)
    Customer.objects.filter(pk=customer.pk).update(
        last_contact_date=Greatest(F("last_contact_date"), Value(interaction.interaction_date))
        if customer.last_contact_date
        else Value(interaction.interaction_date)
    )
    customer.refresh_from_db(fields=["last_contact_date"])
    # Rescore the customer once this commits; debounced, so a burst of interactions enqueues one task.
    from customers.services.scoring import request_rescore

    organization_id, customer_id = customer.organization_id, customer.pk
    transaction.on_commit(lambda: request_rescore(organization_id, customer_id), robust=True)
    return interaction


def _bulk_queryset(actor: User, customer_ids: Iterable) -> Customer:
    _require(actor, Capability.BULK_EDIT_CUSTOMERS)
    return Customer.objects.filter(organization_id=actor.organization_id, pk__in=list(customer_ids))


@transaction.atomic
def customers_bulk_assign(*, actor: User, customer_ids: Iterable, owner: User | None) -> int:
    if owner is not None and owner.organization_id != actor.organization_id:
        raise ValidationError({"owner": _("The owner must be a user of this organization.")})
    return _bulk_queryset(actor, customer_ids).update(assigned_to=owner, updated_at=timezone.now())


@transaction.atomic
def customers_bulk_tag(*, actor: User, customer_ids: Iterable, tag: str, remove: bool = False) -> int:
    (tag,) = normalise_tags([tag]) or [""]
    if not tag:
        raise ValidationError({"tag": _("Enter a tag.")})
    queryset = _bulk_queryset(actor, customer_ids)
    if remove:
        return queryset.filter(tags__contains=[tag]).update(
            tags=Func(F("tags"), Value(tag), function="array_remove", output_field=TAGS),
            updated_at=timezone.now(),
        )
    # array_append then sort-distinct in SQL, so the stored tags stay normalised (sorted, unique).
    return queryset.filter(~Q(tags__contains=[tag])).update(
        tags=Func(
            Func(F("tags"), Value(tag), function="array_append", output_field=TAGS),
            function="crm_sorted_unique",
            output_field=TAGS,
        ),
        updated_at=timezone.now(),
    )


@transaction.atomic
def customers_bulk_stage(*, actor: User, customer_ids: Iterable, stage: str, reason: str = "") -> int:
    """Move many customers to `stage` in two statements, recording each change."""
    if stage not in LifecycleStage.values:
        raise ValidationError({"stage": _("Unknown lifecycle stage.")})
    queryset = _bulk_queryset(actor, customer_ids).exclude(lifecycle_stage=stage)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customer_lifecycle_changes (id, organization_id, customer_id, from_stage, to_stage,"
            " changed_at, changed_by_id, reason) "
            "SELECT gen_random_uuid(), organization_id, id, lifecycle_stage, %s, now(), %s, %s FROM customers "
            "WHERE organization_id = %s AND id = ANY(%s) AND lifecycle_stage <> %s",
            [stage, actor.pk, reason, actor.organization_id, [c.pk for c in queryset.only("id")], stage],
        )
    return queryset.update(lifecycle_stage=stage, updated_at=timezone.now())
