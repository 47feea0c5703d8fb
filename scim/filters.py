"""SCIM filters and paths, parsed by ``scim2-filter-parser``.

A list filter becomes a Django ``Q`` through the library's transpiler, with the attribute map
below; unknown attributes are refused (``invalidFilter``) instead of being dropped. PATCH paths
(``members[value eq "12"]``, ``name.givenName``, ``urn:…:User:manager``) are parsed into the
library's AST, and a value filter is evaluated on the resource's values by walking that AST.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils.dateparse import parse_datetime
from scim2_filter_parser import ast as scim_ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser, SCIMParserError
from scim2_filter_parser.transpilers.django_q_object import Transpiler

from . import constants
from .errors import ScimError, invalid_filter, invalid_path

# (attribute, sub-attribute, schema URI) -> ORM path. Keys are matched lower-cased.
_USER_CORE = {
    ("id", None): "pk",
    ("userName", None): "email",
    ("externalId", None): "scim__external_id",
    ("displayName", None): "name",
    ("name", "formatted"): "name",
    ("emails", None): "email",
    ("emails", "value"): "email",
    ("active", None): "is_active",
    ("userType", None): "worker_type",
    ("meta", "lastModified"): "scim_last_modified",
    ("meta", "created"): "scim_created",
}
_ENTERPRISE = {
    ("department", None): "team__name",
    ("manager", None): "manager_id",
    ("manager", "value"): "manager_id",
    ("employeeNumber", None): "scim__employee_number",
    ("costCenter", None): "scim__cost_center",
}
_GROUP_CORE = {
    ("id", None): "pk",
    ("displayName", None): "name",
    ("externalId", None): "scim__external_id",
    ("members", None): "memberships__user_id",
    ("members", "value"): "memberships__user_id",
    ("meta", "lastModified"): "scim_last_modified",
    ("meta", "created"): "scim_created",
}
_TOLLGATE_GROUP = {("parent", None): "parent_id", ("parent", "value"): "parent_id"}


def _attr_map(core: dict, core_uri: str, extensions: dict[str, dict]) -> dict:
    out: dict[tuple[str, str | None, str | None], str] = {}
    for (attr, sub), target in core.items():
        out[(attr, sub, None)] = target
        out[(attr, sub, core_uri)] = target
    for uri, attrs in extensions.items():
        for (attr, sub), target in attrs.items():
            out[(attr, sub, uri)] = target
    return out


USER_ATTRS = _attr_map(_USER_CORE, constants.USER, {constants.ENTERPRISE: _ENTERPRISE})
GROUP_ATTRS = _attr_map(_GROUP_CORE, constants.GROUP, {constants.TOLLGATE_GROUP: _TOLLGATE_GROUP})
# Stored lower-case (e-mails): eq/ne compare exactly with the lower-cased value (index use).
_LOWERCASE = {"email"}
# Ids and foreign keys: compared exactly, as integers.
_INTEGER = {"pk", "manager_id", "parent_id", "memberships__user_id"}
_DATES = {"scim_last_modified", "scim_created"}
_BOOLEAN = {"is_active"}


class _StrictTranspiler(Transpiler):
    """The library's Q transpiler, refusing unknown attributes and typing the values."""

    def visit_AttrPath(self, node):
        target = super().visit_AttrPath(node)
        if target is None:
            name = node.attr_name if isinstance(node.attr_name, str) else "a value path"
            sub = f".{node.sub_attr.value}" if node.sub_attr else ""
            raise invalid_filter(f"the filter attribute {name}{sub} is not supported")
        return target

    def visit_AttrExpr(self, node):
        if isinstance(node.attr_path.attr_name, scim_ast.Filter):
            return super().visit_AttrExpr(node)
        attr = self.visit(node.attr_path)
        op = node.value.lower()
        value = self.visit(node.comp_value) if node.comp_value else None
        if op == "pr":
            q = Q(**{f"{attr}__isnull": False})
            return q & ~Q(**{attr: ""}) if attr not in _INTEGER | _DATES | _BOOLEAN else q
        if attr in _BOOLEAN:
            if op not in ("eq", "ne") or not isinstance(value, bool):
                raise invalid_filter("active compares with eq/ne and true or false")
            q = Q(**{attr: value})
            return ~q if op == "ne" else q
        if attr in _INTEGER:
            try:
                number = int(str(value))
            except ValueError:
                raise invalid_filter(f"{value!r} is not an id here") from None
            lookup = {"eq": "exact", "ne": "exact", "gt": "gt", "ge": "gte", "lt": "lt"}
            lookup["le"] = "lte"
            if op not in lookup:
                raise invalid_filter(f"ids compare with eq, ne, gt, ge, lt or le, not {op}")
            q = Q(**{f"{attr}__{lookup[op]}": number})
            return ~q if op == "ne" else q
        if attr in _DATES:
            moment = parse_datetime(str(value)) if value is not None else None
            if moment is None:
                raise invalid_filter(f"{value!r} is not a date-time (RFC 3339)")
            value = moment
        elif value is not None and not isinstance(value, str):
            raise invalid_filter(f"{node.attr_path.attr_name} compares with a string")
        if attr in _LOWERCASE and op in ("eq", "ne") and isinstance(value, str):
            q = Q(**{attr: value.lower()})
            return ~q if op == "ne" else q
        lookup = self.lookup_op(op, value)
        if attr in _DATES and lookup == "iexact":
            lookup = "exact"
        q = Q(**{f"{attr}__{lookup}": value})
        return ~q if op == "ne" else q


