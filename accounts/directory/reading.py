"""Reading the HR directory file (CSV or JSON) into raw rows, and the errors it reports.

Row numbers: ``row N`` is the N-th data record, counted from 1. In a CSV file the
header is not counted, so row N is on line N + 1 (unless a quoted field spans
lines); in a JSON file row N is the N-th object of the array. Errors about the CSV
header itself are reported as ``row 0``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from portal.core.errors import ValidationError

COLUMNS = (
    "email",
    "name",
    "team",
    "parent_team",
    "manager_email",
    "worker_type",
    "status",
    "start_date",
    "end_date",
)
REQUIRED = ("email", "name", "team", "worker_type", "status", "start_date")
OPTIONAL = ("parent_team", "manager_email", "end_date")
STATUSES = ("active", "leaver")
WORKER_TYPES = ("employee", "contractor")
# Attributes compared person by person; a change to any of them is one ``user.updated``.
PERSON_FIELDS = ("name", "worker_type", "start_date", "end_date", "manager")

ROW_NUMBERING = (
    "row N is the N-th data record counted from 1 "
    "(CSV: the header is not counted, so row N is file line N+1; JSON: the N-th object)"
)

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SLUG_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_MAX_NAME = 200
_MAX_SLUG = 80
_MAX_EMAIL = 254


# --- Errors ---------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class RowError:
    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        where = "row 0 (header)" if self.row == 0 else f"row {self.row}"
        return f"{where}, field {self.field}: {self.reason}"


class DirectoryImportError(ValidationError):
    """The file was refused; ``errors`` lists every problem found. Nothing was changed."""

    code = "directory-invalid"

    def __init__(self, errors: Sequence[RowError]):
        self.errors = sorted(errors)
        first = f": {self.errors[0]}" if self.errors else ""
        super().__init__(
            f"directory import refused, {len(self.errors)} error(s){first}",
            field=self.errors[0].field if self.errors else None,
        )


# --- Reading --------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRow:
    number: int
    values: Mapping[str, object]


@dataclass
class DirectoryInput:
    """What was read from a file: raw rows plus the file-level errors found on the way."""

    rows: list[RawRow]
    errors: list[RowError] = field(default_factory=list)
    fmt: str = "rows"
    # Columns absent from the CSV header (reported once there, not again per row).
    absent_columns: frozenset[str] = frozenset()


def parse_csv(text: str) -> DirectoryInput:
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="\x00extra")
    try:
        header = [(name or "").strip() for name in (reader.fieldnames or [])]
    except csv.Error as exc:
        return DirectoryInput([], [RowError(0, "-", f"unreadable CSV header: {exc}")], "csv")
    errors: list[RowError] = []
    if not header:
        return DirectoryInput([], [RowError(0, "-", "the file is empty (no header)")], "csv")
    reader.fieldnames = header
    seen: set[str] = set()
    for name in header:
        if name in seen:
            errors.append(RowError(0, name or "-", "column appears twice in the header"))
        elif name not in COLUMNS:
            errors.append(
                RowError(0, name or "-", f"unknown column; expected: {', '.join(COLUMNS)}")
            )
        seen.add(name)
    absent = frozenset(c for c in REQUIRED if c not in seen)
    for name in sorted(absent, key=COLUMNS.index):
        errors.append(RowError(0, name, "required column is missing from the header"))
    rows: list[RawRow] = []
    number = 0
    try:
        for record in reader:
            number += 1
            extra = record.pop("\x00extra", None)
            if extra:
                errors.append(
                    RowError(
                        number, "-", f"{len(header) + len(extra)} values for {len(header)} columns"
                    )
                )
            values = {k: ("" if v is None else v) for k, v in record.items() if k in COLUMNS}
            rows.append(RawRow(number, values))
    except csv.Error as exc:
        errors.append(RowError(number + 1, "-", f"unreadable CSV: {exc}"))
    return DirectoryInput(rows, errors, "csv", absent)


def parse_json(text: str) -> DirectoryInput:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return DirectoryInput([], [RowError(0, "-", f"invalid JSON: {exc}")], "json")
    if not isinstance(data, list):
        return DirectoryInput(
            [], [RowError(0, "-", "expected a JSON array of objects (one per person)")], "json"
        )
    rows: list[RawRow] = []
    errors: list[RowError] = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            errors.append(RowError(number, "-", "expected an object"))
            continue
        rows.append(RawRow(number, item))
    return DirectoryInput(rows, errors, "json")


def parse_text(text: str, *, fmt: str | None = None) -> DirectoryInput:
    text = text.removeprefix("\ufeff")
    if fmt is None:
        fmt = "json" if text.lstrip().startswith("[") else "csv"
    if fmt == "json":
        return parse_json(text)
    if fmt == "csv":
        return parse_csv(text)
    raise ValueError(f"unknown directory format {fmt!r}; use csv or json")


def read_path(path: str | Path, *, fmt: str | None = None) -> DirectoryInput:
    path = Path(path)
    if fmt is None and path.suffix.lower() in {".json", ".csv"}:
        fmt = path.suffix.lower().lstrip(".")
    return parse_text(path.read_text(encoding="utf-8-sig"), fmt=fmt)


def as_input(rows: DirectoryInput | Iterable[Mapping[str, object] | RawRow]) -> DirectoryInput:
    """Accept parsed input, or plain dicts (numbered 1, 2, ... in order)."""
    if isinstance(rows, DirectoryInput):
        return rows
    out = []
    for number, item in enumerate(rows, start=1):
        out.append(item if isinstance(item, RawRow) else RawRow(number, item))
    return DirectoryInput(out)
