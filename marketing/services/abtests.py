"""A/B tests of a campaign's email: configuring the test and its variants, starting it with the send, and
deciding it (then sending the chosen variant to the rest of the audience).

Life of a test: configured while the campaign has not started sending (`abtest_configure`, `variant_*`,
MANAGE_CAMPAIGNS); the send's materialization splits the audience (marketing/sending.py: the sample rows
`in_test` with a variant, status queued; the rest `held` without one) and the send start calls
`abtest_start`, which sets `decide_at`; `abtest_decide` (the beat task once due, or "decide now" by hand)
counts the sample, runs the significance test (marketing/abtest.py), stores the result and releases the
held rows with the winner, or the default variant when inconclusive, in one set-based UPDATE.
"""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Organization, User
from crm.permissions import Capability, require_capability
from marketing import abtest, merge
from marketing.models import ABTest, Campaign, EmailTemplate, SendStatus, Variant

LABELS = "ABCDE"  # at most five variants, labelled in order
MIN_VARIANTS = 2


def _locked_campaign(campaign: Campaign) -> Campaign:
    """The campaign's row, locked: configuring a test and launching the send exclude each other."""
    return Campaign.objects.select_for_update().get(organization_id=campaign.organization_id, pk=campaign.pk)


def is_editable(campaign: Campaign, ab_test: ABTest | None) -> bool:
    """A test can be changed only before the send starts (afterwards recipients are split)."""
    return campaign.send_state == Campaign.SendState.NOT_STARTED and (
        ab_test is None or ab_test.status == ABTest.Status.DRAFT
    )


def _check_editable(campaign: Campaign) -> ABTest | None:
    ab_test = ABTest.objects.filter(organization_id=campaign.organization_id, campaign=campaign).first()
    if not is_editable(campaign, ab_test):
        raise ValidationError(_("The A/B test cannot be changed once the campaign has started sending."))
    return ab_test


def _content(variant: Variant, campaign: Campaign, templates: dict) -> tuple[str, uuid.UUID | None]:
    """What a recipient of the variant gets: its subject and body (the template), the campaign's where
    the variant leaves them empty."""
    template_id = variant.template_id or campaign.template_id
    template = templates.get(template_id)
    return (variant.subject.strip() or (template.subject if template else ""), template_id)


def _templates_of(campaign: Campaign, variants: list[Variant]) -> dict:
    ids = {campaign.template_id, *(v.template_id for v in variants)} - {None}
    return {
        t.pk: t for t in EmailTemplate.objects.filter(organization_id=campaign.organization_id, pk__in=ids)
    }


def duplicate_of(variant: Variant, campaign: Campaign, others: list[Variant]) -> Variant | None:
    """Another variant that sends exactly the same subject and body as `variant`, if any."""
    templates = _templates_of(campaign, [variant, *others])
    mine = _content(variant, campaign, templates)
    for other in others:
        if other.pk != variant.pk and _content(other, campaign, templates) == mine:
            return other
    return None


def abtest_problems(*, campaign: Campaign) -> list[str]:
    """Why the campaign's A/B test cannot run as configured (empty: it can, or there is no test). The send
    launch refuses to start while this is not empty; the test page shows the same list."""
    ab_test = ABTest.objects.filter(organization_id=campaign.organization_id, campaign=campaign).first()
    if ab_test is None:
        return []
    problems = []
    variants = list(Variant.objects.filter(organization_id=campaign.organization_id, campaign=campaign))
    if len(variants) < MIN_VARIANTS:
        problems.append(_("An A/B test needs at least two variants."))
    templates = _templates_of(campaign, variants)
    seen: dict[tuple, Variant] = {}
    for variant in variants:
        content = _content(variant, campaign, templates)
        if content in seen:
            problems.append(
                _("Variant %(label)s is the same as variant %(other)s: give it another subject or template.")
                % {"label": variant.label, "other": seen[content].label}
            )
        else:
            seen[content] = variant
        template = templates.get(variant.template_id)
        if template is not None and template.is_archived:
            problems.append(
                _("Variant %(label)s uses the archived template “%(name)s”.")
                % {"label": variant.label, "name": template.name}
            )
    if ab_test.default_variant_id is None:
        problems.append(_("Choose the variant to send when the test is inconclusive."))
    return problems


