"""Quotas: each sales rep's revenue target per month, set by sales managers on a grid (reps x months).

A save touches only the cells that changed: new and changed amounts in one upsert
(`INSERT ... ON CONFLICT (organization_id, user_id, month) DO UPDATE`), cleared cells in one DELETE, so
saving a 12 x 50 grid is three queries whatever its size, and two managers saving at once never fail on the
unique key (the later write wins per cell).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from uuid6 import uuid7

from crm.models import User
from crm.permissions import Capability, Role, has_capability
from sales.models import Quota

# Who carries a quota: the roles that sell (plus anyone who already has a quota in the months shown).
QUOTA_ROLES = (Role.SALES_REP, Role.SALES_MANAGER)
MAX_QUOTA = Decimal("999999999999.99")

UPSERT_SQL = """
INSERT INTO sales_quotas (id, organization_id, user_id, month, amount, updated_at)
SELECT v.id, %(org)s, v.user_id, v.month, v.amount, now()
FROM unnest(%(ids)s::uuid[], %(users)s::uuid[], %(months)s::date[], %(amounts)s::numeric[])
    AS v(id, user_id, month, amount)
ON CONFLICT (organization_id, user_id, month)
DO UPDATE SET amount = EXCLUDED.amount, updated_at = EXCLUDED.updated_at
WHERE sales_quotas.amount IS DISTINCT FROM EXCLUDED.amount
"""


@dataclass(frozen=True)
class QuotaSaveResult:
    saved: int  # cells created or changed
    cleared: int  # cells removed


def quota_users(*, organization_id, months: list[datetime.date] | None = None) -> QuerySet[User]:
    """The people on the quota grid: active sellers, plus anyone holding a quota in `months`."""
    from django.db.models import Exists, OuterRef, Q

    holds = Quota.objects.filter(organization_id=organization_id, user_id=OuterRef("pk"))
    if months:
        holds = holds.filter(month__in=months)
    return (
        User.objects.filter(organization_id=organization_id)
        .filter(Q(is_active=True, role__in=QUOTA_ROLES) | Q(Exists(holds)))
        .order_by("first_name", "last_name", "email", "id")
    )


def quotas_for(
    *, organization_id, months: list[datetime.date]
) -> dict[tuple[uuid.UUID, datetime.date], Decimal]:
    """The quotas of `months`, keyed by (user id, month)."""
    rows = Quota.objects.filter(organization_id=organization_id, month__in=months).values_list(
        "user_id", "month", "amount"
    )
    return {(user_id, month): amount for user_id, month, amount in rows}


def _validate(organization_id, values: dict[tuple[uuid.UUID, datetime.date], Decimal | None]) -> None:
    errors = []
    for (_user_id, month), amount in values.items():
        if month.day != 1:
            errors.append(_("A quota month is given by its first day."))
        if amount is not None and not (Decimal("0") <= amount <= MAX_QUOTA):
            errors.append(_("A quota is an amount from 0 to %(max)s.") % {"max": f"{MAX_QUOTA:,}"})
    user_ids = {user_id for user_id, _month in values}
    found = set(
        User.objects.filter(organization_id=organization_id, pk__in=user_ids).values_list("pk", flat=True)
    )
    if user_ids - found:
        errors.append(_("Quotas can only be set for people of this organization."))
    if errors:
        raise ValidationError(sorted(set(errors)))


@transaction.atomic
def quotas_set(
    *,
    organization_id,
    actor: User | None,
    values: dict[tuple[uuid.UUID, datetime.date], Decimal | None],
) -> QuotaSaveResult:
    """Set the quotas of the given (user, month) cells: an amount sets it, None clears it. Cells left out
    are not touched. Only the cells whose amount differs from the stored one are written."""
    if actor is not None and not has_capability(actor, Capability.MANAGE_QUOTAS):
        raise PermissionDenied
    if not values:
        return QuotaSaveResult(saved=0, cleared=0)
    _validate(organization_id, values)
    months = sorted({month for _user, month in values})
    current = quotas_for(organization_id=organization_id, months=months)
    upserts = [
        (key, amount.quantize(Decimal("0.01")))
        for key, amount in values.items()
        if amount is not None and current.get(key) != amount.quantize(Decimal("0.01"))
    ]
    clears = [key for key, amount in values.items() if amount is None and key in current]
    saved = cleared = 0
    with connection.cursor() as cursor:
        if upserts:
            cursor.execute(
                UPSERT_SQL,
                {
                    "org": organization_id,
                    "ids": [uuid7() for _ in upserts],
                    "users": [user_id for (user_id, _month), _amount in upserts],
                    "months": [month for (_user_id, month), _amount in upserts],
                    "amounts": [amount for _key, amount in upserts],
                },
            )
            saved = cursor.rowcount
        if clears:
            cursor.execute(
                "DELETE FROM sales_quotas WHERE organization_id = %(org)s AND (user_id, month) IN "
                "(SELECT * FROM unnest(%(users)s::uuid[], %(months)s::date[]))",
                {
                    "org": organization_id,
                    "users": [user_id for user_id, _month in clears],
                    "months": [month for _user_id, month in clears],
                },
            )
            cleared = cursor.rowcount
    return QuotaSaveResult(saved=saved, cleared=cleared)
