"""Writes of lead capture: the staff's lead forms (create, edit, open / close) and the public submissions.

A submission (`form_submission_create`, no actor: the visitor is nobody's user) creates the customer as a
lead or updates the one with that email, logs a `form_submission` interaction with the form's campaign,
stores the submission, counts it on the form and enrolls the customer in the form's sequence, all in one
transaction: a failure anywhere leaves no half-made lead behind. The customer is written through the
customers services, so numbering, the lifecycle history, the audit trigger and rescoring all happen as for
any other customer.

Existing customers are matched by email, case-insensitively, under the same advisory lock the inbound
support email takes for one address (support/email_in.py), so two submissions from one new address at once,
or a submission racing an inbound email, make one customer. A submission never overwrites what the team
entered: it fills empty fields only, and it can opt a customer in to email (when the visitor ticks the
consent box now) but never out.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils.text import slugify
from django.utils.translation import gettext as _

from compliance.models import ConsentPurpose, ConsentSource
from compliance.services.consent import consent_record
from crm.models import Organization, User
from crm.permissions import Capability, require_capability
from customers.models import Channel, Customer, InteractionType, LifecycleStage
from customers.services.customers import customer_create, customer_update, interaction_log
from marketing.models import Campaign, FormSubmission, LeadForm, Sequence
from marketing.services.sequences import enrollment_create

FIELDS = frozenset(
    {
        "campaign",
        "name",
        "slug",
        "title",
        "intro",
        "fields",
        "consent_text",
        "require_consent",
        "thank_you_text",
        "sequence",
        "is_active",
    }
)
ASKABLE = frozenset(name for name, _label in LeadForm.FIELD_CHOICES)


def _free_slug(organization_id, base: str, *, exclude_pk=None) -> str:
    base = (base or "form")[:70].strip("-") or "form"
    taken = set(
        LeadForm.objects.filter(organization_id=organization_id, slug__startswith=base)
        .exclude(pk=exclude_pk)
        .values_list("slug", flat=True)
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _prepare(lead_form: LeadForm, fields: dict) -> None:
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    campaign: Campaign | None = fields.get("campaign", lead_form.campaign if lead_form.campaign_id else None)
    if campaign is None or campaign.organization_id != lead_form.organization_id:
        raise ValidationError({"campaign": _("Choose a campaign of this organization.")})
    sequence: Sequence | None = fields.get("sequence")
    if sequence is not None and sequence.organization_id != lead_form.organization_id:
        raise ValidationError({"sequence": _("Choose a sequence of this organization.")})
    if "fields" in fields:
        asked = list(dict.fromkeys(fields["fields"] or ()))
        if set(asked) - ASKABLE:
            raise ValidationError({"fields": _("A form can only ask for the listed fields.")})
        fields["fields"] = asked
    for name in ("name", "title", "consent_text"):
        if name in fields:
            fields[name] = (fields[name] or "").strip()
    typed_slug = bool(fields.get("slug"))
    for name, value in fields.items():
        setattr(lead_form, name, value)
    if typed_slug:
        lead_form.slug = slugify(lead_form.slug)[:80]
        if not lead_form.slug:
            raise ValidationError({"slug": _("Use letters, digits and hyphens.")})
        clash = (
            LeadForm.objects.filter(organization_id=lead_form.organization_id, slug=lead_form.slug)
            .exclude(pk=lead_form.pk)
            .exists()
        )
        if clash:
            raise ValidationError({"slug": _("Another form already uses this address.")})
    elif not lead_form.slug:
        lead_form.slug = _free_slug(
            lead_form.organization_id, slugify(lead_form.name), exclude_pk=lead_form.pk
        )
    lead_form.full_clean(
        exclude=["organization", "campaign", "sequence", "created_by"],
        validate_unique=False,
        validate_constraints=False,
    )


@transaction.atomic
def lead_form_create(*, organization: Organization, actor: User | None, **fields) -> LeadForm:
    """A new lead form of one of the organization's campaigns; an empty address is made from the name."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    lead_form = LeadForm(organization=organization, created_by=actor)
    _prepare(lead_form, fields)
    lead_form.save(force_insert=True)
    return lead_form


