"""SCIM documents -> what the directory service takes: a directory row for a User, team
parameters for a Group. Pure checks plus look-ups; no writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Team, User

from . import constants
from .errors import invalid_syntax, invalid_value, mutability

# Tollgate owns these: platform roles and grants are never set by an identity provider, and
# people sign in through SSO (no password is kept).
OWNED = {"roles": "platform roles", "entitlements": "grants", "password": "passwords"}
WORKER_TYPES = ("employee", "contractor")


def _get(doc: dict, name: str) -> Any:
    for key, value in doc.items():
        if key.lower() == name.lower():
            return value
    return None


def _has(doc: dict, name: str) -> bool:
    return any(key.lower() == name.lower() for key in doc)


def _text(value: Any, what: str, *, limit: int = 254) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid_value(f"{what} must be a string")
    value = value.strip()
    if len(value) > limit:
        raise invalid_value(f"{what} is longer than {limit} characters")
    return value


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # Entra ID sends "False" in PATCH values
    raise invalid_value(f"{what} must be true or false")


def _check_schemas(doc: dict, core: str) -> None:
    schemas = doc.get("schemas")
    if not isinstance(schemas, list) or core not in schemas:
        raise invalid_syntax(f"schemas must list {core}")
    for name, what in OWNED.items():
        if _has(doc, name):
            raise mutability(f"{name}: {what} are set in Tollgate, never through SCIM")


@dataclass
class UserInput:
    row: dict[str, str]
    extras: dict[str, str] = field(default_factory=dict)


# The teams a department may name and the manager a document names, in one round trip (a
# create has both; an IdP's initial push is thousands of creates).
_LOOKUP_SQL = (
    "SELECT 'team', id, slug, name FROM {team} WHERE upper(name) = upper(%s) OR slug = %s"
    " UNION ALL SELECT 'manager', id, email, '' FROM {user} WHERE id = %s"
)


def _look_up(department: str | None, manager_id: int | None):
    """(teams by pk as (pk, slug, name), manager e-mail or None) for what is given."""
    if department is None:
        if manager_id is None:
            return [], None
        return [], User.objects.filter(pk=manager_id).values_list("email", flat=True).first()
    if manager_id is None:
        found = Team.objects.filter(Q(name__iexact=department) | Q(slug=department.lower()))
        return list(found.order_by("pk").values_list("pk", "slug", "name")), None
    qn = connection.ops.quote_name
    sql = _LOOKUP_SQL.format(team=qn(Team._meta.db_table), user=qn(User._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, [department, department.lower(), manager_id])
        rows = cursor.fetchall()
    teams = sorted((pk, slug, name) for kind, pk, slug, name in rows if kind == "team")
    emails = [slug for kind, _, slug, _ in rows if kind == "manager"]
    return teams, (emails[0] if emails else None)


def _team_slug(department: str, found) -> str:
    """The home team a department names: an existing team by name or slug (``found``, by pk),
    else a new slug."""
    for _, slug, name in found:  # a team of that name first, else the slug
        if name.lower() == department.lower():
            return slug
    if found:
        return found[0][1]
    slug = slugify(department)[:80].strip("-")
    if not slug:
        raise invalid_value(f"department {department!r} does not name a team")
    return slug


def _manager_id(value: Any) -> tuple[int | None, Any, str]:
    """(the User id a manager value names, or None when none is named; the value as sent;
    why it is not an id, or "")."""
    if isinstance(value, dict):
        value = _get(value, "value")
    if value in (None, ""):
        return None, value, ""
    try:
        return int(str(value)), value, ""
    except ValueError:
        return None, value, f"manager {value!r} is not a User id"


def user_input(doc: Any, *, current: User | None, default_team: str) -> UserInput:
    """The directory row a User document describes (``current``: the person it replaces)."""
    if not isinstance(doc, dict):
        raise invalid_syntax("the body is not a JSON object")
    _check_schemas(doc, constants.USER)
    email = _text(_get(doc, "userName"), "userName").lower()
    if not email:
        raise invalid_value("userName (the person's e-mail) is required")
    if current is not None and email != current.email.lower():
        raise mutability(
            "userName is the person's e-mail, the directory's key: it cannot change "
            f"({current.email} -> {email})"
        )
    name_obj = _get(doc, "name")
    name = _text(_get(doc, "displayName"), "displayName", limit=200)
    if not name and isinstance(name_obj, dict):
        name = _text(_get(name_obj, "formatted"), "name.formatted", limit=200)
        if not name:
            given = _text(_get(name_obj, "givenName"), "name.givenName", limit=200)
            family = _text(_get(name_obj, "familyName"), "name.familyName", limit=200)
            name = " ".join(p for p in (given, family) if p)
    name = name or (current.name if current is not None else "") or email
    active_value = _get(doc, "active")
    if active_value is None:
        active = current.is_active if current is not None else True
    else:
        active = _bool(active_value, "active")
    user_type = _get(doc, "userType")
    if user_type in (None, ""):
        worker_type = current.worker_type if current is not None else "employee"
    else:
        worker_type = _text(user_type, "userType").lower()
        if worker_type not in WORKER_TYPES:
            raise invalid_value("userType must be employee or contractor")
    ext = _get(doc, constants.ENTERPRISE)
    ext = ext if isinstance(ext, dict) else {}
    department = _text(_get(ext, "department"), "department", limit=200)
    # PUT replaces: a document without a manager (or a PATCH that removed it) clears it.
    manager_value = _get(ext, "manager") if _has(ext, "manager") else None
    manager_id, manager_sent, manager_problem = _manager_id(manager_value)
    unchanged = bool(
        department
        and current is not None
        and current.team is not None
        and (department.lower() in (current.team.name.lower(), current.team.slug))
    )
    teams_found, manager = _look_up(
        department if department and not unchanged else None, manager_id
    )
    if unchanged:
        team = current.team.slug  # type: ignore[union-attr]  # (team names need not be unique)
    elif department:
        team = _team_slug(department, teams_found)
    elif current is not None and current.team is not None:
        team = current.team.slug
    else:
        team = default_team
    if manager_problem:
        raise invalid_value(manager_problem)
    if manager_id is not None and manager is None:
        raise invalid_value(f"manager {manager_sent!r} is not a known User")
    manager = manager or ""
    today = timezone.localdate()
    start = current.start_date if current is not None and current.start_date else today
    end = current.end_date if current is not None else None
    if active and current is not None and not current.is_active:
        end = None  # a rejoin: the old leaving date no longer holds
    row = {
        "email": email,
        "name": name,
        "team": team,
        "parent_team": "",
        "manager_email": manager,
        "worker_type": worker_type,
        "status": "active" if active else "leaver",
        "start_date": start.isoformat(),
        "end_date": end.isoformat() if end else "",
    }
    extras = {
        "external_id": _text(_get(doc, "externalId"), "externalId"),
        "employee_number": _text(_get(ext, "employeeNumber"), "employeeNumber", limit=64),
        "cost_center": _text(_get(ext, "costCenter"), "costCenter", limit=64),
    }
    return UserInput(row=row, extras=extras)


@dataclass
class GroupInput:
    name: str
    external_id: str
    members: list[int] | None  # None: not stated
    parent: Team | None
    parent_stated: bool


def group_input(doc: Any) -> GroupInput:
    if not isinstance(doc, dict):
        raise invalid_syntax("the body is not a JSON object")
    _check_schemas(doc, constants.GROUP)
    name = _text(_get(doc, "displayName"), "displayName", limit=200)
    if not name:
        raise invalid_value("displayName is required")
    members: list[int] | None = None
    raw_members = _get(doc, "members")
    if raw_members is not None:
        if not isinstance(raw_members, list):
            raise invalid_value("members must be a list")
        members = []
        for item in raw_members:
            value = _get(item, "value") if isinstance(item, dict) else None
            try:
                members.append(int(str(value)))
            except ValueError:
                raise invalid_value(f"member {value!r} is not a User id") from None
        known = set(User.objects.filter(pk__in=members).values_list("pk", flat=True))
        unknown = sorted(set(members) - known)
        if unknown:
            raise invalid_value(f"unknown member(s): {', '.join(map(str, unknown[:10]))}")
    ext = _get(doc, constants.TOLLGATE_GROUP)
    ext = ext if isinstance(ext, dict) else {}
    parent = None
    parent_value = _get(ext, "parent")
    if isinstance(parent_value, dict):
        parent_value = _get(parent_value, "value")
    if parent_value not in (None, ""):
        try:
            parent = Team.objects.filter(pk=int(str(parent_value))).first()
        except ValueError:
            parent = None
        if parent is None:
            raise invalid_value(f"parent {parent_value!r} is not a known Group")
    return GroupInput(
        name=name,
        external_id=_text(_get(doc, "externalId"), "externalId"),
        members=members,
        parent=parent,
        parent_stated=parent is not None,
    )
