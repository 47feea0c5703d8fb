"""A plan: what applying a configuration tree would create, change and remove, and its hash.

The hash covers the database's current state of every kind the tree manages *and* the desired
state read from the tree (canonical JSON), so an apply made with a hash refuses when either
changed since the plan was reviewed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .kinds import KINDS
from .kinds.base import Kind, State
from .tree import ConfigInvalid, Tree, read_tree


@dataclass
class Change:
    kind: str
    key: str
    op: str  # "create" | "update" | "delete"
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str = ""
    source: tuple[str, int | None] | None = None

    @property
    def fields(self) -> list[str]:
        if self.op != "update" or self.before is None or self.after is None:
            return []
        return [k for k in self.after if self.before.get(k) != self.after.get(k)]


@dataclass
class Plan:
    root: str
    kinds: list[Kind]
    current: dict[str, State]
    desired: dict[str, State]
    sources: dict[str, dict[str, tuple[str, int | None]]]
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    hash: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "delete": 0}
        for change in self.changes:
            out[change.op] += 1
        return out

    def render(self) -> str:
        return render(self)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def compute_plan(root: str | Path) -> Plan:
    """Read and check the tree (``ConfigInvalid`` names every problem), then diff it with the
    database. Read-only."""
    tree: Tree = read_tree(root)
    context: dict[str, Any] = {}
    kinds = [k for k in KINDS if k.present(tree)]
    desired: dict[str, State] = {}
    sources: dict[str, dict] = {}
    for kind in kinds:
        found = kind.desired(tree, context)
        desired[kind.name] = found.state
        sources[kind.name] = found.source
    if tree.problems:
        raise ConfigInvalid(tree.problems)
    current = {kind.name: kind.current() for kind in kinds}
    plan = Plan(str(root), kinds, current, desired, sources)
    for kind in kinds:
        have_all, want_all = current[kind.name], desired[kind.name]
        for key, want in want_all.items():
            have = have_all.get(key)
            source = sources[kind.name].get(key)
            preview = getattr(kind, "preview", None)
            if have is None:
                note = preview(key, want) if preview else ""
                plan.changes.append(
                    Change(kind.name, key, "create", None, want, note=note, source=source)
                )
            elif have != want:
                note = preview(key, want) if preview else ""
                plan.changes.append(
                    Change(kind.name, key, "update", have, want, note=note, source=source)
                )
            else:
                plan.unchanged += 1
        for key, have in have_all.items():
            if key in want_all:
                continue
            if not kind.deleted(key, have):
                plan.unchanged += 1
                continue
            plan.changes.append(
                Change(kind.name, key, "delete", have, None, note=kind.delete_note(key, have))
            )
    plan.hash = (
        "sha256:"
        + hashlib.sha256(canonical({"current": current, "desired": desired}).encode()).hexdigest()
    )
    return plan


SIGN = {"create": "+", "update": "~", "delete": "-"}


def render(plan: Plan) -> str:
    lines = [
        f"Configuration plan for {plan.root}",
        "Managed kinds: " + ", ".join(k.label for k in plan.kinds),
        "",
    ]
    for change in plan.changes:
        where = f"  ({change.source[0]}:{change.source[1] or 1})" if change.source else ""
        head = f"{SIGN[change.op]} {change.kind} {change.key}{where}"
        if change.note:
            head += f": {change.note}"
        lines.append(head)
        if change.op == "create" and change.after is not None:
            for name, value in change.after.items():
                lines.append(f"    + {name}: {_show(value)}")
        elif change.op == "update" and change.before is not None and change.after is not None:
            for name in change.fields:
                lines.append(f"    - {name}: {_show(change.before.get(name))}")
                lines.append(f"    + {name}: {_show(change.after.get(name))}")
    counts = plan.counts()
    if plan.changes:
        lines.append("")
    lines.append(
        f"Plan: {counts['create']} to create, {counts['update']} to change, "
        f"{counts['delete']} to remove; {plan.unchanged} unchanged."
        if plan.changes
        else f"No changes: the database matches the configuration ({plan.unchanged} objects)."
    )
    lines.append(f"Plan hash: {plan.hash}")
    return "\n".join(lines) + "\n"
