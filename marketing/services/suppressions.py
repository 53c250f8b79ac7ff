"""Writes of the suppression list by staff: add an address by hand, remove one. (Unsubscribes, bounces
and complaints add theirs in marketing/events.py.)"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from crm.models import User
from crm.permissions import Capability, require_capability
from marketing.models import Suppression


@transaction.atomic
def suppression_add(*, actor: User, email: str) -> Suppression:
    """Put an address on the organization's list by hand (reason "manual"): no campaign or sequence
    emails it from now on. The address is stored lower-cased; one already on the list is an error."""
    require_capability(actor, Capability.SEND_CAMPAIGNS)
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as error:
        raise ValidationError({"email": _("Enter a valid email address.")}) from error
    if Suppression.objects.filter(organization_id=actor.organization_id, email=email).exists():
        raise ValidationError({"email": _("This address is already on the suppression list.")})
    return Suppression.objects.create(
        organization_id=actor.organization_id, email=email, reason=Suppression.Reason.MANUAL
    )


@transaction.atomic
def suppression_remove(*, actor: User, suppression: Suppression) -> None:
    """Take an address off the list, so campaigns may email it again. This does not opt the customer back
    in: their email opt-in stays as it is, and only they (a form with consent) or staff editing the
    customer can set it again."""
    require_capability(actor, Capability.SEND_CAMPAIGNS)
    if suppression.organization_id != actor.organization_id:
        raise PermissionDenied
    Suppression.objects.filter(organization_id=actor.organization_id, pk=suppression.pk).delete()
