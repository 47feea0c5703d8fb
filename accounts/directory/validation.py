"""Validating raw directory rows: each row on its own, then across rows (duplicates, managers,
team parents and their cycles). Pure: no database access.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from .reading import (
    _DATE_RE,
    _MAX_EMAIL,
    _MAX_NAME,
    _MAX_SLUG,
    _SLUG_RE,
    COLUMNS,
    REQUIRED,
    STATUSES,
    WORKER_TYPES,
    DirectoryInput,
    RawRow,
    RowError,
)


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
    # with errors the row is built from what parsed (possibly None) and then discarded
    row = DirectoryRow(
        row=number,
        email=email,  # type: ignore[arg-type]
        name=name,
        team=team,  # type: ignore[arg-type]
        parent_team=parent,
        manager_email=manager,
        worker_type=worker_type,
        status=status,
        start_date=start,  # type: ignore[arg-type]
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
