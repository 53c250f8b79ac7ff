"""The merge registry: every app that keeps records of a customer says how to move them to another customer.

When two customers are merged, the one that goes away (the source) hands everything it has to the one that
stays (the target) before it is deleted. `customers` imports no other app; sales, support, marketing and
the rest register their own reassigner in `AppConfig.ready()`:

    from customers import merging

    def opportunities_reassign(*, organization_id, source_id, target_id) -> int:
        return Opportunity.objects.filter(organization_id=organization_id, customer_id=source_id).update(
            customer_id=target_id
        )

    merging.register(opportunities_reassign, label=_("Opportunities"), count=opportunities_count)

A reassigner runs inside the merge's transaction, with the tenant context of the acting user, and returns how
many rows it moved. It must move (or deliberately drop) every row that points at the source: whatever it
leaves behind is deleted with the source (foreign keys cascade) or blocks the merge (PROTECT), which rolls
the whole merge back. The optional `count(*, organization_id, customer_id) -> int` tells the merge page how
many records of one customer would move; it should be one bounded query.

It also says which profile fields a merge lets the user pick (`FIELD_GROUPS`, each picked as a whole from
one customer: a name or an address is never stitched together from two people), and the default pick.

This module also registers the customers app's own reassigners: interactions, lifecycle history, score
history, segment memberships (a membership the target already has is dropped, not duplicated), segment
history and "not a duplicate" marks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from customers.services.customers import normalise_tags

Reassign = Callable[..., int]  # fn(*, organization_id, source_id, target_id) -> int
Count = Callable[..., int]  # fn(*, organization_id, customer_id) -> int


@dataclass(frozen=True)
class Reassigner:
    key: str  # "module.function": registering the same function again replaces it
    reassign: Reassign
    label: str | Promise  # what moves, as the merge page names it ("Interactions")
    count: Count | None = None


_REGISTRY: dict[str, Reassigner] = {}


def register(
    reassign: Reassign | None = None, *, label: str | Promise = "", count: Count | None = None
) -> Reassign | Callable[[Reassign], Reassign]:
    """Register `reassign` (also usable as a decorator, bare or with arguments); returns it unchanged."""

    def add(function: Reassign) -> Reassign:
        key = f"{function.__module__}.{function.__qualname__}"
        _REGISTRY[key] = Reassigner(
            key=key, reassign=function, label=label or function.__name__.replace("_", " "), count=count
        )
        return function

    return add(reassign) if reassign is not None else add


def unregister(reassign: Reassign) -> None:
    """Remove a reassigner (for tests that register a temporary one)."""
    _REGISTRY.pop(f"{reassign.__module__}.{reassign.__qualname__}", None)


def reassigners() -> list[Reassigner]:
    """Every registered reassigner, in the order they were first registered (the customers app's first)."""
    return list(_REGISTRY.values())


def reassign_all(*, organization_id: uuid.UUID, source_id: uuid.UUID, target_id: uuid.UUID) -> dict[str, int]:
    """Run every reassigner; returns rows moved per reassigner key. Call inside the merge's transaction."""
    return {
        entry.key: entry.reassign(organization_id=organization_id, source_id=source_id, target_id=target_id)
        for entry in reassigners()
    }


# --- Profile fields -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldGroup:
    name: str
    label: str | Promise
    fields: tuple[str, ...]
    separator: str = " "  # how the page joins the group's values
    # Default pick when both customers have a value and they differ: "recent" (the more recently updated
    # customer's), "true" / "false" (the customer whose value is that: the more restrictive consent).
    prefer: str = "recent"


FIELD_GROUPS: tuple[FieldGroup, ...] = (
    FieldGroup("name", _("Name"), ("first_name", "last_name")),
    FieldGroup("company_name", _("Company"), ("company_name",)),
    FieldGroup("email", _("Email"), ("email",)),
    FieldGroup("phone", _("Phone"), ("phone",)),
    FieldGroup("job_title", _("Job title"), ("job_title",)),
    FieldGroup("customer_type", _("Type"), ("customer_type",)),
    FieldGroup("lifecycle_stage", _("Lifecycle stage"), ("lifecycle_stage",)),
    FieldGroup("assigned_to", _("Owner"), ("assigned_to",)),
    FieldGroup("status", _("Status"), ("status",)),
    FieldGroup("vip_status", _("VIP"), ("vip_status",), prefer="true"),
    FieldGroup("date_of_birth", _("Date of birth"), ("date_of_birth",)),
    FieldGroup("education_level", _("Education"), ("education_level",)),
    FieldGroup("annual_revenue", _("Annual revenue"), ("annual_revenue",)),
    FieldGroup(
        "address", _("Address"), ("street", "city", "state", "postal_code", "country"), separator=", "
    ),
    FieldGroup("source", _("Source"), ("source",)),
    FieldGroup("email_opt_in", _("Email opt-in"), ("email_opt_in",), prefer="false"),
    FieldGroup("do_not_call", _("Do not call"), ("do_not_call",), prefer="true"),
)
FIELD_GROUPS_BY_NAME = {group.name: group for group in FIELD_GROUPS}


def _values(customer, group: FieldGroup) -> tuple:
    return tuple(getattr(customer, name) for name in group.fields)


def default_choice(group: FieldGroup, a, b) -> str:
    """Which of customers `a` and `b` ("a" or "b") gives `group` its value by default: the one that has a
    value; when both do, the restrictive one for consent flags, else the more recently updated one."""
    values_a, values_b = _values(a, group), _values(b, group)
    if values_a == values_b:
        return "a"
    if group.prefer in ("true", "false"):
        wanted = group.prefer == "true"
        return "a" if values_a == (wanted,) else "b"
    filled_a = any(v not in (None, "") for v in values_a)
    filled_b = any(v not in (None, "") for v in values_b)
    if filled_a != filled_b:
        return "a" if filled_a else "b"
    return "a" if (a.updated_at, a.pk) >= (b.updated_at, b.pk) else "b"


def merged_tags(*tag_lists) -> list[str]:
    """The survivor's tags: every tag of both, normalised (sorted, unique)."""
    return normalise_tags([tag for tags in tag_lists for tag in tags or ()])


# --- The customers app's own records ------------------------------------------------------------------------


def _execute(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _scalar(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _move(table: str) -> Reassign:
    """A reassigner that repoints `table.customer_id` from the source to the target in one UPDATE."""

    def reassign(*, organization_id, source_id, target_id) -> int:
        return _execute(
            f"UPDATE {table} SET customer_id = %s WHERE organization_id = %s AND customer_id = %s",
            [target_id, organization_id, source_id],
        )

    return reassign


def _counter(table: str) -> Count:
    """How many rows of `table` one customer has (an index range on (organization_id, customer_id, ...))."""

    def count(*, organization_id, customer_id) -> int:
        return _scalar(
            f"SELECT count(*) FROM {table} WHERE organization_id = %s AND customer_id = %s",
            [organization_id, customer_id],
        )

    return count


def interactions_reassign(*, organization_id, source_id, target_id) -> int:
    """Every interaction of the source becomes the target's (the partition key, the date, is unchanged)."""
    return _move("interaction_logs")(
        organization_id=organization_id, source_id=source_id, target_id=target_id
    )


def lifecycle_changes_reassign(*, organization_id, source_id, target_id) -> int:
    return _move("customer_lifecycle_changes")(
        organization_id=organization_id, source_id=source_id, target_id=target_id
    )


def score_history_reassign(*, organization_id, source_id, target_id) -> int:
    return _move("customer_score_history")(
        organization_id=organization_id, source_id=source_id, target_id=target_id
    )


def segment_memberships_reassign(*, organization_id, source_id, target_id) -> int:
    """Move the source's memberships; where the target is already a member of that segment, the source's
    membership is dropped (one customer, one membership) and the segment counts one member fewer."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH dropped AS ("
            "  DELETE FROM customer_segment_members s"
            "  WHERE s.organization_id = %(org)s AND s.customer_id = %(source)s AND EXISTS ("
            "    SELECT 1 FROM customer_segment_members t"
            "    WHERE t.organization_id = %(org)s AND t.segment_id = s.segment_id AND t.customer_id = %(target)s)"
            "  RETURNING s.segment_id"
            ") "
            "UPDATE customer_segments g SET member_count = GREATEST(g.member_count - 1, 0)"
            " FROM dropped d WHERE g.organization_id = %(org)s AND g.id = d.segment_id",
            {"org": organization_id, "source": source_id, "target": target_id},
        )
        cursor.execute(
            "UPDATE customer_segment_members SET customer_id = %s WHERE organization_id = %s AND customer_id = %s",
            [target_id, organization_id, source_id],
        )
        return cursor.rowcount


def segment_events_reassign(*, organization_id, source_id, target_id) -> int:
    return _move("customer_segment_events")(
        organization_id=organization_id, source_id=source_id, target_id=target_id
    )


def dismissals_reassign(*, organization_id, source_id, target_id) -> int:
    """ "Not a duplicate" marks of the source now hold for the target (the pair source-target itself goes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customer_duplicate_dismissals"
            " (id, organization_id, customer_a_id, customer_b_id, dismissed_by_id, at) "
            "SELECT gen_random_uuid(), organization_id, LEAST(other, %(target)s::uuid),"
            " GREATEST(other, %(target)s::uuid), dismissed_by_id, at "
            "FROM (SELECT organization_id, dismissed_by_id, at,"
            "      CASE WHEN customer_a_id = %(source)s THEN customer_b_id ELSE customer_a_id END AS other"
            "      FROM customer_duplicate_dismissals"
            "      WHERE organization_id = %(org)s AND %(source)s IN (customer_a_id, customer_b_id)) d "
            "WHERE other <> %(target)s "
            "ON CONFLICT (organization_id, customer_a_id, customer_b_id) DO NOTHING",
            {"org": organization_id, "source": source_id, "target": target_id},
        )
        moved = cursor.rowcount
        cursor.execute(
            "DELETE FROM customer_duplicate_dismissals"
            " WHERE organization_id = %s AND %s IN (customer_a_id, customer_b_id)",
            [organization_id, source_id],
        )
        return moved


register(interactions_reassign, label=_("Interactions"), count=_counter("interaction_logs"))
register(
    segment_memberships_reassign, label=_("Segment memberships"), count=_counter("customer_segment_members")
)
register(
    lifecycle_changes_reassign, label=_("Lifecycle changes"), count=_counter("customer_lifecycle_changes")
)
register(score_history_reassign, label=_("Score history entries"), count=_counter("customer_score_history"))
register(
    segment_events_reassign, label=_("Segment history entries"), count=_counter("customer_segment_events")
)
register(dismissals_reassign, label=_('"Not a duplicate" marks'))
