"""PATCH (RFC 7644 section 3.5.2) applied to a resource's SCIM representation.

The endpoint turns the current resource into its SCIM document, applies the operations here
(add, replace, remove; paths with sub-attributes, schema URIs and value filters such as
``members[value eq "12"]``), and hands the result to the same code as a PUT, so a PATCH and the
PUT of the same end state change the same things.
"""

from __future__ import annotations

import copy
from typing import Any

from . import constants
from .errors import invalid_path, invalid_syntax, invalid_value, mutability, no_target
from .filters import parse_attr_path, value_matches

READ_ONLY = {"id", "meta", "schemas"}


def _key(container: dict, name: str) -> str:
    for key in container:
        if key.lower() == name.lower():
            return key
    return name


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _identity(item: Any) -> Any:
    if isinstance(item, dict):
        for key, value in item.items():
            if key.lower() == "value":
                return str(value)
    return None


def _merge_list(current: list, extra: list) -> list:
    seen = {_identity(i) for i in current if _identity(i) is not None}
    out = list(current)
    for item in extra:
        ident = _identity(item)
        if ident is not None and ident in seen:
            continue
        seen.add(ident)
        out.append(item)
    return out


def _container(doc: dict, uri: str | None, core_uri: str) -> dict:
    if uri is None or uri.lower() == core_uri.lower():
        return doc
    key = _key(doc, uri)
    if key not in doc or not isinstance(doc[key], dict):
        doc[key] = {}
    return doc[key]


def _apply(
    doc: dict, op: str, path: str | None, value: Any, core_uri: str, read_only: frozenset[str]
) -> None:
    if path is None:
        if op == "remove":
            raise no_target("a remove operation needs a path")
        if not isinstance(value, dict):
            raise invalid_syntax("an operation without a path takes an object of attributes")
        for name, item in value.items():
            if name.lower().startswith("urn:") and isinstance(item, dict) and ":" in name:
                uri = name
                if uri.lower() == core_uri.lower():
                    _apply(doc, op, None, item, core_uri, read_only)
                    continue
                for sub_name, sub_value in item.items():
                    _apply(doc, op, f"{uri}:{sub_name}", sub_value, core_uri, read_only)
            else:
                _apply(doc, op, name, item, core_uri, read_only)
        return
    ref = parse_attr_path(path)
    if ref.uri is None and ref.attr.lower() in READ_ONLY | read_only:
        raise mutability(f"{ref.attr} is read-only")
    container = _container(doc, ref.uri, core_uri)
    key = _key(container, ref.attr)
    if ref.value_filter is not None:
        items = container.get(key)
        if not isinstance(items, list):
            if op == "remove":
                return
            raise no_target(f"{path}: {ref.attr} has no values to select")
        hits = [i for i, item in enumerate(items) if value_matches(ref.value_filter, item)]
        if op == "add":
            raise invalid_path("add takes a path without a value filter")
        if not hits:
            if op == "remove":
                return
            raise no_target(f"{path} matches no value")
        if op == "remove":
            if ref.sub is None:
                container[key] = [item for i, item in enumerate(items) if i not in hits]
            else:
                for i in hits:
                    if isinstance(items[i], dict):
                        items[i].pop(_key(items[i], ref.sub), None)
            return
        for i in hits:  # replace
            if ref.sub is None:
                items[i] = value
            elif isinstance(items[i], dict):
                items[i][_key(items[i], ref.sub)] = value
        return
    if ref.sub is not None:
        parent = container.get(key)
        if op == "remove":
            if isinstance(parent, dict):
                parent.pop(_key(parent, ref.sub), None)
            return
        if parent is None:
            parent = container[key] = {}
        if isinstance(parent, list):
            for item in parent:
                if isinstance(item, dict):
                    item[_key(item, ref.sub)] = value
            return
        if not isinstance(parent, dict):
            raise invalid_path(f"{ref.attr} has no sub-attributes")
        parent[_key(parent, ref.sub)] = value
        return
    current = container.get(key)
    if op == "remove":
        if value is not None and isinstance(current, list):
            # Entra ID removes members with {"path": "members", "value": [{"value": id}]}.
            gone = {_identity(v) for v in _as_list(value)}
            container[key] = [item for item in current if _identity(item) not in gone]
        else:
            container.pop(key, None)
        return
    if op == "add" and isinstance(current, list):
        container[key] = _merge_list(current, _as_list(value))
    elif op == "add" and current is None and isinstance(value, list):
        container[key] = _merge_list([], value)
    elif isinstance(current, dict) and isinstance(value, dict):
        merged = dict(current)
        merged.update(value)
        container[key] = merged
    else:
        container[key] = value


def apply_patch(
    doc: dict, body: Any, *, core_uri: str, read_only: frozenset[str] = frozenset()
) -> dict:
    """The document after the operations of a PatchOp ``body``; ``doc`` is not changed."""
    if not isinstance(body, dict):
        raise invalid_syntax("the body is not a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or constants.PATCH_OP not in schemas:
        raise invalid_syntax(f"a PATCH body names the schema {constants.PATCH_OP}")
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise invalid_syntax("a PATCH body carries a non-empty Operations list")
    out = copy.deepcopy(doc)
    for number, operation in enumerate(operations, start=1):
        if not isinstance(operation, dict):
            raise invalid_syntax(f"operation {number} is not an object")
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "replace", "remove"):
            raise invalid_value(f"operation {number}: op must be add, replace or remove")
        path = operation.get("path")
        if path is not None and not isinstance(path, str):
            raise invalid_path(f"operation {number}: path must be a string")
        if op != "remove" and "value" not in operation:
            raise invalid_value(f"operation {number}: {op} needs a value")
        _apply(out, op, path or None, operation.get("value"), core_uri, read_only)
    return out
