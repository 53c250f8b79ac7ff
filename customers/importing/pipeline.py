"""The pipeline: stream the file, validate each row, COPY the valid ones into a TEMP staging table, then
all or nothing: report every error, or apply the staging table set-based (customers.importing.upsert)."""

from __future__ import annotations

import logging
import os
import time
import uuid
import zoneinfo
from collections.abc import Callable
from pathlib import Path

from django.db import DatabaseError, connection, transaction
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from customers.importing import upsert
from customers.importing.formats import (
    CUSTOMERS,
    FORMATS,
    INTERACTIONS,
    CellError,
    Format,
    Parser,
    earliest_interaction_date,
    interaction_date_parser,
)
from customers.importing.reading import count_rows, data_rows, open_csv, read_header
from customers.importing.results import ErrorList, FileRejected, ImportOutcome
from customers.importing.side import SideConnection
from customers.models import ImportJob

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 1_000  # rows between two progress reports

Progress = Callable[[str, int], None]  # (phase, rows processed so far)


class _TimeOrderedIds:
    """UUIDv7 primary keys for one import's new rows, as 32 hex digits (PostgreSQL reads them as uuid).

    The layout of RFC 9562: the import's start in Unix milliseconds, version 7, 74 bits that start at a
    random value and count up, variant 10. Unique within the import (the counter) and across imports (the
    time and 74 random bits); time-ordered like uuid6.uuid7() in the models, so the primary key index stays
    local, at a tenth of uuid7()'s cost per row.
    """

    def __init__(self) -> None:
        self.prefix = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76
        self.counter = int.from_bytes(os.urandom(9), "big")  # 72 random bits of the 74: room to count up

    def next(self) -> str:
        self.counter += 1
        rand_a, rand_b = self.counter >> 62 & 0xFFF, self.counter & (1 << 62) - 1
        return f"{self.prefix | rand_a << 64 | 0b10 << 62 | rand_b:032x}"


def _staging_table() -> str:
    return f"crm_import_{uuid.uuid4().hex[:16]}"


def _create_staging(cursor, table: str, fmt: Format) -> list[str]:
    """A TEMP table (private to this connection, gone at commit) with a column per format column, plus the
    row's line, the new row's id, and the id of the customer it matches (filled in SQL)."""
    derived = [d for c in fmt.columns for d in c.derived]
    columns = ["line", "id", *(c.staging for c in fmt.columns), *(d.staging for d in derived)]
    definition = ", ".join(
        ["line integer NOT NULL", "id uuid NOT NULL"]
        + [f"{c.staging} {c.sql_type}" for c in fmt.columns]
        + [f"{d.staging} {d.sql_type}" for d in derived]
        + ["customer_id uuid", "restricted boolean NOT NULL DEFAULT false"]
    )
    cursor.execute(f"CREATE TEMP TABLE {table} ({definition}) ON COMMIT DROP")
    return columns


def _validate_and_stage(
    *,
    path: Path,
    fmt: Format,
    names: list[str],
    table: str,
    columns: list[str],
    parsers: dict[str, Parser],
    errors: ErrorList,
    progress: Progress | None,
    progress_every: int,
) -> int:
    """Second pass: validate each row; COPY the valid ones into the staging table. Returns rows processed."""
    width = len(names)
    slots = {name: position for position, name in enumerate(columns)}
    # (cell index in the file, slot in the staged row, column name, parser, empty cell is an error,
    # [(slot, compute)] of the staging columns derived from the cell)
    plan = []
    for index, name in enumerate(names):
        column = fmt.column(name)
        derived = [(slots[d.staging], d.compute) for d in column.derived]
        plan.append((index, slots[column.staging], name, parsers[name], column.required_cell, derived))
    row_check = _customer_row_check(names) if fmt is CUSTOMERS else None
    processed = 0
    ids = _TimeOrderedIds()
    copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy, open_csv(path) as reader:
        next(reader, None)
        for line, cells in data_rows(reader):
            processed += 1
            if progress is not None and processed % progress_every == 0:
                progress(ImportJob.Status.VALIDATING, processed)
            if len(cells) != width:
                errors.add(
                    line,
                    "",
                    _("This row has %(cells)s cells; the header has %(columns)s columns.")
                    % {"cells": len(cells), "columns": width},
                )
                continue
            staged: list = [None] * len(columns)
            staged[0] = line
            staged[1] = ids.next()
            valid = True
            for index, slot, name, parse, required, derived in plan:
                value = cells[index].strip()
                if not value:
                    if required:
                        errors.add(line, name, _("This column needs a value."))
                        valid = False
                    continue
                if "\x00" in value:
                    errors.add(line, name, _("Contains a NUL character."))
                    valid = False
                    continue
                try:
                    staged[slot] = parse(value)
                except CellError as error:
                    errors.add(line, name, str(error))
                    valid = False
                    continue
                for derived_slot, compute in derived:
                    staged[derived_slot] = compute(value)
            if valid and row_check is not None and not row_check(staged, slots):
                errors.add(line, "email", _("A customer needs at least a name, a company or an email."))
                valid = False
            if valid:
                copy.write_row(staged)
    return processed


