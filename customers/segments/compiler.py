"""Criteria -> a Django `Q` over `Customer`, and the human description of each rule.

One compiled queryset (`matching_customers`) serves the live preview (its count), the refresh (its SQL,
inside the refresh statement) and the "why" of each member (its `why` column: the descriptions of the
top-level rules the customer satisfies). Every negative operator is the exact complement of its positive one
(`neq` = not `eq`, `not_in` = not `in`, `has_none` = not `has_any`, `not_within_last_days` = not
`within_last_days`), so an empty value (no revenue, never contacted) counts as "not equal" / "not within".

Customers who may not be profiled (compliance.selectors.consent: processing restricted (GDPR art. 18),
erased, anonymized, or objecting to profiling) are never members of a dynamic segment, whatever the rules
say: the privacy area relies on this.
"""

from __future__ import annotations

import datetime
import uuid
import zoneinfo
from decimal import Decimal

from django.db.models import Count, F, Func, Q, QuerySet, TextField, Value
from django.db.models.expressions import Case, When
from django.db.models.functions import Lower
from django.db.models.lookups import In
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from compliance.models import ConsentPurpose
from compliance.selectors.consent import consent_q
from customers.models import Customer, Interaction
from customers.segments.criteria import validate_criteria
from customers.segments.schema import (
    ANY_TYPE,
    COUNT_OPERATORS,
    FIELDS,
    INTERACTION_TYPES,
    OPERATORS,
    Field,
    Kind,
)

ALWAYS = Q(pk__isnull=False)  # an explicit "true" (an empty Q would vanish inside an OR)

# The wall that no rule can lower (see the module docstring).
ELIGIBLE = consent_q(ConsentPurpose.PROFILING)


