"""Agent performance over a period (support/reports/__init__.py): tickets handled, first response and
resolution times in business hours, SLA compliance, CSAT and reopen rate, per agent and for the team."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.utils.translation import gettext as _

from crm.models import Department
from crm.permissions import Role
from support.models import BusinessCalendar, Holiday, Survey, Ticket
from support.reports.period import (
    ReportPeriod,
    as_float,
    comments_url,
    dict_rows,
    minutes_text,
    person_label,
    queue_url,
    ratio,
)
from support.sla import working_minutes_between

TEAM_ROLES = (Role.SUPPORT_AGENT.value,)


# --- Agent performance -----------------------------------------------------------------------------------------


COUNTS = ("handled", "reopened", "with_sla", "sla_met", "csat_responses", "csat_sum")


@dataclass
class AgentPerformance:
    """One agent's (or the unassigned tickets', or everyone's) figures for the period."""

    label: str
    user_id: uuid.UUID | None = None
    department: str = ""
    handled: int = 0
    reopened: int = 0
    with_sla: int = 0
    sla_met: int = 0
    csat_responses: int = 0
    csat_sum: int = 0
    first_response_minutes: list[float] = field(default_factory=list)
    resolution_minutes: list[float] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)

    @property
    def sla_percent(self) -> Decimal | None:
        """Handled tickets that met their SLA ÷ handled tickets with an SLA, percent (one decimal)."""
        return ratio(self.sla_met, self.with_sla, scale=100)

    @property
    def reopen_percent(self) -> Decimal | None:
        return ratio(self.reopened, self.handled, scale=100)

    @property
    def csat_average(self) -> Decimal | None:
        return ratio(self.csat_sum, self.csat_responses, places="0.01")

    @property
    def first_response_median(self) -> float | None:
        return statistics.median(self.first_response_minutes) if self.first_response_minutes else None

    @property
    def first_response_average(self) -> float | None:
        return statistics.fmean(self.first_response_minutes) if self.first_response_minutes else None

    @property
    def resolution_median(self) -> float | None:
        return statistics.median(self.resolution_minutes) if self.resolution_minutes else None

    @property
    def resolution_average(self) -> float | None:
        return statistics.fmean(self.resolution_minutes) if self.resolution_minutes else None

    @property
    def department_label(self) -> str:
        return str(dict(Department.choices).get(self.department, self.department)) if self.department else ""

    # The times as text for the page ("2 h 05 min").
    @property
    def first_response_median_text(self) -> str:
        return minutes_text(self.first_response_median)

    @property
    def first_response_average_text(self) -> str:
        return minutes_text(self.first_response_average)

    @property
    def resolution_median_text(self) -> str:
        return minutes_text(self.resolution_median)

    @property
    def resolution_average_text(self) -> str:
        return minutes_text(self.resolution_average)

    def add(self, other: AgentPerformance) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.first_response_minutes += other.first_response_minutes
        self.resolution_minutes += other.resolution_minutes


@dataclass
class PerformanceReport:
    period: ReportPeriod
    agents: list[AgentPerformance]
    total: AgentPerformance

    def chart(self) -> dict:
        rows = [row for row in self.agents if row.handled or row.csat_responses]
        return {
            "labels": [row.label for row in rows],
            "handled": [row.handled for row in rows],
            "sla_percent": [as_float(row.sla_percent) for row in rows],
            "resolution_median_hours": [
                None if row.resolution_median is None else round(row.resolution_median / 60, 2)
                for row in rows
            ],
            "urls": [row.links["handled"] for row in rows],
        }


