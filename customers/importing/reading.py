"""Reading the file, streaming: UTF-8 line by line, CSV rows numbered as a spreadsheet numbers them, the
header checked against the format, the rows counted (and capped) before any work."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from customers.importing.formats import Format
from customers.importing.results import FileRejected


def _decoded_lines(handle) -> Iterator[str]:
    """The file's lines as text, decoded one by one (so a byte that is not UTF-8 is reported on its own
    line, not on the first line of an 8 KB chunk), without a byte-order mark, line endings kept for csv."""
    first = True
    for raw in handle:
        text = raw.decode("utf-8")
        if first:
            text, first = text.removeprefix("\ufeff"), False
        yield text


@contextmanager
def open_csv(path: Path) -> Iterator[Iterator[list[str]]]:
    with open(path, "rb") as handle:
        yield csv.reader(_decoded_lines(handle))


def data_rows(reader) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each data row that is not blank. Lines are spreadsheet rows: the header is 1,
    blank rows keep their number, a quoted cell spanning lines is still one row. A file that is not UTF-8
    or not CSV raises FileRejected naming the first line that could not be read."""
    line = 1
    try:
        for cells in reader:
            line += 1
            if any(cells) and any(cell.strip() for cell in cells):
                yield line, cells
    except UnicodeDecodeError:
        raise FileRejected(
            _("Line %(line)s is not UTF-8 text. Save the file as “CSV UTF-8” and upload it again.")
            % {"line": line + 1},
            line=line + 1,
        ) from None
    except csv.Error as error:
        raise FileRejected(
            _("Line %(line)s cannot be read as CSV: %(reason)s.") % {"line": line + 1, "reason": error},
            line=line + 1,
        ) from None


def read_header(path: Path, fmt: Format) -> list[str]:
    with open_csv(path) as reader:
        try:
            header = next(reader, None)
        except (UnicodeDecodeError, csv.Error):
            raise FileRejected(
                _("The first line is not a CSV header in UTF-8. Save the file as “CSV UTF-8”."), line=1
            ) from None
    if not header or not any(cell.strip() for cell in header):
        raise FileRejected(_("The file is empty: it needs a header line and at least one row."), line=1)
    names = [cell.strip().lower() for cell in header]
    known = set(fmt.header)
    unknown = [name or _("(empty)") for name in names if name not in known]
    if unknown:
        raise FileRejected(
            _("Unknown columns: %(names)s. The columns of this import are: %(allowed)s.")
            % {"names": ", ".join(unknown), "allowed": ", ".join(fmt.header)},
            line=1,
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise FileRejected(_("Columns named twice: %(names)s.") % {"names": ", ".join(repeated)}, line=1)
    missing = [name for name in fmt.header if name in fmt.required_columns and name not in names]
    if missing:
        raise FileRejected(_("Missing columns: %(names)s.") % {"names": ", ".join(missing)}, line=1)
    return names


def count_rows(path: Path, max_rows: int | None) -> int:
    """Data rows in the file (first pass, streaming); stops as soon as the cap is passed."""
    count = 0
    with open_csv(path) as reader:
        next(reader, None)
        for _line, _cells in data_rows(reader):
            count += 1
            if max_rows is not None and count > max_rows:
                raise FileRejected(
                    ngettext(
                        "The file has more than %(max)s row, the most one import takes.",
                        "The file has more than %(max)s rows, the most one import takes.",
                        max_rows,
                    )
                    % {"max": number_format(max_rows, force_grouping=True)}
                    + " "
                    + _("Split it into smaller files, or ask an administrator to run the import command.")
                )
    if count == 0:
        raise FileRejected(_("The file has a header but no rows to import."), line=2)
    return count
