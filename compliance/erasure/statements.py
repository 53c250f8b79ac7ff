"""The SQL of erasure: for one registry declaration, the value each personal field becomes, and the one
UPDATE that writes them over all the given rows.

Raw SQL because the new values are row-dependent expressions the ORM's update() cannot write (a JSON
document's keys kept with their values redacted, a pseudonym carrying the row's customer number), and
because the UPDATE changes only the rows whose values differ from the erased ones
(`(...) IS DISTINCT FROM (...)`): erasing twice writes nothing the second time, not even an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models

from compliance.registry import REDACTED, Erase, PersonalData, PersonalField

ALIAS = "t"
# The customer number as customers.models.Customer.customer_number shows it ("C-000042"), from a column.
_NUMBER_SQL = "'C-' || CASE WHEN {n} < 1000000 THEN lpad({n}::text, 6, '0') ELSE {n}::text END"
_JSON_REDACT_SQL = f"""CASE
    WHEN {{c}} IS NULL THEN NULL
    WHEN jsonb_typeof({{c}}) = 'object' THEN
        (SELECT coalesce(jsonb_object_agg(k, to_jsonb('{REDACTED}'::text)), '{{{{}}}}'::jsonb)
         FROM jsonb_object_keys({{c}}) AS k)
    WHEN jsonb_typeof({{c}}) = 'array' THEN
        (SELECT coalesce(jsonb_agg(to_jsonb('{REDACTED}'::text)), '[]'::jsonb) FROM jsonb_array_elements({{c}}))
    WHEN jsonb_typeof({{c}}) = 'null' THEN {{c}}
    ELSE to_jsonb('{REDACTED}'::text)
END"""


@dataclass
class Statement:
    """One UPDATE: `SET column = expression, ...` for the rows whose values differ from the erased ones."""

    table: str
    pk_column: str
    assignments: list[tuple[str, str, list]] = field(default_factory=list)  # (column, sql, params)
    # Assigned, but not compared: bookkeeping such as updated_at.
    extra: list[tuple[str, str, list]] = field(default_factory=list)

    def sql(self, organization_id, ids: list) -> tuple[str, list]:
        qn = connection.ops.quote_name
        sets, set_params = [], []
        for column, expression, params in [*self.assignments, *self.extra]:
            sets.append(f"{qn(column)} = {expression}")
            set_params.extend(params)
        current = ", ".join(f"{ALIAS}.{qn(column)}" for column, _sql, _params in self.assignments)
        erased = ", ".join(expression for _column, expression, _params in self.assignments)
        erased_params = [p for _column, _sql, params in self.assignments for p in params]
        return (
            f"UPDATE {qn(self.table)} AS {ALIAS} SET {', '.join(sets)} "
            f"WHERE {ALIAS}.organization_id = %s AND {ALIAS}.{qn(self.pk_column)} = ANY(%s) "
            f"AND ROW({current}) IS DISTINCT FROM ROW({erased}) "
            f"RETURNING {ALIAS}.{qn(self.pk_column)}",
            [*set_params, organization_id, ids, *erased_params],
        )


def is_encrypted(model_field: models.Field) -> bool:
    """Application-encrypted columns (crm/encryption.py) hold tokens: only blank may be written to them."""
    return any(klass.__name__ == "EncryptedTextField" for klass in type(model_field).__mro__)


def _is_email(model_field: models.Field) -> bool:
    return isinstance(model_field, models.EmailField) or "email" in model_field.name


def _is_unique(model: type[models.Model], model_field: models.Field) -> bool:
    if model_field.unique:
        return True
    return any(
        isinstance(constraint, models.UniqueConstraint) and model_field.name in (constraint.fields or ())
        for constraint in model._meta.constraints
    )


def _column(model_field: models.Field) -> str:
    return f"{ALIAS}.{connection.ops.quote_name(model_field.column)}"


def _blank(model: type[models.Model], model_field: models.Field) -> tuple[str, list]:
    column = _column(model_field)
    if model_field.null:
        return "NULL", []
    if isinstance(model_field, models.JSONField):
        return f"CASE WHEN jsonb_typeof({column}) = 'array' THEN '[]'::jsonb ELSE '{{}}'::jsonb END", []
    if isinstance(model_field, ArrayField):
        return "'{}'", []
    if isinstance(model_field, models.CharField | models.TextField | models.FileField):
        return "''", []
    raise ImproperlyConfigured(
        f"{model._meta.label}.{model_field.name} cannot be blanked: it is neither nullable nor text"
    )


def _number_sql(model: type[models.Model]) -> str | None:
    """SQL for the row's customer number, where the row is the customer or points at it directly."""
    from customers.models import Customer

    if model is Customer:
        return _NUMBER_SQL.format(n=f"{ALIAS}.number")
    for model_field in model._meta.concrete_fields:
        if model_field.name == "customer" and model_field.related_model is Customer:
            number = _NUMBER_SQL.format(n="c.number")
            return f"(SELECT {number} FROM customers c WHERE c.id = {ALIAS}.{model_field.column})"
    return None


