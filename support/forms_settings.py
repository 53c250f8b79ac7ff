"""Forms of the SLA settings: policies (targets typed as "4h", "1h 30m" or minutes), business-hours calendars
(a weekly hours editor: one line of intervals per weekday) and holidays."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import TIME_ZONE_CHOICES
from support import sla
from support.models import BusinessCalendar, Channel, Priority, SlaPolicy, TicketType

WEEKDAYS = (
    (1, _("Monday")),
    (2, _("Tuesday")),
    (3, _("Wednesday")),
    (4, _("Thursday")),
    (5, _("Friday")),
    (6, _("Saturday")),
    (7, _("Sunday")),
)

_DURATION = re.compile(r"^\s*(?:(?P<h>\d+)\s*h(?:ours?)?)?\s*(?:(?P<m>\d+)\s*m(?:in(?:utes?)?)?)?\s*$", re.I)
_CLOCK = re.compile(r"^\s*(?P<h>\d{1,4}):(?P<m>\d{2})\s*$")


def parse_duration(value: str) -> int:
    """ "90", "4h", "1h 30m", "1:30" -> minutes. Raises ValueError."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    clock = _CLOCK.match(text)
    if clock:
        if int(clock["m"]) > 59:
            raise ValueError(text)
        return int(clock["h"]) * 60 + int(clock["m"])
    match = _DURATION.match(text)
    if not match or not (match["h"] or match["m"]):
        raise ValueError(text)
    return int(match["h"] or 0) * 60 + int(match["m"] or 0)


def format_duration(minutes: int | None) -> str:
    """Minutes as "4h", "1h 30m", "45m" (what parse_duration reads back)."""
    if minutes is None:
        return ""
    hours, rest = divmod(int(minutes), 60)
    if hours and rest:
        return f"{hours}h {rest}m"
    return f"{hours}h" if hours else f"{rest}m"


class DurationField(forms.CharField):
    default_error_messages = {
        "invalid": _('Type a duration such as "4h", "1h 30m" or a number of minutes.'),
        "min": _("Give at least one minute."),
    }

    def prepare_value(self, value):
        return format_duration(value) if isinstance(value, int) else value

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            minutes = parse_duration(value)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if minutes < 1:
            raise forms.ValidationError(self.error_messages["min"], code="min")
        return minutes


class PolicyForm(forms.ModelForm):
    match_types = forms.MultipleChoiceField(
        label=_("Ticket types"),
        choices=TicketType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: any type."),
    )
    match_priorities = forms.MultipleChoiceField(
        label=_("Priority the customer asked for"),
        choices=Priority.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: any priority."),
    )
    match_channels = forms.MultipleChoiceField(
        label=_("Channels"),
        choices=Channel.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: any channel."),
    )
    first_response_minutes = DurationField(
        label=_("First response within"), help_text=_('Working time, e.g. "30m", "4h" or "1h 30m".')
    )
    resolution_minutes = DurationField(
        label=_("Resolve within"), help_text=_('Working time, e.g. "4h" or "48h".')
    )

    class Meta:
        model = SlaPolicy
        fields = [
            "name",
            "active",
            "match_vip",
            "match_types",
            "match_priorities",
            "match_channels",
            "set_priority",
            "first_response_minutes",
            "resolution_minutes",
            "calendar",
        ]
        help_texts = {
            "set_priority": _("Empty: the ticket keeps the priority the customer asked for."),
            "match_vip": _("Only tickets of VIP customers match."),
        }

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["calendar"].queryset = BusinessCalendar.objects.filter(
            organization=organization
        ).order_by("name")
        self.fields["calendar"].empty_label = _("Calendar time (around the clock)")
        self.fields["set_priority"].choices = [("", _("Keep the customer's priority")), *Priority.choices]

    def clean(self):
        data = super().clean()
        first, resolution = data.get("first_response_minutes"), data.get("resolution_minutes")
        if first and resolution and first > resolution:
            self.add_error(
                "first_response_minutes", _("The first response cannot be due after the resolution.")
            )
        return data

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


def _format_intervals(intervals) -> str:
    return ", ".join(f"{start}-{end}" for start, end in intervals)


class CalendarForm(forms.Form):
    """Name, time zone and the weekly hours: per weekday a line such as "09:00-12:00, 13:00-17:00"."""

    name = forms.CharField(label=_("Name"), max_length=100)
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=TIME_ZONE_CHOICES)

    def __init__(self, *args, calendar: BusinessCalendar | None = None, **kwargs):
        if calendar is not None and "initial" not in kwargs:
            initial = {"name": calendar.name, "time_zone": calendar.time_zone}
            for day, _label in WEEKDAYS:
                initial[f"day_{day}"] = _format_intervals(calendar.hours.get(str(day), []))
            kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        for day, label in WEEKDAYS:
            self.fields[f"day_{day}"] = forms.CharField(
                label=label,
                required=False,
                max_length=200,
                widget=forms.TextInput(attrs={"placeholder": _("Closed"), "autocomplete": "off"}),
            )

    def day_fields(self):
        return [self[f"day_{day}"] for day, _label in WEEKDAYS]

    def _clean_day(self, day: int) -> list[list[str]]:
        text = self.cleaned_data.get(f"day_{day}", "") or ""
        intervals = []
        for part in filter(None, (p.strip() for p in re.split(r"[,;]", text))):
            bounds = [b.strip() for b in re.split(r"\s*[-\u2013]\s*", part)]
            if len(bounds) != 2:
                raise forms.ValidationError(_('Write intervals as "09:00-17:00", separated by commas.'))
            try:
                start, end = (sla.parse_clock(b) for b in bounds)
            except ValueError:
                raise forms.ValidationError(
                    _('Times are hours and minutes from 00:00 to 24:00, such as "09:00".')
                ) from None
            intervals.append([f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}"])
        try:
            sla.parse_week({str(day): intervals})
        except ValueError:
            raise forms.ValidationError(
                _("Each interval must end after it starts, without overlapping another.")
            ) from None
        return sorted(intervals)

    def clean(self):
        data = super().clean()
        hours = {}
        for day, _label in WEEKDAYS:
            try:
                intervals = self._clean_day(day)
            except forms.ValidationError as error:
                self.add_error(f"day_{day}", error)
                continue
            if intervals:
                hours[str(day)] = intervals
        if not self.errors and not hours:
            raise forms.ValidationError(_("Give at least one day with working hours."))
        data["hours"] = hours
        return data

    def changes(self) -> dict:
        return {
            "name": self.cleaned_data["name"],
            "time_zone": self.cleaned_data["time_zone"],
            "hours": self.cleaned_data["hours"],
        }


class HolidayForm(forms.Form):
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    name = forms.CharField(label=_("Name"), max_length=100, required=False)


class PolicyMoveForm(forms.Form):
    direction = forms.ChoiceField(choices=[("up", "up"), ("down", "down")])
