"""The HR directory file: reading, validation and the diff against what Tollgate holds.

Everything here is pure: no database access and no writes. ``accounts.services``
takes a snapshot of the current people and teams, asks :func:`validate` and
:func:`plan` what would change, and applies the plan in one transaction.

:mod:`.reading` reads the file into raw rows (and holds the row numbering and errors),
:mod:`.validation` checks them, :mod:`.planning` diffs them against the snapshot.
"""

from .planning import (
    DirectoryImportResult,
    DirectoryPlan,
    PersonChange,
    PersonCreate,
    PersonState,
    TeamCreate,
    TeamReparent,
    TeamState,
    plan,
)
from .reading import (
    COLUMNS,
    OPTIONAL,
    PERSON_FIELDS,
    REQUIRED,
    ROW_NUMBERING,
    STATUSES,
    WORKER_TYPES,
    DirectoryImportError,
    DirectoryInput,
    RawRow,
    RowError,
    as_input,
    parse_csv,
    parse_json,
    parse_text,
    read_path,
)
from .validation import DirectoryRow, team_name_from_slug, validate

__all__ = [
    "COLUMNS",
    "OPTIONAL",
    "PERSON_FIELDS",
    "REQUIRED",
    "ROW_NUMBERING",
    "STATUSES",
    "WORKER_TYPES",
    "DirectoryImportError",
    "DirectoryImportResult",
    "DirectoryInput",
    "DirectoryPlan",
    "DirectoryRow",
    "PersonChange",
    "PersonCreate",
    "PersonState",
    "RawRow",
    "RowError",
    "TeamCreate",
    "TeamReparent",
    "TeamState",
    "as_input",
    "parse_csv",
    "parse_json",
    "parse_text",
    "plan",
    "read_path",
    "team_name_from_slug",
    "validate",
]
