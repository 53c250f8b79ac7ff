"""Team and rep performance over a period: win rate, average deal size, cycle time, activities completed,
quota attainment, slipped deals, and a leaderboard by closed-won revenue.

Live SQL, one statement whatever the number of reps or deals. Every metric is aggregated per user in its
own subquery (deals closed, activities, quotas, close-date changes) BEFORE anything meets `users`: joining
the fact tables side by side would multiply a rep's deals by their activities and quotas (the design
document's fan-out). Teams are the reps' departments; their figures are sums of the reps' raw counts and
amounts (a team's win rate is its won ÷ its closed, not an average of rates).

The period is a range of the organization's calendar days, both ends included: deals by their actual
close date, activities by when they were completed, slips by when the close date was moved, and quotas of
every month the period touches (quotas are monthly). Revenue is in the organization's currency, as quotas
are; won deals in other currencies count in win rates and cycle times, not in revenue.
"""

from __future__ import annotations

import datetime
import uuid
import zoneinfo
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.http import Http404
from django.utils.translation import gettext as _

from crm.models import Department, Organization, User
from crm.permissions import Capability, Role, has_capability
from sales.dashboard import opportunity_list_url

ZERO = Decimal("0")
SALES_ROLES = (Role.SALES_REP, Role.SALES_MANAGER)

PERFORMANCE_SQL = """
WITH closed AS (
    SELECT o.assigned_to_id AS user_id,
           count(*) FILTER (WHERE o.status = 'won') AS won,
           count(*) FILTER (WHERE o.status = 'lost') AS lost,
           count(*) FILTER (WHERE o.status = 'won' AND o.currency = %(currency)s) AS won_in_currency,
           coalesce(sum(o.amount) FILTER (WHERE o.status = 'won' AND o.currency = %(currency)s), 0) AS revenue,
           coalesce(sum(o.actual_close_date - (o.created_at AT TIME ZONE %(tz)s)::date)
                    FILTER (WHERE o.status = 'won'), 0) AS cycle_days
    FROM opportunities o
    WHERE o.organization_id = %(org)s AND o.status IN ('won', 'lost')
      AND o.actual_close_date BETWEEN %(start)s AND %(end)s
    GROUP BY o.assigned_to_id
),
done AS (
    SELECT a.owner_id AS user_id, count(*) AS activities
    FROM opportunity_activities a
    WHERE a.organization_id = %(org)s AND a.completed_at >= %(since)s AND a.completed_at < %(until)s
    GROUP BY a.owner_id
),
quotas AS (
    SELECT q.user_id, sum(q.amount) AS quota
    FROM sales_quotas q
    WHERE q.organization_id = %(org)s AND q.month BETWEEN %(first_month)s AND %(end)s
    GROUP BY q.user_id
),
slips AS (
    -- A change row belongs to one deal (many to one): joining it to its deal for the owner multiplies nothing.
    SELECT o.assigned_to_id AS user_id, count(DISTINCT c.opportunity_id) AS slipped_deals, count(*) AS slips
    FROM opportunity_changes c
    JOIN opportunities o ON o.organization_id = c.organization_id AND o.id = c.opportunity_id
    WHERE c.organization_id = %(org)s AND c.field = 'expected_close_date'
      AND c.changed_at >= %(since)s AND c.changed_at < %(until)s
      AND NULLIF(c.new_value, '')::date > NULLIF(c.old_value, '')::date
    GROUP BY o.assigned_to_id
),
people AS (
    SELECT u.id AS user_id FROM users u
    WHERE u.organization_id = %(org)s AND u.is_active AND u.role = ANY(%(roles)s)
    UNION SELECT user_id FROM closed
    UNION SELECT user_id FROM done
    UNION SELECT user_id FROM quotas
    UNION SELECT user_id FROM slips
)
SELECT p.user_id, u.first_name, u.last_name, u.email, u.department,
       coalesce(c.won, 0), coalesce(c.lost, 0), coalesce(c.won_in_currency, 0), coalesce(c.revenue, 0),
       coalesce(c.cycle_days, 0), coalesce(d.activities, 0), q.quota,
       coalesce(s.slipped_deals, 0), coalesce(s.slips, 0)
FROM people p
LEFT JOIN users u ON u.organization_id = %(org)s AND u.id = p.user_id
LEFT JOIN closed c ON c.user_id IS NOT DISTINCT FROM p.user_id
LEFT JOIN done d ON d.user_id IS NOT DISTINCT FROM p.user_id
LEFT JOIN quotas q ON q.user_id = p.user_id
LEFT JOIN slips s ON s.user_id IS NOT DISTINCT FROM p.user_id
"""


def _ratio(part: Decimal | int, whole: Decimal | int, places: str = "0.1", scale: int = 1) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(scale) * Decimal(part) / Decimal(whole)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Period:
    start: datetime.date
    end: datetime.date  # included

    @property
    def first_month(self) -> datetime.date:
        return self.start.replace(day=1)