@transaction.atomic
def lead_form_update(*, lead_form: LeadForm, actor: User | None, **fields) -> LeadForm:
    """Change a lead form. Changing its address breaks links to the old one (the editor says so)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    _prepare(lead_form, fields)
    lead_form.save()
    return lead_form


@transaction.atomic
def lead_form_set_active(*, lead_form: LeadForm, actor: User | None, active: bool) -> LeadForm:
    """Open or close a form to submissions (a closed form's public page answers 404)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    LeadForm.objects.filter(pk=lead_form.pk).update(is_active=active)
    lead_form.is_active = active
    return lead_form


def _lock_address(organization_id, email: str) -> None:
    # The key support/email_in.py takes for one sender: both paths create leads by address.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"customers.email:{organization_id}:{email}"],
        )


def _customer_with_email(organization_id, email: str) -> Customer | None:
    # lower(email) = lower(value): the shape of the partial unique index customers_org_email_ci_key.
    return (
        Customer.objects.alias(email_lower=Lower("email"))
        .filter(organization_id=organization_id, email_lower=email)
        .exclude(email="")
        .first()
    )


def _consent_proof(lead_form: LeadForm, submission: FormSubmission) -> str:
    """The form, the exact wording the visitor agreed to, and the submission (cut to the proof's length)."""
    return (
        _("form “%(name)s”, submission %(id)s: “%(wording)s”")
        % {"name": lead_form.name, "id": submission.pk, "wording": lead_form.consent_text}
    )[:500]


@transaction.atomic
def form_submission_create(
    *, lead_form: LeadForm, values: dict[str, str], consent: bool, ip_address: str | None = None
) -> FormSubmission:
    """Record one visitor's submission of `lead_form` (see the module docstring for what it changes).

    `values` are the public form's cleaned fields: `email` and the fields the form asks for. Raises
    ValidationError (by field) when the form is closed, the email is missing, consent is required and not
    given, or the values do not fit the customer record.
    """
    if not lead_form.is_active:
        raise ValidationError(_("This form is not accepting submissions."))
    email = (values.get("email") or "").strip().lower()
    if not email:
        raise ValidationError({"email": _("Enter your email address.")})
    if lead_form.require_consent and not consent:
        raise ValidationError({"consent": _("Please tick the box to continue.")})
    asked = {
        name: (values.get(name) or "").strip()
        for name in lead_form.fields
        if name in ASKABLE and (values.get(name) or "").strip()
    }
    if "country" in asked:
        asked["country"] = asked["country"].upper()
    organization_id = lead_form.organization_id
    _lock_address(organization_id, email)
    customer = _customer_with_email(organization_id, email)
    created = customer is None
    if created:
        customer = customer_create(
            organization=Organization(pk=organization_id),
            actor=None,
            reason=_("Submitted the form “%(name)s”") % {"name": lead_form.name},
            email=email,
            lifecycle_stage=LifecycleStage.LEAD,
            source=f"form:{lead_form.slug}"[:100],
            **asked,
        )
    elif not customer.processing_restricted:
        # Only what is empty: a visitor's typing never replaces what the team entered.
        changes = {name: value for name, value in asked.items() if not getattr(customer, name)}
        if changes:
            customer = customer_update(customer=customer, actor=None, **changes)
    interaction_log(
        customer=customer,
        actor=None,
        interaction_type=InteractionType.FORM_SUBMISSION,
        channel=Channel.WEB,
        outcome=lead_form.name[:200],
        notes=_("Submitted the form “%(name)s”.") % {"name": lead_form.name},
        campaign_id=lead_form.campaign_id,
    )
    submission = FormSubmission.objects.create(
        organization_id=organization_id,
        form=lead_form,
        customer=customer,
        data={"email": email, **asked},
        consent_given=consent,
        created_customer=created,
    )
    if consent and (created or not customer.processing_restricted):
        # Consent given opts in, recorded with its proof (every ticked box, even a repeated one); no consent
        # leaves the customer's choice as it was (an unticked box is not a withdrawal).
        consent_record(
            customer=customer,
            purpose=ConsentPurpose.EMAIL_MARKETING,
            granted=True,
            source=ConsentSource.FORM,
            proof=_consent_proof(lead_form, submission),
            ip_address=ip_address,
        )
    LeadForm.objects.filter(pk=lead_form.pk).update(submission_count=F("submission_count") + 1)
    if lead_form.sequence_id:
        # Idempotent there (once per sequence and customer); skipped for restricted or erased customers and
        # for a sequence that takes no enrollments (draft, archived).
        enrollment_create(sequence=lead_form.sequence, customer=customer, source="form", actor=None)
    return submission