@transaction.atomic
def abtest_configure(
    *,
    campaign: Campaign,
    actor: User | None,
    enabled: bool,
    test_share: int = 20,
    metric: str = ABTest.Metric.OPEN_RATE,
    duration_hours: int = 24,
    confidence_level: Decimal = Decimal("0.950"),
    min_sample: int = 100,
    default_variant: Variant | None = None,
) -> ABTest | None:
    """Turn the campaign's A/B test on (with variants A and B to start from) and set its parameters, or
    turn it off (the test and its variants are removed). Only before the send starts."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    campaign = _locked_campaign(campaign)
    ab_test = _check_editable(campaign)
    if not enabled:
        if ab_test is not None:
            ab_test.delete()
            Variant.objects.filter(organization_id=campaign.organization_id, campaign=campaign).delete()
        return None
    if default_variant is not None and (
        default_variant.campaign_id != campaign.pk
        or default_variant.organization_id != campaign.organization_id
    ):
        raise ValidationError({"default_variant": _("Choose one of this campaign's variants.")})
    fields = {
        "test_share": test_share,
        "metric": metric,
        "duration_hours": duration_hours,
        "confidence_level": confidence_level,
        "min_sample": min_sample,
    }
    if ab_test is None:
        ab_test = ABTest(organization_id=campaign.organization_id, campaign=campaign, **fields)
    else:
        for name, value in fields.items():
            setattr(ab_test, name, value)
    ab_test.full_clean(
        exclude=["organization", "campaign", "default_variant", "winner"], validate_unique=False
    )
    if not Decimal("0.5") <= Decimal(confidence_level) < Decimal("1"):
        raise ValidationError({"confidence_level": _("Choose a confidence level from 50 % to 99.9 %.")})
    variants = list(Variant.objects.filter(organization_id=campaign.organization_id, campaign=campaign))
    if not variants:
        variants = [
            Variant.objects.create(organization_id=campaign.organization_id, campaign=campaign, label=label)
            for label in LABELS[:MIN_VARIANTS]
        ]
    ab_test.default_variant = default_variant or ab_test.default_variant or variants[0]
    ab_test.save()
    return ab_test


def _test_of(campaign: Campaign) -> ABTest:
    ab_test = _check_editable(campaign)
    if ab_test is None:
        raise ValidationError(_("Turn the A/B test on first."))
    return ab_test


def _check_variant(variant: Variant, campaign: Campaign) -> None:
    variant.subject = variant.subject.strip()
    try:
        merge.validate(variant.subject)
    except ValidationError as error:
        raise ValidationError({"subject": error.messages}) from error
    if variant.template_id is not None:
        template = EmailTemplate.objects.filter(
            organization_id=campaign.organization_id, pk=variant.template_id
        ).first()
        if template is None:
            raise ValidationError({"template": _("Choose one of your email templates.")})
        if template.is_archived:
            raise ValidationError({"template": _("This template is archived; choose another one.")})
    variant.full_clean(exclude=["organization", "campaign", "template"], validate_unique=False)
    others = list(
        Variant.objects.filter(organization_id=campaign.organization_id, campaign=campaign).exclude(
            pk=variant.pk
        )
    )
    same = duplicate_of(variant, campaign, others)
    if same is not None:
        raise ValidationError(
            _("This is the same as variant %(label)s: change the subject or the template.")
            % {"label": same.label}
        )


@transaction.atomic
def variant_create(
    *, campaign: Campaign, actor: User | None, subject: str = "", template: EmailTemplate | None = None
) -> Variant:
    """Add the next variant (C, D, E) to the campaign's test; it must differ from the others."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    campaign = _locked_campaign(campaign)
    _test_of(campaign)
    taken = set(
        Variant.objects.filter(organization_id=campaign.organization_id, campaign=campaign).values_list(
            "label", flat=True
        )
    )
    free = [label for label in LABELS if label not in taken]
    if not free:
        raise ValidationError(_("An A/B test has at most %(count)s variants.") % {"count": len(LABELS)})
    variant = Variant(
        organization_id=campaign.organization_id,
        campaign=campaign,
        label=free[0],
        subject=subject,
        template=template,
    )
    _check_variant(variant, campaign)
    variant.save(force_insert=True)
    return variant


