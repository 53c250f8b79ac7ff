"""Likely duplicate customers: pairs within one organization, found set-based in SQL, with their reasons.

Three signals, each a join of the organization's customers with themselves that never compares every pair:

- **email**: the same address once case, surrounding spaces and dots are ignored. Customers' emails are
  unique per organization ignoring case and the services store them trimmed and lower-cased, so this mostly
  catches rows written around the services (raw imports, older data: " ann@x.com", "ann@x.com.");
  kept because those rows exist and are the most certain duplicates of all. A hash join on the key.
- **phone**: the same number once everything but digits is dropped (and an extension such as "x12"), with
  at least 7 digits, compared on the last 10 digits so a country code or trunk prefix does not hide a match
  ("+1 (555) 010-2000" and "555 010 2000"). Phones are encrypted at rest, so the comparison is of their
  keyed hashes (`phone_hash`, computed from that key in Python on every save: customers.phones). A hash
  join on it.
- **name + company**: trigram similarity (pg_trgm `similarity()`) of "first last" of at least 0.6, and the
  companies equal ignoring case, or similar (at least 0.6), or both empty. Candidates come from an equality
  join on each name's rarest trigrams (the prefix filter, see `SIGNALS_SQL`), and only they are compared.

  Why not pg_trgm's `%` operator with a GIN trigram index: under row-level security the planner may only
  use a condition as an index condition when its operator is LEAKPROOF (otherwise it could see rows the
  policy hides before the policy filters them), and `%` / `similarity()` are not, so `a % b` is a filter
  evaluated for every pair of the organization's customers: N². Marking them LEAKPROOF needs a superuser.
  The prefix filter uses only text equality (leakproof) and returns exactly the same pairs.

Each pair carries its reasons and a confidence, 0-100: the chance that at least one signal is right, when
each signal alone is right with its weight (email 0.9, phone 0.7, name 0.8 x name similarity x company
similarity, 1 when equal or both empty): `100 x (1 - (1 - e)(1 - p)(1 - n))`, rounded half up. Erased and
anonymized customers are left out; so are pairs someone marked "not a duplicate".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db import connection
from django.utils.translation import gettext as _

from crm.pagination import KeysetPage
from customers.models import Customer
from customers.phones import PHONE_KEY_DIGITS, PHONE_MIN_DIGITS  # noqa: F401 (the rule's numbers, re-exported)

EMAIL_WEIGHT = 0.9
PHONE_WEIGHT = 0.7
NAME_WEIGHT = 0.8
NAME_THRESHOLD = 0.6
COMPANY_THRESHOLD = 0.6
PER_PAGE = 25

_CURSOR_SALT = "customers.duplicates.cursor"

# SQL fragments of the rules, `{t}` being a table alias of `customers`. No user input goes into them.
_LIVE = "{t}.erased_at IS NULL AND {t}.anonymized_at IS NULL"
_EMAIL_KEY = r"NULLIF(lower(btrim({t}.email, E' \t.')), '')"
_PHONE_KEY = "{t}.phone_hash"  # NULL when the customer has no phone number (customers.phones.phone_key)
_FULL_NAME = "({t}.first_name || ' ' || {t}.last_name)"
# Company similarity: NULL when both are empty, 1 when equal ignoring case, else the trigram similarity.
_COMPANY_SIM = (
    "CASE WHEN btrim({a}) = '' AND btrim({b}) = '' THEN NULL"
    " WHEN lower(btrim({a})) = lower(btrim({b})) THEN 1.0::float8"
    " ELSE similarity({a}, {b})::float8 END"
)
_NAME_SIM = "similarity({a}, {b})::float8"
_NAME_MATCHES = "{name} >= %(name_min)s AND ({company} IS NULL OR {company} >= %(company_min)s)"
CONFIDENCE_SQL = (
    "round((100 * (1 - (1 - CASE WHEN email THEN %(w_email)s ELSE 0 END)"
    " * (1 - CASE WHEN phone THEN %(w_phone)s ELSE 0 END)"
    " * (1 - COALESCE(%(w_name)s * name_sim * COALESCE(company_sim, 1), 0))))::numeric)::int"
)

# The signals, one row per pair and signal (a pair may have several), as CTEs that the live list below and
# the refresh (customers.duplicates.refresh) both build on.
SIGNALS_SQL = f"""
WITH live AS MATERIALIZED (
    SELECT c.id, {_EMAIL_KEY.format(t="c")} AS email_key, {_PHONE_KEY.format(t="c")} AS phone_key,
           {_FULL_NAME.format(t="c")} AS full_name, c.company_name
    FROM customers c
    WHERE c.organization_id = %(org)s AND {_LIVE.format(t="c")}
),
-- Name candidates by the prefix filter of set-similarity joins (AllPairs / PPJoin): the trigram
-- similarity of two names is the Jaccard index J of their trigram sets. Order every name's trigrams the
-- same way, rarest in the organization first. Two names x, y with J >= t share at least one of the first
-- |x| - ceil(t|x|) + 1 trigrams of each (the prefix), so only names sharing a prefix trigram are
-- candidates (floor() for ceil() keeps one more now and then, never fewer candidates). Two more bounds
-- drop candidates before any similarity() is computed: the sizes (J <= min/max of |x|, |y|) and the
-- positions (at their first shared trigram, at positions p and q, x and y can share at most
-- 1 + min(|x| - p, |y| - q) trigrams, and J >= t needs t / (1 + t) (|x| + |y|) of them).
tokens AS MATERIALIZED (
    SELECT l.id, t.trgm, count(*) OVER (PARTITION BY l.id) AS n
    FROM live l CROSS JOIN LATERAL unnest(show_trgm(l.full_name)) AS t(trgm)
),
frequency AS (
    SELECT trgm, count(*) AS df FROM tokens GROUP BY trgm
),
prefix AS (
    SELECT id, trgm, n, position
    FROM (
        SELECT t.id, t.trgm, t.n, row_number() OVER (PARTITION BY t.id ORDER BY f.df, t.trgm) AS position
        FROM tokens t JOIN frequency f ON f.trgm = t.trgm
    ) ranked
    WHERE position <= n - floor(%(name_min)s * n) + 1
),
candidates AS (
    SELECT a.id AS a_id, b.id AS b_id
    FROM prefix a JOIN prefix b ON b.trgm = a.trgm AND b.id > a.id
    WHERE LEAST(a.n, b.n) >= %(name_min)s * GREATEST(a.n, b.n)
    GROUP BY a.id, b.id, a.n, b.n
    HAVING 1 + LEAST(a.n - min(a.position), b.n - min(b.position))
           >= %(name_min)s / (1 + %(name_min)s) * (a.n + b.n) - 1e-9
),
named AS (
    SELECT k.a_id, k.b_id, {_NAME_SIM.format(a="a.full_name", b="b.full_name")} AS name_sim,
           {_COMPANY_SIM.format(a="a.company_name", b="b.company_name")} AS company_sim
    FROM candidates k JOIN live a ON a.id = k.a_id JOIN live b ON b.id = k.b_id
),
signals AS (
    SELECT a.id AS a_id, b.id AS b_id, true AS email, false AS phone,
           NULL::float8 AS name_sim, NULL::float8 AS company_sim
    FROM live a JOIN live b ON b.email_key = a.email_key AND b.id > a.id
    UNION ALL
    SELECT a.id, b.id, false, true, NULL, NULL
    FROM live a JOIN live b ON b.phone_key = a.phone_key AND b.id > a.id
    UNION ALL
    SELECT a_id, b_id, false, false, name_sim, company_sim
    FROM named
    WHERE {_NAME_MATCHES.format(name="name_sim", company="company_sim")}
)
"""

_PAIRS_SQL = f"""{SIGNALS_SQL},
pairs AS (
    SELECT a_id, b_id, bool_or(email) AS email, bool_or(phone) AS phone,
           max(name_sim) AS name_sim, max(company_sim) AS company_sim
    FROM signals s
    WHERE NOT EXISTS (
        SELECT 1 FROM customer_duplicate_dismissals d
        WHERE d.organization_id = %(org)s AND d.customer_a_id = s.a_id AND d.customer_b_id = s.b_id
    )
    GROUP BY a_id, b_id
),
scored AS (
    SELECT a_id, b_id, email, phone, name_sim, company_sim, {CONFIDENCE_SQL} AS confidence,
           count(*) OVER () AS total
    FROM pairs
)
SELECT a_id, b_id, email, phone, name_sim, company_sim, confidence, total
FROM scored
WHERE {{where}}
ORDER BY {{order}}
LIMIT %(limit)s
"""

_ONE_NAME_SIM = _NAME_SIM.format(a="a.full_name", b="b.full_name")
_ONE_COMPANY_SIM = _COMPANY_SIM.format(a="a.company_name", b="b.company_name")
_ONE_PAIR_SQL = f"""
SELECT email, phone, name_sim, company_sim, {CONFIDENCE_SQL} AS confidence
FROM (
    SELECT COALESCE({_EMAIL_KEY.format(t="a")} = {_EMAIL_KEY.format(t="b")}, false) AS email,
           COALESCE({_PHONE_KEY.format(t="a")} = {_PHONE_KEY.format(t="b")}, false) AS phone,
           CASE WHEN {_NAME_MATCHES.format(name=_ONE_NAME_SIM, company=f"({_ONE_COMPANY_SIM})")}
                THEN {_ONE_NAME_SIM} END AS name_sim,
           {_ONE_COMPANY_SIM} AS company_sim
    FROM (SELECT c.*, {_FULL_NAME.format(t="c")} AS full_name FROM customers c
          WHERE c.organization_id = %(org)s AND c.id = %(a)s) a,
         (SELECT c.*, {_FULL_NAME.format(t="c")} AS full_name FROM customers c
          WHERE c.organization_id = %(org)s AND c.id = %(b)s) b
) p
"""

RULE_PARAMS = {
    "name_min": NAME_THRESHOLD,
    "company_min": COMPANY_THRESHOLD,
    "w_email": EMAIL_WEIGHT,
    "w_phone": PHONE_WEIGHT,
    "w_name": NAME_WEIGHT,
}


@dataclass(frozen=True)
class Reason:
    kind: str  # "email" | "phone" | "name"
    similarity: float | None = None  # name similarity, 0-1 (kind "name")
    company_similarity: float | None = None  # 1 when equal ignoring case, None when both are empty

    @property
    def label(self) -> str:
        if self.kind == "email":
            return _("Same email")
        if self.kind == "phone":
            return _("Same phone")
        return _("Similar name (%(percent)s%%)") % {"percent": round(100 * (self.similarity or 0))}

    @property
    def detail(self) -> str:
        """What the company part of a name match was (for the badge's title)."""
        if self.kind != "name":
            return ""
        if self.company_similarity is None:
            return _("No company on either")
        if self.company_similarity >= 1:
            return _("Same company")
        return _("Similar company (%(percent)s%%)") % {"percent": round(100 * self.company_similarity)}


@dataclass
class DuplicatePair:
    a_id: uuid.UUID
    b_id: uuid.UUID
    confidence: int
    reasons: list[Reason]
    a: Customer | None = None
    b: Customer | None = None

    @property
    def customers(self) -> list[Customer | None]:
        return [self.a, self.b]

    @property
    def level(self) -> str:
        """high / medium / low, for the badge colour."""
        return "high" if self.confidence >= 85 else "medium" if self.confidence >= 60 else "low"


def reasons_from(email: bool, phone: bool, name_sim: float | None, company_sim: float | None) -> list[Reason]:
    reasons = []
    if email:
        reasons.append(Reason("email"))
    if phone:
        reasons.append(Reason("phone"))
    if name_sim is not None:
        reasons.append(Reason("name", similarity=name_sim, company_similarity=company_sim))
    return reasons


def _encode(row: tuple, direction: str) -> str:
    confidence, a_id, b_id = row
    return signing.dumps({"v": [confidence, str(a_id), str(b_id)], "d": direction}, salt=_CURSOR_SALT)


def _decode(cursor: str | None) -> tuple[list[Any], str] | None:
    if not cursor:
        return None
    try:
        data = signing.loads(cursor, salt=_CURSOR_SALT)
        confidence, a_id, b_id = data["v"]
        return [int(confidence), uuid.UUID(a_id), uuid.UUID(b_id)], data.get("d", "next")
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None  # a forged or foreign cursor: start from the first page


@dataclass
class DuplicatesPage(KeysetPage):
    total: int = 0  # pairs in the whole list (capped by the stored list, see customers.duplicates.pages)
    total_capped: bool = False  # True: there are more than `total`


@dataclass(frozen=True)
class Keyset:
    """Where a page starts: the decoded cursor (confidence, a_id, b_id) and its direction. The order is
    (confidence, a_id, b_id), all descending, so "after the cursor" is one row comparison, which an index
    in that order serves as one range."""

    values: list[Any] | None
    direction: str

    @classmethod
    def from_cursor(cls, cursor: str | None) -> Keyset:
        decoded = _decode(cursor)
        return cls(values=decoded[0], direction=decoded[1]) if decoded else cls(values=None, direction="next")

    def where(self, columns: str) -> str:
        """The condition on `columns` (e.g. "(confidence, a_id, b_id)"), with params %(c)s %(ca)s %(cb)s."""
        if self.values is None:
            return "true"
        # Typed like the stored columns, so the comparison is the index's own (smallint, uuid, uuid).
        way = ">" if self.direction == "previous" else "<"
        return f"{columns} {way} (%(c)s::smallint, %(ca)s::uuid, %(cb)s::uuid)"

    def order(self, columns: tuple[str, str, str]) -> str:
        way = "" if self.direction == "previous" else " DESC"
        return ", ".join(f"{column}{way}" for column in columns)

    def params(self) -> dict[str, Any]:
        if self.values is None:
            return {}
        return {"c": self.values[0], "ca": self.values[1], "cb": self.values[2]}

    def page(
        self, items: list[DuplicatePair], *, per_page: int, total: int, capped: bool = False
    ) -> DuplicatesPage:
        """The page from up to per_page + 1 pairs fetched in this keyset's order (one more: is there more?)."""
        more = len(items) > per_page
        items = items[:per_page]
        if self.direction == "previous":
            items.reverse()
        has_next = more if self.direction == "next" else self.values is not None
        has_previous = self.values is not None if self.direction == "next" else more
        if not items and self.values is not None:
            # Past the end (the pairs changed since the link was made): nothing here, but a way back.
            total, has_previous = 0, True
        keys = [(p.confidence, p.a_id, p.b_id) for p in items]
        return DuplicatesPage(
            items=items,
            next_cursor=_encode(keys[-1], "next") if keys and has_next else None,
            previous_cursor=_encode(keys[0], "previous") if keys and has_previous else None,
            total=total,
            total_capped=capped,
        )


@contextmanager
def hash_joins_only(db) -> Iterator[None]:
    """Two planner settings for the statements in the block (transaction-local, put back after).

    Under row-level security the planner underestimates the customers scan (it cannot estimate the policy)
    and could join the organization's customers with themselves in a nested loop, N²: every join of the
    rules is an equality, so hash joins it is. And no JIT: compiling the plan would take longer than
    running it."""
    db.execute(
        "SELECT nestloop, jit, set_config('enable_nestloop', 'off', true), set_config('jit', 'off', true)"
        " FROM (SELECT current_setting('enable_nestloop') AS nestloop, current_setting('jit') AS jit"
        " OFFSET 0) previous"
    )
    previous = db.fetchone()[:2]
    yield
    db.execute("SELECT set_config('enable_nestloop', %s, true), set_config('jit', %s, true)", list(previous))


def find_duplicates(
    *, organization_id: uuid.UUID, cursor: str | None = None, per_page: int = PER_PAGE
) -> DuplicatesPage:
    """One keyset page of the organization's likely duplicate pairs computed now, from the customers as
    they are, most certain first, and how many pairs there are in all. Three statements whatever the data:
    planner settings, the pairs, the settings put back.

    The page reads the pairs the last refresh stored instead (customers.duplicates.pages), since this
    computes every pair of the organization on each call (2.2 s at 10,000 customers); kept as the live
    reference the stored pairs are checked against, in the tests and the benchmark."""
    keyset = Keyset.from_cursor(cursor)
    params: dict[str, Any] = {
        **RULE_PARAMS,
        **keyset.params(),
        "org": organization_id,
        "limit": per_page + 1,
    }
    sql = _PAIRS_SQL.format(
        where=keyset.where("(confidence, a_id, b_id)"), order=keyset.order(("confidence", "a_id", "b_id"))
    )
    with connection.cursor() as db, hash_joins_only(db):
        db.execute(sql, params)
        rows = db.fetchall()
    total = rows[0][7] if rows else 0
    items = [
        DuplicatePair(
            a_id=a, b_id=b, confidence=conf, reasons=reasons_from(email, phone, name_sim, company_sim)
        )
        for a, b, email, phone, name_sim, company_sim, conf, _total in rows
    ]
    return keyset.page(items, per_page=per_page, total=total)


def pair_reasons(*, organization_id: uuid.UUID, a_id: uuid.UUID, b_id: uuid.UUID) -> tuple[int, list[Reason]]:
    """Confidence and reasons of one pair, by the same rules as the list (one statement, no index needed)."""
    with connection.cursor() as db:
        db.execute(_ONE_PAIR_SQL, {**RULE_PARAMS, "org": organization_id, "a": a_id, "b": b_id})
        row = db.fetchone()
    if row is None:
        return 0, []
    email, phone, name_sim, company_sim, confidence = row
    return confidence, reasons_from(email, phone, name_sim, company_sim)
