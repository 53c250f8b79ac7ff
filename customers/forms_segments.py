"""The segment form and its rule builder: the criteria tree posted as flat fields, and back.

Every node of the tree posts its parts under its key (`customers.segments.node_key`): the top group is "r",
its entries "r-0", "r-1", a nested group's entries "r-1-0", ... So `r-1-match=any`, `r-1-0-field=tags`,
`r-1-0-op=has_any`, `r-1-0-value=vip, partner`. The builder is re-rendered on the server from what was
posted (htmx), so the browser needs no logic of its own.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django import forms
from django.http import QueryDict
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from customers.models import Segment
from customers.segments.criteria import CriteriaError, empty_criteria, node_key, validate_criteria
from customers.segments.schema import (
    COUNT_OPERATORS,
    FIELDS,
    INTERACTION_TYPES,
    MAX_DEPTH,
    MAX_RULES,
    OPERATORS,
    Kind,
    Shape,
)

_KEY = re.compile(r"^r(?:-\d{1,3}){0,%d}$" % MAX_DEPTH)  # noqa: UP031 (a regex, not a message)
_PARTS = ("kind", "match", "field", "prev", "op", "value", "value2", "type", "count", "days")
_MAX_NODES = MAX_RULES * 2


# --- posted fields -> raw criteria ----------------------------------------------------------------------


def _number(text: str):
    """A posted number as int or float; anything else stays text (validation then names the problem)."""
    text = (text or "").strip().replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if not number.is_finite():
        return text
    return int(number) if number == number.to_integral_value() else float(number)


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip()]


def _rule_from_parts(parts: dict, *, repair: bool) -> dict:
    key = (parts.get("field") or "").strip()
    spec = FIELDS.get(key)
    if spec is None:
        return {"field": key} if key else {"field": ""}
    op = (parts.get("op") or "").strip()
    if spec.kind == Kind.INTERACTIONS:
        if repair and op not in COUNT_OPERATORS:
            op = "gte"
        return {
            "field": key,
            "type": parts.get("type") or "any",
            "op": op,
            "count": _number(parts.get("count") or ("1" if repair else "")),
            "days": _number(parts.get("days") or ("30" if repair else "")),
        }
    values = parts.get("value") or []
    changed = repair and parts.get("prev") not in (None, key)
    if repair and (op not in spec.operators or changed):
        op = next(iter(spec.operators))
        values = [] if changed else values
    if changed:
        parts = {**parts, "value2": ""}
    shape = spec.operators.get(op)
    rule: dict = {"field": key, "op": op}
    first = values[0] if values else ""
    if shape is None:
        rule["value"] = first
    elif shape == Shape.NONE:
        pass
    elif shape == Shape.CHOICES:
        rule["value"] = [v for v in values if v]
    elif shape in (Shape.TEXTS, Shape.TAGS):
        rule["value"] = _split(first)
    elif shape == Shape.NUMBER:
        rule["value"] = _number(first)
    elif shape == Shape.RANGE:
        rule["value"] = [_number(first), _number(parts.get("value2") or "")]
    elif shape == Shape.BOOL:
        # The select shows "yes" first: a rule the page just made means what it shows.
        rule["value"] = {"true": True, "false": False}.get(first, True if repair and not first else first)
    elif shape == Shape.DAYS:
        rule["value"] = _number(first)
    else:  # text, tag, choice, date
        rule["value"] = first
    return rule


def criteria_from_post(data: QueryDict, *, repair: bool = False) -> dict:
    """The raw (unvalidated) criteria tree the builder posted.

    With `repair` (the builder re-rendering while the user edits), a rule whose field just changed starts
    over with that field's first operator and no value, and an operator the field does not offer is
    replaced by its first one, so the user never sees an error for a choice the page made for them.
    """
    nodes: dict[str, dict] = {}
    for name in data:
        key, _sep, part = name.rpartition("-")
        if part not in _PARTS or not _KEY.match(key):
            continue
        if key not in nodes and len(nodes) >= _MAX_NODES:
            continue
        nodes.setdefault(key, {})[part] = data.getlist(name) if part == "value" else data.get(name)

    def children_of(key: str) -> list[str]:
        pattern = re.compile(re.escape(key) + r"-(\d+)$")
        found = [(int(m.group(1)), k) for k in nodes if (m := pattern.match(k))]
        return [k for _index, k in sorted(found)]

    def build(key: str) -> dict:
        parts = nodes.get(key, {})
        if key == "r" or parts.get("kind") == "group":
            return {
                "match": parts.get("match") or "all",
                "rules": [build(child) for child in children_of(key)],
            }
        return _rule_from_parts(parts, repair=repair)

    return build("r")


def apply_action(criteria: dict, action: str) -> dict:
    """Add a rule or a group to a group, or remove a node: "add_rule:r-1", "add_group:r", "remove:r-1-0"."""
    verb, _sep, key = (action or "").partition(":")
    if not _KEY.match(key):
        return criteria
    path = [int(part) for part in key.split("-")[1:]]
    try:
        if verb == "remove" and path:
            parent = _node_at(criteria, path[:-1])
            del parent["rules"][path[-1]]
        elif verb in ("add_rule", "add_group"):
            group = _node_at(criteria, path)
            if "rules" not in group:
                return criteria
            if verb == "add_rule":
                group["rules"].append({"field": ""})
            elif len(path) + 1 < MAX_DEPTH:
                group["rules"].append({"match": "all", "rules": [{"field": ""}]})
    except (IndexError, KeyError, TypeError):
        pass
    return criteria


def _node_at(criteria: dict, path: list[int]) -> dict:
    node = criteria
    for index in path:
        node = node["rules"][index]
    return node


# --- criteria -> what the builder template shows --------------------------------------------------------


@dataclass
class BuilderNode:
    key: str
    depth: int  # the top group is 1
    is_group: bool
    errors: list[str] = dataclasses.field(default_factory=list)
    # groups
    match: str = "all"
    children: list[BuilderNode] = dataclasses.field(default_factory=list)
    can_nest: bool = False
    # rules
    field: str = ""
    op: str = ""
    shape: str = ""
    operators: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    choices: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    selected: list[str] = dataclasses.field(default_factory=list)
    value: str = ""
    value2: str = ""
    type: str = "any"
    count: str = ""
    days: str = ""

    @property
    def is_root(self) -> bool:
        return self.key == "r"

    @property
    def is_interactions(self) -> bool:
        return self.field == "interactions"


def field_options() -> list[tuple[str, list[tuple[str, str]]]]:
    """The field select's option groups."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for spec in FIELDS.values():
        groups.setdefault(str(spec.group), []).append((spec.key, capfirst(spec.label)))
    return list(groups.items())


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def builder_tree(criteria: dict, errors: dict[str, list[str]] | None = None) -> BuilderNode:
    errors = errors or {}

    def node(data, path: tuple[int, ...], depth: int) -> BuilderNode:
        key = node_key(path)
        if isinstance(data, dict) and "rules" in data and "field" not in data:
            rules = data.get("rules") if isinstance(data.get("rules"), list) else []
            return BuilderNode(
                key=key,
                depth=depth,
                is_group=True,
                errors=errors.get(key, []),
                match=data.get("match") if data.get("match") in ("all", "any") else "all",
                children=[node(child, (*path, i), depth + 1) for i, child in enumerate(rules)],
                can_nest=depth < MAX_DEPTH,
            )
        data = data if isinstance(data, dict) else {}
        result = BuilderNode(key=key, depth=depth, is_group=False, errors=errors.get(key, []))
        spec = FIELDS.get(data.get("field") or "")
        if spec is None:
            return result
        result.field = spec.key
        result.op = data.get("op") or ""
        if spec.kind == Kind.INTERACTIONS:
            result.operators = [(k, capfirst(v)) for k, v in COUNT_OPERATORS.items()]
            result.choices = [(k, capfirst(v)) for k, v in INTERACTION_TYPES]
            result.type = data.get("type") or "any"
            result.count = _shown(data.get("count"))
            result.days = _shown(data.get("days"))
            result.shape = "interactions"
            return result
        result.operators = [(k, capfirst(OPERATORS[k].label)) for k in spec.operators]
        result.shape = spec.operators.get(result.op, "")
        value = data.get("value")
        if result.shape == Shape.RANGE and isinstance(value, list):
            result.value = _shown(value[0] if value else "")
            result.value2 = _shown(value[1] if len(value) > 1 else "")
        else:
            result.value = _shown(value)
        if result.shape in (Shape.CHOICE, Shape.CHOICES):
            result.choices = [(k, str(v)) for k, v in spec.choices]
            result.selected = [str(v) for v in value] if isinstance(value, list) else [_shown(value)]
        elif result.shape == Shape.BOOL:
            result.choices = [("true", str(_("yes"))), ("false", str(_("no")))]
            result.selected = [_shown(value)]
        return result

    root = criteria if isinstance(criteria, dict) else empty_criteria()
    return node(root, (), 1)


