"""Writes to activities: create, update, complete (with a one-click follow-up), snooze, delete; the reminder
delivery and the no-activity follow-up rule that beat runs.

An activity is a call, meeting, email, task or note on an opportunity and/or a customer. The customer
timeline (`interaction_logs`) gets one interaction per call, meeting, email or note at the moment it is
*done* (a note is done when written; a call logged as held is done at once; a scheduled one when it is
completed), never a second time: completion takes the row lock and returns early when the activity is
already done. Tasks are work, not contact with the customer, and never reach the timeline.

Creating and completing an activity marks the deal as touched (`opportunity_touch`), which resets the
no-activity rule's clock. The rule's own tasks do not: a task the system wrote is not activity.
"""

from __future__ import annotations

import datetime
import zoneinfo

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mass_mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Notification, Organization, User
from crm.permissions import Capability, has_capability
from customers.models import Customer, InteractionType
from customers.segments.membership import UUID7_SQL
from sales.models import Activity, Opportunity
from sales.services.opportunities import opportunity_touch
from sales.services.pipelines import sales_settings_for

# The customer-timeline type of each kind that is contact with the customer (tasks are not).
INTERACTION_TYPES: dict[str, str] = {
    Activity.Kind.CALL: InteractionType.CALL,
    Activity.Kind.MEETING: InteractionType.MEETING,
    Activity.Kind.EMAIL: InteractionType.EMAIL_SENT,
    Activity.Kind.NOTE: InteractionType.NOTE,
}
# Completing one of these offers a follow-up task in one click.
FOLLOW_UP_KINDS = frozenset({Activity.Kind.CALL, Activity.Kind.MEETING})
FOLLOW_UP_DEFAULT_DAYS = 3
# Follow-up tasks and snoozes land at this local hour: the start of a working day, not the current minute.
WORKDAY_START = datetime.time(9, 0)
EDITABLE_FIELDS = frozenset({"subject", "description", "due_at", "reminder_at", "owner", "outcome", "kind"})
REMINDER_BATCH = 500


def _require(actor: User | None, capability: Capability) -> None:
    if actor is not None and not has_capability(actor, capability):
        raise PermissionDenied


