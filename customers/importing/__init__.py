"""CSV import of customers and interactions: the two formats, row validation, and the streaming pipeline.

The file is read twice, streaming, never whole. A first pass counts the rows, so the progress bar has a
total and the row cap is enforced before any work. A second pass validates row by row and writes each
valid row straight into a TEMP staging table with `COPY ... FROM STDIN`, inside the import's transaction.
Checks that need the whole file (an email twice in it, interactions of unknown customers) are SQL over the
staging table, so memory stays bounded whatever the file's size: one row at a time lives in Python.

Then it is all or nothing. With any invalid row nothing is applied and every error is reported as
`{line, column, message}`, lines numbered as a spreadsheet shows them (the header is line 1). Otherwise a
few set-based statements upsert from the staging table: customer numbers allocated in one go, new
customers INSERT ... SELECT, existing ones UPDATE ... FROM (policy "update") or counted as skipped
(policy "skip"), their lifecycle history, or interactions INSERT ... SELECT and the customers' last
contact dates moved forward.

`run_import()` is the pipeline; it needs a tenant context and runs in the caller's transaction. The
service (`customers.services.imports`) wraps it in an `ImportJob` for the Celery task and the commands.

    formats.py    the two formats: columns, cell parsers, the template header
    reading.py    the file, streaming: UTF-8 lines, CSV rows and their line numbers, header, row count
    pipeline.py   run_import(): validate and COPY into staging, then all or nothing
    upsert.py     the SQL over the staging table: whole-file checks, the upsert, the interactions insert
    side.py       the second connection that commits progress (and partitions) during the import
    results.py    ImportOutcome, the capped error list, FileRejected
"""

from customers.importing.formats import CUSTOMERS, FORMATS, INTERACTIONS, Column, Format, template_csv
from customers.importing.pipeline import PROGRESS_EVERY, Progress, run_import
from customers.importing.results import ERROR_CAP, ImportOutcome
from customers.importing.side import SideConnection

__all__ = [
    "CUSTOMERS",
    "ERROR_CAP",
    "FORMATS",
    "INTERACTIONS",
    "PROGRESS_EVERY",
    "Column",
    "Format",
    "ImportOutcome",
    "Progress",
    "SideConnection",
    "run_import",
    "template_csv",
]