def _blank(value) -> bool:
    return value is None or value == "" or value == [] or (isinstance(value, list) and "" in value)


def incomplete_rules(criteria: dict) -> set[str]:
    """Keys of the rules the user has not finished (no field yet, or no value yet): the page shows no
    error for them while the user is building, only when the form is saved."""
    found: set[str] = set()

    def walk(node, path: tuple[int, ...]) -> None:
        if isinstance(node, dict) and isinstance(node.get("rules"), list) and "field" not in node:
            for index, child in enumerate(node["rules"]):
                walk(child, (*path, index))
            return
        if not isinstance(node, dict):
            return
        spec = FIELDS.get(node.get("field") or "")
        if spec is None:
            blank = not node.get("field")
        elif spec.kind == Kind.INTERACTIONS:
            blank = _blank(node.get("count")) or _blank(node.get("days"))
        else:
            blank = spec.operators.get(node.get("op"), "") != Shape.NONE and _blank(node.get("value"))
        if blank:
            found.add(node_key(path))

    walk(criteria, ())
    return found


def check(criteria: dict) -> tuple[dict | None, dict[str, list[str]]]:
    """(validated criteria, {}) or (None, errors by node key)."""
    try:
        return validate_criteria(criteria), {}
    except CriteriaError as error:
        return None, error.errors_by_node


