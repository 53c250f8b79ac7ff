"""Lead, engagement and health scores: one definition, two interpreters (docs/lead-scoring.md).

- `definition.py`: `Weights` (the design document's `calculate_dynamic_lead_score` points and thresholds,
  overridable per organization through `ScoringModel.weights`), the fixed tables of the engagement and
  health scores, the rule tiers, the count sources other apps register, and the time windows;
- `batch.py`: `score_organization()` scores every customer of an organization set-based: one statement
  that aggregates the interaction log once per customer, evaluates the rules as SQL CASE expressions
  generated from the weights, updates the customers whose scores changed and appends those changes to the
  score history;
- `explain.py`: `explain()` computes one customer's scores in Python, with the reasons (breakdown, factors,
  actions, trend from the history).

Time windows are calendar days in the organization's time zone ("within 7 days" = on or after midnight
seven days before today), computed once in Python (`Clock`) and handed to both, so they cannot disagree.
"""

from customers.scoring.batch import score_distribution, score_organization
from customers.scoring.definition import (
    BOUNDS,
    COUNT_SOURCES,
    DEFAULT_WEIGHTS,
    GROUPS,
    HEALTH_LIFECYCLE_POINTS,
    ORDERED,
    WEIGHT_FIELDS,
    Clock,
    CountSource,
    Weights,
    clock_for,
    order_errors,
    organization_settings,
    register_count_source,
    validate_weights,
)
from customers.scoring.explain import band_of, explain, recommended_actions, trend_of

__all__ = [
    "BOUNDS",
    "COUNT_SOURCES",
    "DEFAULT_WEIGHTS",
    "GROUPS",
    "HEALTH_LIFECYCLE_POINTS",
    "ORDERED",
    "WEIGHT_FIELDS",
    "Clock",
    "CountSource",
    "Weights",
    "band_of",
    "clock_for",
    "explain",
    "order_errors",
    "organization_settings",
    "recommended_actions",
    "register_count_source",
    "score_distribution",
    "score_organization",
    "trend_of",
    "validate_weights",
]