def user_zone(user: User | None, organization: Organization | None = None) -> zoneinfo.ZoneInfo:
    """The zone a user reads times in: their own, else their organization's, else UTC."""
    name = getattr(user, "time_zone", "") or ""
    if not name:
        org = organization if organization is not None else getattr(user, "organization", None)
        name = getattr(org, "time_zone", "") or ""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_morning(day: datetime.date, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    """`day` at the start of the working day in `zone`, as an aware datetime."""
    return datetime.datetime.combine(day, WORKDAY_START, tzinfo=zone)


def offers_follow_up(activity: Activity) -> bool:
    return activity.kind in FOLLOW_UP_KINDS and activity.completed_at is not None


def _check_references(
    organization_id, *, opportunity: Opportunity | None, customer: Customer | None, owner: User | None
) -> None:
    if opportunity is not None and opportunity.organization_id != organization_id:
        raise ValidationError({"opportunity": _("The opportunity must belong to this organization.")})
    if customer is not None and customer.organization_id != organization_id:
        raise ValidationError({"customer": _("The customer must belong to this organization.")})
    if owner is not None and (owner.organization_id != organization_id or not owner.is_active):
        raise ValidationError({"owner": _("The owner must be an active user of this organization.")})


def _log_interaction(activity: Activity, *, actor: User | None) -> None:
    """Put a done call, meeting, email or note on its customer's timeline, naming the deal it belongs to."""
    interaction_type = INTERACTION_TYPES.get(activity.kind)
    if interaction_type is None or activity.customer_id is None:
        return
    from customers.services.customers import interaction_log

    lines = [activity.subject]
    if activity.description:
        lines.append(activity.description)
    if activity.opportunity_id:
        lines.append(_("Opportunity: %(name)s") % {"name": activity.opportunity.name})
    customer = activity.customer
    interaction_log(
        customer=customer,
        actor=actor,
        interaction_type=interaction_type,
        outcome=activity.outcome[:200],
        notes="\n".join(lines),
        interaction_date=activity.completed_at,
    )


@transaction.atomic
def activity_create(
    *,
    organization: Organization,
    actor: User | None,
    kind: str,
    subject: str,
    opportunity: Opportunity | None = None,
    customer: Customer | None = None,
    description: str = "",
    due_at: datetime.datetime | None = None,
    reminder_at: datetime.datetime | None = None,
    owner: User | None = None,
    done: bool = False,
    completed_at: datetime.datetime | None = None,
    outcome: str = "",
    follow_up_of: Activity | None = None,
) -> Activity:
    """Schedule an activity, or log one that already happened (`done`; a note always is).

    With only an opportunity, its customer is the activity's customer too, so the activity reaches the
    customer's timeline. The owner defaults to the actor.
    """
    _require(actor, Capability.EDIT_OPPORTUNITIES)
    if opportunity is None and customer is None:
        raise ValidationError(_("Link the activity to an opportunity or a customer."))
    if customer is None:
        customer = opportunity.customer
    owner = owner if owner is not None else actor
    _check_references(organization.pk, opportunity=opportunity, customer=customer, owner=owner)
    now = timezone.now()
    done = done or kind == Activity.Kind.NOTE
    activity = Activity(
        organization=organization,
        opportunity=opportunity,
        customer=customer,
        kind=kind,
        subject=(subject or "").strip(),
        description=description,
        due_at=due_at,
        reminder_at=None if done else reminder_at,
        owner=owner,
        created_by=actor,
        completed_at=(completed_at or now) if done else None,
        outcome=outcome if done else "",
        follow_up_of=follow_up_of,
        created_at=now,
    )
    activity.full_clean(
        exclude=["organization", "opportunity", "customer", "owner", "created_by", "follow_up_of"]
    )
    activity.save(force_insert=True)
    if opportunity is not None:
        opportunity_touch(opportunity_id=opportunity.pk, organization_id=organization.pk, at=now)
    if done:
        _log_interaction(activity, actor=actor)
    return activity


def _locked(activity: Activity) -> Activity:
    return (
        Activity.objects.select_for_update(of=("self",))
        .select_related("opportunity", "customer", "owner")
        .get(pk=activity.pk, organization_id=activity.organization_id)
    )


@transaction.atomic
def activity_update(*, activity: Activity, actor: User | None, **fields) -> Activity:
    """Change an activity. A new reminder time arms the reminder again (it fires once per time set)."""
    _require(actor, Capability.EDIT_OPPORTUNITIES)
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    stored = _locked(activity)
    # The kind decides what reached the customer timeline; a done activity keeps the one it logged.
    if (
        "kind" in fields
        and fields["kind"] != stored.kind
        and (stored.completed_at is not None or Activity.Kind.NOTE in (fields["kind"], stored.kind))
    ):
        raise ValidationError({"kind": _("The type of a done activity, or a note, cannot change.")})
    if "owner" in fields:
        _check_references(stored.organization_id, opportunity=None, customer=None, owner=fields["owner"])
    if "reminder_at" in fields and fields["reminder_at"] != stored.reminder_at:
        stored.reminded_at = None
    for name, value in fields.items():
        setattr(stored, name, value)
    if stored.completed_at is not None:
        stored.reminder_at = None
    else:
        stored.outcome = ""
    stored.full_clean(
        exclude=["organization", "opportunity", "customer", "owner", "created_by", "follow_up_of"]
    )
    stored.save()
    return stored


@transaction.atomic
def activity_complete(*, activity: Activity, actor: User | None, outcome: str = "") -> Activity:
    """Mark an activity done with its outcome; a call, meeting or email goes on the customer timeline.

    Completing twice (a double click, two tabs) changes nothing the second time: the row lock orders
    the two, and the second finds the activity done and returns it as it is, logging nothing again.
    """
    _require(actor, Capability.EDIT_OPPORTUNITIES)
    stored = _locked(activity)
    if stored.completed_at is not None:
        return stored
    now = timezone.now()
    stored.completed_at = now
    stored.outcome = (outcome or "").strip()[:300]
    stored.save(update_fields=["completed_at", "outcome", "updated_at"])
    if stored.opportunity_id:
        opportunity_touch(
            opportunity_id=stored.opportunity_id, organization_id=stored.organization_id, at=now
        )
    _log_interaction(stored, actor=actor)
    return stored


@transaction.atomic
def activity_follow_up_create(
    *, activity: Activity, actor: User | None, days: int = FOLLOW_UP_DEFAULT_DAYS
) -> Activity:
    """The one-click follow-up of a done call or meeting: a task "Follow up: <subject>" due in `days`
    days at the start of the working day (the actor's zone), for the same deal, customer and owner.

    One per activity: a second click returns the task the first one made.
    """
    _require(actor, Capability.EDIT_OPPORTUNITIES)
    if not 0 <= days <= 365:
        raise ValidationError({"days": _("Choose between 0 and 365 days.")})
    source = _locked(activity)
    if not offers_follow_up(source):
        raise ValidationError(_("Only a done call or meeting offers a follow-up task."))
    existing = source.follow_ups.filter(kind=Activity.Kind.TASK).order_by("created_at", "id").first()
    if existing is not None:
        return existing
    zone = user_zone(actor, source.organization if actor is None else None)
    today = timezone.now().astimezone(zone).date()
    owner = source.owner if source.owner is not None and source.owner.is_active else actor
    subject = _("Follow up: %(subject)s") % {"subject": source.subject}
    return activity_create(
        organization=source.organization,
        actor=actor,
        kind=Activity.Kind.TASK,
        subject=subject[:200],
        opportunity=source.opportunity,
        customer=source.customer,
        due_at=local_morning(today + datetime.timedelta(days=days), zone),
        owner=owner,
        follow_up_of=source,
    )


@transaction.atomic
def activity_snooze(*, activity: Activity, actor: User | None, until: datetime.datetime) -> Activity:
    """Move an open activity's due time to `until`; a reminder it had moves with it and is armed again."""
    _require(actor, Capability.EDIT_OPPORTUNITIES)
    stored = _locked(activity)
    if stored.completed_at is not None:
        raise ValidationError(_("A done activity cannot be snoozed."))
    stored.due_at = until
    if stored.reminder_at is not None:
        stored.reminder_at, stored.reminded_at = until, None
    stored.save(update_fields=["due_at", "reminder_at", "reminded_at", "updated_at"])
    return stored


def snooze_choices(
    *, now: datetime.datetime, zone: zoneinfo.ZoneInfo
) -> dict[str, tuple[str, datetime.datetime]]:
    """What "snooze" offers: {key: (label, until)}, computed in the user's zone."""
    today = now.astimezone(zone).date()
    next_monday = today + datetime.timedelta(days=7 - today.weekday())
    return {
        "1h": (_("1 hour"), now + datetime.timedelta(hours=1)),
        "tomorrow": (_("Tomorrow morning"), local_morning(today + datetime.timedelta(days=1), zone)),
        "3d": (_("In 3 days"), local_morning(today + datetime.timedelta(days=3), zone)),
        "next_week": (_("Next Monday"), local_morning(next_monday, zone)),
    }


@transaction.atomic
def activity_delete(*, activity: Activity, actor: User | None) -> None:
    """Delete an activity (its owner, its author, or a sales manager or admin). What it put on the customer
    timeline stays there: the timeline is a record of what happened."""
    _require(actor, Capability.EDIT_OPPORTUNITIES)
    if actor is not None and not (
        has_capability(actor, Capability.VIEW_ALL_OPPORTUNITIES)
        or actor.pk in (activity.owner_id, activity.created_by_id)
    ):
        raise PermissionDenied
    Activity.objects.filter(pk=activity.pk, organization_id=activity.organization_id).delete()


# --- reminders (beat, every minute) ---------------------------------------------------------------------------

# Claim the due reminders of one organization and stamp them, in one statement. Two runs at once (beat
# overlapping a slow run, two workers): the second's UPDATE waits for the first's row locks, then
# re-checks `reminded_at IS NULL` on the committed row and skips it, so each reminder is claimed once.
# The claim, the notifications and the emails' enqueueing share one transaction: a run that fails
# before commit leaves the reminders unclaimed for the next minute's run.
_CLAIM_SQL = """
UPDATE opportunity_activities a SET reminded_at = %(now)s
FROM (
    SELECT id FROM opportunity_activities
    WHERE organization_id = %(org)s AND reminder_at <= %(now)s
      AND reminded_at IS NULL AND completed_at IS NULL
    ORDER BY reminder_at, id
    LIMIT %(limit)s
) due
WHERE a.id = due.id AND a.organization_id = %(org)s AND a.reminded_at IS NULL AND a.completed_at IS NULL
RETURNING a.id
"""


def _reminder_text(activity: Activity, zone: zoneinfo.ZoneInfo) -> tuple[str, str]:
    title = _("Reminder: %(subject)s") % {"subject": activity.subject}
    parts = [activity.get_kind_display()]
    if activity.due_at:
        due = activity.due_at.astimezone(zone)
        parts.append(_("due %(when)s") % {"when": due.strftime("%Y-%m-%d %H:%M %Z")})
    if activity.opportunity_id:
        parts.append(activity.opportunity.name)
    elif activity.customer_id:
        parts.append(activity.customer.display_name)
    return title[:200], " · ".join(parts)


def activity_reminders_deliver(
    *, organization_id, now: datetime.datetime | None = None, limit: int = REMINDER_BATCH
) -> int:
    """Deliver the organization's due reminders: each once, as an in-app notification to the activity's
    owner and an email after commit. Returns how many were claimed (owners who left get nothing)."""
    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, {"now": now, "org": organization_id, "limit": limit})
            claimed = [row[0] for row in cursor.fetchall()]
        if not claimed:
            return 0
        activities = list(
            Activity.objects.filter(organization_id=organization_id, pk__in=claimed)
            .select_related("owner", "owner__organization", "opportunity", "customer")
            .order_by("reminder_at", "id")
        )
        notifications, emails = [], []
        base = getattr(settings, "CRM_BASE_URL", "").rstrip("/")
        for activity in activities:
            owner = activity.owner
            if owner is None or not owner.is_active:
                continue
            title, body = _reminder_text(activity, user_zone(owner))
            url = _activity_url(activity)
            notifications.append(
                Notification(
                    organization_id=organization_id,
                    recipient=owner,
                    title=title,
                    body=body,
                    url=url,
                    level=Notification.Level.INFO,
                    created_at=now,
                )
            )
            emails.append((title, f"{body}\n\n{base}{url}\n", settings.DEFAULT_FROM_EMAIL, [owner.email]))
        Notification.objects.bulk_create(notifications)
        if emails:
            transaction.on_commit(lambda: send_mass_mail(emails, fail_silently=False), robust=True)
    return len(claimed)


