"""Reads of the suppression list and of a customer's marketing email standing (the 360 panel)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from crm.models import User
from customers.models import Customer
from marketing.models import EmailSend, Suppression

# The list's "N addresses" stops counting here (no unbounded COUNT(*) over a large table).
COUNT_CAP = 1000
PANEL_SENDS = 10


def suppression_list(*, actor: User, reason: str = "", q: str = "") -> QuerySet[Suppression]:
    """The actor's organization's suppressed addresses, newest first; `q` matches part of the address."""
    rows = Suppression.objects.filter(organization_id=actor.organization_id).select_related("campaign")
    if reason:
        rows = rows.filter(reason=reason)
    if q := q.strip().lower():
        rows = rows.filter(email__contains=q)
    return rows


def capped_count(rows: QuerySet) -> int:
    """How many rows, counting no further than COUNT_CAP + 1 (the template shows "1000+")."""
    return rows.order_by()[: COUNT_CAP + 1].count()


def suppression_get(*, actor: User, pk) -> Suppression:
    """One suppression of the actor's organization (another organization's id: 404)."""
    return get_object_or_404(
        Suppression.objects.select_related("campaign"), organization_id=actor.organization_id, pk=pk
    )


def email_panel_for_customer(*, customer: Customer, actor: User) -> dict:
    """The customer 360 "Marketing email" panel: whether the customer can be emailed and, if not, every
    reason why, and their last PANEL_SENDS emails. Two queries (the suppression of their address, the
    emails), whatever their history.

    The reasons mirror the audience rule (marketing/selectors/audience.py `mailable_customers`): an
    address, email opt-in, not processing-restricted, not erased or anonymized, active, not suppressed."""
    email = (customer.email or "").strip().lower()
    suppression = (
        Suppression.objects.filter(organization_id=customer.organization_id, email=email)
        .select_related("campaign")
        .first()
        if email
        else None
    )
    reasons: list[dict] = []
    if not email:
        reasons.append({"code": "no_email"})
    if customer.erased_at or customer.anonymized_at:
        reasons.append({"code": "erased"})
    if customer.processing_restricted:
        reasons.append({"code": "restricted"})
    if customer.status != Customer.Status.ACTIVE:
        reasons.append({"code": "inactive"})
    if suppression is not None:
        reasons.append(
            {
                "code": suppression.reason,
                "since": suppression.created_at.isoformat(),
                "campaign": suppression.campaign.name if suppression.campaign else "",
            }
        )
    if email and not customer.email_opt_in and (suppression is None or suppression.reason != "unsubscribed"):
        # An unsubscribe clears the opt-in too; saying both would repeat one fact.
        reasons.append({"code": "no_opt_in"})
    sends = (
        EmailSend.objects.filter(organization_id=customer.organization_id, customer_id=customer.pk)
        .select_related("campaign")
        .order_by("-scheduled_send_time", "-id")[:PANEL_SENDS]
    )
    return {
        "mailable": not reasons,
        "reasons": reasons,
        "sends": [
            {
                "campaign": send.campaign.name,
                "campaign_id": str(send.campaign_id),
                "sequence": bool(send.step_run_id),
                "email": send.email,
                "status": send.status,
                "status_label": str(send.get_status_display()),
                "scheduled_at": send.scheduled_send_time.isoformat(),
                "sent_at": send.sent_at.isoformat() if send.sent_at else "",
                "opened_at": send.opened_at.isoformat() if send.opened_at else "",
                "clicked_at": send.clicked_at.isoformat() if send.clicked_at else "",
                "unsubscribed_at": send.unsubscribed_at.isoformat() if send.unsubscribed_at else "",
            }
            for send in sends
        ],
    }