# "Met" is support/sla.py's sla_state for a done ticket: the first response (if any) not after its
# deadline, and the resolution not after its deadline. Tickets without any deadline have no SLA.
PERFORMANCE_SQL = """
WITH handled AS (
    SELECT t.assigned_to_id AS user_id,
           count(*) AS handled,
           count(*) FILTER (WHERE t.reopened_count > 0) AS reopened,
           count(*) FILTER (WHERE t.first_response_due_at IS NOT NULL OR t.resolution_due_at IS NOT NULL)
               AS with_sla,
           count(*) FILTER (
               WHERE (t.first_response_due_at IS NOT NULL OR t.resolution_due_at IS NOT NULL)
                 AND (t.first_response_due_at IS NULL OR t.first_response_at IS NULL
                      OR t.first_response_at <= t.first_response_due_at)
                 AND (t.resolution_due_at IS NULL OR t.resolved_at <= t.resolution_due_at)
           ) AS sla_met
    FROM support_tickets t
    WHERE t.organization_id = %(org)s AND t.resolved_at >= %(since)s AND t.resolved_at < %(until)s
    GROUP BY t.assigned_to_id
),
csat AS (
    SELECT s.agent_id AS user_id, count(*) AS responses, sum(s.score) AS score_sum
    FROM support_surveys s
    WHERE s.organization_id = %(org)s AND s.kind = 'csat'
      AND s.responded_at >= %(since)s AND s.responded_at < %(until)s
    GROUP BY s.agent_id
),
people AS (
    SELECT u.id AS user_id FROM users u
    WHERE u.organization_id = %(org)s AND u.is_active AND u.role = ANY(%(roles)s)
    UNION SELECT user_id FROM handled
    UNION SELECT user_id FROM csat
)
SELECT p.user_id, u.first_name, u.last_name, u.email, u.department,
       coalesce(h.handled, 0) AS handled, coalesce(h.reopened, 0) AS reopened,
       coalesce(h.with_sla, 0) AS with_sla, coalesce(h.sla_met, 0) AS sla_met,
       coalesce(c.responses, 0) AS csat_responses, coalesce(c.score_sum, 0) AS csat_sum
FROM people p
LEFT JOIN users u ON u.organization_id = %(org)s AND u.id = p.user_id
LEFT JOIN handled h ON h.user_id IS NOT DISTINCT FROM p.user_id
LEFT JOIN csat c ON c.user_id IS NOT DISTINCT FROM p.user_id
"""


def _ticket_times(*, organization_id, period: ReportPeriod) -> list[tuple]:
    """(assignee, first response minutes or None, resolution minutes) of every ticket resolved in the period,
    in working time on its policy's calendar. Three queries: the tickets, their calendars, their holidays."""
    tickets = list(
        Ticket.objects.filter(
            organization_id=organization_id, resolved_at__gte=period.since, resolved_at__lt=period.until
        ).values_list(
            "assigned_to_id", "created_at", "first_response_at", "resolved_at", "sla_policy__calendar_id"
        )
    )
    calendar_ids = {row[4] for row in tickets if row[4]}
    calendars = {
        c.pk: c for c in BusinessCalendar.objects.filter(organization_id=organization_id, pk__in=calendar_ids)
    }
    holidays: dict = {pk: [] for pk in calendars}
    for calendar_id, day in Holiday.objects.filter(
        organization_id=organization_id, calendar_id__in=calendar_ids
    ).values_list("calendar_id", "date"):
        holidays[calendar_id].append(day)
    times = []
    for assignee, created_at, first_response_at, resolved_at, calendar_id in tickets:
        calendar = calendars.get(calendar_id)
        days = holidays.get(calendar_id, [])
        first = (
            working_minutes_between(calendar, days, created_at, first_response_at)
            if first_response_at
            else None
        )
        times.append((assignee, first, working_minutes_between(calendar, days, created_at, resolved_at)))
    return times


def agent_performance(*, organization_id: uuid.UUID, period: ReportPeriod) -> PerformanceReport:
    """Every support agent's figures for the period (active support agents, plus anyone with tickets resolved
    or CSAT answers in it; the unassigned tickets in a row of their own), and the whole team's. Four queries
    at most, whatever the number of agents and tickets."""
    with connection.cursor() as cursor:
        cursor.execute(
            PERFORMANCE_SQL,
            {
                "org": organization_id,
                "since": period.since,
                "until": period.until,
                "roles": list(TEAM_ROLES),
            },
        )
        rows = dict_rows(cursor)
    agents: dict = {}
    for row in rows:
        user_id = row["user_id"]
        assignee = str(user_id) if user_id else "none"
        agents[user_id] = AgentPerformance(
            label=person_label(row) if user_id else _("Unassigned"),
            user_id=user_id,
            department=row["department"] or "",
            **{name: row[name] for name in COUNTS},
            links={
                "handled": queue_url(period, assignee=assignee),
                "csat": comments_url(period, kind=Survey.Kind.CSAT, agent=assignee),
            },
        )
    for assignee, first, resolution in _ticket_times(organization_id=organization_id, period=period):
        row = agents.get(assignee)
        if row is None:  # its assignee's first ticket, resolved between the two statements: next time
            continue
        if first is not None:
            row.first_response_minutes.append(first)
        row.resolution_minutes.append(resolution)
    ordered = sorted(
        agents.values(), key=lambda r: (r.user_id is None, -r.handled, r.label.lower(), str(r.user_id))
    )
    total = AgentPerformance(
        label=_("Whole team"),
        links={"handled": queue_url(period), "csat": comments_url(period, kind=Survey.Kind.CSAT)},
    )
    for row in ordered:
        total.add(row)
    return PerformanceReport(period=period, agents=ordered, total=total)
