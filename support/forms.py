"""Forms of the agent workspace: the reply / note composer, a new ticket (with its customer picked or created
by email), ticket edits, the one-field actions of the ticket page, bulk actions and canned responses."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crm.models import Department
from support.attachments import validate_upload
from support.models import Channel, Priority, Status, TicketMessage, TicketType

MAX_ATTACHMENTS = 10


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; each is checked by support/attachments.py (type, first bytes, size)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        if len(files) > MAX_ATTACHMENTS:
            raise ValidationError(_("Attach at most %(n)d files at once.") % {"n": MAX_ATTACHMENTS})
        errors = []
        cleaned = []
        for upload in files:
            upload = super().clean(upload, initial)
            try:
                validate_upload(upload)
            except ValidationError as error:
                errors.extend(error.message_dict.get("attachments", error.messages))
            cleaned.append(upload)
        if errors:
            raise ValidationError(errors)
        return cleaned


def _status_choices(blank_label):
    return [("", blank_label), *Status.choices]


class ReplyForm(forms.Form):
    """A public reply or an internal note, with attachments and, optionally, the ticket's next status."""

    kind = forms.ChoiceField(
        choices=TicketMessage.Kind.choices, initial=TicketMessage.Kind.REPLY, widget=forms.RadioSelect
    )
    body = forms.CharField(
        label=_("Message"),
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 6}),
        error_messages={"required": _("Write a message.")},
    )
    attachments = MultipleFileField(label=_("Attachments"))
    set_status = forms.ChoiceField(
        label=_("Then set the status to"), choices=_status_choices(_("Keep the status")), required=False
    )

    def clean_body(self):
        body = self.cleaned_data["body"]
        if not body.strip():
            raise ValidationError(_("Write a message."))
        return body


class TicketCreateForm(forms.Form):
    """A ticket an agent opens (a phone call, a chat): the customer by email — the existing one, or a new
    one with the name given here."""

    email = forms.EmailField(label=_("Customer email"))
    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=100, required=False)
    company_name = forms.CharField(label=_("Company"), max_length=200, required=False)
    subject = forms.CharField(label=_("Subject"), max_length=250)
    description = forms.CharField(
        label=_("Description"), widget=forms.Textarea(attrs={"rows": 6}), required=False, max_length=20000
    )
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices, initial=Channel.PHONE)
    type = forms.ChoiceField(label=_("Type"), choices=TicketType.choices, initial=TicketType.QUESTION)
    category = forms.ChoiceField(
        label=_("Category"), choices=[("", _("No category")), *Department.choices], required=False
    )
    requested_priority = forms.ChoiceField(
        label=_("Priority (as the customer asks)"), choices=Priority.choices, initial=Priority.NORMAL
    )
    tags = forms.CharField(
        label=_("Tags"), max_length=500, required=False, help_text=_("Separated by commas.")
    )

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()


class TicketEditForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=250)
    description = forms.CharField(
        label=_("Description"), widget=forms.Textarea(attrs={"rows": 6}), required=False, max_length=20000
    )
    type = forms.ChoiceField(label=_("Type"), choices=TicketType.choices)
    category = forms.ChoiceField(
        label=_("Category"), choices=[("", _("No category")), *Department.choices], required=False
    )
    tags = forms.CharField(
        label=_("Tags"), max_length=500, required=False, help_text=_("Separated by commas.")
    )

    def clean_tags(self):
        return [t for t in self.cleaned_data["tags"].replace(";", ",").split(",") if t.strip()]


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=Status.choices)


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(label=_("Priority"), choices=Priority.choices)


class AssignForm(forms.Form):
    """`agent`: "me" (take the ticket) or a person's id among those who may work tickets."""

    agent = forms.ChoiceField(label=_("Assignee"))
    force = forms.BooleanField(label=_("Even over their capacity"), required=False)

    def __init__(self, *args, agents=(), actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.agents = {str(a.pk): a for a in agents}
        self.actor = actor
        self.fields["agent"].choices = [("me", _("Me")), *((pk, str(a)) for pk, a in self.agents.items())]

    def clean_agent(self):
        value = self.cleaned_data["agent"]
        return self.actor if value == "me" else self.agents[value]


class BulkForm(forms.Form):
    ACTIONS = [
        ("assign", _("Assign to…")),
        ("status", _("Set status…")),
        ("priority", _("Set priority…")),
    ]
    action = forms.ChoiceField(label=_("Action"), choices=ACTIONS)
    agent = forms.ChoiceField(label=_("Assignee"), required=False)
    force = forms.BooleanField(label=_("Even over capacity"), required=False)
    status = forms.ChoiceField(label=_("Status"), choices=Status.choices, required=False)
    priority = forms.ChoiceField(label=_("Priority"), choices=Priority.choices, required=False)

    def __init__(self, *args, agents=(), actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.agents = {str(a.pk): a for a in agents}
        self.actor = actor
        self.fields["agent"].choices = [("me", _("Me")), *((pk, str(a)) for pk, a in self.agents.items())]

    def clean(self):
        data = super().clean()
        action = data.get("action")
        needed = {"assign": "agent", "status": "status", "priority": "priority"}.get(action)
        if needed and not data.get(needed):
            self.add_error(needed, _("Choose a value for this action."))
        if action == "assign" and data.get("agent"):
            data["agent"] = self.actor if data["agent"] == "me" else self.agents[data["agent"]]
        return data


class CannedResponseForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=150)
    body = forms.CharField(
        label=_("Text"),
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text=_("Merge fields such as {{customer.first_name}} are filled in when an agent inserts it."),
    )
