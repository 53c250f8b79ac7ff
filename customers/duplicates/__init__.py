"""Likely duplicate customers and the pages that compare and merge them.

- `finding`: the pairs, found set-based in SQL, with reasons and a confidence (the rules are documented
  there);
- `pages`: what the duplicates list and the compare & merge page show, scoped to the acting user.
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
    FieldRow,
    MergePreview,
    MoveRow,
    customer_pair,
    duplicates_page,
    merge_preview,
    one_pair,
)

__all__ = [
    "PER_PAGE",
    "DuplicatePair",
    "DuplicatesPage",
    "FieldRow",
    "MergePreview",
    "MoveRow",
    "Reason",
    "customer_pair",
    "duplicates_page",
    "find_duplicates",
    "merge_preview",
    "one_pair",
    "pair_reasons",
]