def _customer_row_check(names: list[str]):
    def check(staged: list, slots: dict[str, int]) -> bool:
        return any(
            staged[slots[name]] is not None
            for name in ("first_name", "last_name", "company_name", "email")
            if name in names
        )

    return check


def run_import(
    *,
    path: Path | str,
    kind: str,
    organization,
    actor_id=None,
    policy: str = ImportJob.Policy.SKIP,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    progress: Progress | None = None,
    progress_every: int = PROGRESS_EVERY,
    side: SideConnection | None = None,
    file_label: str = "",
) -> ImportOutcome:
    """Validate and apply a CSV file, all or nothing, in the current transaction (tenant context needed).

    `progress(phase, rows)` is called with ("counted", total) once, then ("validating", rows) every
    `progress_every` rows and ("importing", rows) before the upsert. `side` is the connection partitions
    are created from (one is opened for the call when not given).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("run_import() runs inside the caller's transaction (a tenant context).")
    fmt = FORMATS[kind]
    path = Path(path)
    outcome = ImportOutcome()
    errors = ErrorList()
    try:
        size = os.path.getsize(path)
        if max_bytes is not None and size > max_bytes:
            raise FileRejected(
                _("The file is %(size)s; the most one import takes is %(max)s.")
                % {"size": filesizeformat(size), "max": filesizeformat(max_bytes)}
            )
        names = read_header(path, fmt)
        outcome.total_rows = count_rows(path, max_rows)
        if progress is not None:
            progress("counted", outcome.total_rows)
        parsers = {column.name: column.parse for column in fmt.columns}
        if fmt is INTERACTIONS:
            time_zone = zoneinfo.ZoneInfo(organization.time_zone or "UTC")
            parsers["interaction_date"] = interaction_date_parser(time_zone, earliest_interaction_date())
        table = _staging_table()
        # A savepoint: a file found unreadable half-way aborts the COPY, which must not abort the caller's
        # transaction (the job's failure is recorded in it).
        with transaction.atomic():
            with connection.cursor() as cursor:
                columns = _create_staging(cursor, table, fmt)
            outcome.processed_rows = _validate_and_stage(
                path=path, fmt=fmt, names=names, table=table, columns=columns, parsers=parsers,
                errors=errors, progress=progress, progress_every=progress_every,
            )  # fmt: skip
    except FileRejected as rejected:
        outcome.errors, outcome.error_count = [rejected.error], 1
        return outcome
    with connection.cursor() as cursor:
        try:
            # A temp table has no statistics until asked; the email joins are what the planner needs.
            cursor.execute(f"ANALYZE {table} ({'email' if fmt is CUSTOMERS else 'customer_email'})")
            # Numbering new customers in file order sorts the staged rows: in memory, not on disk.
            cursor.execute("SELECT set_config('work_mem', '64MB', true)")
            if fmt is CUSTOMERS:
                upsert.check_customers(cursor, table, organization.pk, errors)
            else:
                upsert.check_interactions(cursor, table, organization.pk, errors)
            if errors.count:
                outcome.errors, outcome.error_count = errors.items, errors.count
                return outcome
            if progress is not None:
                progress(ImportJob.Status.IMPORTING, outcome.processed_rows)
            own_side = side is None
            side = side or SideConnection(organization.pk)
            try:
                with transaction.atomic():  # a savepoint: a refused statement undoes the whole apply
                    if fmt is CUSTOMERS:
                        outcome.created, outcome.updated, outcome.skipped = upsert.apply_customers(
                            cursor, table, organization_id=organization.pk, actor_id=actor_id, policy=policy,
                            staged=outcome.processed_rows, file_label=file_label,
                        )  # fmt: skip
                    else:
                        outcome.created, outcome.updated = upsert.apply_interactions(
                            cursor, table, organization_id=organization.pk, actor_id=actor_id, side=side
                        )
            except DatabaseError as error:
                logger.warning("import refused by the database: %s", error)
                outcome.created = outcome.updated = outcome.skipped = 0
                outcome.errors = [
                    {
                        "line": None,
                        "column": "",
                        "message": _(
                            "The database refused the import (%(reason)s); nothing was imported. If customers "
                            "were being changed at the same time, try again."
                        )
                        % {"reason": str(error).splitlines()[0][:200]},
                    }
                ]
                outcome.error_count = 1
            finally:
                if own_side:
                    side.close()
        finally:
            if not connection.needs_rollback:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
    return outcome
