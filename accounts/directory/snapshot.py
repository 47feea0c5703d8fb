"""The directory as it is now, and the plan of a change against it (read-only).

Both the file import and SCIM pushes plan here and apply in ``accounts.services``: a snapshot
of the people and teams a change names (with their manager chains and parent teams, or the
whole directory for a full import), validated rows, and the plan the import applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection
from django.db.models import F

from accounts import directory
from accounts.models import Membership, Team, User

PERSON_SNAPSHOT_FIELDS = (
    "id",
    "email",
    "name",
    "worker_type",
    "status",
    "start_date",
    "end_date",
    "manager__email",
    "team__slug",
    "is_superuser",
)


@dataclass
class Loaded:
    """The rows a snapshot read, so that the apply in the same transaction (after the same
    lock) does not read them again: teams by slug, and for a scoped push the people named and
    their managers by lower-case e-mail (a full import reads people as values only)."""

    teams: dict[str, Team] = field(default_factory=dict)
    people: dict[str, User] | None = None


def _sql(text: str) -> str:
    """``text`` with {user}, {team} and {membership} replaced by the quoted table names."""
    qn = connection.ops.quote_name
    return text.format(
        user=qn(User._meta.db_table),
        team=qn(Team._meta.db_table),
        membership=qn(Membership._meta.db_table),
    )


# The people named and every manager above them in one statement, whatever the depth of the
# hierarchy (UNION stops at a cycle), each with what the snapshot compares. Raw SQL because it
# runs in every SCIM write and the ORM cannot say WITH RECURSIVE; portable (PostgreSQL and
# SQLite both have it). The placeholder list is filled in by people_closure.
_PEOPLE_SQL = """
WITH RECURSIVE chain(id, manager_id) AS (
    SELECT id, manager_id FROM {user} WHERE lower(email) IN (%s)
    UNION
    SELECT u.id, u.manager_id FROM {user} u JOIN chain c ON u.id = c.manager_id
)
SELECT u.*, m.email AS snapshot_manager_email, t.slug AS snapshot_team_slug,
       (SELECT h.role FROM {membership} h WHERE h.user_id = u.id AND h.team_id = u.team_id)
           AS snapshot_home_role
