"""Customer merge: the support records of the customer that goes away move to the one that stays.

Registered with `customers.merging` (support/registration.py); each runs inside the merge's transaction and
returns how many rows it moved. Tickets are PROTECTed from their customer's deletion, so a merge that did not
move them would fail as a whole; surveys would be deleted with the customer, losing their answers.
"""

from __future__ import annotations

from support.models import Survey, Ticket


def tickets_reassign(*, organization_id, source_id, target_id) -> int:
    """The tickets (with their threads, events and escalations, which hang off the ticket) move over."""
    return Ticket.objects.filter(organization_id=organization_id, customer_id=source_id).update(
        customer_id=target_id
    )


def surveys_reassign(*, organization_id, source_id, target_id) -> int:
    """CSAT and NPS surveys move over with their answers (the reports keep counting them)."""
    return Survey.objects.filter(organization_id=organization_id, customer_id=source_id).update(
        customer_id=target_id
    )