@transaction.atomic
def variant_update(
    *, variant: Variant, actor: User | None, subject: str, template: EmailTemplate | None
) -> Variant:
    """Change a variant's subject and/or template (empty: the campaign's); it must differ from the others."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    campaign = _locked_campaign(variant.campaign)
    _test_of(campaign)
    variant.subject, variant.template = subject, template
    _check_variant(variant, campaign)
    variant.save(update_fields=["subject", "template"])
    return variant


@transaction.atomic
def variant_delete(*, variant: Variant, actor: User | None) -> None:
    """Remove a variant (a test keeps at least two; the default moves to the first remaining one)."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    campaign = _locked_campaign(variant.campaign)
    ab_test = _test_of(campaign)
    remaining = list(
        Variant.objects.filter(organization_id=campaign.organization_id, campaign=campaign).exclude(
            pk=variant.pk
        )
    )
    if len(remaining) < MIN_VARIANTS:
        raise ValidationError(
            _("An A/B test needs at least two variants; turn the test off to send one version to everyone.")
        )
    if ab_test.default_variant_id == variant.pk:
        ab_test.default_variant = remaining[0]
        ab_test.save(update_fields=["default_variant"])
    variant.delete()


# --- Running and deciding ----------------------------------------------------------------------------------


@transaction.atomic
def abtest_start(*, campaign: Campaign, now: datetime.datetime | None = None) -> ABTest | None:
    """The hook the send start calls once the audience is split: the test runs from now for its duration
    (`decide_at`). Idempotent: a test already started keeps its times. None when the campaign has no test."""
    ab_test = (
        ABTest.objects.select_for_update()
        .filter(organization_id=campaign.organization_id, campaign_id=campaign.pk)
        .first()
    )
    if ab_test is None or ab_test.status != ABTest.Status.DRAFT:
        return ab_test
    now = now or timezone.now()
    ab_test.status = ABTest.Status.RUNNING
    ab_test.started_at = now
    ab_test.decide_at = now + datetime.timedelta(hours=ab_test.duration_hours)
    ab_test.save(update_fields=["status", "started_at", "decide_at"])
    return ab_test


RELEASE_SQL = """
UPDATE email_sends SET status = %(queued)s, variant_id = %(variant)s, queued_at = %(now)s
WHERE organization_id = %(org)s AND campaign_id = %(campaign)s AND scheduled_send_time = %(send_at)s
  AND step_run_id IS NULL AND status = %(held)s
"""


def _enqueue_sending(campaign: Campaign) -> None:
    """Send the released rows: marketing/sending.py (the sends area) moves the campaign from "A/B test
    running" back to sending and enqueues its chunk tasks when this transaction commits."""
    from marketing.sending import enqueue_send_chunks

    enqueue_send_chunks(campaign.pk, organization_id=campaign.organization_id)


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _metric_text(metric: str, numbers: abtest.VariantNumbers, currency: str) -> str:
    if metric == ABTest.Metric.REVENUE:
        per_recipient = numbers.revenue / numbers.recipients if numbers.recipients else Decimal("0")
        return _("%(amount)s %(currency)s per recipient") % {
            "amount": f"{per_recipient:,.2f}",
            "currency": currency,
        }
    rate = numbers.successes(metric) / numbers.recipients if numbers.recipients else 0.0
    return _percent(rate)


def explain(
    *,
    ab_test: ABTest,
    decision: abtest.Decision,
    labels: dict,
    numbers: dict,
    sent: Variant | None,
    currency: str,
) -> str:
    """The decision in words, for the report panel."""
    metric_name = ABTest.Metric(ab_test.metric).label.lower()
    level = _percent(float(ab_test.confidence_level))
    if decision.reason == abtest.Decision.TOO_FEW_VARIANTS:
        return _("The test had fewer than two variants: variant %(sent)s was sent.") % {
            "sent": sent.label if sent else "—"
        }
    best = decision.best
    summary = _("Variant %(best)s had the highest %(metric)s (%(value)s; %(others)s).") % {
        "best": labels[best],
        "metric": metric_name,
        "value": _metric_text(ab_test.metric, numbers[best], currency),
        "others": ", ".join(
            f"{labels[c.other]} {_metric_text(ab_test.metric, numbers[c.other], currency)}"
            for c in decision.comparisons
        ),
    }
    correction = (
        _(" (Bonferroni-corrected for %(count)s comparisons)") % {"count": len(decision.comparisons)}
        if len(decision.comparisons) > 1
        else ""
    )
    if decision.outcome == abtest.Decision.WINNER:
        return " ".join(
            [
                summary,
                _(
                    "Its lead is significant: confidence %(confidence)s ≥ %(level)s (p = %(p)s%(correction)s). "
                    "Variant %(best)s goes to the rest of the audience."
                )
                % {
                    "confidence": _percent(decision.confidence),
                    "level": level,
                    "p": f"{decision.p_value:.4f}",
                    "correction": correction,
                    "best": labels[best],
                },
            ]
        )
    if decision.reason == abtest.Decision.SMALL_SAMPLE:
        reason = _(
            "Variant(s) %(small)s had fewer recipients than the minimum of %(min)s per variant, too few to "
            "tell."
        ) % {"small": ", ".join(labels[key] for key in decision.small), "min": ab_test.min_sample}
    else:
        reason = _(
            "Its lead is not significant: confidence %(confidence)s < %(level)s (p = %(p)s%(correction)s)."
        ) % {
            "confidence": _percent(decision.confidence),
            "level": level,
            "p": f"{decision.p_value:.4f}",
            "correction": correction,
        }
    return " ".join(
        [summary, reason, _("The default variant %(sent)s was sent.") % {"sent": sent.label if sent else "—"}]
    )


