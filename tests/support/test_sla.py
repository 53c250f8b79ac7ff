"""SLA arithmetic on hand-computed cases: business hours over weekends, holidays, lunch breaks, pauses,
first responses, resolutions and reopens, time zones and DST changes. Pure: no database.

Every expected instant below is worked out by hand in the comment above it."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from support import sla

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_9_TO_5 = {str(day): [["09:00", "17:00"]] for day in range(1, 6)}


def at(*args, tz=UTC) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def calendar(hours=None, time_zone="UTC"):
    return SimpleNamespace(time_zone=time_zone, hours=WEEKDAYS_9_TO_5 if hours is None else hours)


def policy(first_response_minutes=60, resolution_minutes=240):
    return SimpleNamespace(
        first_response_minutes=first_response_minutes, resolution_minutes=resolution_minutes
    )


def history(created, *changes, first_response=None):
    """A ticket created at `created` and its events: (instant, new status) pairs, then the first response."""
    events = [SimpleNamespace(kind="created", new_value="new", at=created)]
    events += [SimpleNamespace(kind="status", new_value=status, at=when) for when, status in changes]
    if first_response is not None:
        events.append(SimpleNamespace(kind="first_response", new_value="", at=first_response))
    return SimpleNamespace(created_at=created, first_response_at=None), events


def deadlines(created, *changes, cal=None, holidays=(), pol=None, now=None, first_response=None):
    ticket, events = history(created, *changes, first_response=first_response)
    return sla.compute_deadlines(
        ticket=ticket,
        policy=pol or policy(),
        events=events,
        calendar=cal,
        holidays=holidays,
        now=now or created,
    )


# --- business hours ----------------------------------------------------------------------------------------


def test_a_deadline_crosses_the_weekend():
    # Friday 2026-03-06 15:00, 4 working hours: Friday 15-17 (2 h), then Monday 09-11 -> Monday 11:00.
    # First response in 1 h: Friday 16:00. Half of each: Friday 15:30, and Friday 17:00 (2 h: end of day).
    result = deadlines(at(2026, 3, 6, 15), cal=calendar())
    assert result.resolution_due_at == at(2026, 3, 9, 11)
    assert result.first_response_due_at == at(2026, 3, 6, 16)
    assert result.first_response_warn_at == at(2026, 3, 6, 15, 30)
    assert result.resolution_warn_at == at(2026, 3, 6, 17)
    assert result.paused_since is None


def test_holidays_are_not_worked():
    # Thursday 2026-04-02 16:00, 16 working hours; Good Friday (04-03) and Easter Monday (04-06) are
    # holidays: Thursday 16-17 (1 h), Tuesday 04-07 09-17 (8 h, 9 in all), Wednesday 04-08 09:00 + 7 h = 16:00.
    holidays = [dt.date(2026, 4, 3), dt.date(2026, 4, 6)]
    result = deadlines(at(2026, 4, 2, 16), cal=calendar(), holidays=holidays, pol=policy(60, 16 * 60))
    assert result.resolution_due_at == at(2026, 4, 8, 16)
    # Without the holidays: Thursday 1 h, Friday 8 h, Monday 09:00 + 7 h = Monday 16:00.
    plain = deadlines(at(2026, 4, 2, 16), cal=calendar(), pol=policy(60, 16 * 60))
    assert plain.resolution_due_at == at(2026, 4, 6, 16)


def test_holiday_rows_are_accepted_as_well_as_dates():
    rows = [SimpleNamespace(date=dt.date(2026, 3, 9))]
    # Friday 16:00 + 2 h: Friday 1 h, Monday is a holiday, Tuesday 09:00 + 1 h.
    result = deadlines(at(2026, 3, 6, 16), cal=calendar(), holidays=rows, pol=policy(60, 120))
    assert result.resolution_due_at == at(2026, 3, 10, 10)


def test_several_intervals_a_day_skip_the_lunch_break():
    hours = {str(day): [["13:00", "17:00"], ["09:00", "12:00"]] for day in range(1, 6)}
    # Monday 2026-03-02 11:00, 3 h: 11-12 (1 h), lunch, 13:00 + 2 h = 15:00.
    result = deadlines(at(2026, 3, 2, 11), cal=calendar(hours), pol=policy(60, 180))
    assert result.resolution_due_at == at(2026, 3, 2, 15)
    # 1 h: 11-12 exactly, due at 12:00 (not after lunch).
    assert result.first_response_due_at == at(2026, 3, 2, 12)


def test_a_ticket_created_outside_hours_starts_at_the_next_opening():
    # Saturday 2026-03-07 10:00, 1 h: Monday 09:00 + 1 h = 10:00.
    result = deadlines(at(2026, 3, 7, 10), cal=calendar(), pol=policy(60, 60))
    assert result.resolution_due_at == at(2026, 3, 9, 10)


def test_elapsed_working_minutes_between_two_instants():
    hours = calendar()
    # Friday 15:00 to Monday 10:30: 2 h + 1.5 h = 210 minutes; backwards is 0.
    assert sla.working_minutes_between(hours, [], at(2026, 3, 6, 15), at(2026, 3, 9, 10, 30)) == 210
    assert sla.working_minutes_between(hours, [], at(2026, 3, 9, 10, 30), at(2026, 3, 6, 15)) == 0
    # Calendar time: 67.5 hours.
    assert sla.working_minutes_between(None, [], at(2026, 3, 6, 15), at(2026, 3, 9, 10, 30)) == 67.5 * 60


def test_calendar_time_without_a_calendar():
    # No calendar: 4 h after Friday 15:00 is Friday 19:00.
    result = deadlines(at(2026, 3, 6, 15), cal=None)
    assert result.resolution_due_at == at(2026, 3, 6, 19)
    assert result.resolution_warn_at == at(2026, 3, 6, 17)


# --- pauses, first response, resolution --------------------------------------------------------------------


def test_a_pause_while_pending_extends_the_deadline_by_the_paused_working_time():
    # Monday 2026-03-02 10:00, 8 working hours. Pending at 12:00 (2 h used), open again Tuesday 10:00.
    # Paused working time: Monday 12-17 (5 h) + Tuesday 09-10 (1 h) = 6 h, so the deadline is the creation
    # plus 14 working hours: Monday 10-17 (7 h) + Tuesday 09-16 (7 h) = Tuesday 16:00.
    changes = [(at(2026, 3, 2, 12), "pending"), (at(2026, 3, 3, 10), "open")]
    result = deadlines(
        at(2026, 3, 2, 10), *changes, cal=calendar(), pol=policy(60, 480), now=at(2026, 3, 3, 11)
    )
    assert result.resolution_due_at == at(2026, 3, 3, 16)
    assert result.resolution_due_at == sla.BusinessHours(time_zone="UTC", hours=WEEKDAYS_9_TO_5).add(
        at(2026, 3, 2, 10), dt.timedelta(hours=8 + 6)
    )
    assert result.paused_since is None
    # First response (1 h) was due Monday 11:00, before the pause: the pause does not move it.
    assert result.first_response_due_at == at(2026, 3, 2, 11)


def test_while_paused_the_deadline_is_projected_from_now():
    # Same ticket, still pending on Monday at 15:00: 6 h left from 15:00 -> Monday 15-17 (2 h) + Tuesday
    # 09-13 (4 h) = Tuesday 13:00. Paused since Monday 12:00.
    changes = [(at(2026, 3, 2, 12), "pending")]
    result = deadlines(
        at(2026, 3, 2, 10), *changes, cal=calendar(), pol=policy(60, 480), now=at(2026, 3, 2, 15)
    )
    assert result.paused_since == at(2026, 3, 2, 12)
    assert result.resolution_due_at == at(2026, 3, 3, 13)


def test_pending_then_on_hold_is_one_pause():
    changes = [(at(2026, 3, 2, 12), "pending"), (at(2026, 3, 2, 14), "on_hold"), (at(2026, 3, 3, 10), "open")]
    result = deadlines(
        at(2026, 3, 2, 10), *changes, cal=calendar(), pol=policy(60, 480), now=at(2026, 3, 3, 11)
    )
    assert result.resolution_due_at == at(2026, 3, 3, 16)
    still = deadlines(
        at(2026, 3, 2, 10), *changes[:2], cal=calendar(), pol=policy(60, 480), now=at(2026, 3, 2, 15)
    )
    assert still.paused_since == at(2026, 3, 2, 12)


def test_the_first_response_stops_its_clock_but_not_the_resolution_clock():
    # Monday 09:00; first response due in 2 h (11:00). Answered at 10:30; then pending from 12:00 to
    # Tuesday 09:00 (Monday 12-17 = 5 h paused). The first-response deadline stays 11:00 (met); the
    # resolution deadline (8 h) moves by 5 h: Monday 09-17 (8 h) + Tuesday 09-14 (5 h) = Tuesday 14:00.
    changes = [(at(2026, 3, 2, 12), "pending"), (at(2026, 3, 3, 9), "open")]
    result = deadlines(
        at(2026, 3, 2, 9),
        *changes,
        cal=calendar(),
        pol=policy(120, 480),
        first_response=at(2026, 3, 2, 10, 30),
        now=at(2026, 3, 3, 10),
    )
    assert result.first_response_due_at == at(2026, 3, 2, 11)
    assert result.first_response_warn_at == at(2026, 3, 2, 10)
    assert result.resolution_due_at == at(2026, 3, 3, 14)


def test_the_stored_first_response_time_counts_when_there_is_no_event():
    ticket, events = history(at(2026, 3, 2, 9))
    ticket.first_response_at = at(2026, 3, 2, 9, 30)
    # Pending from 10:00 to 15:00: the first response (2 h) had stopped before, so it stays due 11:00.
    events.append(SimpleNamespace(kind="status", new_value="pending", at=at(2026, 3, 2, 10)))
    events.append(SimpleNamespace(kind="status", new_value="open", at=at(2026, 3, 2, 15)))
    result = sla.compute_deadlines(
        ticket=ticket,
        policy=policy(120, 480),
        events=events,
        calendar=calendar(),
        holidays=(),
        now=at(2026, 3, 2, 16),
    )
    assert result.first_response_due_at == at(2026, 3, 2, 11)


def test_resolution_stops_the_clock_and_a_reopen_resumes_it():
    # Monday 09:00, 8 h. Resolved at 13:00 (4 h used): the deadline stands at 13:00 + 4 h = 17:00 (met).
    # Reopened Wednesday 10:00: 4 h left -> Wednesday 14:00.
    resolved = deadlines(
        at(2026, 3, 2, 9),
        (at(2026, 3, 2, 13), "resolved"),
        cal=calendar(),
        pol=policy(60, 480),
        now=at(2026, 3, 3, 9),
    )
    assert resolved.resolution_due_at == at(2026, 3, 2, 17)
    assert resolved.paused_since is None
    reopened = deadlines(
        at(2026, 3, 2, 9),
        (at(2026, 3, 2, 13), "resolved"),
        (at(2026, 3, 4, 10), "open"),
        cal=calendar(),
        pol=policy(60, 480),
        now=at(2026, 3, 4, 11),
    )
    assert reopened.resolution_due_at == at(2026, 3, 4, 14)


def test_a_breached_deadline_does_not_move_with_a_later_pause():
    # Monday 09:00, 2 h: due 11:00. Set pending only at 15:00 (already breached), reopened Tuesday: still 11:00.
    changes = [(at(2026, 3, 2, 15), "pending"), (at(2026, 3, 3, 12), "open")]
    result = deadlines(
        at(2026, 3, 2, 9), *changes, cal=calendar(), pol=policy(60, 120), now=at(2026, 3, 3, 13)
    )
    assert result.resolution_due_at == at(2026, 3, 2, 11)


def test_two_changes_at_one_instant_and_events_out_of_order():
    # Pending and back to open at the same instant is no pause at all; events given out of order are sorted.
    changes = [(at(2026, 3, 2, 12), "open"), (at(2026, 3, 2, 11), "pending"), (at(2026, 3, 2, 11), "open")]
    result = deadlines(
        at(2026, 3, 2, 9), *changes, cal=calendar(), pol=policy(60, 240), now=at(2026, 3, 2, 13)
    )
    assert result.resolution_due_at == at(2026, 3, 2, 13)


def test_no_policy_means_no_deadlines_but_the_pause_is_known():
    ticket, events = history(at(2026, 3, 2, 9), (at(2026, 3, 2, 10), "on_hold"))
    result = sla.compute_deadlines(
        ticket=ticket, policy=None, events=events, calendar=None, holidays=(), now=at(2026, 3, 2, 11)
    )
    assert result == sla.Deadlines(paused_since=at(2026, 3, 2, 10))


# --- time zones and DST ------------------------------------------------------------------------------------


def test_new_york_business_hours_across_the_spring_forward():
    # Clocks go from 02:00 EST to 03:00 EDT on Sunday 2026-03-08. Friday 03-06 16:00 EST (21:00 UTC) + 4
    # working hours: Friday 16-17 (1 h), Monday 03-09 09:00 EDT + 3 h = 12:00 EDT = 16:00 UTC (a naive UTC
    # sum would land on 17:00 UTC).
    ny = calendar(time_zone="America/New_York")
    result = deadlines(at(2026, 3, 6, 16, tz=NEW_YORK), cal=ny)
    assert result.resolution_due_at == at(2026, 3, 9, 16)
    assert result.resolution_due_at.astimezone(NEW_YORK).hour == 12
    start, end = at(2026, 3, 6, 16, tz=NEW_YORK), at(2026, 3, 9, 12, tz=NEW_YORK)
    assert sla.working_minutes_between(ny, [], start, end) == 240


def test_new_york_hours_inside_the_skipped_hour_do_not_exist():
    # On 2026-03-08 02:00-03:00 local does not exist; 03:00-05:00 EDT is 07:00-09:00 UTC: 2 h in all.
    night = calendar({"7": [["02:00", "03:00"], ["03:00", "05:00"]]}, time_zone="America/New_York")
    day = at(2026, 3, 8, 0, tz=NEW_YORK)
    assert sla.working_minutes_between(night, [], day, day + dt.timedelta(days=1)) == 120


def test_around_the_clock_calendar_in_new_york_is_elapsed_time_across_the_change():
    # 00:00-24:00 every day: Saturday 03-07 12:00 EST (17:00 UTC) + 24 h = Sunday 17:00 UTC = 13:00 EDT.
    always = calendar({str(day): [["00:00", "24:00"]] for day in range(1, 8)}, time_zone="America/New_York")
    result = deadlines(at(2026, 3, 7, 12, tz=NEW_YORK), cal=always, pol=policy(60, 24 * 60))
    assert result.resolution_due_at == at(2026, 3, 8, 17)
    assert result.resolution_due_at.astimezone(NEW_YORK).hour == 13


def test_berlin_business_hours_across_the_fall_back():
    # Clocks go from 03:00 CEST back to 02:00 CET on Sunday 2026-10-25. Friday 10-23 16:00 CEST (14:00 UTC)
    # + 2 h: Friday 16-17 (1 h), Monday 10-26 09:00 CET (08:00 UTC) + 1 h = 10:00 CET = 09:00 UTC.
    berlin = calendar(time_zone="Europe/Berlin")
    result = deadlines(at(2026, 10, 23, 16, tz=BERLIN), cal=berlin, pol=policy(30, 120))
    assert result.resolution_due_at == at(2026, 10, 26, 9)
    # First response (30 min): Friday 16:30 CEST = 14:30 UTC.
    assert result.first_response_due_at == at(2026, 10, 23, 14, 30)


def test_berlin_night_hours_on_the_long_night_last_seven_hours():
    # Sunday 00:00-06:00 local on 2026-10-25 runs from 22:00 UTC Saturday to 05:00 UTC: 7 hours, because
    # 02:00-03:00 happens twice. Six working hours from local midnight end at 04:00 UTC = 05:00 CET.
    night = calendar({"7": [["00:00", "06:00"]]}, time_zone="Europe/Berlin")
    midnight = at(2026, 10, 25, 0, tz=BERLIN)
    assert sla.working_minutes_between(night, [], midnight, midnight + dt.timedelta(days=1)) == 7 * 60
    six = sla.working_time(night).add(midnight, dt.timedelta(hours=6))
    assert six == at(2026, 10, 25, 4)
    assert six.astimezone(BERLIN).strftime("%H:%M %Z") == "05:00 CET"


def test_holidays_are_local_dates():
    # Tokyo (UTC+9): Monday 2026-03-09 local is a holiday. Friday 03-06 16:00 JST + 2 h: Friday 1 h, then
    # Tuesday 03-10 09:00 JST + 1 h = 10:00 JST = 01:00 UTC.
    tokyo = calendar(time_zone="Asia/Tokyo")
    tz = ZoneInfo("Asia/Tokyo")
    result = deadlines(
        at(2026, 3, 6, 16, tz=tz), cal=tokyo, holidays=[dt.date(2026, 3, 9)], pol=policy(30, 120)
    )
    assert result.resolution_due_at == at(2026, 3, 10, 1)


# --- the calendar's hours ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hours",
    [
        {"1": [["17:00", "09:00"]]},
        {"1": [["09:00", "12:00"], ["11:00", "13:00"]]},
        {"8": [["09:00", "17:00"]]},
        {"1": [["9am", "5pm"]]},
        {"1": [["09:00", "24:01"]]},
    ],
)
def test_bad_hours_are_refused(hours):
    with pytest.raises(ValueError):
        sla.parse_week(hours)


def test_a_calendar_without_working_time_is_refused():
    with pytest.raises(ValueError):
        sla.BusinessHours(time_zone="UTC", hours={})


# --- the badge ----------------------------------------------------------------------------------------------


def _badge_ticket(**fields):
    defaults = {
        "status": "open",
        "first_response_due_at": at(2026, 3, 2, 11),
        "first_response_warn_at": at(2026, 3, 2, 10),
        "resolution_due_at": at(2026, 3, 2, 17),
        "resolution_warn_at": at(2026, 3, 2, 13),
        "first_response_at": None,
        "resolved_at": None,
        "closed_at": None,
        "sla_paused_since": None,
    }
    return SimpleNamespace(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("fields", "now", "state"),
    [
        ({}, at(2026, 3, 2, 9, 30), "ok"),
        ({}, at(2026, 3, 2, 10), "at_risk"),
        ({}, at(2026, 3, 2, 11), "breached"),
        ({"first_response_at": at(2026, 3, 2, 10, 30)}, at(2026, 3, 2, 12), "ok"),
        ({"first_response_at": at(2026, 3, 2, 10, 30)}, at(2026, 3, 2, 13), "at_risk"),
        ({"first_response_at": at(2026, 3, 2, 12)}, at(2026, 3, 2, 12, 30), "breached"),
        ({"sla_paused_since": at(2026, 3, 2, 9, 45)}, at(2026, 3, 2, 10, 30), "paused"),
        (
            {
                "status": "resolved",
                "first_response_at": at(2026, 3, 2, 10),
                "resolved_at": at(2026, 3, 2, 16),
            },
            at(2026, 3, 5),
            "met",
        ),
        (
            {"status": "closed", "first_response_at": at(2026, 3, 2, 10), "resolved_at": at(2026, 3, 2, 18)},
            at(2026, 3, 5),
            "breached",
        ),
    ],
)
def test_sla_state(fields, now, state):
    assert sla.sla_state(_badge_ticket(**fields), now) == state
