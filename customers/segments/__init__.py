"""Customer segments: static (hand-picked) and dynamic (rules).

- `schema`: the whitelist of fields and operators a rule may use;
- `criteria`: validation of the JSON rule tree (precise errors, keyed by rule);
- `compiler`: rules -> one Django `Q` / queryset, used for the preview count, the refresh and the "why";
- `membership`: set-based SQL that applies a refresh or a manual change, with membership events;
- `selectors`: reads for the pages.

Writes go through `customers.services.segments`.
"""

from customers.segments.compiler import (
    ELIGIBLE,
    compile_criteria,
    describe_criteria,
    describe_node,
    describe_rule,
    matching_customers,
)
from customers.segments.criteria import CriteriaError, empty_criteria, node_key, validate_criteria

__all__ = [
    "ELIGIBLE",
    "CriteriaError",
    "compile_criteria",
    "describe_criteria",
    "describe_node",
    "describe_rule",
    "empty_criteria",
    "matching_customers",
    "node_key",
    "validate_criteria",
]
