"""The whitelist of segment rules: which customer fields a rule may test, and with which operators.

Nothing outside these tables ever reaches a query: a rule names a field and an operator by key, the
compiler maps both to a fixed column and a fixed lookup, and the value is always a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from customers.models import Customer, CustomerType, EducationLevel, InteractionType, LifecycleStage

MAX_DEPTH = 3  # the top group is level 1; a group inside a group inside it is level 3
MAX_RULES = 50
MAX_LIST_VALUES = 100
MAX_TEXT_LENGTH = 200
MAX_DAYS = 36500  # "born in the last N days" reaches back a lifetime
MAX_WINDOW_DAYS = 3650  # interactions are kept for years, not lifetimes
MAX_COUNT = 100_000
ANY_TYPE = "any"


class Shape:
    """What an operator's value looks like (drives validation and the builder's input)."""

    NONE = "none"  # is_empty: no value
    TEXT = "text"  # one string
    TEXTS = "texts"  # a list of strings
    CHOICE = "choice"  # one of the field's choices
    CHOICES = "choices"  # a list of the field's choices
    NUMBER = "number"
    RANGE = "range"  # [low, high], inclusive
    BOOL = "bool"
    DATE = "date"  # "YYYY-MM-DD"
    DAYS = "days"  # a whole number of days
    TAG = "tag"
    TAGS = "tags"


@dataclass(frozen=True)
class Operator:
    key: str
    label: Promise
    negates: str = ""  # the positive operator this one is the exact complement of


OPERATORS: dict[str, Operator] = {
    op.key: op
    for op in (
        Operator("eq", _("is")),
        Operator("neq", _("is not"), negates="eq"),
        Operator("contains", _("contains")),
        Operator("startswith", _("starts with")),
        Operator("is_empty", _("is empty")),
        Operator("is_not_empty", _("is not empty"), negates="is_empty"),
        Operator("in", _("is any of")),
        Operator("not_in", _("is none of"), negates="in"),
        Operator("gt", _("is more than")),
        Operator("gte", _("is at least")),
        Operator("lt", _("is less than")),
        Operator("lte", _("is at most")),
        Operator("between", _("is between")),
        Operator("has", _("has the tag")),
        Operator("has_any", _("has any of the tags")),
        Operator("has_all", _("has all of the tags")),
        Operator("has_none", _("has none of the tags"), negates="has_any"),
        Operator("is", _("is")),
        Operator("before", _("is before")),
        Operator("after", _("is after")),
        Operator("within_last_days", _("is in the last … days")),
        Operator("not_within_last_days", _("is not in the last … days"), negates="within_last_days"),
    )
}

# The interaction-count rule has its own operators (on the count, not on a column).
COUNT_OPERATORS: dict[str, Promise] = {"gte": _("at least"), "lte": _("at most"), "eq": _("exactly")}


class Kind:
    TEXT = "text"
    CHOICE = "choice"
    NUMBER = "number"
    STAGE = "stage"
    TAGS = "tags"
    BOOL = "bool"
    DATE = "date"  # a DateField: compared with dates
    DATETIME = "datetime"  # a DateTimeField: compared with the organization's local days
    ENCRYPTED = "encrypted"  # encrypted at rest (crm/encryption.py): SQL can only tell whether it is set
    INTERACTIONS = "interactions"


# Operators per kind, and the value shape each takes for that kind (when it differs from the default).
KIND_OPERATORS: dict[str, dict[str, str]] = {
    Kind.TEXT: {
        "eq": Shape.TEXT,
        "neq": Shape.TEXT,
        "contains": Shape.TEXT,
        "startswith": Shape.TEXT,
        "is_empty": Shape.NONE,
        "is_not_empty": Shape.NONE,
        "in": Shape.TEXTS,
        "not_in": Shape.TEXTS,
    },
    Kind.CHOICE: {
        "eq": Shape.CHOICE,
        "neq": Shape.CHOICE,
        "in": Shape.CHOICES,
        "not_in": Shape.CHOICES,
        "is_empty": Shape.NONE,
        "is_not_empty": Shape.NONE,
    },
    Kind.NUMBER: {
        "eq": Shape.NUMBER,
        "neq": Shape.NUMBER,
        "gt": Shape.NUMBER,
        "gte": Shape.NUMBER,
        "lt": Shape.NUMBER,
        "lte": Shape.NUMBER,
        "between": Shape.RANGE,
    },
    Kind.STAGE: {"eq": Shape.CHOICE, "neq": Shape.CHOICE, "in": Shape.CHOICES, "not_in": Shape.CHOICES},
    Kind.TAGS: {"has": Shape.TAG, "has_any": Shape.TAGS, "has_all": Shape.TAGS, "has_none": Shape.TAGS},
    Kind.BOOL: {"is": Shape.BOOL},
    Kind.DATE: {
        "before": Shape.DATE,
        "after": Shape.DATE,
        "within_last_days": Shape.DAYS,
        "not_within_last_days": Shape.DAYS,
        "is_empty": Shape.NONE,
        "is_not_empty": Shape.NONE,
    },
}
KIND_OPERATORS[Kind.DATETIME] = KIND_OPERATORS[Kind.DATE]
# An encrypted column holds a token whose order and content mean nothing to SQL: "is set" is all a rule can
# test without decrypting every customer in Python (docs/security.md).
KIND_OPERATORS[Kind.ENCRYPTED] = {"is_empty": Shape.NONE, "is_not_empty": Shape.NONE}


@dataclass(frozen=True)
class Field:
    key: str
    label: Promise
    kind: str
    group: Promise
    choices: tuple[tuple[str, Promise], ...] = ()
    nullable: bool = False  # the column may be NULL (numbers, dates)
    integer: bool = False

    @property
    def operators(self) -> dict[str, str]:
        """Operator key -> value shape, in the order the builder offers them."""
        ops = dict(KIND_OPERATORS.get(self.kind, {}))
        if self.kind == Kind.NUMBER and self.nullable:
            ops.update({"is_empty": Shape.NONE, "is_not_empty": Shape.NONE})
        return ops

    def choice_label(self, value: str) -> str:
        return str(dict(self.choices).get(value, value))


def _label(name: str) -> Promise:
    return Customer._meta.get_field(name).verbose_name


PROFILE = _("Profile")
SCORES = _("Scores and value")
LIFECYCLE = _("Lifecycle and tags")
CONSENT = _("Consent and flags")
DATES = _("Dates")
BEHAVIOUR = _("Behaviour")

_FIELDS: list[Field] = [
    *(
        Field(name, _label(name), Kind.TEXT, PROFILE)
        for name in (
            "first_name",
            "last_name",
            "email",
            "company_name",
            "job_title",
            "city",
            "state",
            "country",
            "source",
        )
    ),
    Field("customer_type", _label("customer_type"), Kind.CHOICE, PROFILE, tuple(CustomerType.choices)),
    Field("education_level", _label("education_level"), Kind.CHOICE, PROFILE, tuple(EducationLevel.choices)),
    Field("status", _label("status"), Kind.CHOICE, PROFILE, tuple(Customer.Status.choices)),
    Field("lead_score", _label("lead_score"), Kind.NUMBER, SCORES, integer=True),
    Field("engagement_score", _label("engagement_score"), Kind.NUMBER, SCORES, integer=True),
    Field("health_score", _label("health_score"), Kind.NUMBER, SCORES, integer=True),
    Field("annual_revenue", _label("annual_revenue"), Kind.NUMBER, SCORES, nullable=True),
    Field("lifecycle_stage", _label("lifecycle_stage"), Kind.STAGE, LIFECYCLE, tuple(LifecycleStage.choices)),
    Field("tags", _label("tags"), Kind.TAGS, LIFECYCLE),
    Field("vip_status", _label("vip_status"), Kind.BOOL, CONSENT),
    Field("email_opt_in", _label("email_opt_in"), Kind.BOOL, CONSENT),
    Field("do_not_call", _label("do_not_call"), Kind.BOOL, CONSENT),
    Field("created_at", _("created"), Kind.DATETIME, DATES),
    Field("last_contact_date", _label("last_contact_date"), Kind.DATETIME, DATES, nullable=True),
    Field("date_of_birth", _label("date_of_birth"), Kind.ENCRYPTED, DATES, nullable=True),
    Field("interactions", _("interactions"), Kind.INTERACTIONS, BEHAVIOUR),
]

FIELDS: dict[str, Field] = {field.key: field for field in _FIELDS}

INTERACTION_TYPES: tuple[tuple[str, Promise], ...] = ((ANY_TYPE, _("any type")), *InteractionType.choices)
