"""Who may receive marketing email: the one definition, used by campaign materialization, by every send
(re-checked when the email goes out, so an unsubscribe between materialization and sending is respected)
and by sequences."""

from __future__ import annotations

import uuid

from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.functions import Lower

from compliance.models import ConsentPurpose
from compliance.selectors.consent import consenting
from customers.models import Customer
from marketing.models import Suppression


def mailable_customers(organization_id: uuid.UUID | str) -> QuerySet[Customer]:
    """The organization's customers that marketing email may go to: with an email address, active, consenting
    to email marketing (compliance.selectors.consent: opted in, neither processing-restricted (GDPR art. 18)
    nor erased or anonymized), and whose address is not on the suppression list (unsubscribed, hard-bounced,
    complained or added by staff; stored lower-cased)."""
    suppressed = Suppression.objects.filter(
        organization_id=OuterRef("organization_id"), email=Lower(OuterRef("email"))
    )
    return (
        consenting(
            Customer.objects.filter(organization_id=organization_id, status=Customer.Status.ACTIVE),
            ConsentPurpose.EMAIL_MARKETING,
        )
        .exclude(email="")
        .exclude(Exists(suppressed))
    )
