"""Forms of the campaigns area: the campaign form, a status change, a cost entry and the manual actuals.
Forms parse input; marketing/services/campaigns.py and costs.py hold the rules and write."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import CURRENCY_CHOICES
from marketing.models import Campaign, CampaignChannel, CostEntry
from marketing.services.campaigns import INITIAL_STATUSES, next_statuses

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
MONEY = forms.NumberInput(attrs={"step": "0.01", "min": "0"})


class CampaignForm(forms.Form):
    """Create or edit a campaign. The status offered is the current one and those it may move to; the send
    fields are read-only once the send has started."""

    name = forms.CharField(label=_("Campaign name"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    channels = forms.MultipleChoiceField(
        label=_("Channels"),
        choices=CampaignChannel.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Pick at least one channel.")},
    )
    status = forms.ChoiceField(label=_("Status"))
    owner = forms.ChoiceField(label=_("Owner"), required=False)
    start_date = forms.DateField(label=_("Start date"), required=False, widget=DATE)
    end_date = forms.DateField(label=_("End date"), required=False, widget=DATE)
    currency = forms.ChoiceField(label=_("Currency"), choices=CURRENCY_CHOICES)
    budget = forms.DecimalField(
        label=_("Budget"), max_digits=14, decimal_places=2, min_value=0, required=False, widget=MONEY
    )
    goal_leads = forms.IntegerField(label=_("Goal: leads"), min_value=0, required=False)
    goal_conversions = forms.IntegerField(label=_("Goal: conversions"), min_value=0, required=False)
    goal_revenue = forms.DecimalField(
        label=_("Goal: revenue"), max_digits=14, decimal_places=2, min_value=0, required=False, widget=MONEY
    )
    template = forms.ChoiceField(label=_("Email template"), required=False)
    segments = forms.MultipleChoiceField(
        label=_("Segments"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text=_("Who receives the email: members of any of these segments, each once."),
    )
    from_name = forms.CharField(label=_("From name"), max_length=120, required=False)
    reply_to = forms.EmailField(label=_("Reply-to address"), required=False)
    send_at = forms.DateTimeField(
        label=_("Send at"),
        required=False,
        widget=DATETIME,
        help_text=_("In your time zone. Fixed once the send starts."),
    )

    def __init__(self, *args, owners, templates, segments, campaign: Campaign | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self._owners = {str(u.pk): u for u in owners}
        self._templates = {str(t.pk): t for t in templates}
        self._segments = {str(s.pk): s for s in segments}
        self.fields["owner"].choices = [("", _("Nobody"))] + [(pk, str(u)) for pk, u in self._owners.items()]
        self.fields["template"].choices = [("", _("No template yet"))] + [
            (pk, t.name) for pk, t in self._templates.items()
        ]
        self.fields["segments"].choices = [(pk, s.name) for pk, s in self._segments.items()]
        if campaign is None:
            statuses = [s for s in Campaign.Status.values if s in INITIAL_STATUSES]
        else:
            statuses = [campaign.status, *next_statuses(campaign)]
        labels = dict(Campaign.Status.choices)
        self.fields["status"].choices = [(s, labels[s]) for s in statuses]
        if campaign is not None and campaign.send_state != Campaign.SendState.NOT_STARTED:
            for name in ("send_at", "template", "segments"):
                self.fields[name].disabled = True
                self.fields[name].help_text = _("Fixed: the send has started.")

    def clean_owner(self):
        value = self.cleaned_data.get("owner")
        if not value:
            return None
        if value not in self._owners:
            raise forms.ValidationError(_("Pick an active user of your organization."))
        return self._owners[value]

    def clean_template(self):
        value = self.cleaned_data.get("template")
        if not value:
            return None
        if value not in self._templates:
            raise forms.ValidationError(_("Pick one of your organization's templates."))
        return self._templates[value]

    def clean_segments(self):
        return [self._segments[pk] for pk in self.cleaned_data.get("segments") or [] if pk in self._segments]

    def clean(self):
        data = super().clean()
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", _("The end date comes before the start date."))
        return data

    def changes(self) -> dict:
        """Keyword arguments for campaign_create / campaign_update."""
        data = self.cleaned_data
        return {
            "name": data["name"].strip(),
            "description": data["description"],
            "channels": data["channels"],
            "status": data["status"],
            "owner": data["owner"],
            "start_date": data["start_date"],
            "end_date": data["end_date"],
            "currency": data["currency"],
            "budget": data["budget"] if data["budget"] is not None else 0,
            "goal_leads": data["goal_leads"],
            "goal_conversions": data["goal_conversions"],
            "goal_revenue": data["goal_revenue"],
            "template": data["template"],
            "segments": data["segments"],
            "from_name": data["from_name"].strip(),
            "reply_to": data["reply_to"].strip(),
            "send_at": data["send_at"],
        }


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=Campaign.Status.choices)


class CostEntryForm(forms.Form):
    incurred_on = forms.DateField(label=_("Date"), widget=DATE)
    category = forms.ChoiceField(
        label=_("Category"), choices=CostEntry.Category.choices, initial=CostEntry.Category.OTHER
    )
    description = forms.CharField(label=_("What for"), max_length=300)
    amount = forms.DecimalField(
        label=_("Amount"),
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01"}),
    )

    def changes(self) -> dict:
        data = self.cleaned_data
        return {
            "incurred_on": data["incurred_on"],
            "category": data["category"],
            "description": data["description"].strip(),
            "amount": data["amount"],
        }


class ActualsForm(forms.Form):
    """The actuals of channels not tracked here (ads, social, events, webinar, direct mail)."""

    impressions = forms.IntegerField(label=_("Impressions"), min_value=0)
    clicks = forms.IntegerField(label=_("Clicks"), min_value=0)
    conversions = forms.IntegerField(label=_("Conversions"), min_value=0)
