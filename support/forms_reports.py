"""The support reports' forms: the period (dates, by week or month) and the answers list's filters."""

from __future__ import annotations

import datetime as dt
import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import Department
from support.models import Survey
from support.reports import ReportPeriod, default_period
from support.reports.period import MAX_DAYS, UNITS


def _date_input():
    return forms.DateInput(attrs={"type": "date", "class": "form-control form-control-sm"}, format="%Y-%m-%d")


class ReportPeriodForm(forms.Form):
    """Empty dates mean the default: the last twelve weeks or months, the current one included."""

    unit = forms.ChoiceField(
        label=_("Group by"),
        choices=[("week", _("Week")), ("month", _("Month"))],
        required=False,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    start = forms.DateField(label=_("From"), required=False, widget=_date_input())
    end = forms.DateField(label=_("To"), required=False, widget=_date_input())

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError(_("The period must start before it ends."))
            if (end - start).days >= MAX_DAYS:
                raise forms.ValidationError(_("Choose a period of two years at most."))
        return cleaned

    def period(self, *, today: dt.date, time_zone: str) -> ReportPeriod:
        """The period asked for (the default where a date is missing or the form is invalid)."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        unit = data.get("unit") if data.get("unit") in UNITS else "week"
        default = default_period(today=today, unit=unit, time_zone=time_zone)
        end = data.get("end") or max(default.end, data.get("start") or default.end)
        start = data.get("start") or min(default.start, end)
        if (end - start).days >= MAX_DAYS:
            start = end - dt.timedelta(days=MAX_DAYS - 1)
        return ReportPeriod(start=start, end=end, unit=unit, time_zone=time_zone)


class AnswersFilterForm(ReportPeriodForm):
    """Which answers to list: kind, agent ("none": unattributed), category ("none": without one), and
    whether answers without a comment are included."""

    kind = forms.ChoiceField(
        label=_("Survey"),
        choices=[("", _("CSAT and NPS")), *Survey.Kind.choices],
        required=False,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    # A CharField with a select: a drill-down may name someone the list does not offer (an agent who left).
    agent = forms.CharField(
        label=_("Agent"),
        required=False,
        max_length=36,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    category = forms.ChoiceField(
        label=_("Category"),
        choices=[("", _("Any category")), ("none", _("No category")), *Department.choices],
        required=False,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    all = forms.BooleanField(
        label=_("Include answers without a comment"),
        required=False,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )

    def __init__(self, *args, agents=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["unit"].widget = forms.HiddenInput()
        self.fields["agent"].widget.choices = [
            ("", _("Any agent")),
            ("none", _("Unattributed")),
            *((str(user.pk), str(user)) for user in agents),
        ]

    def clean_agent(self) -> str:
        value = self.cleaned_data.get("agent") or ""
        if value and value != "none":
            try:
                uuid.UUID(value)
            except ValueError as error:
                raise forms.ValidationError(_("Unknown agent.")) from error
        return value

    def filters(self) -> dict:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return {
            "kind": data.get("kind") or "",
            "agent": data.get("agent") or "",
            "category": data.get("category") or "",
            "with_comment": not data.get("all"),
        }