class Compiler:
    """Compiles validated criteria for one organization at one moment (`now`, in its time zone `tz`)."""

    def __init__(self, *, organization_id: uuid.UUID, now: datetime.datetime | None = None, tz=None):
        self.organization_id = organization_id
        self.now = now or timezone.now()
        self.tz = _zone(tz)

    # --- Q ---------------------------------------------------------------------------------------------

    def group(self, group: dict) -> Q:
        parts = [self.node(child) for child in group["rules"]]
        if not parts:
            return ALWAYS
        combined = parts[0]
        for part in parts[1:]:
            combined = (combined & part) if group["match"] == "all" else (combined | part)
        return combined

    def node(self, node: dict) -> Q:
        return self.group(node) if "rules" in node else self.rule(node)

    def rule(self, rule: dict) -> Q:
        field = FIELDS[rule["field"]]
        if field.kind == Kind.INTERACTIONS:
            return self.interactions(rule)
        op = OPERATORS[rule["op"]]
        if op.negates:
            return ~self.positive(field, op.negates, rule.get("value"))
        return self.positive(field, op.key, rule.get("value"))

    def positive(self, field: Field, op: str, value) -> Q:
        column = field.key
        if op == "is_empty":
            blank_text = field.kind in (Kind.TEXT, Kind.CHOICE)  # text columns store "" for no value
            return Q(**{column: ""}) if blank_text else Q(**{f"{column}__isnull": True})
        if field.kind == Kind.TEXT:
            if op == "eq":
                return Q(**{f"{column}__iexact": value})
            if op == "contains":
                return Q(**{f"{column}__icontains": value})
            if op == "startswith":
                return Q(**{f"{column}__istartswith": value})
            if op == "in":
                return Q(In(Lower(F(column)), [v.lower() for v in value]))
        if field.kind in (Kind.CHOICE, Kind.STAGE):
            if op == "eq":
                return Q(**{column: value})
            if op == "in":
                return Q(**{f"{column}__in": value})
        if field.kind == Kind.NUMBER:
            number = _number(field, value) if op != "between" else None
            if op == "eq":
                return Q(**{column: number})
            if op in ("gt", "gte", "lt", "lte"):
                return Q(**{f"{column}__{op}": number})
            if op == "between":
                low, high = (_number(field, v) for v in value)
                return Q(**{f"{column}__gte": low, f"{column}__lte": high})
        if field.kind == Kind.TAGS:
            if op == "has":
                return Q(tags__contains=[value])
            if op == "has_any":
                return Q(tags__overlap=value)
            if op == "has_all":
                return Q(tags__contains=value)
        if field.kind == Kind.BOOL and op == "is":
            return Q(**{column: value})
        if field.kind in (Kind.DATE, Kind.DATETIME):
            return self.date(field, op, value)
        raise AssertionError(f"no compilation for {field.key} {op}")

    def date(self, field: Field, op: str, value) -> Q:
        column = field.key
        today = self.now.astimezone(self.tz).date()
        if op in ("before", "after"):
            day = datetime.date.fromisoformat(value)
            if op == "after":
                day += datetime.timedelta(days=1)
            bound = self.start_of(day) if field.kind == Kind.DATETIME else day
            return Q(**{f"{column}__lt" if op == "before" else f"{column}__gte": bound})
        if op == "within_last_days":
            if field.kind == Kind.DATETIME:
                since = self.now - datetime.timedelta(days=value)
                return Q(**{f"{column}__gte": since, f"{column}__lte": self.now})
            return Q(**{f"{column}__gte": today - datetime.timedelta(days=value), f"{column}__lte": today})
        raise AssertionError(f"no compilation for {field.key} {op}")

    def start_of(self, day: datetime.date) -> datetime.datetime:
        """Midnight at the start of `day` in the organization's time zone."""
        return datetime.datetime.combine(day, datetime.time.min, tzinfo=self.tz)

    def interactions(self, rule: dict) -> Q:
        """The number of the customer's interactions of a type in the last N days, compared with a count.

        Set-based: one grouped subquery over the interaction log (organization, type and date range, so the
        (organization_id, interaction_type, interaction_date) index and partition pruning apply), used as a
        semi-join (`id IN (...)`) or an anti-join (`NOT (id IN (...))`) for counts that include zero.
        """
        since = self.now - datetime.timedelta(days=rule["days"])
        log = Interaction.objects.filter(
            organization_id=self.organization_id, interaction_date__gte=since, interaction_date__lte=self.now
        )
        if rule["type"] != ANY_TYPE:
            log = log.filter(interaction_type=rule["type"])
        per_customer = log.order_by().values("customer_id").annotate(n=Count("*"))

        def having(**condition) -> QuerySet:
            return per_customer.filter(**condition).values("customer_id")

        op, count = rule["op"], rule["count"]
        if op == "gte":
            return ALWAYS if count == 0 else Q(pk__in=having(n__gte=count))
        if op == "lte":
            return ~Q(pk__in=having(n__gt=count))
        # eq
        return ~Q(pk__in=having(n__gte=1)) if count == 0 else Q(pk__in=having(n=count))

    # --- the "why" ----------------------------------------------------------------------------------------

    def why(self, criteria: dict) -> Func:
        """SQL text naming the top-level rules a customer satisfies, joined with "; "."""
        cases = [
            Case(
                When(self.node(node), then=Value(describe_node(node))), default=None, output_field=TextField()
            )
            for node in criteria["rules"]
        ]
        if not cases:
            return Value(_("All customers"), output_field=TextField())
        return Func(Value("; "), *cases, function="concat_ws", output_field=TextField())


def _zone(tz) -> datetime.tzinfo:
    if tz is None:
        return datetime.UTC
    if isinstance(tz, str):
        try:
            return zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return datetime.UTC
    return tz


def _number(field: Field, value) -> int | Decimal:
    return int(value) if field.integer else Decimal(str(value))


def compile_criteria(criteria: dict, *, organization_id, now=None, tz=None) -> Q:
    """The Q of (validated) criteria; raises CriteriaError for invalid ones."""
    criteria = validate_criteria(criteria)
    return Compiler(organization_id=organization_id, now=now, tz=tz).group(criteria)