FROM chain c
JOIN {user} u ON u.id = c.id
LEFT JOIN {user} m ON m.id = u.manager_id
LEFT JOIN {team} t ON t.id = u.team_id
"""

_TEAMS_SQL = """
SELECT t.*, p.slug AS parent_slug
FROM {team} t LEFT JOIN {team} p ON p.id = t.parent_id
WHERE t.slug IN (%s)
"""


def _placeholders(values) -> str:
    return ", ".join(["%s"] * len(values))


def people_closure(emails: set[str]) -> list[User]:
    """The people of ``emails`` and every manager above them (manager chains are what
    validation walks for cycles), in one query whatever the depth, each with
    ``snapshot_manager_email``, ``snapshot_team_slug`` and ``snapshot_home_role`` (the role of
    the membership in their home team, None when absent)."""
    wanted = sorted({e.lower() for e in emails if e})
    if not wanted:
        return []
    sql = _sql(_PEOPLE_SQL) % _placeholders(wanted)
    return list(User.objects.raw(sql, wanted))


def teams_closure(slugs: set[str], *, with_ancestors: bool) -> list[Team]:
    """The teams named (``parent_slug`` set), and their ancestors when a row declares a parent
    (cycles are looked for along that chain)."""
    found: list[Team] = []
    seen: set[str] = set()
    todo = set(slugs)
    while todo:
        seen |= todo
        ordered = sorted(todo)
        level = list(Team.objects.raw(_sql(_TEAMS_SQL) % _placeholders(ordered), ordered))
        found.extend(level)
        parents: set[str] = {p for t in level if (p := getattr(t, "parent_slug", None))}
        todo = parents - seen if with_ancestors else set()
    return found


def directory_snapshot(
    emails: set[str] | None = None,
    team_slugs: set[str] | None = None,
    team_chain: bool = True,
    loaded: Loaded | None = None,
):
    """People and teams as Tollgate holds them. ``emails`` (a partial push: no ``full``
    leavers) limits the people to those named and their manager chains, and ``team_slugs``
    the teams to those named (with their ancestors when a row declares a parent), which is
    all that validation and planning read of a partial push; otherwise everything.
    ``loaded`` is filled with the rows read (see :class:`Loaded`)."""
    team_rows: list[Team]
    if emails is None or team_slugs is None:
        team_rows = list(Team.objects.annotate(parent_slug=F("parent__slug")).order_by())
    else:
        team_rows = teams_closure(team_slugs, with_ancestors=team_chain)
    teams = {
        t.slug: directory.TeamState(t.slug, t.name, getattr(t, "parent_slug", None))
        for t in team_rows
    }
    if loaded is not None:
        loaded.teams.update((t.slug, t) for t in team_rows)
    people = {}
    if emails is None:
        person_rows: list[dict] = list(User.objects.values(*PERSON_SNAPSHOT_FIELDS))
        homes = Membership.objects.filter(team_id=F("user__team_id"))
        home_roles = dict(homes.values_list("user_id", "role"))
        for row in person_rows:
            email = row["email"].lower()
            people[email] = directory.PersonState(
                email=email,
                name=row["name"],
                worker_type=row["worker_type"],
                status=row["status"],
                start_date=row["start_date"],
                end_date=row["end_date"],
                manager_email=(row["manager__email"] or "").lower() or None,
                team_slug=row["team__slug"],
                home_role=home_roles.get(row["id"]),
                is_superuser=row["is_superuser"],
            )
        return people, teams
    found = people_closure(emails)
    if loaded is not None:
        loaded.people = {u.email.lower(): u for u in found}
    for user in found:
        email = user.email.lower()
        people[email] = directory.PersonState(
            email=email,
            name=user.name,
            worker_type=user.worker_type,
            status=user.status,
            start_date=user.start_date,
            end_date=user.end_date,
            manager_email=(getattr(user, "snapshot_manager_email", None) or "").lower() or None,
            team_slug=getattr(user, "snapshot_team_slug", None),
            home_role=getattr(user, "snapshot_home_role", None),
            is_superuser=user.is_superuser,
        )
    return people, teams


def directory_plan(inp, *, full: bool, scoped: bool = False, loaded=None, check=None):
    """Validate ``inp`` against a snapshot and plan it. ``loaded`` (a :class:`Loaded`) is
    filled with the rows read; ``check(people)`` is called with the snapshot of the people
    (before validation) and may raise to refuse the change."""
    emails: set[str] | None = None
    team_slugs: set[str] | None = None
    parents = False
    if scoped and not full:
        emails, team_slugs = set(), set()
        for raw in inp.rows:
            for key in ("email", "manager_email", "team", "parent_team"):
                value = raw.values.get(key)
                if isinstance(value, str) and value.strip():
                    (emails if key.endswith("email") else team_slugs).add(value.strip().lower())
                    parents = parents or key == "parent_team"
    people, teams = directory_snapshot(emails, team_slugs, team_chain=parents, loaded=loaded)
    if check is not None:
        check(people)
    rows, errors = directory.validate(
        inp,
        existing_managers={email: p.manager_email for email, p in people.items()},
        existing_team_parents={slug: t.parent_slug for slug, t in teams.items()},
    )
    if full and not inp.rows:
        # A truncated export must not retire the whole company.
        errors.append(directory.RowError(0, "-", "a full import of a file without rows is refused"))
    if errors:
        raise directory.DirectoryImportError(errors)
    return directory.plan(rows, people=people, teams=teams, full=full)


class _Unset:
    """Marks "not given" (keep as is), as opposed to None ("no parent")."""


UNSET = _Unset()


def team_cycle(team, parent) -> bool:

    seen = set()
    current = parent
    while current is not None and current.pk not in seen:
        if current.pk == team.pk:
            return True
        seen.add(current.pk)
        current = Team.objects.filter(pk=current.parent_id).first() if current.parent_id else None
    return False