def _pseudonym(
    model: type[models.Model], model_field: models.Field, personal: PersonalField, label: str
) -> tuple[str, list]:
    if _is_email(model_field):
        if _is_unique(model, model_field):
            # A unique column needs a distinct value per row: one that names nothing and delivers nowhere.
            pk = f"{ALIAS}.{connection.ops.quote_name(model._meta.pk.column)}"
            return f"'erased-' || {pk}::text || '@erased.invalid'", []
        return _blank(model, model_field)
    number = _number_sql(model)
    parts, params = [], []
    for piece in personal.pseudonym.replace("{number}", "\x00{number}\x00").split("\x00"):
        if piece == "{number}":
            if number:
                parts.append(number)
            continue
        if piece:
            parts.append("%s")
            params.append(piece.replace("{label}", label))
    if not parts:
        return _blank(model, model_field)
    expression = f"btrim(concat({', '.join(parts)}))"
    if model_field.max_length:
        expression = f"left({expression}, {int(model_field.max_length)})"
    return expression, params


def _redact(model: type[models.Model], model_field: models.Field) -> tuple[str, list]:
    column = _column(model_field)
    if isinstance(model_field, models.JSONField):
        return _JSON_REDACT_SQL.format(c=column), []
    text = isinstance(model_field, models.CharField | models.TextField) and not isinstance(
        model_field, models.FileField
    )
    if text and (model_field.max_length or len(REDACTED)) >= len(REDACTED):
        # Empty stays empty: there was nothing to redact, and the page keeps showing "none".
        return f"CASE WHEN {column} IS NULL OR {column} = '' THEN {column} ELSE %s END", [REDACTED]
    return _blank(model, model_field)


def erased_value(model: type[models.Model], personal: PersonalField, *, label: str) -> tuple[str, list]:
    """SQL (with its parameters) of the value `personal` takes when erased; `label` is the pseudonym's
    words ("Erased customer")."""
    model_field = model._meta.get_field(personal.name)
    if personal.erase == Erase.BLANK or personal.stored_file or is_encrypted(model_field):
        return _blank(model, model_field)
    if personal.erase == Erase.PSEUDONYM:
        return _pseudonym(model, model_field, personal, label)
    if personal.erase == Erase.REDACT:
        return _redact(model, model_field)
    raise ValueError(f"{personal.erase} is not erased")


def statement_for(declaration: PersonalData, *, label: str) -> Statement | None:
    """The UPDATE of `declaration`'s erasable fields, or None when it has none (everything kept)."""
    model = declaration.model
    statement = Statement(table=model._meta.db_table, pk_column=model._meta.pk.column)
    for personal in declaration.fields:
        if personal.erase == Erase.KEEP:
            continue
        model_field = model._meta.get_field(personal.name)
        statement.assignments.append((model_field.column, *erased_value(model, personal, label=label)))
    if not statement.assignments:
        return None
    if any(f.name == "updated_at" for f in model._meta.concrete_fields):
        statement.extra.append(("updated_at", "clock_timestamp()", []))
    return statement


def erased_columns(declaration: PersonalData) -> list[str]:
    """The columns erasure changes: the keys to redact in the audit trail."""
    model = declaration.model
    return [
        model._meta.get_field(personal.name).column
        for personal in declaration.fields
        if personal.erase != Erase.KEEP
    ]
