"""Validation of segment criteria: a JSON rule tree in, a normalised copy out, or every problem at once.

The format (stored in `Segment.criteria`)::

    {"match": "all" | "any", "rules": [rule | group, ...]}            a group, nested up to 3 levels
    {"field": "lead_score", "op": "gte", "value": 50}                 a rule on a whitelisted field
    {"field": "interactions", "type": "call", "op": "gte", "count": 3, "days": 30}
                                                                        a behaviour rule: the number of
                                                                        interactions of a type (or "any")
                                                                        in the last N days

Errors are keyed by the node's path (`node_key`): "r" is the top group, "r-0" its first entry, "r-0-2" the
third entry of that (a group), so the builder shows each message beside the rule it concerns.
"""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from customers.segments.schema import (
    ANY_TYPE,
    COUNT_OPERATORS,
    FIELDS,
    INTERACTION_TYPES,
    MAX_COUNT,
    MAX_DAYS,
    MAX_DEPTH,
    MAX_LIST_VALUES,
    MAX_RULES,
    MAX_TEXT_LENGTH,
    MAX_WINDOW_DAYS,
    OPERATORS,
    Field,
    Kind,
    Shape,
)

MATCHES = ("all", "any")
ROOT = ()


def node_key(path: tuple[int, ...]) -> str:
    """The key of a node in error dicts and in the builder's form: "r", "r-0", "r-0-2"."""
    return "r" + "".join(f"-{index}" for index in path)


def empty_criteria() -> dict:
    return {"match": "all", "rules": []}


class CriteriaError(ValidationError):
    """Invalid criteria. `errors_by_node` maps node keys ("r-0-1") to their messages."""

    def __init__(self, errors_by_node: dict[str, list[str]]):
        self.errors_by_node = errors_by_node
        super().__init__(dict(errors_by_node))

    def flat(self) -> list[str]:
        return [message for messages in self.errors_by_node.values() for message in messages]


