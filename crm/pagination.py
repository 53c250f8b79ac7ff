"""Keyset ("seek") pagination: a page is the rows after (or before) the last one seen, never an OFFSET.

The cursor holds the ordering values of the boundary row, signed so a client cannot forge arbitrary
values into the query. Deep pages cost the same as the first one; no COUNT(*) is needed.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core import signing
from django.db.models import F, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.utils.dateparse import parse_datetime

_SALT = "crm.pagination.cursor"


@dataclass
class KeysetPage:
    items: list
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None


def _encode(values: list[Any], direction: str) -> str:
    def plain(value):
        if isinstance(value, datetime.datetime):
            return {"dt": value.isoformat()}
        if isinstance(value, uuid.UUID | Decimal):
            return str(value)
        return value

    return signing.dumps({"v": [plain(v) for v in values], "d": direction}, salt=_SALT, compress=True)


def _decode(cursor: str) -> tuple[list[Any], str] | None:
    try:
        data = signing.loads(cursor, salt=_SALT)
    except signing.BadSignature:
        return None
    values = [parse_datetime(v["dt"]) if isinstance(v, dict) and "dt" in v else v for v in data.get("v", [])]
    return values, data.get("d", "next")


def _after(ordering: tuple[str, ...], values: list[Any], *, reverse: bool):
    """Rows strictly after `values` in `ordering` (strictly before when `reverse`).

    With one direction throughout, a row comparison `(a, b) < (x, y)`: PostgreSQL turns it into one index
    range scan on an index of the same column order. Mixed directions fall back to OR-ed prefixes
    (a > x) OR (a = x AND b > y) ...
    """
    descending = {field.startswith("-") != reverse for field in ordering}
    if len(descending) == 1:
        columns = Tuple(*(F(field.lstrip("-")) for field in ordering))
        return TupleLessThan(columns, values) if descending.pop() else TupleGreaterThan(columns, values)
    condition = Q()
    for position, field in enumerate(ordering):
        name = field.lstrip("-")
        descending = field.startswith("-") != reverse
        step = Q(**{f"{name}__{'lt' if descending else 'gt'}": values[position]})
        for earlier, earlier_field in enumerate(ordering[:position]):
            step &= Q(**{earlier_field.lstrip("-"): values[earlier]})
        condition |= step
    return condition


def keyset_page(
    queryset: QuerySet, *, ordering: tuple[str, ...], cursor: str | None, per_page: int = 50
) -> KeysetPage:
    """One page of `queryset` in `ordering` (which must end with a unique field such as `-id`)."""
    decoded = _decode(cursor) if cursor else None
    if decoded and len(decoded[0]) != len(ordering):
        decoded = None  # a cursor of another list: start from the beginning, as for a forged one
    direction = "next"
    qs = queryset.order_by(*ordering)
    if decoded:
        values, direction = decoded
        if direction == "previous":
            reversed_ordering = tuple(f[1:] if f.startswith("-") else f"-{f}" for f in ordering)
            qs = queryset.filter(_after(ordering, values, reverse=True)).order_by(*reversed_ordering)
        else:
            qs = qs.filter(_after(ordering, values, reverse=False))
    rows = list(qs[: per_page + 1])
    more = len(rows) > per_page
    rows = rows[:per_page]
    if direction == "previous":
        rows.reverse()

    def key(row):
        return [getattr(row, f.lstrip("-")) for f in ordering]

    has_next = more if direction == "next" else bool(decoded)
    has_previous = bool(decoded) if direction == "next" else more
    return KeysetPage(
        items=rows,
        next_cursor=_encode(key(rows[-1]), "next") if rows and has_next else None,
        previous_cursor=_encode(key(rows[0]), "previous") if rows and has_previous else None,
    )
