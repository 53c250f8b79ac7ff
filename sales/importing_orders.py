"""Orders from the ERP, from a CSV file: `manage.py import_orders FILE --org SLUG [--skip-existing]`.

One row per order line; the lines of one order share its `external_reference` (the order's id in the ERP)
and repeat its customer, date and currency:

    external_reference, customer_email, order_date, currency, sku | description, quantity, unit_price
    [, discount_pct, tax_rate]

The file is streamed (never loaded whole): each row is checked on its own and, when valid, priced with
sales/pricing.py (the quote rule: each line amount rounded to cents, half up) and COPYed into a TEMP staging
table. Then the checks that need the whole file run in SQL (customers by email, products by SKU, an order
whose lines disagree on customer, date or currency, references already imported), and the validation report
lists every error with its line number. All or nothing: one error and no order is written. Otherwise two
set-based statements insert every order (numbered in file order, totals summed from the lines) and every
line.

A reference already in the organization's orders is an error on its lines (the default: re-running a file
never silently half-applies it); with `skip_existing` those orders are skipped and counted instead.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import connection, transaction
from django.utils.translation import gettext as _

from crm.db.numbering import allocate_numbers
from crm.models import CURRENCY_CHOICES
from customers.importing.reading import count_rows, data_rows, open_csv
from customers.importing.results import ErrorList, FileRejected
from sales import pricing

COLUMNS = (
    "external_reference",
    "customer_email",
    "order_date",
    "currency",
    "sku",
    "description",
    "quantity",
    "unit_price",
    "discount_pct",
    "tax_rate",
)
REQUIRED_COLUMNS = (
    "external_reference",
    "customer_email",
    "order_date",
    "currency",
    "quantity",
    "unit_price",
)
CURRENCIES = frozenset(code for code, _label in CURRENCY_CHOICES)
PROGRESS_EVERY = 10_000

Progress = Callable[[str, int, int], None]  # (phase, rows so far, total rows)


@dataclass
class OrdersImportOutcome:
    total_rows: int = 0
    orders_created: int = 0
    lines_created: int = 0
    orders_skipped: int = 0
    errors: list[dict] = field(default_factory=list)
    error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0


class CellError(ValueError):
    pass


# --- Reading and checking one row ------------------------------------------------------------------------


def read_header(path: Path) -> list[str]:
    with open_csv(path) as reader:
        try:
            header = next(reader, None)
        except (UnicodeDecodeError, ValueError):
            raise FileRejected(_("The first line is not a CSV header in UTF-8."), line=1) from None
    if not header or not any(cell.strip() for cell in header):
        raise FileRejected(_("The file is empty: it needs a header line and at least one row."), line=1)
    names = [cell.strip().lower() for cell in header]
    unknown = [name or _("(empty)") for name in names if name not in COLUMNS]
    if unknown:
        raise FileRejected(
            _("Unknown columns: %(names)s. The columns of an orders file are: %(allowed)s.")
            % {"names": ", ".join(unknown), "allowed": ", ".join(COLUMNS)},
            line=1,
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise FileRejected(_("Columns named twice: %(names)s.") % {"names": ", ".join(repeated)}, line=1)
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if "sku" not in names and "description" not in names:
        missing.append("sku | description")
    if missing:
        raise FileRejected(_("Missing columns: %(names)s.") % {"names": ", ".join(missing)}, line=1)
    return names


def _decimal(value: str, *, places: int, below: Decimal, minimum: Decimal = Decimal("0")) -> Decimal:
    try:
        number = Decimal(value.replace(",", "") if value.count(".") == 1 else value)
    except InvalidOperation:
        raise CellError(_("Not a number.")) from None
    if not number.is_finite():
        raise CellError(_("Not a number."))
    if number < minimum:
        raise CellError(_("Must be at least %(min)s.") % {"min": minimum})
    if number >= below:
        raise CellError(_("Must be less than %(max)s.") % {"max": below})
    if -number.as_tuple().exponent > places:
        raise CellError(_("At most %(places)s decimal places.") % {"places": places})
    return number


def _text(value: str, limit: int) -> str:
    if len(value) > limit:
        raise CellError(_("At most %(limit)s characters.") % {"limit": limit})
    return value


def _date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise CellError(_("Not a date: write it as YYYY-MM-DD.")) from None


def _currency(value: str) -> str:
    code = value.upper()
    if code not in CURRENCIES:
        raise CellError(
            _("Unknown currency: use one of %(codes)s.") % {"codes": ", ".join(sorted(CURRENCIES))}
        )
    return code


def _email(value: str) -> str:
    email = value.lower()
    if "@" not in email or len(email) > 254:
        raise CellError(_("Not an email address."))
    return email


PERCENT_BELOW = Decimal("100.000001")
PARSERS: dict[str, Callable[[str], object]] = {
    "external_reference": lambda v: _text(v, 100),
    "customer_email": _email,
    "order_date": _date,
    "currency": _currency,
    "sku": lambda v: _text(v, 64),
    "description": lambda v: _text(v, 300),
    "quantity": lambda v: _decimal(v, places=3, below=Decimal("1e9"), minimum=Decimal("0.001")),
    "unit_price": lambda v: _decimal(v, places=2, below=Decimal("1e12")),
    "discount_pct": lambda v: _decimal(v, places=2, below=PERCENT_BELOW),
    "tax_rate": lambda v: _decimal(v, places=2, below=PERCENT_BELOW),
}

# The staging table: the row's line, the parsed cells, the priced amounts, and what SQL fills in.
STAGED = (
    "line", "external_reference", "customer_email", "order_date", "currency", "sku", "description",
    "quantity", "unit_price", "discount_pct", "tax_rate", "line_subtotal", "line_discount", "line_tax",
    "line_total",
)  # fmt: skip
STAGING_SQL = (
    "CREATE TEMP TABLE {table} (line integer NOT NULL, external_reference text NOT NULL,"
    " customer_email text NOT NULL, order_date date NOT NULL, currency text NOT NULL, sku text,"
    " description text, quantity numeric NOT NULL, unit_price numeric NOT NULL, discount_pct numeric NOT NULL,"
    " tax_rate numeric NOT NULL, line_subtotal numeric NOT NULL, line_discount numeric NOT NULL,"
    " line_tax numeric NOT NULL, line_total numeric NOT NULL, customer_id uuid, product_id uuid,"
    " skipped boolean NOT NULL DEFAULT false) ON COMMIT DROP"
)


def _stage_rows(
    path: Path, names: list[str], table: str, errors: ErrorList, progress, every: int, total: int
) -> int:
    """Stream the file: validate and price each row; COPY the valid ones. Returns rows read."""
    width = len(names)
    processed = 0
    copy_sql = f"COPY {table} ({', '.join(STAGED)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy, open_csv(path) as reader:
        next(reader, None)
        for line, cells in data_rows(reader):
            processed += 1
            if progress is not None and processed % every == 0:
                progress("checking", processed, total)
            if len(cells) != width:
                errors.add(
                    line,
                    "",
                    _("This row has %(cells)s cells; the header has %(columns)s columns.")
                    % {"cells": len(cells), "columns": width},
                )
                continue
            row: dict[str, object] = {}
            valid = True
            for name, raw in zip(names, cells, strict=True):
                value = raw.strip()
                if not value:
                    if name in REQUIRED_COLUMNS:
                        errors.add(line, name, _("This column needs a value."))
                        valid = False
                    continue
                if "\x00" in value:
                    errors.add(line, name, _("Contains a NUL character."))
                    valid = False
                    continue
                try:
                    row[name] = PARSERS[name](value)
                except CellError as error:
                    errors.add(line, name, str(error))
                    valid = False
            if valid and not row.get("sku") and not row.get("description"):
                errors.add(line, "sku", _("Give a SKU or a description."))
                valid = False
            if not valid:
                continue
            discount_pct = row.get("discount_pct", Decimal("0"))
            tax_rate = row.get("tax_rate", Decimal("0"))
            amounts = pricing.line_amounts(
                quantity=row["quantity"],
                unit_price=row["unit_price"],
                discount_pct=discount_pct,
                tax_rate=tax_rate,
            )
            if amounts.total >= Decimal("1e13"):
                errors.add(line, "quantity", _("The line's amount is too large."))
                continue
            copy.write_row(
                [
                    line, row["external_reference"], row["customer_email"], row["order_date"], row["currency"],
                    row.get("sku"), row.get("description"), row["quantity"], row["unit_price"], discount_pct,
                    tax_rate, amounts.subtotal, amounts.discount, amounts.tax, amounts.total,
                ]
            )  # fmt: skip
    return processed


# --- The checks that need the whole file --------------------------------------------------------------------


def _sql_errors(
    cursor, sql: str, params: list, column: str, message: Callable[[tuple], str], errors: ErrorList
):
    """Run a query returning (line, ..., total) rows, at most the error cap, as errors on `column`."""
    cursor.execute(sql, [*params, errors.cap])
    rows = cursor.fetchall()
    total = rows[0][-1] if rows else 0
    errors.merge([{"line": row[0], "column": column, "message": message(row)} for row in rows], total)


def _check(cursor, table: str, organization_id, errors: ErrorList, *, skip_existing: bool) -> int:
    """Resolve customers and products, check each order's lines agree and its reference is new. Returns
    how many orders are skipped (already imported, with `skip_existing`)."""
    cursor.execute(f"ANALYZE {table}")
    cursor.execute(
        f"UPDATE {table} AS s SET customer_id = c.id FROM customers AS c "
        f"WHERE c.organization_id = %s AND c.email <> '' AND lower(c.email) = s.customer_email",
        [organization_id],
    )
    _sql_errors(
        cursor,
        f"SELECT line, count(*) OVER () FROM {table} WHERE customer_id IS NULL ORDER BY line LIMIT %s",
        [],
        "customer_email",
        lambda row: _("No customer has this email."),
        errors,
    )
    cursor.execute(
        f"UPDATE {table} AS s SET product_id = p.id, description = COALESCE(s.description, p.name) "
        f"FROM products AS p WHERE p.organization_id = %s AND p.sku = s.sku",
        [organization_id],
    )
    _sql_errors(
        cursor,
        f"SELECT line, sku, count(*) OVER () FROM {table} WHERE sku IS NOT NULL AND product_id IS NULL "
        f"ORDER BY line LIMIT %s",
        [],
        "sku",
        lambda row: _("No product has the SKU %(sku)s.") % {"sku": row[1]},
        errors,
    )
    # An order's lines must agree on what belongs to the order: each line is compared with the order's
    # first line.
    _sql_errors(
        cursor,
        f"SELECT line, first_line, count(*) OVER () FROM ("
        f" SELECT line, customer_email, order_date, currency,"
        f"  first_value(line) OVER w AS first_line, first_value(customer_email) OVER w AS first_email,"
        f"  first_value(order_date) OVER w AS first_date, first_value(currency) OVER w AS first_currency"
        f" FROM {table} WINDOW w AS (PARTITION BY external_reference ORDER BY line)) AS d"
        f" WHERE (customer_email, order_date, currency) IS DISTINCT FROM (first_email, first_date, first_currency)"
        f" ORDER BY line LIMIT %s",
        [],
        "external_reference",
        lambda row: (
            _(
                "This line of the order has another customer, date or currency than its first line (line %(line)s)."
            )
            % {"line": row[1]}
        ),
        errors,
    )
    if skip_existing:
        cursor.execute(
            f"WITH marked AS (UPDATE {table} AS s SET skipped = true FROM orders AS o "
            f"WHERE o.organization_id = %s AND o.external_reference = s.external_reference "
            f"RETURNING s.external_reference) SELECT count(DISTINCT external_reference) FROM marked",
            [organization_id],
        )
        return cursor.fetchone()[0]
    _sql_errors(
        cursor,
        f"SELECT s.line, count(*) OVER () FROM {table} AS s JOIN orders AS o "
        f"ON o.organization_id = %s AND o.external_reference = s.external_reference ORDER BY s.line LIMIT %s",
        [organization_id],
        "external_reference",
        lambda row: _("An order with this reference is already imported."),
        errors,
    )
    return 0


# --- Applying ---------------------------------------------------------------------------------------------


APPLY_SQL = """
WITH grouped AS (
    SELECT external_reference, min(line) AS first_line, min(customer_id::text)::uuid AS customer_id,
           min(order_date) AS order_date, min(currency) AS currency,
           sum(line_subtotal) AS subtotal, sum(line_discount) AS discount_total, sum(line_tax) AS tax_total,
           sum(line_total) AS total
    FROM {table} WHERE NOT skipped GROUP BY external_reference
), new_orders AS (
    INSERT INTO orders (id, organization_id, number, customer_id, opportunity_id, quote_id, status, order_date,
                        currency, subtotal, discount_total, tax_total, total, external_reference, created_by_id,
                        created_at, updated_at)
    SELECT gen_random_uuid(), %(org)s, %(first)s + row_number() OVER (ORDER BY first_line) - 1, customer_id,
           NULL, NULL, 'open', order_date, currency, subtotal, discount_total, tax_total, total,
           external_reference, %(actor)s, now(), now()
    FROM grouped
    RETURNING id, external_reference
)
INSERT INTO order_lines (id, organization_id, order_id, position, product_id, description, quantity, unit_price,
                         discount_pct, tax_rate, line_total)
