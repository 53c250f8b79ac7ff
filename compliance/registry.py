"""The personal-data registry: which fields of which models hold a data subject's personal data, how to
find the rows that belong to a subject, and how each field is exported and erased.

Each app declares its own in `<app>/personal_data.py` (next to its models, in the spirit of pretix's data
shredders); `collect()` imports them once. Compliance reaches personal data only through this registry, so
exports and erasure cover exactly what is declared, and tests/compliance/test_registry.py fails for any
text-like field of any model that is neither declared personal nor declared not personal (with a reason).

A subject is a `customers.Customer`. `PersonalData.subject` says how a model's rows belong to one:
- an ORM lookup from the model to the customer (`"customer"`, `"ticket__customer"`), or `""` for Customer
  itself;
- or a callable taking a `SubjectIdentity` (the customer's id and contact details, read before anything is
  erased) and returning a `Q`, for rows that point at a subject only by value (a suppressed email address).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from django.apps import apps
from django.db import models
from django.db.models import Q


class Erase(StrEnum):
    """How erasure treats a field (the row itself always stays, so counts and statistics survive)."""

    BLANK = "blank"  # NULL where the column allows it, else the empty value ('' / {} / [])
    PSEUDONYM = "pseudonym"  # a stable, meaningless stand-in (the customer's name and email)
    REDACT = "redact"  # free text or a JSON document replaced as a whole by the redaction marker
    KEEP = "keep"  # exported, not erased: the subject's own non-identifying facts (a deal's amount)


class Category(StrEnum):
    """CCPA categories of personal information (the design document's list)."""

    PERSONAL = "personal_information"
    COMMERCIAL = "commercial_information"
    INTERNET = "internet_activity"
    GEOLOCATION = "geolocation_data"


REDACTED = "[erased]"


PSEUDONYM_LABEL = "{label}"  # "Erased customer" / "Anonymized customer"
PSEUDONYM_NUMBER = "{number}"  # the subject's customer number, "C-000042"


@dataclass(frozen=True)
class PersonalField:
    name: str
    erase: Erase = Erase.REDACT
    category: Category = Category.PERSONAL
    # Erase.PSEUDONYM of a text field: the stand-in, from PSEUDONYM_LABEL and PSEUDONYM_NUMBER (the number
    # only where the row points at its customer directly). Email fields ignore it: they become blank, or a
    # unique `erased-<row id>@erased.invalid` where a unique constraint needs a distinct value.
    pseudonym: str = "{label} {number}"
    # The column names a file in storage (the field's own storage for a FileField, else the default one):
    # erasure deletes the file's content once the transaction commits, and blanks the column.
    stored_file: bool = False


@dataclass(frozen=True)
class SubjectIdentity:
    """What identifies a subject outside foreign keys, captured before erasure changes it."""

    customer_id: object
    organization_id: object
    email: str
    full_name: str


@dataclass(frozen=True)
class PersonalData:
    """A model's personal data: how its rows belong to a subject, and its personal fields."""

    model: type[models.Model]
    subject: str | Callable[[SubjectIdentity], Q]
    fields: tuple[PersonalField, ...]
    label: str  # the export's section and CSV file name, e.g. "interactions"
    # Text-like fields of this model judged not to be the subject's personal data, each with the reason.
    not_personal: dict[str, str] = field(default_factory=dict)
    # For a callable `subject`: the same rows for many subjects at once, as one set-based condition (the
    # nightly anonymization erases hundreds of customers per statement). Without it, the per-subject
    # conditions are OR-ed.
    subject_many: Callable[[list[SubjectIdentity]], Q] | None = None

    def subject_filter(self, identity: SubjectIdentity) -> Q:
        if callable(self.subject):
            return self.subject(identity)
        lookup = f"{self.subject}__pk" if self.subject else "pk"
        return Q(**{lookup: identity.customer_id})

    def subjects_filter(self, identities: list[SubjectIdentity]) -> Q:
        """The rows of any of `identities`."""
        if not identities:
            return Q(pk__in=[])
        if callable(self.subject):
            if self.subject_many is not None:
                return self.subject_many(identities)
            combined = Q(pk__in=[])
            for identity in identities:
                combined |= self.subject(identity)
            return combined
        lookup = f"{self.subject}__pk__in" if self.subject else "pk__in"
        return Q(**{lookup: [identity.customer_id for identity in identities]})

    def field_names(self) -> list[str]:
        return [personal.name for personal in self.fields]


@dataclass(frozen=True)
class NotPersonal:
    """A model that holds no subject's personal data; each text-like field named with the reason."""

    model: type[models.Model]
    fields: dict[str, str]


_REGISTRY: dict[type[models.Model], PersonalData] = {}
_NOT_PERSONAL: dict[type[models.Model], NotPersonal] = {}
_collected = False


def register(*declarations: PersonalData | NotPersonal) -> None:
    for declaration in declarations:
        target = _REGISTRY if isinstance(declaration, PersonalData) else _NOT_PERSONAL
        if declaration.model in _REGISTRY or declaration.model in _NOT_PERSONAL:
            raise ValueError(f"{declaration.model.__name__} is declared twice in the personal-data registry")
        target[declaration.model] = declaration


def collect() -> None:
    """Import every installed app's `personal_data` module (once)."""
    global _collected
    if _collected:
        return
    for config in apps.get_app_configs():
        try:
            importlib.import_module(f"{config.name}.personal_data")
        except ModuleNotFoundError as error:
            if error.name != f"{config.name}.personal_data":
                raise
    _collected = True


def personal_data() -> list[PersonalData]:
    """Every declaration, in a stable order (Customer first: exports start with the profile)."""
    collect()
    return sorted(_REGISTRY.values(), key=lambda d: (d.subject != "", d.model._meta.label))


def not_personal() -> list[NotPersonal]:
    collect()
    return list(_NOT_PERSONAL.values())


def declaration_for(model: type[models.Model]) -> PersonalData | None:
    collect()
    return _REGISTRY.get(model)


def _declared(model: type[models.Model]) -> PersonalData | NotPersonal | None:
    collect()
    return _REGISTRY.get(model) or _NOT_PERSONAL.get(model)


def undeclared_fields(model_list: Iterable[type[models.Model]]) -> list[str]:
    """What the registry misses among `model_list`: each concrete model that is declared neither personal nor
    not personal ("app.Model"), and each text-like field of a declared model that is neither a personal field
    nor named as not personal with a reason ("app.Model.field"). Empty when everything is covered."""
    missing: list[str] = []
    for model in model_list:
        if model._meta.abstract or model._meta.proxy:
            continue
        declaration = _declared(model)
        if declaration is None:
            missing.append(model._meta.label)
            continue
        if isinstance(declaration, PersonalData):
            covered = set(declaration.field_names()) | set(declaration.not_personal)
        else:
            covered = set(declaration.fields)
        missing.extend(
            f"{model._meta.label}.{model_field.name}"
            for model_field in text_like_fields(model)
            if model_field.name not in covered
        )
    return missing


def unknown_fields() -> list[str]:
    """Declared field names (personal, or not personal with a reason) that are not concrete fields of their
    model: a renamed or removed field must not leave a declaration that silently covers nothing."""
    unknown: list[str] = []
    for declaration in [*personal_data(), *not_personal()]:
        names = {model_field.name for model_field in declaration.model._meta.concrete_fields}
        declared = (
            [*declaration.field_names(), *declaration.not_personal]
            if isinstance(declaration, PersonalData)
            else list(declaration.fields)
        )
        unknown.extend(f"{declaration.model._meta.label}.{name}" for name in declared if name not in names)
    return unknown


def text_like_fields(model: type[models.Model]) -> Iterable[models.Field]:
    """The fields that could hold personal data and so must be declared one way or the other: free text,
    email and IP addresses, JSON, arrays and dates of birth. Fields with choices hold codes, not data."""
    for model_field in model._meta.concrete_fields:
        if model_field.choices:
            continue
        if (
            isinstance(
                model_field,
                models.CharField
                | models.TextField
                | models.JSONField
                | models.GenericIPAddressField
                | models.BinaryField,
            )
            or model_field.get_internal_type() == "ArrayField"
            or "birth" in model_field.name
        ):
            yield model_field
