"""The two CSV formats, columns named as the design document, and the parser of each cell.

A parser takes a trimmed, non-empty cell and returns the text COPY sends to the staging table, or raises
CellError with a message for the person who made the file. Choices are the models' choices (by value or
label, any case), lengths the models' max_length, so the import accepts what a form would.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.encryption import encrypt
from customers.models import (
    Channel,
    Customer,
    CustomerType,
    EducationLevel,
    ImportJob,
    Interaction,
    InteractionType,
    LifecycleStage,
    Sentiment,
)
from customers.phones import phone_hash

PARTITION_MONTHS_BACK = 36  # the oldest month crm_ensure_month_partitions() can create (its own limit)


class CellError(ValueError):
    """One cell is invalid; the message says why, in words for the person who made the file."""


Parser = Callable[[str], str]


def _text(max_length: int) -> Parser:
    def parse(value: str) -> str:
        if len(value) > max_length:
            raise CellError(
                _("Is %(length)s characters long; at most %(max)s fit.")
                % {"length": len(value), "max": max_length}
            )
        return value

    return parse


def _choice(choices) -> Parser:
    """A model choice, by value or label, in any case."""
    accepted = {}
    for value, label in choices:
        accepted[str(value).lower()] = value
        accepted[str(label).lower()] = value
    allowed = ", ".join(str(value) for value, _label in choices)

    def parse(value: str) -> str:
        try:
            return accepted[value.lower()]
        except KeyError:
            raise CellError(
                _("“%(value)s” is not one of: %(allowed)s.") % {"value": value[:60], "allowed": allowed}
            ) from None

    return parse


_BOOLEANS = {"true": "t", "yes": "t", "1": "t", "false": "f", "no": "f", "0": "f"}


def _boolean(value: str) -> str:
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise CellError(_("Enter true or false (yes/no and 1/0 work too).")) from None


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EARLIEST_BIRTH = datetime.date(1900, 1, 1)


def _date_of_birth(value: str) -> str:
    if not _DATE_RE.fullmatch(value):
        raise CellError(_("Enter a date as YYYY-MM-DD, e.g. 1985-04-23."))
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError:
        raise CellError(_("%(value)s is not a date in the calendar.") % {"value": value}) from None
    if day > timezone.localdate() or day < _EARLIEST_BIRTH:
        raise CellError(_("A date of birth lies between 1900-01-01 and today."))
    return value


_REVENUE_RE = re.compile(r"\d{1,14}(?:\.\d{1,2})?")


def _revenue(value: str) -> str:
    if value.startswith("-"):
        raise CellError(_("Revenue cannot be negative."))
    if not _REVENUE_RE.fullmatch(value):
        raise CellError(
            _("Enter an amount such as 1250000 or 1250000.50 (a dot for decimals, no thousands separators).")
        )
    return value


# The everyday address, a strict subset of what Django's validate_email() accepts: checked by one regex
# (a fifth of the validator's cost); anything else gets the full validator's verdict.
_PLAIN_EMAIL_RE = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)


def _email(value: str) -> str:
    email = value.lower()
    if len(email) > 254:
        raise CellError(_("An email address has at most 254 characters."))
    if _PLAIN_EMAIL_RE.fullmatch(email):
        return email
    try:
        validate_email(email)
    except ValidationError:
        raise CellError(_("“%(value)s” is not a valid email address.") % {"value": value[:80]}) from None
    return email


_COUNTRY_RE = re.compile(r"[A-Za-z]{2}")


def _country(value: str) -> str:
    if not _COUNTRY_RE.fullmatch(value):
        raise CellError(_("Enter a two-letter ISO country code, e.g. US or DE."))
    return value.upper()


_TAG_MAX = Customer._meta.get_field("tags").base_field.max_length


def _tags(value: str) -> str:
    """Semicolon-separated; trimmed and lower-cased here, sorted and de-duplicated by crm_sorted_unique()
    in SQL (like every other write of tags). Returned as a PostgreSQL array literal."""
    tags = [tag.strip().lower() for tag in value.split(";")]
    tags = [tag for tag in tags if tag]
    for tag in tags:
        if len(tag) > _TAG_MAX:
            raise CellError(
                _("The tag “%(tag)s…” is longer than %(max)s characters.")
                % {"tag": tag[:20], "max": _TAG_MAX}
            )
    return "{" + ",".join('"' + tag.replace("\\", "\\\\").replace('"', '\\"') + '"' for tag in tags) + "}"


def interaction_date_parser(time_zone: datetime.tzinfo, earliest: datetime.datetime) -> Parser:
    """ISO 8601 date or date-time; without an offset it is read in the organization's time zone."""

    def parse(value: str) -> str:
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise CellError(
                _("Enter a date as YYYY-MM-DD or a date and time as YYYY-MM-DDTHH:MM (ISO 8601).")
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=time_zone)
        if moment > timezone.now():
            raise CellError(_("Is in the future; an interaction records what already happened."))
        if moment < earliest:
            raise CellError(
                _("Is before %(date)s, the oldest month the interaction log can hold.")
                % {"date": earliest.date().isoformat()}
            )
        return moment.isoformat()

    return parse


# --- The formats ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Derived:
    """A staging column computed from another column's cell (the trimmed, non-empty text as in the file)."""

    staging: str
    sql_type: str
    compute: Callable[[str], str | None]