def _parse(text: str):
    try:
        return SCIMParser().parse(SCIMLexer().tokenize(text))
    except (SCIMParserError, ValueError) as exc:
        raise invalid_filter(f"invalid filter {text!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the lexer raises plain errors on odd input
        raise invalid_filter(f"invalid filter {text!r}: {exc}") from None


def filter_q(text: str, attr_map: dict) -> Q:
    """The ``Q`` of a SCIM filter; ``invalidFilter`` for bad syntax or attributes."""
    tree = _parse(text)
    try:
        q = _StrictTranspiler(attr_map).transpile(tree)
    except ScimError:
        raise
    except (ValueError, NotImplementedError, AttributeError) as exc:
        raise invalid_filter(f"unsupported filter {text!r}: {exc}") from None
    if q is None:
        raise invalid_filter(f"the filter {text!r} names no supported attribute")
    return q


def sort_field(sort_by: str, attr_map: dict) -> str:
    """The ORM field a ``sortBy`` attribute path names; ``invalidValue`` when unsupported."""
    path = parse_attr_path(sort_by)
    if path.value_filter is not None:
        raise ScimError(400, "sortBy takes an attribute path, not a filter", "invalidValue")
    key = (path.attr.lower(), path.sub.lower() if path.sub else None, path.uri)
    target = {(a.lower(), s.lower() if s else None, u): t for (a, s, u), t in attr_map.items()}
    field = target.get(key)
    if field is None:
        raise ScimError(400, f"cannot sort by {sort_by}", "invalidValue")
    return field


# --- PATCH paths -----------------------------------------------------------------------


@dataclass(frozen=True)
class AttrPathRef:
    """A parsed PATCH path: ``[uri:]attr[.sub]`` or ``attr[filter][.sub]``."""

    uri: str | None
    attr: str
    sub: str | None
    value_filter: Any  # the library's Filter node, or None


def parse_attr_path(path: str) -> AttrPathRef:
    text = (path or "").strip()
    if not text:
        raise invalid_path("empty path")
    try:
        tree = SCIMParser().parse(SCIMLexer().tokenize(text + " pr"))
    except Exception as exc:  # noqa: BLE001
        raise invalid_path(f"invalid path {path!r}: {exc}") from None
    expr = getattr(tree, "expr", None)
    if not isinstance(expr, scim_ast.AttrExpr) or tree.negated:
        raise invalid_path(f"invalid path {path!r}")
    node = expr.attr_path
    if isinstance(node.attr_name, scim_ast.Filter):
        namespace = node.attr_name.namespace
        return AttrPathRef(
            uri=namespace.uri,
            attr=namespace.attr_name,
            sub=namespace.sub_attr.value if namespace.sub_attr else None,
            value_filter=node.attr_name.expr,
        )
    return AttrPathRef(
        uri=node.uri,
        attr=node.attr_name,
        sub=node.sub_attr.value if node.sub_attr else None,
        value_filter=None,
    )


def _get(item: dict, name: str) -> Any:
    for key, value in item.items():
        if key.lower() == name.lower():
            return value
    return None


def _compare(op: str, have: Any, want: Any) -> bool:
    if op == "pr":
        return have not in (None, "", [], {})
    if have is None:
        return op == "ne"
    if isinstance(have, bool) or isinstance(want, bool):
        return (have == want) if op == "eq" else (have != want) if op == "ne" else False
    a, b = str(have), str(want)
    stamp_a, stamp_b = parse_datetime(a), parse_datetime(b)
    if isinstance(stamp_a, datetime) and isinstance(stamp_b, datetime):
        a_cmp: Any = stamp_a
        b_cmp: Any = stamp_b
    else:
        a_cmp, b_cmp = a.lower(), b.lower()
    return {
        "eq": lambda: a_cmp == b_cmp,
        "ne": lambda: a_cmp != b_cmp,
        "co": lambda: b_cmp in a_cmp,
        "sw": lambda: a_cmp.startswith(b_cmp),
        "ew": lambda: a_cmp.endswith(b_cmp),
        "gt": lambda: a_cmp > b_cmp,
        "ge": lambda: a_cmp >= b_cmp,
        "lt": lambda: a_cmp < b_cmp,
        "le": lambda: a_cmp <= b_cmp,
    }[op]()


def value_matches(node: Any, item: Any) -> bool:
    """Whether one value of a multi-valued attribute matches a value filter (the AST of
    ``members[value eq "12"]`` and the like: and, or, not, grouping, the ten operators)."""
    if isinstance(node, scim_ast.Filter):
        result = value_matches(node.expr, item)
        return not result if node.negated else result
    if isinstance(node, scim_ast.LogExpr):
        left = value_matches(node.expr1, item)
        if node.op.upper() == "AND":
            return left and value_matches(node.expr2, item)
        return left or value_matches(node.expr2, item)
    if isinstance(node, scim_ast.AttrExpr):
        path = node.attr_path
        if not isinstance(path.attr_name, str):
            raise invalid_path("nested value filters are not supported")
        if not isinstance(item, dict):
            have = item if path.attr_name.lower() == "value" else None
        else:
            have = _get(item, path.attr_name)
            if path.sub_attr is not None:
                have = _get(have, path.sub_attr.value) if isinstance(have, dict) else None
        want = Transpiler.visit_CompValue(node.comp_value) if node.comp_value else None
        return _compare(node.value.lower(), have, want)
    raise invalid_path("unsupported value filter")
