"""Export a range of the audit trail (CSV or JSON lines) with a SHA-256 manifest, and verify one.

An export holds whole rows, including ``prev_hash`` and ``hash``, for a contiguous run of
seqs, so the chain inside it can be re-checked without the database: each row's hash is
recomputed from its ``prev_hash`` and its content, and the seqs must follow one another.
The manifest pins the file (SHA-256), its size in rows and both ends of the chain.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.utils import timezone

from portal.core.csvsafe import neutralise, restore

from .chain import HASHED_FIELDS, canonical_json, compute_hash, sign, signature_matches
from .models import AuditEvent

FORMATS = ("csv", "jsonl")
EXPORT_FIELDS = (*HASHED_FIELDS, "prev_hash", "hash")
_JSON_COLUMNS = ("before", "after")


def event_row(values: dict[str, Any]) -> dict[str, Any]:
    """One event as exported and streamed: the hashed fields plus both hashes."""
    row = {name: values.get(name) for name in EXPORT_FIELDS}
    occurred = row["occurred_at"]
    if occurred is not None and not isinstance(occurred, str):
        row["occurred_at"] = occurred.isoformat()
    return row


def audit_rows_in_range(
    *, since: datetime | None = None, until: datetime | None = None, chunk_size: int = 2000
) -> Iterator[dict[str, Any]]:
    """Rows with ``since <= occurred_at < until``, widened to a contiguous run of seqs."""
    bounds = AuditEvent.objects.all()
    if since is not None:
        bounds = bounds.filter(occurred_at__gte=since)
    if until is not None:
        bounds = bounds.filter(occurred_at__lt=until)
    first = bounds.order_by("seq").values_list("seq", flat=True).first()
    last = bounds.order_by("-seq").values_list("seq", flat=True).first()
    if first is None or last is None:
        return iter(())
    qs = AuditEvent.objects.filter(seq__gte=first, seq__lte=last).order_by("seq")
    return (event_row(v) for v in qs.values(*EXPORT_FIELDS).iterator(chunk_size=chunk_size))


# --- writing ---------------------------------------------------------------------------------


def _csv_cell(name: str, value: Any) -> str:
    if name in _JSON_COLUMNS:
        return canonical_json(value)
    return "" if value is None else neutralise(str(value))


def write_rows(rows: Iterable[dict[str, Any]], out: IO[str], *, fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_FIELDS)
        for row in rows:
            writer.writerow([_csv_cell(name, row[name]) for name in EXPORT_FIELDS])
    else:
        for row in rows:
            out.write(canonical_json(row) + "\n")


class _Tally:
    """Passes rows through, noting the count and both ends of the chain."""

    def __init__(self, rows: Iterable[dict[str, Any]]):
        self._rows = rows
        self.count = 0
        self.first: dict[str, Any] | None = None
        self.last: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self._rows:
            if self.first is None:
                self.first = row
            self.last = row
            self.count += 1
            yield row


def build_manifest(*, file_name: str, data: bytes, tally: _Tally) -> dict[str, Any]:
    """The manifest, signed (HMAC under AUDIT_CHAIN_KEY) so that it cannot be rewritten to
    match an edited file by someone without the key."""
    manifest = {
        "file": file_name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "count": tally.count,
        "first_seq": tally.first["seq"] if tally.first else None,
        "last_seq": tally.last["seq"] if tally.last else None,
        "first_prev_hash": tally.first["prev_hash"] if tally.first else None,
        "last_hash": tally.last["hash"] if tally.last else None,
        "generated_at": timezone.now().isoformat(),
    }
    manifest["signature"] = sign(manifest)
    return manifest


def export_to_bytes(
    *, fmt: str, file_name: str, since: datetime | None = None, until: datetime | None = None
) -> tuple[bytes, dict[str, Any]]:
    """The export file's bytes and its manifest."""
    tally = _Tally(audit_rows_in_range(since=since, until=until))
    buffer = io.StringIO()
    write_rows(tally, buffer, fmt=fmt)
    data = buffer.getvalue().encode("utf-8")
    return data, build_manifest(file_name=file_name, data=data, tally=tally)


def manifest_path(path: Path | str) -> Path:
    return Path(f"{path}.manifest.json")


def export_to_file(
    *, fmt: str, output: Path | str, since: datetime | None = None, until: datetime | None = None
) -> dict[str, Any]:
    """Write ``output`` and ``output.manifest.json``; return the manifest."""
    output = Path(output)
    data, manifest = export_to_bytes(fmt=fmt, file_name=output.name, since=since, until=until)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    manifest_path(output).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest


# --- reading and verifying -------------------------------------------------------------------


class ExportUnreadable(ValueError):
    pass


