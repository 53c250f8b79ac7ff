"""Factories of the marketing tests (plain functions, like tests/factories.py). Each area adds its own."""

from __future__ import annotations

from crm.tenancy import tenant_context
from marketing.models import Campaign, EmailTemplate


def email_template(org, **fields) -> EmailTemplate:
    fields.setdefault("name", "Newsletter")
    fields.setdefault("subject", 'Hello {{ customer.first_name|default:"there" }}')
    fields.setdefault(
        "html_body",
        '<p>Hi {{ customer.first_name|default:"there" }},</p><p><a href="https://example.com/offer">Offer</a></p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
    )
    fields.setdefault(
        "text_body", 'Hi {{ customer.first_name|default:"there" }}\nUnsubscribe: {{ unsubscribe_url }}'
    )
    with tenant_context(org.pk):
        return EmailTemplate.objects.create(organization=org, **fields)


def campaign(org, **fields) -> Campaign:
    fields.setdefault("name", "Spring launch")
    fields.setdefault("channels", ["email"])
    with tenant_context(org.pk):
        return Campaign.objects.create(organization=org, **fields)


def sent_email(org, *, campaign, customer, **fields):
    """An email of `campaign` to `customer` that has been sent (status sent, a message id), as the send
    tasks leave it: the row the tracking URLs and webhooks act on. Freezes the campaign's send_at (now)
    if it has none, since a campaign send row carries it as its partition key."""
    import uuid

    from django.utils import timezone

    from marketing.models import EmailSend

    with tenant_context(org.pk):
        if campaign.send_at is None:
            campaign.send_at = timezone.now().replace(microsecond=0)
            Campaign.objects.filter(pk=campaign.pk).update(send_at=campaign.send_at)
        fields.setdefault("status", "sent")
        fields.setdefault("sent_at", campaign.send_at)
        fields.setdefault("message_id", f"<{uuid.uuid4()}@crm.test>")
        fields.setdefault("email", customer.email)
        return EmailSend.objects.create(
            organization=org,
            campaign=campaign,
            customer=customer,
            blast_at=campaign.send_at,
            scheduled_send_time=campaign.send_at,
            **fields,
        )


_new_campaign = campaign  # the factory above; `lead_form` takes a `campaign` argument of the same name


def lead_form(org, *, campaign=None, **fields):
    """A lead form of `campaign` (a new one when not given), accepting submissions, asking for names."""
    from marketing.models import LeadForm

    campaign = campaign or _new_campaign(org, name=f"Campaign of {fields.get('slug', 'newsletter')}")
    fields.setdefault("name", "Newsletter sign-up")
    fields.setdefault("slug", "newsletter")
    fields.setdefault("title", "Get our newsletter")
    fields.setdefault("fields", ["first_name", "last_name", "company_name"])
    with tenant_context(org.pk):
        return LeadForm.objects.create(organization=org, campaign=campaign, **fields)


def ab_test(org, *, campaign, labels=("A", "B"), subjects=None, **fields):
    """An A/B test of `campaign` with one variant per label (subjects "Subject A", ... unless given), the
    first the default; status draft unless given (a running test gets started_at / decide_at from its
    fields)."""
    from marketing.models import ABTest, Variant

    subjects = subjects or [f"Subject {label}" for label in labels]
    with tenant_context(org.pk):
        variants = [
            Variant.objects.create(organization=org, campaign=campaign, label=label, subject=subject)
            for label, subject in zip(labels, subjects, strict=True)
        ]
        fields.setdefault("default_variant", variants[0])
        return ABTest.objects.create(organization=org, campaign=campaign, **fields)


def sequence(org, *, for_campaign=None, steps=(), status="active", **fields):
    """A sequence of `for_campaign` (a new campaign unless given) with `steps`: (kind, {fields}) pairs added
    through the service, then set to `status`."""
    import uuid

    from marketing.services.sequences import sequence_create, sequence_set_status, step_create, step_update

    suffix = uuid.uuid4().hex[:6]
    for_campaign = for_campaign or campaign(org, name=f"Nurture {suffix}")
    fields.setdefault("name", f"Sequence {suffix}")
    with tenant_context(org.pk):
        created = sequence_create(organization=org, actor=None, campaign=for_campaign, **fields)
        # Branch targets must exist: they are set once every step is there.
        made = [
            (
                step_create(sequence=created, actor=None, kind=kind, **{**f, "else_position": None})
                if kind == "branch"
                else step_create(sequence=created, actor=None, kind=kind, **f),
                f,
            )
            for kind, f in steps
        ]
        for step, step_fields in made:
            if step_fields.get("else_position"):
                step_update(step=step, actor=None, **step_fields)
        if status != "draft":
            created = sequence_set_status(sequence=created, actor=None, status=status)
    return created


def segment(org, *members, name=None):
    """A static segment of `org` with `members` (customers), as the segments area leaves it."""
    import uuid

    from customers.models import Segment, SegmentMember

    with tenant_context(org.pk):
        created = Segment.objects.create(
            organization=org, name=name or f"Segment {uuid.uuid4().hex[:6]}", kind="static"
        )
        SegmentMember.objects.bulk_create(
            [SegmentMember(organization=org, segment=created, customer=member) for member in members]
        )
        Segment.objects.filter(pk=created.pk).update(member_count=len(members))
    return created


def email_campaign(org, *, segments=(), template=None, **fields):
    """An email campaign of `org` sending `template` (a new one unless given) to `segments`, not launched."""
    from marketing.models import CampaignSegment

    template = template or email_template(org, name=f"Template {fields.get('name', 'of a campaign')}")
    created = campaign(org, template=template, from_name=fields.pop("from_name", "Acme news"), **fields)
    with tenant_context(org.pk):
        for each in segments:
            CampaignSegment.objects.create(organization=org, campaign=created, segment=each)
    return created


def campaign_touch(customer, *, campaign, at, kind: str = "email_clicked", id=None):
    """An interaction of `customer` naming `campaign` (None: no campaign) at `at`, straight into the log (no
    rescoring); `id` fixes the row id, for tests of ties broken by id."""
    import uuid as uuid_module

    from customers.models import Interaction

    with tenant_context(customer.organization_id):
        return Interaction.objects.create(
            id=id or uuid_module.uuid4(),
            organization_id=customer.organization_id,
            customer=customer,
            interaction_type=kind,
            campaign=campaign,
            interaction_date=at,
        )


def won_deal(org, *, customer, amount, closed_on, currency=None, created_at=None, source_campaign=None):
    """A deal of `customer` won on `closed_on` (a date), forced into the row (status, close date, currency,
    created_at, source campaign) as the sales area leaves a won deal."""
    from decimal import Decimal

    from sales.models import Opportunity
    from tests import factories

    deal = factories.opportunity(org, customer=customer, amount=Decimal(str(amount)))
    changes = {"status": "won", "actual_close_date": closed_on, "currency": currency or org.currency}
    if created_at is not None:
        changes["created_at"] = created_at
    if source_campaign is not None:
        changes["source_campaign"] = source_campaign
    with tenant_context(org.pk):
        Opportunity.objects.filter(pk=deal.pk).update(**changes)
        return Opportunity.objects.get(pk=deal.pk)
