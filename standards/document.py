"""The standards document: parse YAML, validate it against the fixed vocabulary, and write
it back. Pure functions plus two reference look-ups (team slugs, entitlement names).

Every error names the line, the standard (id and position) and the field, and nothing is
applied unless the whole document is valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from portal.core.errors import ValidationError

RISKS = ["low", "medium", "high", "critical"]
SEVERITIES = ["low", "medium", "high", "critical"]
WORKER_TYPES = ["employee", "contractor"]
STAGES = ["security", "service_owner", "manager"]
SERVICE_OWNER = "service-owner"

# The subject each kind evaluates, and the scope selectors that make sense for it.
GRANT_SCOPE = ("tier", "risk", "service", "entitlement", "worker_type")
KINDS: dict[str, dict[str, Any]] = {
    "requires_stage": {
        "subject": "grant",
        "scope": GRANT_SCOPE,
        "params": {"stage": ("choice", STAGES, True)},
    },
    "max_duration_days": {
        "subject": "grant",
        "scope": GRANT_SCOPE,
        "params": {"days": ("int", (1, 3650), True)},
    },
    "no_standing_access": {
        "subject": "grant",
        "scope": GRANT_SCOPE,
        "params": {"max_days": ("int", (1, 3650), False)},
    },
    "end_date_required_above_risk": {
        "subject": "grant",
        "scope": GRANT_SCOPE,
        "params": {"risk": ("choice", RISKS[:-1], True)},
    },
    "min_service_owners": {
        "subject": "service",
        "scope": ("tier", "service"),
        "params": {"min": ("int", (1, 20), True)},
    },
    "entitlement_has_owner_and_cost": {
        "subject": "entitlement",
        "scope": ("tier", "risk", "service", "entitlement"),
        "params": {},
    },
    "sod_pairs": {
        "subject": "user",
        "scope": ("worker_type",),
        "params": {"pairs": ("pairs", None, True)},
    },
}
STANDARD_FIELDS = ("id", "title", "description", "severity", "owner", "scope", "check")
REQUIRED_FIELDS = ("id", "title", "severity", "owner", "check")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
GLOB_RE = re.compile(r"^[A-Za-z0-9_*?-]{1,80}$")
ENTITLEMENT_REF_RE = re.compile(r"^[A-Za-z0-9_-]+/[A-Za-z0-9_-]+$")
MAX_STANDARDS = 500


@dataclass(frozen=True)
class Rule:
    """One standard, normalised (what the engine and the request check evaluate)."""

    key: str
    title: str
    severity: str
    owner: str
    kind: str
    scope: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    description: str = ""

    @property
    def subject(self) -> str:
        return KINDS[self.kind]["subject"]

    def comparable(self) -> dict:
        return {
            "title": self.title,
            "description": self.description,
            "severity": self.severity,
            "owner": self.owner,
            "kind": self.kind,
            "scope": self.scope,
            "params": self.params,
        }

    def as_document(self) -> dict:
        out: dict = {"id": self.key, "title": self.title}
        if self.description:
            out["description"] = self.description
        out["severity"] = self.severity
        out["owner"] = self.owner
        if self.scope:
            out["scope"] = dict(self.scope)
        out["check"] = {"kind": self.kind, **self.params}
        return out

    @classmethod
    def from_model(cls, standard) -> Rule:
        return cls(
            key=standard.key,
            title=standard.title,
            severity=standard.severity,
            owner=standard.owner,
            kind=standard.kind,
            scope=dict(standard.scope or {}),
            params=dict(standard.params or {}),
            description=standard.description,
        )


@dataclass
class DocumentProblem:
    line: int | None
    reason: str
    where: str = ""

    def __str__(self) -> str:
        at = f"line {self.line}" if self.line else "document"
        return f"{at}: {self.where + ': ' if self.where else ''}{self.reason}"


class PolicyDocumentError(ValidationError):
    """The document was refused; ``problems`` lists every error with its line."""

    def __init__(self, problems: list[DocumentProblem]):
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"the standards document was refused: {shown}{more}", field="yaml")


# --- parsing --------------------------------------------------------------------------
def _syntax_problem(exc: yaml.YAMLError) -> DocumentProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    reason = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    return DocumentProblem(line=mark.line + 1 if mark else None, reason=reason)


def _line(node) -> int:
    return node.start_mark.line + 1


def _duplicate_keys(node, problems: list[DocumentProblem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    problems.append(DocumentProblem(_line(key), f"key {key.value!r} appears twice"))
                seen.add(key.value)
            _duplicate_keys(value, problems)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, problems)


class _Lines:
    """Line numbers of a standard's fields, from the composed node tree."""

    def __init__(self, root):
        self.root = root

    def item(self, index: int):
        if isinstance(self.root, yaml.SequenceNode) and index < len(self.root.value):
            return self.root.value[index]
        return None

    def of(self, index: int, *path: str) -> int | None:
        node = self.item(index)
        if node is None:
            return None
        line = _line(node)
        for name in path:
            if not isinstance(node, yaml.MappingNode):
                break
            match = next((v for k, v in node.value if getattr(k, "value", None) == name), None)
            if match is None:
                break
            node, line = match, _line(match)
        return line

    def of_list_item(self, index: int, path: tuple[str, ...], position: int) -> int | None:
        node = self.item(index)
        for name in path:
            if not isinstance(node, yaml.MappingNode):
                return self.of(index, *path)
            node = next((v for k, v in node.value if getattr(k, "value", None) == name), None)
        if isinstance(node, yaml.SequenceNode) and position < len(node.value):
            return _line(node.value[position])
        return self.of(index, *path)