@transaction.atomic
def abtest_decide(
    *, ab_test: ABTest, actor: User | None = None, now: datetime.datetime | None = None
) -> ABTest:
    """Decide a running test and send the chosen variant to the held recipients.

    The beat task (actor None) decides only once `decide_at` has passed; a person with MANAGE_CAMPAIGNS may
    decide early ("decide now"). Exactly once: the test's row is locked and only a running test is
    decided, so a second run (a retried task, two clicks, the task racing a click) finds it decided and
    changes nothing."""
    require_capability(actor, Capability.MANAGE_CAMPAIGNS)
    now = now or timezone.now()
    locked = (
        ABTest.objects.select_for_update()
        .select_related("campaign")
        .get(organization_id=ab_test.organization_id, pk=ab_test.pk)
    )
    if locked.status != ABTest.Status.RUNNING:
        return locked
    if actor is None and (locked.decide_at is None or locked.decide_at > now):
        return locked
    campaign = locked.campaign
    organization = Organization.objects.only("time_zone").get(pk=campaign.organization_id)
    variants = list(Variant.objects.filter(organization_id=campaign.organization_id, campaign=campaign))
    counted = abtest.variant_numbers(campaign=campaign, as_of=now, time_zone=organization.time_zone)
    numbers = {v.pk: counted.get(v.pk) or abtest.VariantNumbers.empty(v.pk) for v in variants}
    decision = abtest.decide(
        [numbers[v.pk].arm(locked.metric, v.label) for v in variants],
        kind=abtest.metric_kind(locked.metric),
        confidence_level=float(locked.confidence_level),
        min_sample=locked.min_sample,
    )
    by_id = {v.pk: v for v in variants}
    winner = by_id.get(decision.winner)
    sent = winner or by_id.get(locked.default_variant_id) or (variants[0] if variants else None)
    for variant in variants:
        counts = numbers[variant.pk]
        variant.recipients = counts.recipients
        variant.successes = counts.successes(locked.metric)
        variant.revenue = counts.revenue
    Variant.objects.bulk_update(variants, ["recipients", "successes", "revenue"])
    locked.status = ABTest.Status.DECIDED if winner else ABTest.Status.INCONCLUSIVE
    locked.winner = winner
    locked.decided_at = now
    locked.p_value = decision.p_value
    locked.confidence = decision.confidence
    locked.explanation = explain(
        ab_test=locked,
        decision=decision,
        labels={v.pk: v.label for v in variants},
        numbers=numbers,
        sent=sent,
        currency=campaign.currency,
    )
    locked.save(update_fields=["status", "winner", "decided_at", "p_value", "confidence", "explanation"])
    released = _release_held(campaign=campaign, variant=sent, now=now)
    if released:
        _enqueue_sending(campaign)
    return locked


def _release_held(*, campaign: Campaign, variant: Variant | None, now: datetime.datetime) -> int:
    """Queue the held rest of the audience with the chosen variant: one set-based UPDATE; returns how many."""
    if variant is None or campaign.send_at is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            RELEASE_SQL,
            {
                "queued": SendStatus.QUEUED,
                "held": SendStatus.HELD,
                "variant": variant.pk,
                "now": now,
                "org": campaign.organization_id,
                "campaign": campaign.pk,
                "send_at": campaign.send_at,
            },
        )
        return cursor.rowcount


def due_ab_tests(*, now: datetime.datetime | None = None) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(organization id, test id) of every running test whose decision time has passed, across
    organizations (run in the system context by the beat task)."""
    now = now or timezone.now()
    return list(
        ABTest.objects.filter(status=ABTest.Status.RUNNING, decide_at__lte=now)
        .order_by("decide_at", "pk")
        .values_list("organization_id", "pk")
    )