def matching_customers(criteria: dict, *, organization_id, now=None, tz=None) -> QuerySet[Customer]:
    """The organization's customers that the criteria select, each annotated with `why`.

    Validates first (raises CriteriaError). Unordered: callers count it or feed it to SQL.
    """
    criteria = validate_criteria(criteria)
    compiler = Compiler(organization_id=organization_id, now=now, tz=tz)
    return (
        Customer.objects.filter(organization_id=organization_id)
        .filter(ELIGIBLE)
        .filter(compiler.group(criteria))
        .annotate(why=compiler.why(criteria))
        .order_by()
    )


# --- Descriptions ----------------------------------------------------------------------------------------


def _list(values) -> str:
    return ", ".join(str(v) for v in values)


def _amount(field: Field, value) -> str:
    return formats.number_format(value, decimal_pos=None, use_l10n=True, force_grouping=not field.integer)


def _day(value: str) -> str:
    return formats.date_format(datetime.date.fromisoformat(value), "DATE_FORMAT")


def describe_rule(rule: dict) -> str:
    """A rule in words: "Lead score is at least 50", "At least 3 calls in the last 30 days"."""
    field = FIELDS[rule["field"]]
    if field.kind == Kind.INTERACTIONS:
        kind = rule["type"]
        what = (
            _("interactions")
            if kind == ANY_TYPE
            else _("interactions of type “%(type)s”") % {"type": dict(INTERACTION_TYPES)[kind]}
        )
        params = {
            "op": capfirst(COUNT_OPERATORS[rule["op"]]),
            "count": rule["count"],
            "what": what,
            "days": rule["days"],
        }
        return (
            ngettext(
                "%(op)s %(count)d %(what)s in the last day",
                "%(op)s %(count)d %(what)s in the last %(days)d days",
                rule["days"],
            )
            % params
        )
    name = capfirst(field.label)
    op = rule["op"]
    value = rule.get("value")
    label = OPERATORS[op].label
    if op in ("is_empty", "is_not_empty"):
        return f"{name} {label}"
    if field.kind == Kind.BOOL:
        return _("%(field)s is yes") % {"field": name} if value else _("%(field)s is no") % {"field": name}
    if field.kind in (Kind.CHOICE, Kind.STAGE):
        shown = (
            _list(field.choice_label(v) for v in value)
            if isinstance(value, list)
            else field.choice_label(value)
        )
        return f"{name} {label} {shown}"
    if field.kind == Kind.NUMBER:
        if op == "between":
            return _("%(field)s is between %(low)s and %(high)s") % {
                "field": name,
                "low": _amount(field, value[0]),
                "high": _amount(field, value[1]),
            }
        return f"{name} {label} {_amount(field, value)}"
    if field.kind == Kind.TAGS:
        return capfirst(f"{label} {value if op == 'has' else _list(value)}")
    if field.kind in (Kind.DATE, Kind.DATETIME):
        if op in ("within_last_days", "not_within_last_days"):
            template = (
                ngettext("%(field)s is in the last day", "%(field)s is in the last %(days)d days", value)
                if op == "within_last_days"
                else ngettext(
                    "%(field)s is not in the last day", "%(field)s is not in the last %(days)d days", value
                )
            )
            return template % {"field": name, "days": value}
        return f"{name} {label} {_day(value)}"
    # text
    if isinstance(value, list):
        return f"{name} {label} {_list(value)}"
    return f"{name} {label} “{value}”"


def describe_node(node: dict) -> str:
    if "rules" not in node:
        return describe_rule(node)
    joiner = _(" and ") if node["match"] == "all" else _(" or ")
    return "(" + joiner.join(describe_node(child) for child in node["rules"]) + ")"


def describe_criteria(criteria: dict) -> list[str]:
    """The top-level rules in words, in order (the detail page lists them; the "why" picks among them)."""
    return [describe_node(node) for node in criteria.get("rules", [])]
