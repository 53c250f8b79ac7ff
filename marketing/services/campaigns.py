"""Writes to campaigns: create, update, status transitions, manual actuals, delete.

The rules live here so the form, the detail page's buttons and any later API apply the same ones:
- a campaign's end date is not before its start date;
- status moves only along ALLOWED_TRANSITIONS (draft → scheduled/active, scheduled → active/paused/draft,
  active → paused/completed, paused → active/completed); anything else is a ValidationError;
- an email campaign needs a template and at least one segment before it is scheduled or made active;
- the send time, template and segments are frozen once the send has started (`send_state` is no longer
  `not_started`): every email_sends row of the campaign carries `send_at` as its partition key;
- only a draft without any email sent, sequences or forms can be deleted.

Every change is recorded in `crm_audit_log` by the database trigger on `campaigns`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal
from types import EllipsisType

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from crm.models import User
from crm.permissions import Capability, require_capability
from customers.models import Segment
from marketing.models import Campaign, CampaignChannel, CampaignSegment, EmailSend, EmailTemplate

Status = Campaign.Status

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.SCHEDULED, Status.ACTIVE}),
    Status.SCHEDULED: frozenset({Status.ACTIVE, Status.PAUSED, Status.DRAFT}),
    Status.ACTIVE: frozenset({Status.PAUSED, Status.COMPLETED}),
    Status.PAUSED: frozenset({Status.ACTIVE, Status.COMPLETED}),
    Status.COMPLETED: frozenset(),
}
# The statuses a new campaign may start in: draft, or any status a draft may move to.
INITIAL_STATUSES = frozenset({Status.DRAFT}) | ALLOWED_TRANSITIONS[Status.DRAFT]
# An email campaign in these statuses must be ready to send (template and audience chosen).
SENDABLE_STATUSES = frozenset({Status.SCHEDULED, Status.ACTIVE})

EDITABLE_FIELDS = frozenset(
    {
        "description",
        "channels",
        "status",
        "owner",
        "start_date",
        "end_date",
        "currency",
        "budget",
        "goal_leads",
        "goal_conversions",
        "goal_revenue",
        "template",
        "segments",
        "from_name",
        "reply_to",
        "send_at",
    }
)
# What the send depends on: frozen once recipients are materialized.
SEND_FIELDS = ("send_at", "template", "segments")


def transition_allowed(current: str, target: str) -> bool:
    return target in ALLOWED_TRANSITIONS.get(current, frozenset())


def next_statuses(campaign: Campaign) -> list[str]:
    """The statuses the campaign may move to from where it is (the detail page's buttons), in order."""
    allowed = ALLOWED_TRANSITIONS.get(campaign.status, frozenset())
    return [value for value in Status.values if value in allowed]


def _check_references(campaign: Campaign, segments: list[Segment] | None) -> None:
    org = campaign.organization_id
    if campaign.owner_id and campaign.owner.organization_id != org:
        raise ValidationError({"owner": _("The owner must be a user of this organization.")})
    if campaign.template_id and campaign.template.organization_id != org:
        raise ValidationError({"template": _("The template must belong to this organization.")})
    if segments and any(s.organization_id != org for s in segments):
        raise ValidationError({"segments": _("Every segment must belong to this organization.")})


def _validate(campaign: Campaign, segment_count: int) -> None:
    """The campaign-level rules (dates, channels, readiness of an email send)."""
    errors: dict[str, list[str]] = {}
    if not campaign.name.strip():
        errors.setdefault("name", []).append(_("Give the campaign a name."))
    unknown = set(campaign.channels) - set(CampaignChannel.values)
    if unknown:
        errors.setdefault("channels", []).append(_("Unknown channel."))
    if not campaign.channels:
        errors.setdefault("channels", []).append(_("Pick at least one channel."))
    if campaign.start_date and campaign.end_date and campaign.end_date < campaign.start_date:
        errors.setdefault("end_date", []).append(_("The end date comes before the start date."))
    if campaign.budget is not None and campaign.budget < 0:
        errors.setdefault("budget", []).append(_("The budget cannot be negative."))
    if CampaignChannel.EMAIL in campaign.channels and campaign.status in SENDABLE_STATUSES:
        if campaign.template_id is None:
            errors.setdefault("template", []).append(
                _("An email campaign needs a template before it can be scheduled.")
            )
        if not segment_count:
            errors.setdefault("segments", []).append(
                _("An email campaign needs at least one segment before it can be scheduled.")
            )
    if errors:
        raise ValidationError(errors)


def _set_segments(campaign: Campaign, segments: list[Segment]) -> None:
    """Make the campaign's segments exactly `segments` (rows removed and added, never rewritten)."""
    wanted = {s.pk for s in segments}
    links = CampaignSegment.objects.filter(organization_id=campaign.organization_id, campaign_id=campaign.pk)
    links.exclude(segment_id__in=wanted).delete()
    present = set(links.values_list("segment_id", flat=True))
    CampaignSegment.objects.bulk_create(
        [
            CampaignSegment(organization_id=campaign.organization_id, campaign_id=campaign.pk, segment_id=pk)
            for pk in wanted - present
        ]
    )


def _segment_count(campaign: Campaign) -> int:
    return CampaignSegment.objects.filter(
        organization_id=campaign.organization_id, campaign_id=campaign.pk
    ).count()


@transaction.atomic
def campaign_create(
    *,
    organization,
    actor: User | None,
    name: str,
    channels: Iterable[str],
    status: str = Status.DRAFT,
    owner: User | EllipsisType | None = ...,
    start_date: datetime.date | None = None,
    end_date: datetime.date | None = None,
    currency: str = "",
    budget: Decimal = Decimal("0"),
    goal_leads: int | None = None,
    goal_conversions: int | None = None,
    goal_revenue: Decimal | None = None,
    template: EmailTemplate | None = None,
    segments: Iterable[Segment] = (),
    from_name: str = "",
    reply_to: str = "",
    send_at: datetime.datetime | None = None,
    description: str = "",
) -> Campaign:
    """A new campaign, owned by `owner` (default: the actor; None: nobody), in the organization's currency
    unless given."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    if status not in INITIAL_STATUSES:
        raise ValidationError({"status": _("A new campaign starts as a draft, scheduled or active.")})
    segments = list(segments)
    campaign = Campaign(
        organization=organization,
        name=name.strip(),
        description=description,
        channels=sorted(set(channels), key=CampaignChannel.values.index),
        status=status,
        owner=actor if owner is ... else owner,
        start_date=start_date,
        end_date=end_date,
        currency=currency or organization.currency,
        budget=budget if budget is not None else Decimal("0"),
        goal_leads=goal_leads,
        goal_conversions=goal_conversions,
        goal_revenue=goal_revenue,
        template=template,
        from_name=from_name.strip(),
        reply_to=reply_to.strip(),
        send_at=send_at,
        created_by=actor,
    )
    _check_references(campaign, segments)
    _validate(campaign, len(segments))
    campaign.full_clean(validate_unique=False, validate_constraints=False)
    campaign.save(force_insert=True)
    _set_segments(campaign, segments)
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, actor: User | None, name: str | None = None, **fields) -> Campaign:
    """Change a campaign. A new `status` must be an allowed transition; the send fields are refused once
    the send has started. Returns the saved row (a fresh instance: `campaign` is only read for its id)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    # Lock the row: the send tasks move send_state under the same lock, so "has the send started?" is
    # answered against the committed state, not a stale copy.
    stored = (
        Campaign.objects.select_for_update()
        .select_related("organization")
        .get(pk=campaign.pk, organization_id=campaign.organization_id)
    )
    segments = fields.pop("segments", None)
    segments = list(segments) if segments is not None else None
    current_segments = set(
        CampaignSegment.objects.filter(
            organization_id=stored.organization_id, campaign_id=stored.pk
        ).values_list("segment_id", flat=True)
    )
    if stored.send_state != Campaign.SendState.NOT_STARTED:
        frozen = {}
        if "send_at" in fields and fields["send_at"] != stored.send_at:
            frozen["send_at"] = _("The send has started: its time can no longer change.")
        if "template" in fields and getattr(fields["template"], "pk", None) != stored.template_id:
            frozen["template"] = _("The send has started: its template can no longer change.")
        if segments is not None and {s.pk for s in segments} != current_segments:
            frozen["segments"] = _("The send has started: its segments can no longer change.")
        if frozen:
            raise ValidationError(frozen)
    status = fields.pop("status", stored.status)
    if status != stored.status and not transition_allowed(stored.status, status):
        raise ValidationError(
            {
                "status": _("A campaign cannot go from %(from)s to %(to)s.")
                % {"from": stored.get_status_display(), "to": Status(status).label}
            }
        )
    stored.status = status
    if name is not None:
        stored.name = name.strip()
    if "channels" in fields:
        fields["channels"] = sorted(set(fields["channels"]), key=CampaignChannel.values.index)
    for field, value in fields.items():
        setattr(stored, field, value)
    if stored.budget is None:
        stored.budget = Decimal("0")
    if not stored.currency:
        stored.currency = stored.organization.currency
    _check_references(stored, segments)
    _validate(stored, len(segments) if segments is not None else len(current_segments))
    stored.full_clean(validate_unique=False, validate_constraints=False)
    stored.save()
    if segments is not None:
        _set_segments(stored, segments)
    return stored


@transaction.atomic
def campaign_set_status(*, campaign: Campaign, actor: User | None, status: str) -> Campaign:
    """Move a campaign to `status` along an allowed transition (the detail page's buttons)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    if status not in Status.values:
        raise ValidationError({"status": _("Unknown status.")})
    stored = Campaign.objects.select_for_update().get(
        pk=campaign.pk, organization_id=campaign.organization_id
    )
    if status == stored.status:
        return stored
    if not transition_allowed(stored.status, status):
        raise ValidationError(
            {
                "status": _("A campaign cannot go from %(from)s to %(to)s.")
                % {"from": stored.get_status_display(), "to": Status(status).label}
            }
        )
    stored.status = status
    _validate(stored, _segment_count(stored))
    stored.save(update_fields=["status", "updated_at"])
    return stored


@transaction.atomic
def campaign_record_actuals(
    *, campaign: Campaign, actor: User | None, impressions: int, clicks: int, conversions: int
) -> Campaign:
    """Enter the actuals of the channels that are not tracked here (ads, social, events, ...).

    Email opens and clicks are counted per recipient in `opened_count` / `clicked_count` by tracking and
    never touch these three columns, so entering them by hand cannot overwrite a tracked number."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    errors = {
        field: _("Enter a whole number of at least 0.")
        for field, value in (("impressions", impressions), ("clicks", clicks), ("conversions", conversions))
        if value is None or value < 0
    }
    if errors:
        raise ValidationError(errors)
    stored = Campaign.objects.select_for_update().get(
        pk=campaign.pk, organization_id=campaign.organization_id
    )
    stored.impressions, stored.clicks, stored.conversions = impressions, clicks, conversions
    stored.save(update_fields=["impressions", "clicks", "conversions", "updated_at"])
    return stored


@transaction.atomic
def campaign_delete(*, campaign: Campaign, actor: User | None) -> None:
    """Delete a draft that never sent an email and has no sequences or forms (their history would go with
    it: a campaign that did anything is completed instead). Its cost entries and segments go with it."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    stored = Campaign.objects.select_for_update().get(
        pk=campaign.pk, organization_id=campaign.organization_id
    )
    if stored.status != Status.DRAFT:
        raise ValidationError(_("Only a draft campaign can be deleted; complete this one instead."))
    org = stored.organization_id
    if stored.send_state != Campaign.SendState.NOT_STARTED or (
        EmailSend.objects.filter(organization_id=org, campaign_id=stored.pk).exists()
    ):
        raise ValidationError(_("This campaign has sent emails, so it cannot be deleted."))
    if (
        stored.sequences.filter(organization_id=org).exists()
        or stored.forms.filter(organization_id=org).exists()
    ):
        raise ValidationError(_("Remove the campaign's sequences and forms before deleting it."))
    stored.delete()
