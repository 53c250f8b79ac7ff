"""Merging two customers into one, and marking a pair as "not a duplicate"."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import tenancy
from crm.models import User
from crm.permissions import Capability, has_capability
from customers import merging
from customers.models import Customer, DuplicateDismissal, Interaction, InteractionType
from customers.services.customers import customer_update

TARGET, SOURCE = "target", "source"


def _check_actor(actor: User | None, *customers: Customer) -> None:
    """The actor may merge customers, and every customer is of the actor's organization."""
    if actor is None or not has_capability(actor, Capability.MERGE_CUSTOMERS):
        raise PermissionDenied
    if actor.organization_id is None or any(c.organization_id != actor.organization_id for c in customers):
        raise PermissionDenied


def _acting_as(actor: User):
    """Make sure the database attributes the merge to `actor` (the audit triggers read `app.user_id`): a
    request of the actor already does; a task, command or test may run under a context without a user."""
    state = tenancy.current()
    if state and state.user_id == actor.pk and state.organization_id == actor.organization_id:
        return contextlib.nullcontext()
    request_id = state.request_id if state else ""
    return tenancy.tenant_context(actor.organization_id, user=actor, request_id=request_id)


def _check_choices(field_choices: Mapping[str, str]) -> None:
    unknown = sorted(set(field_choices) - set(merging.FIELD_GROUPS_BY_NAME))
    if unknown:
        raise ValidationError(_("Unknown fields: %(fields)s") % {"fields": ", ".join(unknown)})
    invalid = sorted(name for name, choice in field_choices.items() if choice not in (TARGET, SOURCE))
    if invalid:
        raise ValidationError(
            _("Choose “target” or “source” for: %(fields)s") % {"fields": ", ".join(invalid)}
        )


@transaction.atomic
def customers_merge(
    *, target: Customer, source: Customer, actor: User, field_choices: Mapping[str, str] | None = None
) -> Customer:
    """Merge `source` into `target` and delete `source`; returns the target, saved.

    `field_choices` names, per field group of `merging.FIELD_GROUPS`, whose value survives ("target" or
    "source"; unnamed groups keep the target's). Tags become the union of both; the last contact date the
    later one; a processing restriction on either customer stays. Every registered reassigner moves its
    records of the source to the target, a note on the target says who merged what, and the audit triggers
    record the source's DELETE and the target's UPDATE under the actor's name. All in one transaction:
    if anything fails, both customers stay exactly as they were. The target keeps its customer number.
    """
    _check_actor(actor, target, source)
    if target.pk == source.pk:
        raise ValidationError(_("A customer cannot be merged with itself."))
    field_choices = dict(field_choices or {})
    _check_choices(field_choices)
    with _acting_as(actor):
        # Lock both rows in one order (by id), so two merges of overlapping pairs cannot deadlock, and work
        # from what is stored now rather than from instances the caller may have loaded a while ago.
        locked = {
            customer.pk: customer
            for customer in Customer.objects.select_for_update()
            .filter(organization_id=actor.organization_id, pk__in=[target.pk, source.pk])
            .order_by("pk")
        }
        if len(locked) != 2:
            raise ValidationError(_("One of these customers no longer exists."))
        stored_target, stored_source = locked[target.pk], locked[source.pk]
        if any(c.erased_at or c.anonymized_at for c in (stored_target, stored_source)):
            raise ValidationError(_("An erased or anonymized customer cannot be merged."))

        fields: dict = {}
        for name, choice in field_choices.items():
            if choice == SOURCE:
                for field_name in merging.FIELD_GROUPS_BY_NAME[name].fields:
                    fields[field_name] = getattr(stored_source, field_name)
        fields["tags"] = merging.merged_tags(stored_target.tags, stored_source.tags)
        contacts = [d for d in (stored_target.last_contact_date, stored_source.last_contact_date) if d]
        stored_target.last_contact_date = max(contacts) if contacts else None
        if stored_source.processing_restricted and not stored_target.processing_restricted:
            stored_target.processing_restricted = True
            stored_target.restriction_reason = stored_source.restriction_reason
            stored_target.restricted_at = stored_source.restricted_at
        number, what = stored_source.customer_number, _details(stored_source)

        merging.reassign_all(
            organization_id=actor.organization_id, source_id=stored_source.pk, target_id=stored_target.pk
        )
        # The consent history moved too (compliance's reassigner) and the target's consent columns now
        # follow its latest statements: reload them, so saving the target below does not write stale ones.
        stored_target.refresh_from_db(fields=["profiling_allowed", "sale_allowed", "sharing_allowed"])
        try:
            stored_source.delete()
        except ProtectedError as error:
            kinds = sorted({obj._meta.verbose_name_plural for obj in error.protected_objects})
            raise ValidationError(
                _("%(number)s still has records no app moved (%(kinds)s); nothing was merged.")
                % {"number": number, "kinds": ", ".join(str(k) for k in kinds)}
            ) from error
        # After the delete: the source's email may now become the target's (emails are unique).
        customer_update(
            customer=stored_target,
            actor=actor,
            reason=_("Merged with %(number)s") % {"number": number},
            **fields,
        )
        note = Interaction(
            organization_id=actor.organization_id,
            customer=stored_target,
            interaction_type=InteractionType.NOTE,
            notes=_("Merged %(number)s (%(what)s) into this customer by %(actor)s")
            % {"number": number, "what": what, "actor": actor.get_full_name() or actor.email},
            interaction_date=timezone.now(),
            logged_by=actor,
        )
        note.save(force_insert=True)
    return stored_target


def _details(customer: Customer) -> str:
    name = f"{customer.first_name} {customer.last_name}".strip() or customer.company_name
    return ", ".join(part for part in (name, customer.email) if part) or _("no name or email")


@transaction.atomic
def duplicate_dismiss(*, a: Customer, b: Customer, actor: User) -> DuplicateDismissal:
    """Mark two customers as "not a duplicate": the duplicates list leaves the pair out. Idempotent."""
    _check_actor(actor, a, b)
    if a.pk == b.pk:
        raise ValidationError(_("Choose two different customers."))
    low, high = sorted([a.pk, b.pk])
    dismissal, _created = DuplicateDismissal.objects.get_or_create(
        organization_id=actor.organization_id,
        customer_a_id=low,
        customer_b_id=high,
        defaults={"dismissed_by": actor},
    )
    return dismissal


@transaction.atomic
def duplicate_restore(*, a: Customer, b: Customer, actor: User) -> bool:
    """Undo "not a duplicate": the pair may show up in the duplicates list again. True if a mark went."""
    _check_actor(actor, a, b)
    low, high = sorted([a.pk, b.pk])
    deleted, _by_model = DuplicateDismissal.objects.filter(
        organization_id=actor.organization_id, customer_a_id=low, customer_b_id=high
    ).delete()
    return bool(deleted)
