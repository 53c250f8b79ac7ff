"""Launching, pausing and resuming a campaign's email send (SEND_CAMPAIGNS).

The states (Campaign.send_state): not_started → scheduled (a send time in the future; the dispatcher starts
it when due) or materializing (now) → sending, or testing while the A/B sample goes out and the rest is held
for the winner → done. Pausing stops further chunks (each chunk task checks the state first; the chunk in
flight finishes); resuming starts the lanes again. The work itself is in marketing/sending.py.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import User
from crm.permissions import Capability, require_capability
from marketing import merge, sending
from marketing.models import Campaign, CampaignChannel, CampaignSegment, EmailSend, SendStatus


def launch_problems(campaign: Campaign) -> list[str]:
    """Why the campaign's email cannot be sent yet (empty: it can): the email channel, a valid template (and
    valid A/B variants), at least one segment, and not already sent."""
    problems = []
    if CampaignChannel.EMAIL not in (campaign.channels or []):
        problems.append(_("The campaign does not use the email channel."))
    # Recipient rows tie themselves to the send time, which launching sets: a campaign that has any (a
    # launch that ran before) is never launched again.
    already = EmailSend.objects.filter(campaign_id=campaign.pk, blast_at__isnull=False).exists()
    if campaign.send_state != Campaign.SendState.NOT_STARTED or already:
        problems.append(_("This campaign's email has already been launched."))
    if campaign.template_id is None:
        problems.append(_("Choose an email template."))
    else:
        template = campaign.template
        if template.is_archived:
            problems.append(_("The email template is archived."))
        sources = [template.subject, template.html_body, template.text_body]
        _test, variants = sending.ab_variants(campaign)
        for variant in variants:
            sources.append(variant.subject)
            if variant.template_id:
                sources += [variant.template.subject, variant.template.html_body, variant.template.text_body]
        for source in sources:
            try:
                merge.validate(source)
            except ValidationError as error:
                problems += [_("Template: %(problem)s") % {"problem": message} for message in error.messages]
    if not CampaignSegment.objects.filter(campaign_id=campaign.pk).exists():
        problems.append(_("Choose at least one segment to send to."))
    # The A/B test's own rules (two variants at least, not identical, a default for an inconclusive end).
    from marketing.services.abtests import abtest_problems

    problems += abtest_problems(campaign=campaign)
    return list(dict.fromkeys(problems))


@transaction.atomic
def campaign_send_launch(*, campaign: Campaign, actor: User) -> Campaign:
    """Launch the campaign's email: scheduled when its send time is in the future (the dispatcher starts it),
    otherwise started now (send time frozen to now, recipients materialized by a task). A draft or scheduled
    campaign becomes scheduled / active with it."""
    require_capability(actor, Capability.SEND_CAMPAIGNS)
    campaign = Campaign.objects.select_for_update(of=("self",)).select_related("template").get(pk=campaign.pk)
    problems = launch_problems(campaign)
    if problems:
        raise ValidationError(problems)
    now = timezone.now()
    if campaign.send_at and campaign.send_at > now:
        campaign.send_state = Campaign.SendState.SCHEDULED
        if campaign.status == Campaign.Status.DRAFT:
            campaign.status = Campaign.Status.SCHEDULED
    else:
        # A send time in the past becomes now: it is the partition key of every row, and the truth.
        campaign.send_at = now
        campaign.send_state = Campaign.SendState.MATERIALIZING
        campaign.send_started_at = now
        campaign.materialize_bounds, campaign.materialized_slices = None, []  # planned by the start task
        if campaign.status in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
            campaign.status = Campaign.Status.ACTIVE
        from marketing.tasks.sends import start_campaign_send

        start_campaign_send.delay_on_commit(
            campaign_id=str(campaign.pk), organization_id=str(campaign.organization_id)
        )
    campaign.send_error = ""
    campaign.save(
        update_fields=[
            "send_at",
            "send_state",
            "send_started_at",
            "status",
            "send_error",
            "materialize_bounds",
            "materialized_slices",
            "updated_at",
        ]
    )
    return campaign


@transaction.atomic
def campaign_send_pause(*, campaign: Campaign, actor: User) -> Campaign:
    """Pause a send (no further chunk starts; the one in flight finishes), or take a scheduled send off the
    schedule (back to not started, nothing was materialized)."""
    require_capability(actor, Capability.SEND_CAMPAIGNS)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.send_state == Campaign.SendState.SCHEDULED:
        campaign.send_state = Campaign.SendState.NOT_STARTED
    elif campaign.send_state in sending.ACTIVE_SEND_STATES:
        campaign.send_state = Campaign.SendState.PAUSED
    else:
        raise ValidationError(_("Only a scheduled or running send can be paused."))
    campaign.save(update_fields=["send_state", "updated_at"])
    return campaign


@transaction.atomic
def campaign_send_resume(*, campaign: Campaign, actor: User) -> Campaign:
    """Resume a paused send (or one that failed because the mail server stayed unreachable): the lanes start
    again; with only held rows left it goes back to waiting for the A/B winner."""
    require_capability(actor, Capability.SEND_CAMPAIGNS)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.send_state not in (Campaign.SendState.PAUSED, Campaign.SendState.FAILED):
        raise ValidationError(_("Only a paused send can be resumed."))
    campaign.send_state = Campaign.SendState.SENDING
    campaign.send_error = ""
    campaign.save(update_fields=["send_state", "send_error", "updated_at"])
    has_queued = EmailSend.objects.filter(
        campaign_id=campaign.pk,
        scheduled_send_time=campaign.send_at,
        step_run__isnull=True,
        status=SendStatus.QUEUED,
    ).exists()
    if has_queued:
        sending.enqueue_send_chunks(campaign.pk, organization_id=campaign.organization_id)
    else:
        sending.finish_if_done(campaign_id=campaign.pk, organization_id=campaign.organization_id)
    campaign.refresh_from_db()
    return campaign