@dataclass(frozen=True)
class Column:
    name: str  # the CSV header, as the issue names it
    staging: str  # the staging table column
    sql_type: str
    parse: Parser | None = None  # None: built per run (needs the organization's time zone)
    required_cell: bool = False  # an empty cell is an error
    derived: tuple[Derived, ...] = ()  # more staging columns computed from the same cell

    def help_text(self) -> str:
        return str(COLUMN_HELP.get(self.name, ""))


@dataclass(frozen=True)
class Format:
    kind: str
    columns: tuple[Column, ...]
    required_columns: frozenset[str]  # must be in the header

    @property
    def header(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _max_length(model, name: str) -> int:
    return model._meta.get_field(name).max_length


def _customer_text(name: str) -> Column:
    return Column(name, name, "text", _text(_max_length(Customer, name)))


def _encrypted(parse: Parser) -> Parser:
    """The cell checked by `parse`, then encrypted (crm/encryption.py): the staging table, and so the
    database, only ever holds the token."""

    def parse_and_encrypt(value: str) -> str:
        return encrypt(parse(value))

    return parse_and_encrypt


def _encrypted_text(name: str) -> Column:
    return Column(name, name, "text", _encrypted(_text(_max_length(Customer, name))))


CUSTOMERS = Format(
    kind=ImportJob.Kind.CUSTOMERS,
    columns=(
        _customer_text("first_name"),
        _customer_text("last_name"),
        Column("email", "email", "text", _email),
        Column(
            "phone",
            "phone",
            "text",
            _encrypted(_text(_max_length(Customer, "phone"))),
            derived=(Derived("phone_hash", "text", phone_hash),),
        ),
        _customer_text("company_name"),
        _customer_text("job_title"),
        Column("education_level", "education_level", "text", _choice(EducationLevel.choices)),
        Column("date_of_birth", "date_of_birth", "text", _encrypted(_date_of_birth)),
        Column("annual_revenue", "annual_revenue", "numeric(16,2)", _revenue),
        Column("customer_type", "customer_type", "text", _choice(CustomerType.choices)),
        Column("lifecycle_stage", "lifecycle_stage", "text", _choice(LifecycleStage.choices)),
        Column("tags", "tags", "text[]", _tags),
        Column("vip_status", "vip_status", "boolean", _boolean),
        _encrypted_text("street"),
        _customer_text("city"),
        _customer_text("state"),
        _encrypted_text("postal_code"),
        Column("country", "country", "text", _country),
        _customer_text("source"),
        Column("email_opt_in", "email_opt_in", "boolean", _boolean),
    ),
    required_columns=frozenset({"first_name", "last_name", "email"}),
)

INTERACTIONS = Format(
    kind=ImportJob.Kind.INTERACTIONS,
    columns=(
        Column("customer_email", "customer_email", "text", _email, required_cell=True),
        Column("interaction_date", "interaction_date", "timestamptz", None, required_cell=True),
        Column(
            "interaction_type",
            "interaction_type",
            "text",
            _choice(InteractionType.choices),
            required_cell=True,
        ),
        Column("interaction_channel", "channel", "text", _choice(Channel.choices)),
        Column("outcome", "outcome", "text", _text(_max_length(Interaction, "outcome"))),
        Column("sentiment", "sentiment", "text", _choice(Sentiment.choices)),
        Column("notes", "notes", "text", _text(10_000)),
    ),
    required_columns=frozenset({"customer_email", "interaction_date", "interaction_type"}),
)

FORMATS = {CUSTOMERS.kind: CUSTOMERS, INTERACTIONS.kind: INTERACTIONS}

COLUMN_HELP = {
    "email": _("Matched case-insensitively against existing customers."),
    "education_level": ", ".join(EducationLevel.values),
    "date_of_birth": "YYYY-MM-DD",
    "annual_revenue": "1250000.50",
    "customer_type": ", ".join(CustomerType.values),
    "lifecycle_stage": ", ".join(LifecycleStage.values),
    "tags": _("Separated by semicolons: vip;newsletter"),
    "vip_status": "true / false, yes / no, 1 / 0",
    "email_opt_in": _("true / false: consent to marketing email, recorded with the file and line as proof"),
    "country": _("Two letters (ISO 3166), e.g. US"),
    "customer_email": _("Email of an existing customer"),
    "interaction_date": _(
        "YYYY-MM-DD or YYYY-MM-DDTHH:MM (ISO 8601; without an offset, the organization's time zone)"
    ),
    "interaction_type": ", ".join(InteractionType.values),
    "interaction_channel": ", ".join(Channel.values),
    "sentiment": ", ".join(Sentiment.values),
}


def template_csv(kind: str) -> str:
    """The header line of a format, for the "download a template" link."""
    return ",".join(FORMATS[kind].header) + "\r\n"


def earliest_interaction_date() -> datetime.datetime:
    """The first day of the oldest month crm_ensure_month_partitions() can create (UTC)."""
    today = timezone.now().astimezone(datetime.UTC).date()
    months = today.year * 12 + today.month - 1 - PARTITION_MONTHS_BACK
    return datetime.datetime(months // 12, months % 12 + 1, 1, tzinfo=datetime.UTC)
