"""Forms of activities: the one-step logger of the deal page, the full create/edit form, and the small
forms of "complete", "snooze" and "follow up". Times are entered in the user's zone (the middleware makes
it the current one), so a naive "datetime-local" value means the user's wall-clock time."""

from __future__ import annotations

import datetime

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from sales.models import Activity
from sales.services.activities import FOLLOW_UP_DEFAULT_DAYS, local_morning

# The deal page's one step: what happened (logged, done) or what is planned (scheduled, open).
ACTIONS: dict[str, tuple[str, bool, object]] = {
    # key: (kind, done, label)
    "log_call": (Activity.Kind.CALL, True, _("Log a call")),
    "log_meeting": (Activity.Kind.MEETING, True, _("Log a meeting")),
    "log_email": (Activity.Kind.EMAIL, True, _("Log an email")),
    "note": (Activity.Kind.NOTE, True, _("Add a note")),
    "task": (Activity.Kind.TASK, False, _("Schedule a task")),
    "call": (Activity.Kind.CALL, False, _("Schedule a call")),
    "meeting": (Activity.Kind.MEETING, False, _("Schedule a meeting")),
}
# Reminder offsets before the due time, in minutes ("" = no reminder).
REMINDER_CHOICES = [
    ("", _("No reminder")),
    ("0", _("At the due time")),
    ("15", _("15 minutes before")),
    ("60", _("1 hour before")),
    ("1440", _("1 day before")),
]
LOCAL_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _owner_field(owners, initial) -> forms.ChoiceField:
    return forms.ChoiceField(
        label=_("Owner"),
        choices=[(str(u.pk), str(u)) for u in owners],
        initial=str(initial.pk) if initial else "",
    )


class ActivityLogForm(forms.Form):
    """Log a call, meeting, email or note, or schedule a task, call or meeting, in one step."""

    action = forms.ChoiceField(
        label=_("What"),
        choices=[(k, label) for k, (_kind, _done, label) in ACTIONS.items()],
        initial="log_call",
    )
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False)
    when = forms.DateTimeField(
        label=_("When"),
        required=False,
        widget=LOCAL_INPUT,
        help_text=_("Empty: now, or tomorrow 9:00 when scheduling."),
    )
    remind = forms.ChoiceField(label=_("Reminder"), choices=REMINDER_CHOICES, required=False)
    outcome = forms.CharField(label=_("Outcome"), max_length=300, required=False)
    description = forms.CharField(
        label=_("Notes"), widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=10000
    )

    def __init__(self, *args, owners=(), actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"] = _owner_field(owners, actor)
        self._owners = {str(u.pk): u for u in owners}

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if not action:
            return data
        kind, done, _label = ACTIONS[action]
        if kind == Activity.Kind.NOTE:
            if not data.get("description"):
                self.add_error("description", _("A note needs some text."))
            elif not data.get("subject"):
                data["subject"] = data["description"].strip().splitlines()[0][:200]
        elif not data.get("subject"):
            self.add_error("subject", _("Give it a subject."))
        when = data.get("when")
        if done and when and when > timezone.now() + datetime.timedelta(minutes=5):
            self.add_error(
                "when", _("Something logged as done cannot be in the future; schedule it instead.")
            )
        return data

    def service_kwargs(self, *, now: datetime.datetime | None = None) -> dict:
        """The keyword arguments of `activity_create` (besides organization, actor and links)."""
        data = self.cleaned_data
        kind, done, _label = ACTIONS[data["action"]]
        now = now or timezone.now()
        zone = timezone.get_current_timezone()
        when = data.get("when")
        if done:
            at = when or now
            return {
                "kind": kind,
                "subject": data["subject"],
                "description": data.get("description", ""),
                "due_at": at,
                "done": True,
                "completed_at": at,
                "outcome": data.get("outcome", ""),
                "owner": self._owners.get(data.get("owner")),
            }
        due = when or local_morning(now.astimezone(zone).date() + datetime.timedelta(days=1), zone)
        remind = data.get("remind")
        return {
            "kind": kind,
            "subject": data["subject"],
            "description": data.get("description", ""),
            "due_at": due,
            "reminder_at": due - datetime.timedelta(minutes=int(remind)) if remind else None,
            "owner": self._owners.get(data.get("owner")),
        }


class ActivityEditForm(forms.Form):
    """Change an activity: subject, notes, due and reminder times, owner; the type while it is open; the
    outcome once it is done."""

    subject = forms.CharField(label=_("Subject"), max_length=200)
    kind = forms.ChoiceField(label=_("Type"), choices=Activity.Kind.choices)
    due_at = forms.DateTimeField(label=_("Due"), required=False, widget=LOCAL_INPUT)
    reminder_at = forms.DateTimeField(
        label=_("Remind me at"),
        required=False,
        widget=LOCAL_INPUT,
        help_text=_("An in-app notification and an email, once."),
    )
    outcome = forms.CharField(label=_("Outcome"), max_length=300, required=False)
    description = forms.CharField(
        label=_("Notes"), widget=forms.Textarea(attrs={"rows": 4}), required=False, max_length=10000
    )

    def __init__(self, *args, activity: Activity, owners=(), **kwargs):
        initial = {
            "subject": activity.subject,
            "kind": activity.kind,
            "due_at": timezone.localtime(activity.due_at) if activity.due_at else None,
            "reminder_at": timezone.localtime(activity.reminder_at) if activity.reminder_at else None,
            "outcome": activity.outcome,
            "description": activity.description,
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.activity = activity
        self.fields["owner"] = forms.ChoiceField(
            label=_("Owner"),
            choices=[("", _("Nobody"))] + [(str(u.pk), str(u)) for u in owners],
            initial=str(activity.owner_id or ""),
            required=False,
        )
        self._owners = {str(u.pk): u for u in owners}
        if activity.is_done:
            del self.fields["reminder_at"]
            self.fields["kind"].disabled = True
        else:
            del self.fields["outcome"]
            if activity.kind == Activity.Kind.NOTE:
                self.fields["kind"].disabled = True
            else:
                self.fields["kind"].choices = [c for c in Activity.Kind.choices if c[0] != Activity.Kind.NOTE]

    def changes(self) -> dict:
        """The fields that changed, as `activity_update` takes them."""
        data, changed = self.cleaned_data, {}
        for name in ("subject", "kind", "due_at", "reminder_at", "outcome", "description"):
            if name in self.fields and not self.fields[name].disabled and name in self.changed_data:
                changed[name] = (
                    data.get(name) if data.get(name) is not None else (None if "_at" in name else "")
                )
        if "owner" in self.changed_data:
            changed["owner"] = self._owners.get(data.get("owner") or "")
        return changed


class CompleteForm(forms.Form):
    outcome = forms.CharField(label=_("Outcome"), max_length=300, required=False)


class SnoozeForm(forms.Form):
    until = forms.ChoiceField(label=_("Snooze until"))

    def __init__(self, *args, choices: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["until"].choices = [(key, label) for key, (label, _at) in choices.items()]


class FollowUpForm(forms.Form):
    days = forms.IntegerField(
        label=_("Follow up in (days)"), min_value=0, max_value=365, initial=FOLLOW_UP_DEFAULT_DAYS
    )
