"""CSAT and NPS by period, agent and category, and the answers behind them (support/reports/__init__.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.utils.translation import gettext as _

from crm.models import Department
from support.models import Survey
from support.reports.period import (
    ReportPeriod,
    as_float,
    comments_url,
    dict_rows,
    person_label,
    queue_url,
    ratio,
)

# --- CSAT and NPS ----------------------------------------------------------------------------------------------


@dataclass
class ScoreStats:
    """Answers of one kind (CSAT or NPS) in one cell of a report."""

    responses: int = 0
    score_sum: int = 0
    satisfied: int = 0  # CSAT 4 and 5
    promoters: int = 0  # NPS 9 and 10
    detractors: int = 0  # NPS 0 to 6

    @property
    def average(self) -> Decimal | None:
        """The average score, two decimals (CSAT)."""
        return ratio(self.score_sum, self.responses, places="0.01")

    @property
    def satisfied_percent(self) -> Decimal | None:
        return ratio(self.satisfied, self.responses, scale=100)

    @property
    def passives(self) -> int:
        return self.responses - self.promoters - self.detractors

    @property
    def promoter_percent(self) -> Decimal | None:
        return ratio(self.promoters, self.responses, scale=100)

    @property
    def passive_percent(self) -> Decimal | None:
        return ratio(self.passives, self.responses, scale=100)

    @property
    def detractor_percent(self) -> Decimal | None:
        return ratio(self.detractors, self.responses, scale=100)

    @property
    def nps(self) -> Decimal | None:
        """% promoters minus % detractors, one decimal (-100 to 100)."""
        return ratio(self.promoters - self.detractors, self.responses, scale=100)


@dataclass
class SatisfactionRow:
    key: str
    label: str
    csat: ScoreStats = field(default_factory=ScoreStats)
    nps: ScoreStats = field(default_factory=ScoreStats)
    links: dict[str, str] = field(default_factory=dict)

    @property
    def responses(self) -> int:
        return self.csat.responses + self.nps.responses


@dataclass
class SatisfactionReport:
    period: ReportPeriod
    total: SatisfactionRow
    by_period: list[SatisfactionRow]
    by_agent: list[SatisfactionRow]
    by_category: list[SatisfactionRow]

    def chart(self) -> dict:
        """What static/js/support-charts.js draws (json_script), with the drill-down URL of each point."""
        return {
            "periods": {
                "labels": [row.label for row in self.by_period],
                "csat_average": [as_float(row.csat.average) for row in self.by_period],
                "csat_responses": [row.csat.responses for row in self.by_period],
                "nps": [as_float(row.nps.nps) for row in self.by_period],
                "nps_responses": [row.nps.responses for row in self.by_period],
                "urls": [row.links["csat"] for row in self.by_period],
                "nps_urls": [row.links["nps"] for row in self.by_period],
            },
            "agents": {
                "labels": [row.label for row in self.by_agent if row.csat.responses],
                "csat_average": [as_float(row.csat.average) for row in self.by_agent if row.csat.responses],
                "csat_responses": [row.csat.responses for row in self.by_agent if row.csat.responses],
                "urls": [row.links["csat"] for row in self.by_agent if row.csat.responses],
            },
        }


SATISFACTION_SQL = """
WITH answered AS (
    SELECT s.kind, s.score, s.agent_id, s.category,
           date_trunc(%(unit)s, s.responded_at AT TIME ZONE %(tz)s)::date AS bucket
    FROM support_surveys s
    WHERE s.organization_id = %(org)s AND s.kind IN ('csat', 'nps')
      AND s.responded_at >= %(since)s AND s.responded_at < %(until)s
),
cells AS (
    -- One pass, four groupings; GROUPING() tells them apart (bucket 4, agent 2, category 1: 3 = by period,
    -- 5 = by agent, 6 = by category, 7 = everything).
    SELECT kind, bucket, agent_id, category, GROUPING(bucket, agent_id, category) AS grouping,
           count(*) AS responses, sum(score) AS score_sum,
           count(*) FILTER (WHERE score >= 4) AS satisfied,
           count(*) FILTER (WHERE score >= 9) AS promoters,
           count(*) FILTER (WHERE score <= 6) AS detractors
    FROM answered
    GROUP BY GROUPING SETS ((kind), (kind, bucket), (kind, agent_id), (kind, category))
)
SELECT c.grouping, c.kind, c.bucket, c.agent_id, c.category, c.responses, c.score_sum, c.satisfied,
       c.promoters, c.detractors, u.first_name, u.last_name, u.email