def _activity_url(activity: Activity) -> str:
    if activity.opportunity_id:
        return (
            reverse("sales:opportunity_detail", kwargs={"pk": activity.opportunity_id})
            + "#activities-heading"
        )
    return reverse("sales:my_day")


# --- the no-activity rule (beat, hourly) ----------------------------------------------------------------------

# One statement per organization: every open deal idle for `days` (idle since = its last activity, else
# its creation) gets a follow-up task for its owner. The rule key names the deal and the day its idle
# spell began, and is unique per organization, so a second run for the same spell inserts nothing (ON
# CONFLICT DO NOTHING), while activity on the deal starts a new spell with a new key.
_NO_ACTIVITY_SQL = f"""
INSERT INTO opportunity_activities
    (id, organization_id, opportunity_id, customer_id, kind, subject, description, due_at, reminder_at,
     reminded_at, owner_id, created_by_id, completed_at, outcome, follow_up_of_id, rule_key, created_at,
     updated_at)
SELECT {UUID7_SQL}, o.organization_id, o.id, o.customer_id, 'task',
       left(%(prefix)s || o.name, 200),
       %(description)s || to_char(coalesce(o.last_activity_at, o.created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
       %(now)s, NULL, NULL, o.assigned_to_id, NULL, NULL, '', NULL,
       'no_activity:' || o.id::text || ':'
           || to_char(coalesce(o.last_activity_at, o.created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
       %(now)s, %(now)s
FROM opportunities o
WHERE o.organization_id = %(org)s AND o.status = 'open'
  AND coalesce(o.last_activity_at, o.created_at) <= %(idle_before)s
ON CONFLICT (organization_id, rule_key) WHERE rule_key <> '' DO NOTHING
"""


def no_activity_followups_create(*, organization_id, now: datetime.datetime | None = None) -> int:
    """Give every open deal of the organization idle for the organization's `no_activity_days` one
    follow-up task for its owner, once per idle spell. Returns how many tasks were created."""
    now = now or timezone.now()
    with transaction.atomic():
        days = sales_settings_for(organization_id).no_activity_days
        params = {
            "org": organization_id,
            "now": now,
            "idle_before": now - datetime.timedelta(days=days),
            "prefix": _("Follow up: "),
            "description": _("No activity on this deal since "),
        }
        with connection.cursor() as cursor:
            cursor.execute(_NO_ACTIVITY_SQL, params)
            return cursor.rowcount


# --- customer merge (customers/merging.py) ----------------------------------------------------------------------


def activities_reassign(*, organization_id, source_id, target_id) -> int:
    """Merging customers: the activities of the customer that goes away move to the one that stays (they
    would otherwise be deleted with it: the foreign key cascades)."""
    return Activity.objects.filter(organization_id=organization_id, customer_id=source_id).update(
        customer_id=target_id, updated_at=timezone.now()
    )


def activities_count(*, organization_id, customer_id) -> int:
    return Activity.objects.filter(organization_id=organization_id, customer_id=customer_id).count()
