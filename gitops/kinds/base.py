"""What every object kind of the configuration tree provides.

A kind reads the database into a canonical form (``current``: key -> plain JSON values, in a
fixed field order), reads the tree into the same form (``desired``, with references checked
and every problem named with its file and line), writes the export, and applies one change
through the owning app's services. Keys are slugs (``service/entitlement``, a team and a
month, a rule's name), never database ids, so an export is stable and diff-friendly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import models

from ..tree import Doc, Tree

State = dict[str, dict[str, Any]]


@dataclass
class Desired:
    state: State
    source: dict[str, tuple[str, int | None]]  # key -> (file, line)


class Kind:
    """One kind of object. Subclasses fill in the methods; ``name`` is the plan's word."""

    name: str = ""
    path: str = ""  # the file or directory of the tree that holds this kind
    label: str = ""  # plural, for the summary

    def present(self, tree: Tree) -> bool:
        return tree.has(self.path)

    def current(self) -> State:
        raise NotImplementedError

    def desired(self, tree: Tree, context: dict[str, Any]) -> Desired:
        raise NotImplementedError

    def export(self, state: State) -> dict[str, Any]:
        """relative path -> YAML data"""
        raise NotImplementedError

    def deleted(self, key: str, have: dict[str, Any]) -> bool:
        """Whether an object absent from the tree is to be removed (False: already is)."""
        return True

    def delete_note(self, key: str, have: dict[str, Any]) -> str:
        return ""

    def create(self, key: str, want: dict[str, Any], actor: Any) -> None:
        raise NotImplementedError

    def update(self, key: str, have: dict[str, Any], want: dict[str, Any], actor: Any) -> None:
        raise NotImplementedError

    def delete(self, key: str, have: dict[str, Any], actor: Any) -> str:
        raise NotImplementedError

    def finish(self, changes: list, actor: Any) -> None:
        """After every create and update of every kind (second pass, e.g. prerequisites)."""

    def instance(self, key: str) -> models.Model | None:
        """The row a key names (for the managed mark)."""
        return None


# --- canonical values -------------------------------------------------------------------
def money(value: Any) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.01")))


def ratio(value: Any) -> str | None:
    if value in (None, ""):
        return None
    return str(Decimal(str(value)).quantize(Decimal("0.001")))


_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def duration_text(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def duration_value(text: str) -> timedelta:
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(text)
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def normal_duration(text: str) -> str:
    return duration_text(duration_value(text))


def parse_money(tree: Tree, doc: Doc, where: tuple, value: Any) -> str | None:
    try:
        return money(value)
    except (InvalidOperation, ValueError):
        tree.problem(doc, where, f"{value!r} is not an amount")
        return None


def items(doc: Doc, name: str) -> list[tuple[int, dict]]:
    data = doc.data if isinstance(doc.data, dict) else {}
    return list(enumerate(data.get(name) or []))
