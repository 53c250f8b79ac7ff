"""Forms of the customer profile, the interaction logger and the list's bulk actions."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from customers.models import Channel, Customer, InteractionType, LifecycleStage, Sentiment
from customers.services.customers import normalise_tags


class TagsField(forms.CharField):
    """Comma-separated tags in, a normalised list out."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def to_python(self, value):
        return normalise_tags(super().to_python(value))


class CustomerForm(forms.ModelForm):
    tags = TagsField(label=_("Tags"), required=False, help_text=_("Separate tags with commas."))
    stage_reason = forms.CharField(
        label=_("Why the stage changed"),
        required=False,
        max_length=300,
        help_text=_("Kept in the lifecycle history when the stage changes."),
    )

    class Meta:
        model = Customer
        fields = [
            "first_name",
            "last_name",
            "email",
            "phone",
            "company_name",
            "job_title",
            "customer_type",
            "lifecycle_stage",
            "assigned_to",
            "tags",
            "vip_status",
            "status",
            "date_of_birth",
            "education_level",
            "annual_revenue",
            "street",
            "city",
            "state",
            "postal_code",
            "country",
            "source",
            "email_opt_in",
            "do_not_call",
        ]
        widgets = {"date_of_birth": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, owners=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assigned_to"] = forms.TypedChoiceField(
            label=_("Owner"),
            required=False,
            empty_value=None,
            choices=[("", _("Unassigned"))] + [(str(u.pk), str(u)) for u in owners],
            initial=str(self.instance.assigned_to_id) if self.instance.assigned_to_id else "",
        )
        self._owners = {str(u.pk): u for u in owners}

    def clean_assigned_to(self):
        value = self.cleaned_data.get("assigned_to")
        return self._owners.get(value) if value else None

    def clean(self):
        data = super().clean()
        if not any(data.get(f) for f in ("first_name", "last_name", "company_name", "email")):
            raise forms.ValidationError(_("Give at least a name, a company or an email."))
        return data

    def _post_clean(self):
        # The service validates the model (with the organization set); the form checks its own fields.
        pass

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class InteractionForm(forms.Form):
    interaction_type = forms.ChoiceField(
        label=_("What happened"),
        choices=[
            (t, label)
            for t, label in InteractionType.choices
            if t in {"call", "meeting", "note", "email_sent", "chat", "social"}
        ],
        initial=InteractionType.CALL,
    )
    channel = forms.ChoiceField(label=_("Channel"), choices=[("", "—"), *Channel.choices], required=False)
    outcome = forms.CharField(label=_("Outcome"), max_length=200, required=False)
    sentiment = forms.ChoiceField(
        label=_("Sentiment"), choices=[("", "—"), *Sentiment.choices], required=False
    )
    notes = forms.CharField(
        label=_("Notes"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=10000
    )
    interaction_date = forms.DateTimeField(
        label=_("When"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("Empty: now."),
    )
    campaign_id = forms.ChoiceField(label=_("Campaign"), required=False)

    def __init__(self, *args, campaigns=(), **kwargs):
        """`campaigns`: the organization's campaigns this touchpoint may be credited to (id and name)."""
        super().__init__(*args, **kwargs)
        self._campaigns = {str(c.pk): c.pk for c in campaigns}
        self.fields["campaign_id"].choices = [("", _("None"))] + [(str(c.pk), c.name) for c in campaigns]

    def clean_campaign_id(self):
        value = self.cleaned_data.get("campaign_id")
        if not value:
            return None
        if value not in self._campaigns:
            raise forms.ValidationError(_("Pick one of your organization's campaigns."))
        return self._campaigns[value]

    def clean(self):
        data = super().clean()
        if data.get("interaction_type") == "note" and not data.get("notes"):
            self.add_error("notes", _("A note needs some text."))
        return data


class TimelineFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Type"), choices=[("", _("All types")), *InteractionType.choices], required=False
    )


class BulkActionForm(forms.Form):
    ACTIONS = [
        ("assign", _("Assign owner")),
        ("tag", _("Add tag")),
        ("untag", _("Remove tag")),
        ("stage", _("Change stage")),
        ("segment", _("Add to static segment")),
    ]
    ids = forms.MultipleChoiceField(
        required=True, error_messages={"required": _("Select at least one customer.")}
    )
    action = forms.ChoiceField(choices=ACTIONS)
    owner = forms.ChoiceField(required=False)
    tag = forms.CharField(required=False, max_length=50)
    stage = forms.ChoiceField(required=False, choices=[("", "—"), *LifecycleStage.choices])
    segment = forms.ChoiceField(required=False)

    def __init__(self, *args, customer_ids=(), owners=(), segments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ids"].choices = [(str(i), str(i)) for i in customer_ids]
        self.fields["owner"].choices = [("", _("Unassigned"))] + [(str(u.pk), str(u)) for u in owners]
        self.fields["segment"].choices = [("", "—")] + [(str(s.pk), s.name) for s in segments]

    def clean(self):
        data = super().clean()
        needed = {"tag": "tag", "untag": "tag", "stage": "stage", "segment": "segment"}.get(
            data.get("action")
        )
        if needed and not data.get(needed):
            self.add_error(needed, _("Choose a value for this action."))
        return data