def parse(text: str, *, check_references: bool = True) -> list[Rule]:
    """The rules of ``text``, or PolicyDocumentError naming every problem with its line."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyDocumentError([DocumentProblem(None, "the document is empty")])
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyDocumentError([_syntax_problem(exc)]) from exc
    problems: list[DocumentProblem] = []
    _duplicate_keys(root, problems)
    if not isinstance(data, list):
        raise PolicyDocumentError(
            [
                DocumentProblem(
                    _line(root) if root is not None else None,
                    f"the document must be a list of standards, not {_type_name(data)}",
                )
            ]
        )
    if len(data) > MAX_STANDARDS:
        problems.append(DocumentProblem(None, f"at most {MAX_STANDARDS} standards per document"))
    lines = _Lines(root)
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(data):
        rule = _validate_standard(index, item, lines, problems)
        if rule is None:
            continue
        if rule.key in seen:
            problems.append(
                DocumentProblem(
                    lines.of(index, "id"),
                    f"id {rule.key!r} is used twice (first by standard #{seen[rule.key] + 1})",
                    where=_where(index, rule.key, "id"),
                )
            )
            continue
        seen[rule.key] = index
        rules.append(rule)
    if not problems and check_references:
        _check_references(data, rules, lines, problems)
    if problems:
        raise PolicyDocumentError(problems)
    return rules


def _type_name(value) -> str:
    if value is None:
        return "empty"
    return {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _where(index: int, key: str | None, name: str) -> str:
    label = f"standard #{index + 1}" + (f" ({key})" if key else "")
    return f"{label}, field {name}"


def _validate_standard(index, item, lines: _Lines, problems) -> Rule | None:
    before = len(problems)
    if not isinstance(item, dict):
        problems.append(
            DocumentProblem(
                lines.of(index),
                f"a standard must be a mapping, not {_type_name(item)}",
                where=f"standard #{index + 1}",
            )
        )
        return None
    key = item.get("id") if isinstance(item.get("id"), str) else None

    def problem(name: str, reason: str, *path: str) -> None:
        problems.append(
            DocumentProblem(lines.of(index, *(path or (name,))), reason, _where(index, key, name))
        )

    for name in item:
        if name not in STANDARD_FIELDS:
            problem(str(name), f"unknown field; allowed: {', '.join(STANDARD_FIELDS)}")
    for name in REQUIRED_FIELDS:
        if name not in item:
            problems.append(
                DocumentProblem(lines.of(index), "missing required field", _where(index, key, name))
            )
    if "id" in item and (not isinstance(item["id"], str) or not ID_RE.match(item["id"])):
        problem("id", "must be a slug: lower-case letters, digits, - and _ (at most 80 characters)")
    for name, limit in (("title", 200), ("description", 2000)):
        if name in item and (
            not isinstance(item[name], str) or not item[name].strip() or len(item[name]) > limit
        ):
            problem(name, f"must be non-empty text of at most {limit} characters")
    if "severity" in item and item["severity"] not in SEVERITIES:
        problem("severity", f"must be one of {', '.join(SEVERITIES)}, not {item['severity']!r}")
    if "owner" in item and (
        not isinstance(item["owner"], str)
        or not (item["owner"] == SERVICE_OWNER or ID_RE.match(item["owner"]))
    ):
        problem("owner", f'must be a team slug or "{SERVICE_OWNER}"')
    kind = None
    params: dict = {}
    check = item.get("check")
    if "check" in item:
        if not isinstance(check, dict):
            problem("check", f"must be a mapping with a kind, not {_type_name(check)}")
        elif "kind" not in check:
            problem("check.kind", "missing required field", "check")
        elif check["kind"] not in KINDS:
            problem(
                "check.kind",
                f"unknown kind {check['kind']!r}; known kinds: {', '.join(KINDS)}",
                "check",
                "kind",
            )
        else:
            kind = check["kind"]
            params = _validate_params(
                kind, check, lambda n, r: problem(f"check.{n}", r, "check", n)
            )
            for pos, bad in _pair_positions(kind, check):
                problems.append(
                    DocumentProblem(
                        lines.of_list_item(index, ("check", "pairs"), pos),
                        bad,
                        _where(index, key, f"check.pairs[{pos}]"),
                    )
                )
    scope = _validate_scope(
        kind,
        item.get("scope", {}),
        lambda n, r: problem(
            f"scope.{n}" if n else "scope", r, *(("scope", n) if n else ("scope",))
        ),
    )
    if len(problems) != before or kind is None:
        return None
    return Rule(
        key=item["id"],
        title=item["title"].strip(),
        description=(item.get("description") or "").strip(),
        severity=item["severity"],
        owner=item["owner"],
        kind=kind,
        scope=scope,
        params=params,
    )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_params(kind: str, check: dict, problem) -> dict:
    spec = KINDS[kind]["params"]
    out: dict = {}
    for name in check:
        if name != "kind" and name not in spec:
            allowed = ", ".join(spec) or "none"
            problem(str(name), f"unknown setting for {kind}; allowed: {allowed}")
    for name, (typ, arg, required) in spec.items():
        if name not in check or check[name] is None:
            if required:
                problem(name, f"missing required setting of {kind}")
            continue
        value = check[name]
        if typ == "int":
            low, high = arg
            if not _is_int(value) or not low <= value <= high:
                problem(name, f"must be a whole number from {low} to {high}, not {value!r}")
                continue
        elif typ == "choice":
            if value not in arg:
                problem(name, f"must be one of {', '.join(arg)}, not {value!r}")
                continue
        elif typ == "pairs":
            if not isinstance(value, list) or not value:
                problem(
                    name,
                    "must be a non-empty list of [service/entitlement, service/entitlement] pairs",
                )
                continue
            if any(bad for _, bad in _pair_positions(kind, check)):
                continue
            value = [sorted(pair) for pair in value]
            value = sorted({tuple(p) for p in value})
            value = [list(p) for p in value]
        out[name] = value
    return out


def _pair_positions(kind: str, check: dict) -> list[tuple[int, str]]:
    """Problems of single SoD pairs, with their position (reported with the pair's line)."""
    if kind != "sod_pairs" or not isinstance(check.get("pairs"), list):
        return []
    out = []
    for pos, pair in enumerate(check["pairs"]):
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(p, str) and ENTITLEMENT_REF_RE.match(p) for p in pair)
        ):
            out.append((pos, "a pair is two entitlements written service-slug/entitlement-slug"))
        elif pair[0] == pair[1]:
            out.append((pos, f"a pair needs two different entitlements, not {pair[0]} twice"))
    return out


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _validate_scope(kind: str | None, scope, problem) -> dict:
    if scope is None:
        return {}
    if not isinstance(scope, dict):
        problem("", f"must be a mapping of selectors, not {_type_name(scope)}")
        return {}
    allowed = KINDS[kind]["scope"] if kind else GRANT_SCOPE
    out: dict = {}
    for name, raw in scope.items():
        if name not in GRANT_SCOPE:
            problem(str(name), f"unknown selector; selectors: {', '.join(GRANT_SCOPE)}")
            continue
        if kind and name not in allowed:
            problem(name, f"does not apply to {kind}; it takes: {', '.join(allowed) or 'none'}")
            continue
        values = _as_list(raw)
        if not values:
            problem(name, "must not be empty")
            continue
        if name == "tier":
            if not all(_is_int(v) and 0 <= v <= 3 for v in values):
                problem(name, f"tiers are whole numbers 0 to 3, not {raw!r}")
                continue
            out[name] = sorted(set(values))
        elif name == "risk":
            if not all(v in RISKS for v in values):
                problem(name, f"risks are {', '.join(RISKS)}, not {raw!r}")
                continue
            out[name] = sorted(set(values), key=RISKS.index)
        elif name == "worker_type":
            if not all(v in WORKER_TYPES for v in values):
                problem(name, f"worker types are {', '.join(WORKER_TYPES)}, not {raw!r}")
                continue
            out[name] = sorted(set(values))
        else:
            if not all(isinstance(v, str) and GLOB_RE.match(v) for v in values):
                problem(name, f"slug patterns use letters, digits, -, _, * and ?, not {raw!r}")
                continue
            out[name] = sorted(set(values))
    return out


