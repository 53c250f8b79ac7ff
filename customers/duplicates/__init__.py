"""Likely duplicate customers and the pages that compare and merge them.

- `finding`: the rules, as set-based SQL, with reasons and a confidence (documented there);
- `refresh`: the pairs stored per organization (refreshed hourly and on demand) and when they were computed;
- `pages`: what the duplicates list (read from the stored pairs) and the compare & merge page show, scoped
  to the acting user.
"""

from customers.duplicates.finding import (
    PER_PAGE,
    DuplicatePair,
    DuplicatesPage,
    Reason,
    find_duplicates,
    pair_reasons,
)
from customers.duplicates.pages import (
    COUNT_CAP,
    FieldRow,
    MergePreview,
    MoveRow,
    customer_pair,
    duplicates_page,
    merge_preview,
    one_pair,
)
from customers.duplicates.refresh import (
    REFRESH_STALE_AFTER,
    DuplicatesStatus,
    RefreshResult,
    duplicate_pairs_refresh,
    duplicate_pairs_refresh_request,
    duplicates_status,
)

__all__ = [
    "COUNT_CAP",
    "PER_PAGE",
    "REFRESH_STALE_AFTER",
    "DuplicatePair",
    "DuplicatesPage",
    "DuplicatesStatus",
    "FieldRow",
    "MergePreview",
    "MoveRow",
    "Reason",
    "RefreshResult",
    "customer_pair",
    "duplicate_pairs_refresh",
    "duplicate_pairs_refresh_request",
    "duplicates_page",
    "duplicates_status",
    "find_duplicates",
    "merge_preview",
    "one_pair",
    "pair_reasons",
]
