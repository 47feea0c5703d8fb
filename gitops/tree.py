"""Reading a configuration tree: YAML files with their line numbers, checked against the
published JSON Schema of their kind.

Every problem names its file, its line and the reason (``Problem``); the whole tree is read
and every problem collected before anything is planned, so one run of ``config_plan`` lists
them all. Line numbers come from PyYAML's composed node tree (``start_mark``), the schema
check from ``jsonschema`` (Draft 2020-12), whose error paths are walked down the node tree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line or 1}: {self.reason}"


class ConfigInvalid(Exception):
    """The tree was refused; ``problems`` names every problem (file, line, reason)."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, p.reason))
        super().__init__("; ".join(str(p) for p in self.problems[:10]))


@dataclass
class Doc:
    """One YAML file: its data, its node tree (for lines) and its path in the tree."""

    path: str
    data: Any
    root: Any
    text: str = ""

    def line(self, *where: str | int) -> int | None:
        """The line of the value at ``where`` (keys and list indexes), or of the nearest
        ancestor that exists."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for step in where:
            if isinstance(node, yaml.MappingNode):
                found = next(
                    (v for k, v in node.value if getattr(k, "value", None) == str(step)), None
                )
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                found = node.value[step] if 0 <= step < len(node.value) else None
            else:
                found = None
            if found is None:
                break
            node, line = found, found.start_mark.line + 1
        return line


@dataclass
class Tree:
    root: Path
    docs: dict[str, Doc] = field(default_factory=dict)  # relative path -> doc
    problems: list[Problem] = field(default_factory=list)

    def problem(self, doc: Doc | str, where: tuple, reason: str) -> None:
        if isinstance(doc, Doc):
            self.problems.append(Problem(doc.path, doc.line(*where), reason))
        else:
            self.problems.append(Problem(doc, None, reason))

    def has(self, name: str) -> bool:
        """Whether the tree holds the file (or directory) of a kind: a kind that is absent is
        not managed (nothing of it is created, changed or deleted)."""
        return (self.root / name).exists()

    def doc(self, name: str) -> Doc | None:
        return self.docs.get(name)

    def file(self, name: str) -> Doc:
        """The document at ``name``, or an empty one (a kind's file that is absent)."""
        return self.docs.get(name) or Doc(path=name, data={}, root=None)

    def under(self, directory: str) -> list[Doc]:
        prefix = directory.rstrip("/") + "/"
        return [d for p, d in sorted(self.docs.items()) if p.startswith(prefix)]


@cache
def schema(kind: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8"))


def _duplicate_keys(node: Any, path: str, problems: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    problems.append(
                        Problem(path, key.start_mark.line + 1, f"key {key.value!r} appears twice")
                    )
                seen.add(key.value)
            _duplicate_keys(value, path, problems)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, path, problems)


def load_doc(path: str, text: str, problems: list[Problem]) -> Doc | None:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        problems.append(
            Problem(
                path,
                mark.line + 1 if mark else None,
                f"YAML syntax error: {reason}" + (f" ({context})" if context else ""),
            )
        )
        return None
    before = len(problems)
    _duplicate_keys(root, path, problems)
    if len(problems) > before:
        return None
    return Doc(path=path, data=data, root=root, text=text)


def _type_hint(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


def check_schema(doc: Doc, kind: str, problems: list[Problem]) -> bool:
    """Check ``doc`` against the kind's schema; every error is a problem with its line."""
    validator = Draft202012Validator(schema(kind))
    errors = sorted(validator.iter_errors(doc.data), key=lambda e: list(map(str, e.path)))
    for error in errors:
        problems.append(Problem(doc.path, doc.line(*error.absolute_path), _type_hint(error)))
    return not errors


#: file or directory in the tree -> the schema its files follow
LAYOUT = {
    "services": "service",
    "policies.yaml": "policies",
    "toxic_pairs.yaml": "toxic_pairs",
    "bundles.yaml": "bundles",
    "standards.yaml": "standards",
    "budgets.yaml": "budgets",
    "attribution_rules.yaml": "attribution_rules",
    "notification_routes.yaml": "notification_routes",
    "review_templates.yaml": "review_templates",
}


def read_tree(root: str | Path) -> Tree:
    """Read every YAML file of the tree and check it against its kind's schema; raise
    ``ConfigInvalid`` when a file is unusable (syntax, schema). Other problems are left in
    ``tree.problems`` for the caller to raise with what it finds."""
    base = Path(root)
    tree = Tree(root=base)
    if not base.is_dir():
        raise ConfigInvalid([Problem(str(root), None, "not a directory")])
    known = set(LAYOUT)
    unusable = False  # a file that could not be read: references into it would mislead
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base).as_posix()
        if any(part.startswith(".") for part in Path(rel).parts) or path.is_dir():
            continue
        top = rel.split("/", 1)[0]
        if top not in known:
            tree.problems.append(
                Problem(rel, None, f"unknown file: expected one of {', '.join(sorted(known))}")
            )
            continue
        if not rel.endswith((".yaml", ".yml")):
            tree.problems.append(Problem(rel, None, "only .yaml files belong in the tree"))
            continue
        doc = load_doc(rel, path.read_text(encoding="utf-8"), tree.problems)
        if doc is None:
            unusable = True
            continue
        if LAYOUT[top] == "standards":  # the existing format, checked by the standards parser
            tree.docs[rel] = doc
            continue
        if check_schema(doc, LAYOUT[top], tree.problems):
            tree.docs[rel] = doc
        else:
            unusable = True
    if unusable:
        raise ConfigInvalid(tree.problems)
    return tree  # other problems (unknown files) are raised with the references' problems