@dataclass
class Performance:
    """One rep's (or a team's, or everyone's) raw figures for the period, and the ratios derived from them."""

    label: str
    user_id: uuid.UUID | None = None
    department: str = ""
    team: str = ""  # the department's name
    won: int = 0
    lost: int = 0
    won_in_currency: int = 0
    revenue: Decimal = ZERO
    cycle_days: int = 0
    activities: int = 0
    quota: Decimal | None = None
    slipped_deals: int = 0
    slips: int = 0
    rank: int | None = None
    links: dict[str, str] = field(default_factory=dict)

    @property
    def closed(self) -> int:
        return self.won + self.lost

    @property
    def win_rate(self) -> Decimal | None:
        """Won ÷ closed, in percent (one decimal)."""
        return _ratio(self.won, self.closed, scale=100)

    @property
    def average_deal_size(self) -> Decimal | None:
        return _ratio(self.revenue, self.won_in_currency, places="0.01")

    @property
    def average_cycle_days(self) -> Decimal | None:
        return _ratio(self.cycle_days, self.won)

    @property
    def attainment(self) -> Decimal | None:
        """Closed-won revenue ÷ quota, in percent (one decimal); None without a quota."""
        return _ratio(self.revenue, self.quota, scale=100) if self.quota else None

    def add(self, other: Performance) -> None:
        for name in (
            "won",
            "lost",
            "won_in_currency",
            "revenue",
            "cycle_days",
            "activities",
            "slipped_deals",
            "slips",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.quota is not None:
            self.quota = (self.quota or ZERO) + other.quota


@dataclass
class TeamPerformance:
    organization: Organization
    period: Period
    currency: str
    reps: list[Performance]
    teams: list[Performance]
    total: Performance

    @property
    def leaderboard(self) -> list[Performance]:
        return sorted(
            (r for r in self.reps if r.user_id is not None and r.rank is not None), key=lambda r: r.rank
        )

    @property
    def other_currency_wins(self) -> int:
        return self.total.won - self.total.won_in_currency


def _day_start(day: datetime.date, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=zone)


def _links(period: Period, owner: str | None) -> dict[str, str]:
    window = {"close_after": period.start.isoformat(), "close_before": period.end.isoformat()}
    return {
        "won": opportunity_list_url(owner=owner, status="won", **window),
        "lost": opportunity_list_url(owner=owner, status="lost", **window),
        "open": opportunity_list_url(owner=owner, status="open"),
    }


def team_performance(*, actor: User, period: Period) -> TeamPerformance:
    """Every sales rep's (active sales reps and managers, plus anyone with figures in the period) and every
    team's performance, and the organization's total. One query."""
    if not actor.organization_id or not has_capability(actor, Capability.VIEW_SALES_ANALYTICS):
        raise Http404
    organization = actor.organization
    zone = zoneinfo.ZoneInfo(organization.time_zone or "UTC")
    params = {
        "org": actor.organization_id,
        "currency": organization.currency,
        "tz": organization.time_zone or "UTC",
        "start": period.start,
        "end": period.end,
        "first_month": period.first_month,
        "since": _day_start(period.start, zone),
        "until": _day_start(period.end + datetime.timedelta(days=1), zone),
        "roles": [role.value for role in SALES_ROLES],
    }
    with connection.cursor() as cursor:
        cursor.execute(PERFORMANCE_SQL, params)
        rows = cursor.fetchall()

    departments = dict(Department.choices)
    reps = []
    for (
        user_id,
        first_name,
        last_name,
        email,
        department,
        won,
        lost,
        won_in_currency,
        revenue,
        cycle_days,
        activities,
        quota,
        slipped_deals,
        slips,
    ) in rows:
        label = f"{first_name or ''} {last_name or ''}".strip() or email or _("Unassigned")
        reps.append(
            Performance(
                label=label,
                user_id=user_id,
                department=department or "",
                team=str(departments.get(department, "")) if department else "",
                won=won,
                lost=lost,
                won_in_currency=won_in_currency,
                revenue=revenue,
                cycle_days=cycle_days,
                activities=activities,
                quota=quota,
                slipped_deals=slipped_deals,
                slips=slips,
                links=_links(period, str(user_id) if user_id else "none"),
            )
        )
    # The leaderboard: closed-won revenue, then deals won; the unassigned row takes no rank.
    reps.sort(key=lambda r: (r.user_id is None, -r.revenue, -r.won, r.label.lower(), str(r.user_id)))
    for rank, rep in enumerate((r for r in reps if r.user_id is not None), start=1):
        rep.rank = rank

    teams: dict[str, Performance] = {}
    total = Performance(label=_("Everyone"), links=_links(period, None))
    for rep in reps:
        total.add(rep)
        if rep.user_id is None:
            continue
        team = teams.setdefault(
            rep.department,
            Performance(label=str(departments.get(rep.department, _("No team"))), department=rep.department),
        )
        team.add(rep)
    return TeamPerformance(
        organization=organization,
        period=period,
        currency=organization.currency,
        reps=reps,
        teams=sorted(teams.values(), key=lambda t: (-t.revenue, t.label.lower())),
        total=total,
    )


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _number(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.1f}"


def performance_as_dict(row: Performance) -> dict:
    return {
        "label": row.label,
        "user_id": str(row.user_id) if row.user_id else None,
        "department": row.department,
        "rank": row.rank,
        "won": row.won,
        "lost": row.lost,
        "win_rate": _number(row.win_rate),
        "revenue": _money(row.revenue),
        "average_deal_size": _money(row.average_deal_size),
        "average_cycle_days": _number(row.average_cycle_days),
        "activities": row.activities,
        "quota": _money(row.quota),
        "attainment": _number(row.attainment),
        "slipped_deals": row.slipped_deals,
        "slips": row.slips,
    }


def team_performance_as_json(result: TeamPerformance) -> dict:
    return {
        "organization": result.organization.slug,
        "period": {"start": result.period.start.isoformat(), "end": result.period.end.isoformat()},
        "currency": result.currency,
        "reps": [performance_as_dict(r) for r in result.reps],
        "teams": [performance_as_dict(t) for t in result.teams],
        "total": performance_as_dict(result.total),
    }