def _check_references(data, rules: list[Rule], lines: _Lines, problems) -> None:
    """Owner teams and SoD entitlements must exist (a standard that names nothing would
    silently never apply)."""
    from accounts.models import Team

    index_of = {item["id"]: i for i, item in enumerate(data)}
    owners = {r.owner for r in rules if r.owner != SERVICE_OWNER}
    known_teams = set(Team.objects.filter(slug__in=owners).values_list("slug", flat=True))
    refs = {ref for r in rules for pair in r.params.get("pairs", []) for ref in pair}
    known_refs = entitlement_ids(refs)
    for rule in rules:
        index = index_of[rule.key]
        if rule.owner != SERVICE_OWNER and rule.owner not in known_teams:
            problems.append(
                DocumentProblem(
                    lines.of(index, "owner"),
                    f"no team with slug {rule.owner!r}",
                    _where(index, rule.key, "owner"),
                )
            )
        raw_pairs = data[index].get("check", {}).get("pairs") or []
        for pos, pair in enumerate(raw_pairs):
            missing = [ref for ref in pair if ref not in known_refs]
            if missing:
                problems.append(
                    DocumentProblem(
                        lines.of_list_item(index, ("check", "pairs"), pos),
                        "no such entitlement: " + ", ".join(missing),
                        _where(index, rule.key, f"check.pairs[{pos}]"),
                    )
                )


def entitlement_ids(refs) -> dict[str, int]:
    """{"service/entitlement": id} for the names that exist."""
    from django.db.models import Q

    from access.models import Entitlement

    refs = list(refs)
    if not refs:
        return {}
    cond = Q()
    for ref in refs:
        service, slug = ref.split("/", 1)
        cond |= Q(service__slug=service, slug=slug)
    return {
        f"{s}/{e}": pk
        for pk, s, e in Entitlement.objects.filter(cond).values_list("pk", "service__slug", "slug")
    }


# --- writing --------------------------------------------------------------------------
HEADER = (
    "# Tollgate standards (docs/STANDARDS.md). Import with `manage.py standards_import FILE`\n"
    "# or on /standards/edit/. Check kinds: {kinds}\n"
)


def dump(rules: list[Rule], *, version: int | None = None) -> str:
    header = HEADER.format(kinds=", ".join(KINDS))
    if version is not None:
        header += f"# exported from version {version}\n"
    body = yaml.safe_dump(
        [r.as_document() for r in rules], sort_keys=False, allow_unicode=True, width=100
    )
    return header + body