SELECT gen_random_uuid(), %(org)s, o.id, row_number() OVER (PARTITION BY s.external_reference ORDER BY s.line) - 1,
       s.product_id, left(s.description, 300), s.quantity, s.unit_price, s.discount_pct, s.tax_rate, s.line_total
FROM {table} AS s JOIN new_orders AS o ON o.external_reference = s.external_reference
WHERE NOT s.skipped
"""


def import_orders(
    *,
    path: Path | str,
    organization,
    actor_id=None,
    skip_existing: bool = False,
    progress: Progress | None = None,
    progress_every: int = PROGRESS_EVERY,
) -> OrdersImportOutcome:
    """Validate and apply an orders CSV file, all or nothing, inside the caller's tenant context.
    `progress(phase, rows, total)` is called with "counted", then "checking" every `progress_every` rows,
    then "importing"."""
    if not connection.in_atomic_block:
        raise RuntimeError("import_orders() runs inside the caller's transaction (a tenant context).")
    path = Path(path)
    outcome = OrdersImportOutcome()
    errors = ErrorList()
    table = f"crm_orders_import_{uuid.uuid4().hex[:16]}"
    try:
        names = read_header(path)
        outcome.total_rows = count_rows(path, None)
        if progress is not None:
            progress("counted", outcome.total_rows, outcome.total_rows)
        with transaction.atomic():  # a savepoint: a file unreadable half-way aborts the COPY, not the caller
            with connection.cursor() as cursor:
                cursor.execute(STAGING_SQL.format(table=table))
            _stage_rows(path, names, table, errors, progress, max(1, progress_every), outcome.total_rows)
    except FileRejected as rejected:
        outcome.errors, outcome.error_count = [rejected.error], 1
        return outcome
    with connection.cursor() as cursor:
        try:
            outcome.orders_skipped = _check(
                cursor, table, organization.pk, errors, skip_existing=skip_existing
            )
            if errors.count:
                outcome.errors, outcome.error_count = errors.items, errors.count
                return outcome
            if progress is not None:
                progress("importing", outcome.total_rows, outcome.total_rows)
            cursor.execute(f"SELECT count(DISTINCT external_reference) FROM {table} WHERE NOT skipped")
            orders = cursor.fetchone()[0]
            if orders:
                first = allocate_numbers("orders", organization.pk, orders)
                cursor.execute(
                    APPLY_SQL.format(table=table),
                    {"org": organization.pk, "first": first, "actor": actor_id},
                )
                outcome.lines_created = cursor.rowcount
            outcome.orders_created = orders
        finally:
            if not connection.needs_rollback:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
    return outcome
