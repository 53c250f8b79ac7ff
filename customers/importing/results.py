"""What an import reports: its outcome, the errors it found (capped, all counted), a file refused whole."""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR_CAP = 1_000  # errors stored and shown per import; the rest are counted


@dataclass
class ImportOutcome:
    """What an import did, or why it did nothing (`errors` non-empty: nothing was applied)."""

    total_rows: int = 0
    processed_rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[dict] = field(default_factory=list)  # at most ERROR_CAP, in line order
    error_count: int = 0  # every error, listed or not

    @property
    def ok(self) -> bool:
        return self.error_count == 0


class ErrorList:
    """Keeps the first ERROR_CAP errors, `{line, column, message}` in line order, and counts them all."""

    def __init__(self) -> None:
        self.cap = ERROR_CAP
        self.items: list[dict] = []
        self.count = 0

    def add(self, line: int | None, column: str, message: str) -> None:
        self.count += 1
        if len(self.items) < self.cap:
            self.items.append({"line": line, "column": column, "message": message})

    def merge(self, rows: list[dict], total: int) -> None:
        """Add errors found in SQL (at most `cap`, in line order) to those found while streaming, keeping
        line order and the cap."""
        self.count += total
        merged = sorted([*self.items, *rows], key=lambda e: e["line"] or 0)  # stable: keeps column order
        self.items = merged[: self.cap]


class FileRejected(Exception):
    """The file as a whole cannot be imported (too big, too many rows, not UTF-8, wrong header)."""

    def __init__(self, message: str, line: int | None = None, column: str = "") -> None:
        super().__init__(message)
        self.error = {"line": line, "column": column, "message": message}
