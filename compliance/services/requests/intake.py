"""Intake: logging a request (staff or the public form), linking it to a customer, assigning it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.models import (
    OPEN_STATUSES,
    CcpaRequest,
    GdprRequest,
    PrivacyRequest,
    RequestSource,
    RequestStatus,
)
from compliance.services.requests.common import (
    RECTIFIABLE_FIELDS,
    base_context,
    email_requester,
    is_california,
    lock,
    model_for,
    require_status,
)
from crm.db.numbering import allocate_numbers
from crm.models import Organization, User
from crm.permissions import Capability, has_capability, require_capability
from customers.models import Customer


def _customer_by_email(organization: Organization, email: str) -> Customer | None:
    # lower(email) = lower(value): the shape of the partial unique index customers_org_email_ci_key.
    if not email:
        return None
    return (
        Customer.objects.alias(email_lower=Lower("email"))
        .filter(organization_id=organization.pk, email_lower=email.lower())
        .exclude(email="")
        .first()
    )


def _clean_rectification(rectification: dict | None) -> dict:
    rectification = dict(rectification or {})
    unknown = sorted(set(rectification) - set(RECTIFIABLE_FIELDS))
    if unknown:
        raise ValidationError(
            {
                "rectification": _("These fields cannot be rectified here: %(fields)s.")
                % {"fields": ", ".join(unknown)}
            }
        )
    return {name: str(value if value is not None else "").strip() for name, value in rectification.items()}


@transaction.atomic
def request_create(
    *,
    organization: Organization,
    kind: str,
    request_type: str,
    requester_name: str,
    requester_email: str,
    customer: Customer | None = None,
    details: str = "",
    rectification: dict | None = None,
    resident_state: str = "",
    source: str = RequestSource.STAFF,
    actor: User | None = None,
) -> PrivacyRequest:
    """Log a GDPR or CCPA request with its statutory deadline. The customer is matched by email when not
    given. A CCPA request from outside California (the customer's state on file for staff, the declared
    state for the public form) is answered "not applicable" at once (and the requester told so by email),
    as the design document does."""
    require_capability(actor, Capability.SUBMIT_PRIVACY_REQUESTS)
    model = model_for(kind)
    if request_type not in model.Type.values:
        raise ValidationError({"request_type": _("Choose a valid request type.")})
    requester_email = (requester_email or "").strip().lower()
    try:
        validate_email(requester_email)
    except ValidationError:
        raise ValidationError({"requester_email": _("Enter a valid email address.")}) from None
    if customer is not None and customer.organization_id != organization.pk:
        raise ValidationError({"customer": _("Choose a customer of this organization.")})
    if customer is None:
        customer = _customer_by_email(organization, requester_email)

    now = timezone.now()
    privacy_request = model(
        organization=organization,
        request_type=request_type,
        requester_name=(requester_name or "").strip(),
        requester_email=requester_email,
        customer=customer,
        details=(details or "").strip(),
        source=source,
        received_at=now,
        due_at=now + model.DEADLINE,
        created_by=actor,
    )
    if model is GdprRequest:
        if request_type == GdprRequest.Type.RECTIFY:
            privacy_request.rectification = _clean_rectification(rectification)
            if not privacy_request.rectification and not privacy_request.details:
                raise ValidationError({"rectification": _("Say what should be corrected.")})
        elif rectification:
            raise ValidationError({"rectification": _("Corrections belong to a rectification request.")})
    not_applicable = False
    if model is CcpaRequest:
        # Staff go by the state on file. The public form goes by the state the consumer declares: answering
        # from the file would tell a stranger whether an email belongs to a customer (and where they live).
        on_file = customer.state if customer and source != RequestSource.PUBLIC_FORM else ""
        state = (on_file or resident_state or "").strip()
        privacy_request.resident_state = state
        privacy_request.data_categories = list(CcpaRequest.DATA_CATEGORIES[request_type])
        if not is_california(state):
            not_applicable = True
            privacy_request.status = RequestStatus.NOT_APPLICABLE
            privacy_request.completed_at = now
            privacy_request.rejection_reason = (
                _(
                    "The CCPA applies to California residents only; the state of residence on file is %(state)s."
                )
                % {"state": state}
                if state
                else _("The CCPA applies to California residents only; no California residence is on file.")
            )
    privacy_request.full_clean(
        exclude=["number", "organization", "customer", "created_by"], validate_unique=False
    )
    privacy_request.number = allocate_numbers(model._meta.db_table, organization.pk)
    privacy_request.save()
    if not_applicable:
        email_requester(
            to=privacy_request.requester_email,
            template="not_applicable",
            context={**base_context(privacy_request), "reason": privacy_request.rejection_reason},
        )
    return privacy_request


@transaction.atomic
def request_link_customer(
    *, privacy_request: PrivacyRequest, actor: User | None, customer: Customer
) -> PrivacyRequest:
    """Point an open request at the customer it concerns (when the email did not match one)."""
    require_capability(actor, Capability.PROCESS_PRIVACY_REQUESTS)
    lock(privacy_request)
    require_status(privacy_request, *OPEN_STATUSES)
    if customer.organization_id != privacy_request.organization_id:
        raise ValidationError({"customer": _("Choose a customer of this organization.")})
    if isinstance(privacy_request, CcpaRequest) and customer.state and not is_california(customer.state):
        raise ValidationError(
            {
                "customer": _(
                    "This customer's state on file is %(state)s: the CCPA applies to California residents only. "
                    "Reject the request instead."
                )
                % {"state": customer.state}
            }
        )
    privacy_request.customer = customer
    privacy_request.save(update_fields=["customer", "updated_at"])
    return privacy_request


@transaction.atomic
def request_assign(
    *, privacy_request: PrivacyRequest, actor: User | None, assignee: User | None
) -> PrivacyRequest:
    """Hand a request to a colleague who may process privacy requests (None: unassign)."""
    require_capability(actor, Capability.PROCESS_PRIVACY_REQUESTS)
    lock(privacy_request)
    require_status(privacy_request, *OPEN_STATUSES)
    if assignee is not None and (
        assignee.organization_id != privacy_request.organization_id
        or not assignee.is_active
        or not has_capability(assignee, Capability.PROCESS_PRIVACY_REQUESTS)
    ):
        raise ValidationError(
            {"assigned_to": _("Choose an active colleague who may process privacy requests.")}
        )
    privacy_request.assigned_to = assignee
    privacy_request.save(update_fields=["assigned_to", "updated_at"])
    return privacy_request
