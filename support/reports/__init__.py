"""Support reports: CSAT and NPS by period, agent and category, and agent performance over a period.

Live SQL over the organization's rows. Every metric is aggregated in its own subquery (tickets resolved,
survey answers) BEFORE anything meets `users`: joining surveys and tickets side by side would multiply an
agent's tickets by their answers (the design document's fan-out). The query count is fixed whatever the
number of agents, tickets or answers.

Definitions (docs/support.md, "CSAT and NPS" and "Agent performance"):
- The period is a range of the organization's calendar days, both ends included, cut into weeks (Monday
  first) or months in the organization's time zone.
- CSAT: the average score (1-5) of the CSAT answers received in the period, and their number; "satisfied"
  is the share of 4 and 5. NPS: % promoters (9-10) minus % detractors (0-6) of the NPS answers received in the
  period, from -100 to 100. By agent and category: the survey's agent and category (a CSAT survey's are its
  ticket's assignee and category when it was sent; an NPS survey's those of the customer's most recently
  resolved ticket, if any).
- Agent performance covers the tickets *resolved* in the period (resolved or closed, `resolved_at` in the
  period), credited to their assignee: tickets handled; first response time (creation to the first public
  agent reply) and resolution time (creation to resolution), both in working time on the calendar of the
  ticket's SLA policy (around the clock without one), measured by `support.sla.working_minutes_between`,
  median and average; SLA compliance, the share of the handled tickets with an SLA whose first response
  was not late and that were resolved by their resolution deadline (`support.sla.sla_state` "met"); CSAT,
  the CSAT answers received in the period credited to the agent; reopen rate, the share of the handled
  tickets reopened at least once.
"""

from support.reports.performance import AgentPerformance, PerformanceReport, agent_performance
from support.reports.period import ReportPeriod, default_period, minutes_text
from support.reports.satisfaction import (
    SatisfactionReport,
    SatisfactionRow,
    ScoreStats,
    answers,
    satisfaction_report,
)

__all__ = [
    "AgentPerformance",
    "PerformanceReport",
    "ReportPeriod",
    "SatisfactionReport",
    "SatisfactionRow",
    "ScoreStats",
    "agent_performance",
    "answers",
    "default_period",
    "minutes_text",
    "satisfaction_report",
]
