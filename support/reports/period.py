"""The period a support report covers, its weeks or months, the drill-down links and shared helpers."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.formats import date_format
from django.utils.translation import gettext as _

UNITS = ("week", "month")
MAX_DAYS = 731  # the longest period a report covers (two years)


def ratio(part, whole, *, places: str = "0.1", scale: int = 1) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(scale) * Decimal(part) / Decimal(whole)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


# --- The period ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportPeriod:
    start: dt.date
    end: dt.date  # included
    unit: str = "week"  # how the period is cut: "week" or "month"
    time_zone: str = "UTC"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone or "UTC")

    @property
    def since(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time.min, tzinfo=self.zone)

    @property
    def until(self) -> dt.datetime:
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=self.zone)

    def bucket_of(self, day: dt.date) -> dt.date:
        """The first day of the week (Monday) or month containing `day`: PostgreSQL's date_trunc."""
        if self.unit == "month":
            return day.replace(day=1)
        return day - dt.timedelta(days=day.weekday())

    def _next(self, bucket: dt.date) -> dt.date:
        if self.unit == "month":
            return (bucket + dt.timedelta(days=32)).replace(day=1)
        return bucket + dt.timedelta(days=7)

    def buckets(self) -> list[tuple[dt.date, dt.date, dt.date]]:
        """Every week or month the period touches: (bucket, its first day in the period, its last day in
        the period)."""
        result = []
        bucket = self.bucket_of(self.start)
        while bucket <= self.end:
            following = self._next(bucket)
            result.append((bucket, max(bucket, self.start), min(following - dt.timedelta(days=1), self.end)))
            bucket = following
        return result

    def label(self, bucket: dt.date) -> str:
        if self.unit == "month":
            return date_format(bucket, "YEAR_MONTH_FORMAT")
        return date_format(bucket, "M j")

    def query(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "unit": self.unit}


def default_period(*, today: dt.date, unit: str = "week", time_zone: str = "UTC") -> ReportPeriod:
    """The last twelve weeks (this one included) or the last twelve months (this one included)."""
    if unit == "month":
        start = today.replace(day=1)
        for _month in range(11):
            start = (start - dt.timedelta(days=1)).replace(day=1)
    else:
        start = today - dt.timedelta(days=today.weekday()) - dt.timedelta(weeks=11)
    return ReportPeriod(start=start, end=today, unit=unit, time_zone=time_zone)


# --- Drill-down links ------------------------------------------------------------------------------------------


def comments_url(period: ReportPeriod, *, start=None, end=None, every_answer=True, **filters) -> str:
    """The answers behind a figure (all of them, not only those with a comment, unless told)."""
    params = {
        "start": (start or period.start).isoformat(),
        "end": (end or period.end).isoformat(),
        **{k: v for k, v in filters.items() if v not in (None, "")},
    }
    if every_answer:
        params["all"] = "1"
    return f"{reverse('support:report_comments')}?{urlencode(params)}"


def queue_url(period: ReportPeriod | None = None, **filters) -> str:
    """The ticket queue (every status, every assignee's tickets) filtered as asked; limited to the period's
    resolutions when the queue's filters know them (`resolved_after` / `resolved_before`)."""
    from support.filters import TicketFilter

    params = {"view": "all", "status": "any", **{k: v for k, v in filters.items() if v not in (None, "")}}
    if period is not None and {"resolved_after", "resolved_before"} <= set(TicketFilter.base_filters):
        params.update(resolved_after=period.start.isoformat(), resolved_before=period.end.isoformat())
    return f"{reverse('support:queue')}?{urlencode(params)}"


def as_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def dict_rows(cursor) -> list[dict]:
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def person_label(row: dict) -> str:
    """A user's name from a row with first_name, last_name and email."""
    return f"{row['first_name'] or ''} {row['last_name'] or ''}".strip() or row["email"] or ""


def minutes_text(minutes: float | None) -> str:
    """Working minutes as "2 h 05 min" or "45 min" (hours of working time, never days: a business day is
    not 24 hours); "—" for none."""
    if minutes is None:
        return "—"
    hours, mins = divmod(round(minutes), 60)
    if hours:
        return _("%(h)d h %(m)02d min") % {"h": hours, "m": mins}
    return _("%(m)d min") % {"m": mins}