def _parse_csv(text: str) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(header) != EXPORT_FIELDS:
        raise ExportUnreadable("CSV header does not list the audit export columns")
    rows = []
    for line, cells in enumerate(reader, start=1):
        if len(cells) != len(EXPORT_FIELDS):
            raise ExportUnreadable(f"row {line}: expected {len(EXPORT_FIELDS)} columns")
        raw = {
            name: cell if name in _JSON_COLUMNS else restore(cell)
            for name, cell in zip(EXPORT_FIELDS, cells, strict=True)
        }
        try:
            row: dict[str, Any] = {
                **raw,
                "seq": int(raw["seq"]),
                "actor_id": int(raw["actor_id"]) if raw["actor_id"] else None,
                "ip": raw["ip"] or None,
                "before": json.loads(raw["before"]),
                "after": json.loads(raw["after"]),
            }
        except ValueError as exc:
            raise ExportUnreadable(f"row {line}: unreadable value ({exc})") from exc
        rows.append(row)
    return rows


def _parse_jsonl(text: str) -> list[dict[str, Any]]:
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ExportUnreadable(f"row {line}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or set(row) != set(EXPORT_FIELDS):
            raise ExportUnreadable(f"row {line}: not an audit export row")
        rows.append(row)
    return rows


def parse_export(data: bytes, *, fmt: str) -> list[dict[str, Any]]:
    text = data.decode("utf-8")
    return _parse_csv(text) if fmt == "csv" else _parse_jsonl(text)


def guess_format(path: Path | str) -> str:
    return "csv" if str(path).lower().endswith(".csv") else "jsonl"


def chain_problem(rows: list[dict[str, Any]]) -> str | None:
    """The first break in the chain inside an export, naming the row (1-based) and its seq."""
    prev: str | None = None
    expected_seq: int | None = None
    for number, row in enumerate(rows, start=1):
        seq = row["seq"]
        where = f"row {number} (seq {seq})"
        if expected_seq is not None and seq != expected_seq:
            return (
                f"{where}: sequence gap, expected seq {expected_seq} "
                "(rows deleted, inserted or reordered)"
            )
        if prev is not None and row["prev_hash"] != prev:
            return f"{where}: prev_hash does not match the previous row's hash"
        if compute_hash(row["prev_hash"], row) != row["hash"]:
            return f"{where}: content does not match its hash (row edited)"
        prev = row["hash"]
        expected_seq = seq + 1
    return None


def manifest_problems(
    manifest: dict[str, Any], *, data: bytes, rows: list[dict[str, Any]]
) -> list[str]:
    problems = []
    if "signature" not in manifest:
        problems.append("manifest is not signed")
    elif not signature_matches(manifest):
        problems.append(
            "manifest signature does not match (the manifest was edited, "
            "or it was signed with another AUDIT_CHAIN_KEY)"
        )
    digest = hashlib.sha256(data).hexdigest()
    if manifest.get("sha256") != digest:
        problems.append(
            f"manifest sha256 {manifest.get('sha256')} does not match the file's {digest}"
        )
    actual = {
        "count": len(rows),
        "first_seq": rows[0]["seq"] if rows else None,
        "last_seq": rows[-1]["seq"] if rows else None,
        "first_prev_hash": rows[0]["prev_hash"] if rows else None,
        "last_hash": rows[-1]["hash"] if rows else None,
    }
    for key, value in actual.items():
        if manifest.get(key) != value:
            problems.append(
                f"manifest {key} {manifest.get(key)!r} does not match the file's {value!r}"
            )
    return problems


@dataclass
class ExportCheck:
    count: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_export_bytes(data: bytes, manifest: dict[str, Any], *, fmt: str) -> ExportCheck:
    """Check the chain inside the export first (it names the row), then the manifest."""
    try:
        rows = parse_export(data, fmt=fmt)
    except (ExportUnreadable, UnicodeDecodeError) as exc:
        return ExportCheck(0, [f"export unreadable: {exc}"])
    problems = []
    broken = chain_problem(rows)
    if broken:
        problems.append(broken)
    problems.extend(manifest_problems(manifest, data=data, rows=rows))
    return ExportCheck(len(rows), problems)


def verify_export_file(path: Path | str, *, manifest_file: Path | str | None = None) -> ExportCheck:
    path = Path(path)
    mpath = Path(manifest_file) if manifest_file else manifest_path(path)
    if not path.exists():
        return ExportCheck(0, [f"export file {path} not found"])
    if not mpath.exists():
        return ExportCheck(0, [f"manifest {mpath} not found"])
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return ExportCheck(0, [f"manifest {mpath} unreadable: {exc}"])
    if not isinstance(manifest, dict):
        return ExportCheck(0, [f"manifest {mpath} is not a JSON object"])
    problems = []
    if manifest.get("file") != path.name:
        problems.append(f"manifest names file {manifest.get('file')!r}, not {path.name!r}")
    check = verify_export_bytes(path.read_bytes(), manifest, fmt=guess_format(path))
    return ExportCheck(check.count, check.problems + problems)
