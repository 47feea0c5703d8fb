"""The HR directory file: reading, validation and the diff against what Tollgate holds.

Everything here is pure: no database access and no writes. ``accounts.services``
takes a snapshot of the current people and teams, asks :func:`validate` and
:func:`plan` what would change, and applies the plan in one transaction.

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
from datetime import date
from pathlib import Path

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

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


# --- Validation -----------------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryRow:
    """One validated person: normalised e-mail and slugs, parsed dates."""

    row: int
    email: str
    name: str
    team: str
    parent_team: str | None
    manager_email: str | None
    worker_type: str
    status: str
    start_date: date
    end_date: date | None


def team_name_from_slug(slug: str) -> str:
    """New teams are named from their slug (``data-platform`` -> ``Data Platform``).

    The directory carries slugs only, so a name set later in Tollgate is never overwritten.
    """
    return re.sub(r"[-_]+", " ", slug).strip().title()


def _text(raw: RawRow, name: str, errors: list[RowError]) -> str | None:
    value = raw.values.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    errors.append(RowError(raw.number, name, f"expected a string, got {type(value).__name__}"))
    return None


def _date(raw_value: str, number: int, name: str, errors: list[RowError]) -> date | None:
    if not _DATE_RE.match(raw_value):
        errors.append(RowError(number, name, f"{raw_value!r} is not a date in YYYY-MM-DD form"))
        return None
    try:
        return date.fromisoformat(raw_value)
    except ValueError as exc:
        errors.append(RowError(number, name, f"{raw_value!r} is not a valid date ({exc})"))
        return None


def _email(value: str, number: int, name: str, errors: list[RowError]) -> str | None:
    value = value.lower()
    if len(value) > _MAX_EMAIL:
        errors.append(RowError(number, name, f"longer than {_MAX_EMAIL} characters"))
        return None
    try:
        validate_email(value)
    except DjangoValidationError:
        errors.append(RowError(number, name, f"{value!r} is not a valid e-mail address"))
        return None
    return value


def _slug(value: str, number: int, name: str, errors: list[RowError]) -> str | None:
    value = value.lower()
    if len(value) > _MAX_SLUG or not _SLUG_RE.match(value):
        errors.append(
            RowError(
                number,
                name,
                f"{value!r} is not a team slug (lowercase letters and digits joined by - or _, "
                f"at most {_MAX_SLUG} characters)",
            )
        )
        return None
    return value


def _check_row(
    raw: RawRow, absent: frozenset[str], errors: list[RowError]
) -> tuple[DirectoryRow, bool]:
    """The row as far as it could be read (unreadable fields are None), and whether it is valid.

    A partly invalid row still takes part in the checks across rows (unknown manager,
    cycles, duplicates), so that every error of a file is reported in one go.
    """
    number = raw.number
    before = len(errors)
    for key in raw.values:
        if key not in COLUMNS:
            errors.append(
                RowError(number, str(key), f"unknown column; expected: {', '.join(COLUMNS)}")
            )
    text: dict[str, str | None] = {name: _text(raw, name, errors) for name in COLUMNS}
    for name in REQUIRED:
        if text[name] == "" and name not in absent:
            errors.append(RowError(number, name, "required field is missing or empty"))

    email = _email(text["email"], number, "email", errors) if text["email"] else None
    name = text["name"] or ""
    if len(name) > _MAX_NAME:
        errors.append(RowError(number, "name", f"longer than {_MAX_NAME} characters"))
    team = _slug(text["team"], number, "team", errors) if text["team"] else None
    parent = (
        _slug(text["parent_team"], number, "parent_team", errors) if text["parent_team"] else None
    )
    manager = (
        _email(text["manager_email"], number, "manager_email", errors)
        if text["manager_email"]
        else None
    )
    worker_type = (text["worker_type"] or "").lower()
    if worker_type and worker_type not in WORKER_TYPES:
        errors.append(
            RowError(
                number, "worker_type", f"{worker_type!r} is not one of {', '.join(WORKER_TYPES)}"
            )
        )
    status = (text["status"] or "").lower()
    if status and status not in STATUSES:
        errors.append(RowError(number, "status", f"{status!r} is not one of {', '.join(STATUSES)}"))
    start = _date(text["start_date"], number, "start_date", errors) if text["start_date"] else None
    end = _date(text["end_date"], number, "end_date", errors) if text["end_date"] else None
    if start and end and end < start:
        errors.append(
            RowError(number, "end_date", f"{end.isoformat()} is before start_date {start}")
        )
    if team and parent and team == parent:
        errors.append(RowError(number, "parent_team", f"team cycle: {team} -> {team}"))
    row = DirectoryRow(
        row=number,
        email=email,
        name=name,
        team=team,
        parent_team=parent,
        manager_email=manager,
        worker_type=worker_type,
        status=status,
        start_date=start,
        end_date=end,
    )
    return row, len(errors) == before


def _find_cycle(start: str, parent_of: Mapping[str, str | None]) -> list[str] | None:
    """Follow ``parent_of`` from ``start``; the path back to ``start`` if there is one."""
    path = [start]
    seen = {start}
    current = parent_of.get(start)
    while current is not None:
        if current == start:
            return [*path, start]
        if current in seen:
            return None  # a cycle that does not include start; reported from its members
        path.append(current)
        seen.add(current)
        current = parent_of.get(current)
    return None


def validate(
    inp: DirectoryInput,
    *,
    existing_managers: Mapping[str, str | None],
    existing_team_parents: Mapping[str, str | None],
) -> tuple[list[DirectoryRow], list[RowError]]:
    """Check every row and the file as a whole; collect every error, do not stop at one.

    ``existing_managers`` maps each e-mail Tollgate knows to its manager's e-mail,
    ``existing_team_parents`` each team slug to its parent's slug, so that cycles
    through people and teams not in the file are found too.
    """
    errors = list(inp.errors)
    valid: list[DirectoryRow] = []
    rows: list[DirectoryRow] = []  # every non-duplicate row, valid or not, for cross-row checks
    first_row_of: dict[str, int] = {}
    for raw in inp.rows:
        row, ok = _check_row(raw, inp.absent_columns, errors)
        email = row.email
        if email is None:
            # Still note the e-mail (if readable) so duplicates are reported.
            value = raw.values.get("email")
            if isinstance(value, str) and value.strip():
                email = value.strip().lower()
        if email is not None:
            if email in first_row_of:
                errors.append(
                    RowError(
                        raw.number,
                        "email",
                        f"duplicate e-mail {email}: already in row {first_row_of[email]}",
                    )
                )
                continue
            first_row_of[email] = raw.number
        rows.append(row)
        if ok:
            valid.append(row)

    # Unknown managers.
    in_file = set(first_row_of)
    for row in rows:
        if (
            row.manager_email
            and row.manager_email not in in_file
            and row.manager_email not in existing_managers
        ):
            errors.append(
                RowError(
                    row.row,
                    "manager_email",
                    f"unknown manager {row.manager_email}: not in the file and not an existing person",
                )
            )

    # Manager cycles, through people in the file and people already in Tollgate.
    manager_of = dict(existing_managers)
    for row in rows:
        if row.email:
            manager_of[row.email] = row.manager_email
    reported: set[frozenset[str]] = set()
    for row in rows:
        if not row.email or not row.manager_email:
            continue
        cycle = _find_cycle(row.email, manager_of)
        if cycle and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            if len(cycle) == 2:
                reason = "manager cycle: a person cannot be their own manager"
            else:
                reason = "manager cycle: " + " -> ".join(cycle)
            errors.append(RowError(row.row, "manager_email", reason))

    # Team parents: one parent per team in a file, and no cycles (with existing teams too).
    declared: dict[str, tuple[str, int]] = {}
    for row in rows:
        if not row.parent_team or not row.team:
            continue
        if row.team in declared and declared[row.team][0] != row.parent_team:
            parent, where = declared[row.team]
            errors.append(
                RowError(
                    row.row,
                    "parent_team",
                    f"team {row.team} is given two parents: {parent} in row {where} "
                    f"and {row.parent_team} here",
                )
            )
            continue
        declared.setdefault(row.team, (row.parent_team, row.row))
    parent_of = dict(existing_team_parents)
    for team, (parent, _) in declared.items():
        parent_of[team] = parent
    reported = set()
    for team, (parent, where) in declared.items():
        if team == parent:
            continue  # reported per row already
        cycle = _find_cycle(team, parent_of)
        if cycle and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            errors.append(RowError(where, "parent_team", "team cycle: " + " -> ".join(cycle)))
    return valid, sorted(set(errors))


# --- The diff -------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonState:
    """What Tollgate holds about one person (a snapshot taken by the service)."""

    email: str
    name: str
    worker_type: str
    status: str
    start_date: date | None
    end_date: date | None
    manager_email: str | None
    team_slug: str | None
    home_role: str | None  # role of the membership in the home team, None when absent
    is_superuser: bool = False


@dataclass(frozen=True)
class TeamState:
    slug: str
    name: str
    parent_slug: str | None


@dataclass
class TeamCreate:
    slug: str
    name: str
    parent: str | None


@dataclass
class TeamReparent:
    slug: str
    old_parent: str | None
    new_parent: str | None


@dataclass
class PersonCreate:
    row: DirectoryRow


@dataclass
class PersonChange:
    email: str
    row: DirectoryRow | None
    fields: dict[str, tuple[object, object]] = field(default_factory=dict)
    move: tuple[str | None, str] | None = None
    add_home_membership: bool = False  # home membership missing although the team did not change
    rejoin: bool = False
    leave: bool = False
    leave_reason: str = ""

    @property
    def empty(self) -> bool:
        return not (
            self.fields or self.move or self.add_home_membership or self.rejoin or self.leave
        )


@dataclass
class DirectoryPlan:
    teams_created: list[TeamCreate] = field(default_factory=list)
    teams_reparented: list[TeamReparent] = field(default_factory=list)
    people_created: list[PersonCreate] = field(default_factory=list)
    people_changed: list[PersonChange] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        changed = self.people_changed
        return {
            "teams_created": len(self.teams_created),
            "teams_updated": len(self.teams_reparented),
            "created": len(self.people_created),
            "updated": sum(1 for c in changed if c.fields),
            "moved": sum(1 for c in changed if c.move),
            "memberships_added": sum(1 for c in changed if c.add_home_membership),
            "rejoined": sum(1 for c in changed if c.rejoin),
            "left": sum(1 for c in changed if c.leave),
        }

    @property
    def changed(self) -> bool:
        return any(self.counts().values())

    def diff_lines(self) -> list[str]:
        def show(value: object) -> str:
            if value is None or value == "":
                return "-"
            return value.isoformat() if isinstance(value, date) else str(value)

        lines: list[str] = []
        for t in self.teams_created:
            lines.append(f"+ team {t.slug} (name {t.name!r}, parent {show(t.parent)})")
        for t in self.teams_reparented:
            lines.append(f"~ team {t.slug}: parent {show(t.old_parent)} -> {show(t.new_parent)}")
        for p in self.people_created:
            r = p.row
            lines.append(
                f"+ person {r.email}: name {r.name!r}, team {r.team}, manager "
                f"{show(r.manager_email)}, {r.worker_type}, {r.status}, "
                f"start {show(r.start_date)}, end {show(r.end_date)}"
            )
        for c in self.people_changed:
            if c.fields:
                parts = "; ".join(
                    f"{name} {show(old)} -> {show(new)}" for name, (old, new) in c.fields.items()
                )
                lines.append(f"~ person {c.email}: {parts}")
            if c.move:
                lines.append(f"> move {c.email}: team {show(c.move[0])} -> {c.move[1]}")
            if c.add_home_membership:
                lines.append(f"= membership {c.email}: added to home team {c.row.team}")
            if c.rejoin:
                lines.append(f"< rejoin {c.email}: leaver -> active")
            if c.leave:
                lines.append(f"- leaver {c.email}: {c.leave_reason}")
        return lines


def _ordered_new_teams(new: dict[str, str | None]) -> list[str]:
    """New team slugs, every parent before its children (no cycles: validated before)."""
    ordered: list[str] = []
    placed: set[str] = set()
    for slug in new:
        chain = []
        current: str | None = slug
        while current is not None and current in new and current not in placed:
            chain.append(current)
            current = new[current]
        for item in reversed(chain):
            ordered.append(item)
            placed.add(item)
    return ordered


def plan(
    rows: Sequence[DirectoryRow],
    *,
    people: Mapping[str, PersonState],
    teams: Mapping[str, TeamState],
    full: bool,
) -> DirectoryPlan:
    """What applying validated ``rows`` to the snapshot would change (nothing, the second time).

    Rules: a team's parent is changed only when a row names one (an empty
    ``parent_team`` means "not stated"); new teams are named from their slug; an
    empty ``end_date`` on a leaver keeps the recorded leaving date.
    """
    result = DirectoryPlan()

    # Teams.
    declared: dict[str, str] = {}
    mentioned: list[str] = []
    for row in rows:
        for slug in (row.parent_team, row.team):
            if slug and slug not in mentioned:
                mentioned.append(slug)
        if row.parent_team:
            declared.setdefault(row.team, row.parent_team)
    new = {slug: declared.get(slug) for slug in mentioned if slug not in teams}
    for slug in _ordered_new_teams(new):
        result.teams_created.append(TeamCreate(slug, team_name_from_slug(slug), new[slug]))
    for slug, parent in declared.items():
        if slug in teams and teams[slug].parent_slug != parent:
            result.teams_reparented.append(TeamReparent(slug, teams[slug].parent_slug, parent))

    # People in the file.
    for row in rows:
        state = people.get(row.email)
        if state is None:
            result.people_created.append(PersonCreate(row))
            continue
        change = PersonChange(email=row.email, row=row)
        wanted = {
            "name": row.name,
            "worker_type": row.worker_type,
            "start_date": row.start_date,
            "end_date": row.end_date,
            "manager": row.manager_email,
        }
        held = {
            "name": state.name,
            "worker_type": state.worker_type,
            "start_date": state.start_date,
            "end_date": state.end_date,
            "manager": state.manager_email,
        }
        if row.status == "leaver" and row.end_date is None:
            wanted.pop("end_date")  # unknown in the file: keep the recorded leaving date
        leaving = row.status == "leaver" and state.status != "leaver"
        rejoining = row.status == "active" and state.status == "leaver"
        if leaving or rejoining:
            wanted.pop("end_date", None)  # recorded by the leave/rejoin event itself
        for name, value in wanted.items():
            if held[name] != value:
                change.fields[name] = (held[name], value)
        if state.team_slug != row.team:
            change.move = (state.team_slug, row.team)
        elif state.home_role is None and row.status == "active":
            change.add_home_membership = True
        change.rejoin = rejoining
        if leaving:
            change.leave = True
            change.leave_reason = "status leaver in the directory"
        if not change.empty:
            result.people_changed.append(change)

    # --full: active people missing from the file leave (local superusers are kept).
    if full:
        in_file = {row.email for row in rows}
        for email in sorted(people):
            state = people[email]
            if email in in_file or state.status != "active" or state.is_superuser:
                continue
            result.people_changed.append(
                PersonChange(
                    email=email,
                    row=None,
                    leave=True,
                    leave_reason="missing from a full directory import",
                )
            )
    return result


@dataclass
class DirectoryImportResult:
    """What an import changed (or, for a dry run, would change)."""

    plan: DirectoryPlan
    rows: int
    dry_run: bool

    @property
    def counts(self) -> dict[str, int]:
        return self.plan.counts()

    @property
    def changed(self) -> bool:
        return self.plan.changed

    def diff_lines(self) -> list[str]:
        return self.plan.diff_lines()

    def summary(self) -> str:
        counts = ", ".join(f"{name} {value}" for name, value in self.counts.items())
        verb = "would change" if self.dry_run else "changed"
        head = f"{self.rows} rows read; " + (f"{verb}: {counts}" if self.changed else "no changes")
        return head