FROM cells c
LEFT JOIN users u ON u.organization_id = %(org)s AND u.id = c.agent_id
"""
BY_PERIOD, BY_AGENT, BY_CATEGORY, EVERYTHING = 3, 5, 6, 7


def satisfaction_report(*, organization_id: uuid.UUID, period: ReportPeriod) -> SatisfactionReport:
    """CSAT and NPS for the period, by week or month, by agent and by category. One query."""
    with connection.cursor() as cursor:
        cursor.execute(
            SATISFACTION_SQL,
            {
                "org": organization_id,
                "unit": period.unit,
                "tz": period.time_zone or "UTC",
                "since": period.since,
                "until": period.until,
            },
        )
        rows = dict_rows(cursor)

    def links(**filters) -> dict[str, str]:
        return {
            "csat": comments_url(period, kind=Survey.Kind.CSAT, **filters),
            "nps": comments_url(period, kind=Survey.Kind.NPS, **filters),
            "all": comments_url(period, **filters),
        }

    total = SatisfactionRow(key="total", label=_("All answers"), links=links())
    by_period = {}
    for bucket, first, last in period.buckets():
        row = SatisfactionRow(key=bucket.isoformat(), label=period.label(bucket))
        row.links = {
            "csat": comments_url(period, start=first, end=last, kind=Survey.Kind.CSAT),
            "nps": comments_url(period, start=first, end=last, kind=Survey.Kind.NPS),
            "all": comments_url(period, start=first, end=last),
        }
        by_period[bucket] = row
    by_agent: dict = {}
    by_category: dict = {}
    departments = dict(Department.choices)
    for cell in rows:
        grouping, kind, agent_id, category = (
            cell["grouping"],
            cell["kind"],
            cell["agent_id"],
            cell["category"],
        )
        if grouping == EVERYTHING:
            row = total
        elif grouping == BY_PERIOD:
            row = by_period.get(cell["bucket"])
            if row is None:  # cannot happen: every bucket of the period is listed
                continue
        elif grouping == BY_AGENT:
            row = by_agent.get(agent_id)
            if row is None:
                label = person_label(cell) if agent_id else _("Unattributed")
                row = by_agent[agent_id] = SatisfactionRow(
                    key=str(agent_id or "none"), label=label, links=links(agent=str(agent_id or "none"))
                )
                if agent_id:
                    row.links["tickets"] = queue_url(period, assignee=str(agent_id))
        else:
            row = by_category.get(category)
            if row is None:
                label = str(departments.get(category, category)) if category else _("No category")
                row = by_category[category] = SatisfactionRow(
                    key=category or "none", label=label, links=links(category=category or "none")
                )
                if category:
                    row.links["tickets"] = queue_url(period, category=category)
        csat = kind == Survey.Kind.CSAT
        stats = ScoreStats(
            responses=cell["responses"],
            score_sum=cell["score_sum"] or 0,
            satisfied=cell["satisfied"] if csat else 0,
            promoters=0 if csat else cell["promoters"],
            detractors=0 if csat else cell["detractors"],
        )
        setattr(row, kind, stats)

    def ordered(rows: dict) -> list[SatisfactionRow]:
        # Attributed rows first, by number of answers, then by name; the unattributed row last.
        return sorted(rows.values(), key=lambda r: (r.key == "none", -r.responses, r.label.lower()))

    return SatisfactionReport(
        period=period,
        total=total,
        by_period=list(by_period.values()),
        by_agent=ordered(by_agent),
        by_category=ordered(by_category),
    )


def answers(
    *,
    organization_id: uuid.UUID,
    period: ReportPeriod,
    kind: str = "",
    agent: str = "",
    category: str = "",
    with_comment: bool = True,
):
    """The answered surveys of the period, newest first, with their ticket, customer and agent (for a keyset
    page): of one kind, one agent ("none": unattributed), one category ("none": without one); only those with
    a comment unless `with_comment` is false."""
    queryset = Survey.objects.filter(
        organization_id=organization_id,
        responded_at__gte=period.since,
        responded_at__lt=period.until,
    ).select_related("ticket", "customer", "agent")
    if kind:
        queryset = queryset.filter(kind=kind)
    if agent == "none":
        queryset = queryset.filter(agent__isnull=True)
    elif agent:
        queryset = queryset.filter(agent_id=agent)
    if category == "none":
        queryset = queryset.filter(category="")
    elif category:
        queryset = queryset.filter(category=category)
    if with_comment:
        queryset = queryset.exclude(comment="")
    return queryset
