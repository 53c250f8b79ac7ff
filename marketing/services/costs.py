"""Itemized campaign costs. `Campaign.actual_cost` is the sum of the campaign's cost entries, kept exact by
recomputing it in SQL in the same transaction as each added or deleted entry.

Why a recomputation under a row lock rather than `actual_cost = actual_cost + amount`: the lock on the
campaign row serializes every writer of its costs, and `SET actual_cost = (SELECT sum(...))` then reads the
entries as committed by all earlier writers (READ COMMITTED takes a fresh snapshot per statement), so the
stored total equals the sum whatever ran before, including an entry deleted twice or a retried request.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import User
from crm.permissions import Capability, require_capability
from marketing.models import Campaign, CostEntry

RECOMPUTE_SQL = """
UPDATE campaigns c
SET actual_cost = (
        SELECT coalesce(sum(e.amount), 0) FROM campaign_costs e
        WHERE e.organization_id = c.organization_id AND e.campaign_id = c.id
    ),
    updated_at = now()
WHERE c.organization_id = %s AND c.id = %s
RETURNING c.actual_cost
"""


def _lock(*, organization_id, campaign_id) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign_id, organization_id=organization_id)


def _recompute(campaign: Campaign) -> Decimal:
    """Set the campaign's actual cost to the sum of its entries; returns it (the caller holds the lock)."""
    with connection.cursor() as cursor:
        cursor.execute(RECOMPUTE_SQL, [campaign.organization_id, campaign.pk])
        total = cursor.fetchone()[0]
    campaign.actual_cost = total
    return total


@transaction.atomic
def cost_add(
    *,
    campaign: Campaign,
    actor: User | None,
    amount: Decimal,
    description: str,
    category: str = CostEntry.Category.OTHER,
    incurred_on: datetime.date | None = None,
) -> CostEntry:
    """Add a cost entry (in the campaign's currency) and bring the campaign's actual cost up to date."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    locked = _lock(organization_id=campaign.organization_id, campaign_id=campaign.pk)
    entry = CostEntry(
        organization_id=locked.organization_id,
        campaign=locked,
        amount=amount,
        description=(description or "").strip(),
        category=category,
        incurred_on=incurred_on or timezone.localdate(),
        created_by=actor,
    )
    errors = {}
    if amount is None or amount <= 0:
        errors["amount"] = _("Enter an amount above zero.")
    if not entry.description:
        errors["description"] = _("Say what the cost was for.")
    if errors:
        raise ValidationError(errors)
    entry.full_clean(exclude=["campaign", "organization", "created_by"])
    entry.save(force_insert=True)
    _recompute(locked)
    campaign.actual_cost = locked.actual_cost
    return entry


@transaction.atomic
def cost_delete(*, entry: CostEntry, actor: User | None) -> Decimal:
    """Remove a cost entry; returns the campaign's new actual cost. Deleting an entry that is already gone
    (a double click) changes nothing."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    locked = _lock(organization_id=entry.organization_id, campaign_id=entry.campaign_id)
    CostEntry.objects.filter(organization_id=entry.organization_id, pk=entry.pk).delete()
    return _recompute(locked)
