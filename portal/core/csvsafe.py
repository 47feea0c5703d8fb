"""CSV cells that a spreadsheet shows as text, never runs as a formula.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel, LibreOffice and Google Sheets (CSV injection). Such a text cell is written with a leading
apostrophe, which spreadsheets hide and treat as "this is text". Plain numbers (``-12.50``) stay
numbers. A text that already starts with an apostrophe gets one more, so :func:`restore` gives
back exactly what was written (the audit export is verified against its hashes after reading).
"""

from __future__ import annotations

import re
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def neutralise(value: Any) -> Any:
    """The cell as it is safe to write: text that a spreadsheet would run gets an apostrophe."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith("'") or (value.startswith(TRIGGERS) and not _NUMBER.match(value)):
        return "'" + value
    return value


def restore(cell: str) -> str:
    """The value :func:`neutralise` was given (for cells read back from a file)."""
    return cell[1:] if cell.startswith("'") else cell


def safe_row(values: list[Any]) -> list[Any]:
    return [neutralise(value) for value in values]
