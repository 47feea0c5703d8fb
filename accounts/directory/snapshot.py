"""The directory as it is now, and the plan of a change against it (read-only).

Both the file import and SCIM pushes plan here and apply in ``accounts.services``: a snapshot
of the people and teams a change names (with their manager chains and parent teams, or the
whole directory for a full import), validated rows, and the plan the import applies.
"""

from __future__ import annotations

from django.db.models import F
from django.db.models.functions import Lower

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


def people_closure(emails: set[str]) -> list[dict]:
    """The snapshot rows of ``emails`` and of every manager above them (manager chains are
    what validation walks for cycles); a few queries, one per level of the hierarchy."""
    rows: list[dict] = []
    seen: set[str] = set()
    todo = {e.lower() for e in emails if e}
    while todo:
        seen |= todo
        level = list(
            User.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=todo)
            .values(*PERSON_SNAPSHOT_FIELDS)
        )
        rows.extend(level)
        todo = {(r["manager__email"] or "").lower() for r in level} - seen - {""}
    return rows


def teams_closure(slugs: set[str], *, with_ancestors: bool) -> list[tuple]:
    """(slug, name, parent slug) of the teams named, and of their ancestors when a row
    declares a parent (cycles are looked for along that chain)."""
    rows: list[tuple] = []
    seen: set[str] = set()
    todo = set(slugs)
    while todo:
        seen |= todo
        level = list(Team.objects.filter(slug__in=todo).values_list("slug", "name", "parent__slug"))
        rows.extend(level)
        todo = {parent for _, _, parent in level if parent} - seen if with_ancestors else set()
    return rows


def directory_snapshot(
    emails: set[str] | None = None,
    team_slugs: set[str] | None = None,
    team_chain: bool = True,
):
    """People and teams as Tollgate holds them. ``emails`` (a partial push: no ``full``
    leavers) limits the people to those named and their manager chains, and ``team_slugs``
    the teams to those named (with their ancestors when a row declares a parent), which is
    all that validation and planning read of a partial push; otherwise everything."""
    if emails is None or team_slugs is None:
        team_rows = list(Team.objects.values_list("slug", "name", "parent__slug"))
    else:
        team_rows = teams_closure(team_slugs, with_ancestors=team_chain)
    teams = {slug: directory.TeamState(slug, name, parent) for slug, name, parent in team_rows}
    if emails is None:
        person_rows: list[dict] = list(User.objects.values(*PERSON_SNAPSHOT_FIELDS))
        homes = Membership.objects.filter(team_id=F("user__team_id"))
    else:
        person_rows = people_closure(emails)
        homes = Membership.objects.filter(
            team_id=F("user__team_id"), user_id__in=[r["id"] for r in person_rows]
        )
    home_roles = dict(homes.values_list("user_id", "role"))
    people = {}
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


def directory_plan(inp, *, full: bool, scoped: bool = False):
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
    people, teams = directory_snapshot(emails, team_slugs, team_chain=parents)
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