# --- the form -------------------------------------------------------------------------------------------


class SegmentForm(forms.Form):
    """Name, description and kind; for a dynamic segment, the rules posted by the builder.

    `cleaned_data["criteria"]` holds the validated rules; `criteria` and `criteria_errors` what the builder
    shows again when the form comes back with errors.
    """

    name = forms.CharField(label=_("Name"), max_length=120)
    description = forms.CharField(
        label=_("Description"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    kind = forms.ChoiceField(
        label=_("Kind"), choices=Segment.Kind.choices, initial=Segment.Kind.DYNAMIC, widget=forms.RadioSelect
    )

    def __init__(self, data=None, *, segment: Segment | None = None, **kwargs):
        self.segment = segment
        initial = kwargs.pop("initial", {})
        if segment is not None:
            initial = {
                "name": segment.name,
                "description": segment.description,
                "kind": segment.kind,
                **initial,
            }
        super().__init__(data, initial=initial, **kwargs)
        if segment is not None:
            del self.fields["kind"]  # a segment keeps its kind
        self.criteria_errors: dict[str, list[str]] = {}
        if data is not None:
            self.criteria = criteria_from_post(data)
        elif segment is not None and segment.kind == Segment.Kind.DYNAMIC:
            self.criteria = segment.criteria or empty_criteria()
        else:
            self.criteria = {"match": "all", "rules": [{"field": ""}]}

    @property
    def chosen_kind(self) -> str:
        if self.segment is not None:
            return self.segment.kind
        value = self.data.get("kind") if self.is_bound else self.initial.get("kind")
        return value if value in Segment.Kind.values else Segment.Kind.DYNAMIC

    def clean(self):
        cleaned = super().clean()
        cleaned["criteria"] = None
        if self.chosen_kind == Segment.Kind.DYNAMIC:
            criteria, self.criteria_errors = check(self.criteria)
            if self.criteria_errors:
                self.add_error(None, _("Some rules need attention: see the messages beside them."))
            cleaned["criteria"] = criteria
        return cleaned

    def builder(self) -> BuilderNode:
        return builder_tree(self.criteria, self.criteria_errors)
