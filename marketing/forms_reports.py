"""The forms of the marketing reports: the comparison's filters and the funnel panel's attribution model."""

from __future__ import annotations

import datetime

from django import forms
from django.utils.translation import gettext_lazy as _

from marketing.attribution import AttributionModel
from marketing.models import Campaign, CampaignChannel
from marketing.selectors.reports import DEFAULT_SORT, SORTS, Period

PRESETS = [
    ("this_month", _("This month")),
    ("last_month", _("Last month")),
    ("this_quarter", _("This quarter")),
    ("last_quarter", _("Last quarter")),
    ("this_year", _("This year")),
    ("last_year", _("Last year")),
    ("last_12_months", _("Last 12 months")),
    ("custom", _("Custom dates")),
]
DEFAULT_PRESET = "this_year"
MAX_PERIOD_DAYS = 3 * 366
SORT_CHOICES = [(key, key) for key in ["name", *SORTS]] + [(f"-{key}", key) for key in ["name", *SORTS]]


def _add_months(month: datetime.date, count: int) -> datetime.date:
    index = month.year * 12 + month.month - 1 + count
    return datetime.date(index // 12, index % 12 + 1, 1)


def preset_period(preset: str, today: datetime.date) -> Period:
    """The calendar range a preset names, as of `today` (the organization's)."""
    month = today.replace(day=1)
    quarter = month.replace(month=(month.month - 1) // 3 * 3 + 1)
    year = month.replace(month=1)
    bounds = {
        "this_month": (month, _add_months(month, 1)),
        "last_month": (_add_months(month, -1), month),
        "this_quarter": (quarter, _add_months(quarter, 3)),
        "last_quarter": (_add_months(quarter, -3), quarter),
        "this_year": (year, _add_months(year, 12)),
        "last_year": (_add_months(year, -12), year),
        "last_12_months": (_add_months(month, -11), _add_months(month, 1)),
    }
    start, next_start = bounds[preset]
    return Period(start=start, end=next_start - datetime.timedelta(days=1))


def _select(choices, label):
    return forms.ChoiceField(
        label=label,
        choices=choices,
        required=False,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )


def _date(label):
    return forms.DateField(
        label=label,
        required=False,
        widget=forms.DateInput(
            attrs={"type": "date", "class": "form-control form-control-sm"}, format="%Y-%m-%d"
        ),
    )


class ComparisonFilterForm(forms.Form):
    """Which campaigns to compare (those that ran in the period, by status and channel), the attribution
    model of their revenue, and the order of the table."""

    period = _select(PRESETS, _("Period"))
    start = _date(_("From"))
    end = _date(_("To"))
    status = _select([("", _("Any status")), *Campaign.Status.choices], _("Status"))
    channel = _select([("", _("Any channel")), *CampaignChannel.choices], _("Channel"))
    model = _select(AttributionModel.choices, _("Attribution model"))
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False, widget=forms.HiddenInput())

    def clean(self):
        data = super().clean()
        custom = data.get("period") == "custom" or (
            not data.get("period") and (data.get("start") or data.get("end"))
        )
        if custom:
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise forms.ValidationError(_("Give both dates of a custom period."))
            if end < start:
                raise forms.ValidationError(_("The period ends before it starts."))
            if (end - start).days > MAX_PERIOD_DAYS:
                raise forms.ValidationError(_("Choose a period of at most three years."))
            data["period"] = "custom"
        return data

    def _data(self) -> dict:
        return self.cleaned_data if self.is_bound and self.is_valid() else {}

    def chosen_period(self, today: datetime.date) -> Period:
        """The valid period asked for; this year when nothing (or nothing valid) was."""
        data = self._data()
        preset = data.get("period") or DEFAULT_PRESET
        if preset == "custom":
            return Period(start=data["start"], end=data["end"])
        return preset_period(preset, today)

    def filters(self) -> dict:
        """The selector's arguments besides the period (defaults where nothing valid was given)."""
        data = self._data()
        return {
            "status": data.get("status") or "",
            "channel": data.get("channel") or "",
            "model": data.get("model") or AttributionModel.LINEAR,
            "sort": data.get("sort") or DEFAULT_SORT,
        }


class FunnelModelForm(forms.Form):
    """The funnel panel's attribution model switcher."""

    model = forms.ChoiceField(
        label=_("Attribution model"),
        choices=AttributionModel.choices,
        required=False,
        widget=forms.RadioSelect,
    )

    def chosen_model(self) -> str:
        if self.is_bound and self.is_valid() and self.cleaned_data.get("model"):
            return self.cleaned_data["model"]
        return AttributionModel.LINEAR