class _Checker:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self.rule_count = 0

    def fail(self, path: tuple[int, ...], message: str) -> None:
        self.errors.setdefault(node_key(path), []).append(message)

    # --- groups ------------------------------------------------------------------------------------------

    def group(self, data: Any, path: tuple[int, ...], depth: int) -> dict | None:
        if not isinstance(data, dict):
            self.fail(path, _("A group must be an object with “match” and “rules”."))
            return None
        if depth > MAX_DEPTH:
            self.fail(path, _("Groups can be nested at most %(max)d levels deep.") % {"max": MAX_DEPTH})
            return None
        unexpected = sorted(set(data) - {"match", "rules"})
        if unexpected:
            self.fail(path, _("Unexpected key “%(key)s” in a group.") % {"key": unexpected[0]})
        match = data.get("match", "all")
        if match not in MATCHES:
            self.fail(
                path, _("A group matches “all” or “any” of its rules, not “%(match)s”.") % {"match": match}
            )
        rules = data.get("rules")
        if not isinstance(rules, list):
            self.fail(path, _("A group needs a list of rules."))
            return None
        if not rules:
            self.fail(path, _("Add at least one rule to this group."))
        children = []
        for index, child in enumerate(rules):
            node = self.node(child, (*path, index), depth)
            if node is not None:
                children.append(node)
        return {"match": match, "rules": children}

    def node(self, data: Any, path: tuple[int, ...], depth: int) -> dict | None:
        if isinstance(data, dict) and "rules" in data and "field" not in data:
            return self.group(data, path, depth + 1)
        self.rule_count += 1
        if self.rule_count == MAX_RULES + 1:
            self.fail(ROOT, _("A segment can have at most %(max)d rules.") % {"max": MAX_RULES})
        return self.rule(data, path)

    # --- rules -------------------------------------------------------------------------------------------

    def rule(self, data: Any, path: tuple[int, ...]) -> dict | None:
        if not isinstance(data, dict):
            self.fail(path, _("A rule must be an object with “field”, “op” and “value”."))
            return None
        key = data.get("field")
        if not key:
            self.fail(path, _("Choose a field."))
            return None
        field = FIELDS.get(key) if isinstance(key, str) else None
        if field is None:
            self.fail(path, _("Unknown field “%(field)s”.") % {"field": key})
            return None
        if field.kind == Kind.INTERACTIONS:
            return self.interactions_rule(data, path, field)
        unexpected = sorted(set(data) - {"field", "op", "value"})
        if unexpected:
            self.fail(path, _("Unexpected key “%(key)s” in a rule.") % {"key": unexpected[0]})
            return None
        op = data.get("op")
        allowed = field.operators
        if not op:
            self.fail(path, _("Choose an operator."))
            return None
        if op not in allowed:
            self.fail(path, self.operator_message(op, field, list(allowed)))
            return None
        shape = allowed[op]
        if shape == Shape.NONE:
            if data.get("value") not in (None, "", []):
                self.fail(path, _("“%(op)s” takes no value.") % {"op": OPERATORS[op].label})
                return None
            return {"field": key, "op": op}
        value = self.value(data.get("value"), shape, field, path)
        if value is None:
            return None
        return {"field": key, "op": op, "value": value}

    def operator_message(self, op: Any, field: Field, allowed: list[str]) -> str:
        params = {"op": op, "field": capfirst(field.label), "allowed": ", ".join(allowed)}
        if op in OPERATORS:
            return (
                _("The operator “%(op)s” cannot be used with %(field)s (use one of: %(allowed)s).") % params
            )
        return _("Unknown operator “%(op)s” for %(field)s (use one of: %(allowed)s).") % params

    def interactions_rule(self, data: dict, path: tuple[int, ...], field: Field) -> dict | None:
        unexpected = sorted(set(data) - {"field", "type", "op", "count", "days"})
        if unexpected:
            self.fail(path, _("Unexpected key “%(key)s” in an interactions rule.") % {"key": unexpected[0]})
            return None
        ok = True
        kind = data.get("type", ANY_TYPE)
        if kind not in dict(INTERACTION_TYPES):
            self.fail(path, _("Unknown interaction type “%(type)s”.") % {"type": kind})
            ok = False
        op = data.get("op")
        if op not in COUNT_OPERATORS:
            self.fail(path, self.operator_message(op or "", field, list(COUNT_OPERATORS)))
            ok = False
        count = self.whole(data.get("count"), 0, MAX_COUNT)
        if count is None:
            self.fail(path, _("The count must be a whole number from 0 to %(max)d.") % {"max": MAX_COUNT})
            ok = False
        days = self.whole(data.get("days"), 1, MAX_WINDOW_DAYS)
        if days is None:
            self.fail(
                path,
                _("The period must be a whole number of days from 1 to %(max)d.") % {"max": MAX_WINDOW_DAYS},
            )
            ok = False
        if not ok:
            return None
        return {"field": field.key, "type": kind, "op": op, "count": count, "days": days}

    # --- values ------------------------------------------------------------------------------------------

    @staticmethod
    def whole(value: Any, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if isinstance(value, float) and not value.is_integer():
            return None
        return int(value) if low <= value <= high else None

    def value(self, value: Any, shape: str, field: Field, path: tuple[int, ...]) -> Any:
        name = capfirst(field.label)
        if shape == Shape.TEXT:
            if not isinstance(value, str) or not value.strip():
                self.fail(path, _("%(field)s needs a text value.") % {"field": name})
                return None
            if len(value) > MAX_TEXT_LENGTH:
                self.fail(path, _("Use at most %(max)d characters.") % {"max": MAX_TEXT_LENGTH})
                return None
            return value.strip()
        if shape in (Shape.TEXTS, Shape.TAGS, Shape.CHOICES):
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) and v.strip() for v in value)
            ):
                self.fail(path, _("%(field)s needs a list of one or more values.") % {"field": name})
                return None
            if len(value) > MAX_LIST_VALUES:
                self.fail(path, _("Use at most %(max)d values.") % {"max": MAX_LIST_VALUES})
                return None
            if any(len(v) > MAX_TEXT_LENGTH for v in value):
                self.fail(path, _("Use at most %(max)d characters per value.") % {"max": MAX_TEXT_LENGTH})
                return None
            values = list(dict.fromkeys(v.strip() for v in value))
            if shape == Shape.TAGS:
                return list(dict.fromkeys(v.lower()[:50] for v in values))
            if shape == Shape.CHOICES:
                return self.choices(values, field, path)
            return values
        if shape == Shape.TAG:
            if not isinstance(value, str) or not value.strip():
                self.fail(path, _("%(field)s needs a tag.") % {"field": name})
                return None
            if "," in value or ";" in value:
                self.fail(
                    path,
                    _("One tag only here; for several, use “has any of the tags” or “has all of the tags”."),
                )
                return None
            return value.strip().lower()[:50]
        if shape == Shape.CHOICE:
            if not isinstance(value, str):
                self.fail(path, _("%(field)s needs one of its choices.") % {"field": name})
                return None
            chosen = self.choices([value], field, path)
            return chosen[0] if chosen else None
        if shape == Shape.NUMBER:
            return self.number(value, field, path)
        if shape == Shape.RANGE:
            if not isinstance(value, list) or len(value) != 2:
                self.fail(path, _("%(field)s needs two numbers: from and to.") % {"field": name})
                return None
            low, high = (self.number(v, field, path) for v in value)
            if low is None or high is None:
                return None
            if low > high:
                self.fail(path, _("The first number must not be greater than the second."))
                return None
            return [low, high]
        if shape == Shape.BOOL:
            if not isinstance(value, bool):
                self.fail(path, _("%(field)s needs true or false.") % {"field": name})
                return None
            return value
        if shape == Shape.DATE:
            try:
                return datetime.date.fromisoformat(value).isoformat()
            except (TypeError, ValueError):
                self.fail(path, _("%(field)s needs a date (YYYY-MM-DD).") % {"field": name})
                return None
        if shape == Shape.DAYS:
            days = self.whole(value, 1, MAX_DAYS)
            if days is None:
                self.fail(path, _("Enter a whole number of days from 1 to %(max)d.") % {"max": MAX_DAYS})
            return days
        raise AssertionError(f"unhandled shape {shape}")

    def choices(self, values: list[str], field: Field, path: tuple[int, ...]) -> list[str] | None:
        known = dict(field.choices)
        for value in values:
            if value not in known:
                self.fail(
                    path,
                    _("“%(value)s” is not a choice of %(field)s.")
                    % {"value": value, "field": capfirst(field.label)},
                )
                return None
        return values

    def number(self, value: Any, field: Field, path: tuple[int, ...]) -> int | float | None:
        name = capfirst(field.label)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, _("%(field)s needs a number.") % {"field": name})
            return None
        if field.integer:
            if isinstance(value, float) and not value.is_integer():
                self.fail(path, _("%(field)s needs a whole number.") % {"field": name})
                return None
            value = int(value)
        try:
            if not Decimal(str(value)).is_finite() or abs(value) >= 10**14:
                raise InvalidOperation
        except InvalidOperation:
            self.fail(path, _("%(field)s needs a number.") % {"field": name})
            return None
        return value


def validate_criteria(data: Any) -> dict:
    """The criteria, normalised (tags lower-cased, values trimmed, defaults filled in), or CriteriaError
    naming every problem with the node it belongs to."""
    checker = _Checker()
    result = checker.group(data, ROOT, 1)
    if checker.errors or result is None:
        raise CriteriaError(checker.errors)
    return result
