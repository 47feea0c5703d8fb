"""SCIM representations of people (Users) and teams (Groups), ETags and attribute projection."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime

from django.utils import timezone

from . import constants


def _stamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return timezone.localtime(value, UTC).isoformat().replace("+00:00", "Z")


def etag_of(doc: dict) -> str:
    """A weak ETag over the whole representation (meta.version excluded), so any change,
    made through SCIM or through the directory import, gives a new version."""
    body = {k: v for k, v in doc.items() if k != "meta"}
    body["meta"] = {k: v for k, v in doc.get("meta", {}).items() if k != "version"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f'W/"{digest[:20]}"'


def _split_name(name: str) -> tuple[str, str]:
    parts = name.split()
    if len(parts) < 2:
        return name, ""
    return " ".join(parts[:-1]), parts[-1]


def user_doc(user, *, base: str) -> dict:
    """One person as a SCIM User (core + enterprise extension). ``user`` comes from
    ``selectors.users()`` (team, manager and the SCIM row joined, timestamps annotated)."""
    scim = getattr(user, "_scim_row", None)
    given, family = _split_name(user.name or "")
    location = f"{base}/Users/{user.pk}"
    enterprise: dict = {}
    if user.team_id is not None:
        enterprise["department"] = user.team.name
    if user.manager_id is not None:
        enterprise["manager"] = {
            "value": str(user.manager_id),
            "$ref": f"{base}/Users/{user.manager_id}",
            "displayName": user.manager.name or user.manager.email,
        }
    if scim is not None and scim.employee_number:
        enterprise["employeeNumber"] = scim.employee_number
    if scim is not None and scim.cost_center:
        enterprise["costCenter"] = scim.cost_center
    doc: dict = {
        "schemas": [constants.USER, constants.ENTERPRISE],
        "id": str(user.pk),
        "userName": user.email,
        "name": {"formatted": user.name, "givenName": given, "familyName": family},
        "displayName": user.name or user.email,
        "emails": [{"value": user.email, "type": "work", "primary": True}],
        "active": bool(user.is_active),
        "userType": user.worker_type,
        constants.ENTERPRISE: enterprise,
        "meta": {
            "resourceType": "User",
            "created": _stamp(user.scim_created),
            "lastModified": _stamp(user.scim_last_modified),
            "location": location,
        },
    }
    if scim is not None and scim.external_id:
        doc["externalId"] = scim.external_id
    groups = getattr(user, "_scim_groups", None)
    if groups is not None:
        doc["groups"] = [
            {"value": str(team_id), "$ref": f"{base}/Groups/{team_id}", "display": name}
            for team_id, name in groups
        ]
    doc["meta"]["version"] = etag_of(doc)
    return doc


def group_doc(team, *, base: str, members: Iterable[tuple[int, str, str]]) -> dict:
    """One team as a SCIM Group; ``members`` are (user id, name, e-mail) of its memberships."""
    scim = getattr(team, "_scim_row", None)
    doc: dict = {
        "schemas": [constants.GROUP, constants.TOLLGATE_GROUP],
        "id": str(team.pk),
        "displayName": team.name,
        "members": [
            {
                "value": str(uid),
                "$ref": f"{base}/Users/{uid}",
                "display": name or email,
                "type": "User",
            }
            for uid, name, email in members
        ],
        constants.TOLLGATE_GROUP: {"slug": team.slug},
        "meta": {
            "resourceType": "Group",
            "created": _stamp(team.scim_created),
            "lastModified": _stamp(team.scim_last_modified),
            "location": f"{base}/Groups/{team.pk}",
        },
    }
    if team.parent_id is not None:
        doc[constants.TOLLGATE_GROUP]["parent"] = {
            "value": str(team.parent_id),
            "$ref": f"{base}/Groups/{team.parent_id}",
            "display": team.parent.name,
        }
    if scim is not None and scim.external_id:
        doc["externalId"] = scim.external_id
    doc["meta"]["version"] = etag_of(doc)
    return doc


# --- attributes / excludedAttributes (RFC 7644 section 3.4.2.5) ---------------------------

ALWAYS = {"id", "schemas"}


def _parse_list(value: str | None, core_uri: str) -> list[tuple[str, str | None]] | None:
    """``"userName,name.givenName,urn:…:User:manager"`` -> [(top-level key, sub or None)]."""
    if not value:
        return None
    out: list[tuple[str, str | None]] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        if item.lower().startswith("urn:"):
            uri, _, rest = item.rpartition(":")
            if uri.lower() == core_uri.lower():
                item = rest
            elif "." not in rest and rest and uri:
                out.append((uri, rest))
                continue
            else:
                out.append((item, None))  # a whole extension
                continue
        attr, _, sub = item.partition(".")
        out.append((attr, sub or None))
    return out


def project(doc: dict, *, attributes: str | None, excluded: str | None, core_uri: str) -> dict:
    """Keep only ``attributes`` (plus id and schemas), or drop ``excluded`` ones."""
    wanted = _parse_list(attributes, core_uri)
    if wanted is not None:
        out: dict = {}
        for key, value in doc.items():
            subs = [s for k, s in wanted if k.lower() == key.lower()]
            if key in ALWAYS or subs and None in subs:
                out[key] = value
            elif subs and isinstance(value, dict):
                picked = {
                    k: v for k, v in value.items() if k.lower() in {s.lower() for s in subs if s}
                }
                if picked:
                    out[key] = picked
            elif subs and isinstance(value, list):
                lowered = {s.lower() for s in subs if s}
                out[key] = [
                    {k: v for k, v in item.items() if k.lower() in lowered}
                    for item in value
                    if isinstance(item, dict)
                ]
        return out
    dropped = _parse_list(excluded, core_uri)
    if dropped is None:
        return doc
    out = dict(doc)
    for key, sub in dropped:
        for have in list(out):
            if have.lower() != key.lower() or have in ALWAYS:
                continue
            if sub is None:
                del out[have]
            elif isinstance(out[have], dict):
                out[have] = {k: v for k, v in out[have].items() if k.lower() != sub.lower()}
    return out
