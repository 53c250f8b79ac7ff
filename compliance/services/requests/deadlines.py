"""Deadline reminders: a request 7 days from its deadline, and again once it is overdue, notifies its
handler (or, unassigned, the organization's admins) exactly once per level however often the sweep runs.

The level sent is derived from `reminded_at` against `due_at`: NULL = none yet; before the deadline = the
"due soon" one; at or after it = the "overdue" one. Each reminder is claimed by a conditional UPDATE (only
the sweep whose UPDATE matched sends it), so two sweeps at once cannot both notify. An extension clears
`reminded_at`, so the new deadline gets its own reminders.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from compliance.models import OPEN_STATUSES, PrivacyRequest
from compliance.services.requests.common import KINDS, kind_of
from crm.models import Notification, User
from crm.permissions import Role
from crm.services import notification_create

DUE_SOON = timedelta(days=7)


def _recipients(privacy_request: PrivacyRequest) -> list[User]:
    assignee = privacy_request.assigned_to
    if assignee is not None and assignee.is_active:
        return [assignee]
    return list(
        User.objects.filter(organization_id=privacy_request.organization_id, role=Role.ADMIN, is_active=True)
    )


@transaction.atomic
def privacy_deadlines_remind(*, now=None) -> int:
    """Send the due reminders of every open request visible in the current context (a tenant, or the
    platform for the beat sweep); returns how many requests were reminded."""
    now = now or timezone.now()
    sent = 0
    for model in KINDS.values():
        open_requests = model.objects.filter(status__in=OPEN_STATUSES)
        due_soon = open_requests.filter(due_at__gt=now, due_at__lte=now + DUE_SOON, reminded_at__isnull=True)
        overdue = open_requests.filter(due_at__lte=now).filter(
            Q(reminded_at__isnull=True) | Q(reminded_at__lt=F("due_at"))
        )
        for level, candidates in (("due_soon", due_soon), ("overdue", overdue)):
            for privacy_request in candidates.select_related("assigned_to", "organization").order_by(
                "due_at"
            ):
                # The claim: whoever's UPDATE still matches the level's condition sends the reminder.
                claimed = candidates.filter(pk=privacy_request.pk).update(reminded_at=now)
                if not claimed:
                    continue
                _notify(privacy_request, level=level, now=now)
                sent += 1
    return sent


def _notify(privacy_request: PrivacyRequest, *, level: str, now) -> None:
    url = reverse(
        "compliance:request_detail", kwargs={"kind": kind_of(privacy_request), "pk": privacy_request.pk}
    )
    if level == "overdue":
        title = _("%(request)s is overdue") % {"request": privacy_request}
        body = _("Its deadline was %(due)s. Answer the requester or extend the deadline with a reason.") % {
            "due": timezone.localtime(privacy_request.due_at).strftime("%Y-%m-%d %H:%M")
        }
        severity = Notification.Level.DANGER
    else:
        days = max(0, (privacy_request.due_at - now).days)
        title = ngettext(
            "%(request)s is due in %(days)d day", "%(request)s is due in %(days)d days", days
        ) % {
            "request": privacy_request,
            "days": days,
        }
        body = _("%(type)s request from %(name)s.") % {
            "type": privacy_request.get_request_type_display(),
            "name": privacy_request.requester_name or privacy_request.requester_email,
        }
        severity = Notification.Level.WARNING
    for recipient in _recipients(privacy_request):
        notification_create(recipient=recipient, title=title, body=body, url=url, level=severity)
