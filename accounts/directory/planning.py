"""The diff of validated directory rows against a snapshot of what Tollgate holds: the plan
that ``accounts.services`` applies in one transaction, and the result it reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from .validation import DirectoryRow, team_name_from_slug


@dataclass(frozen=True)
class PersonState:
    """What Tollgate holds about one person (a snapshot taken by the service)."""

    email: str
    name: str
    worker_type: str
    status: str
    start_date: date | None
    end_date: date | None
    manager_email: str | None
    team_slug: str | None
    home_role: str | None  # role of the membership in the home team, None when absent
    is_superuser: bool = False


@dataclass(frozen=True)
class TeamState:
    slug: str
    name: str
    parent_slug: str | None


@dataclass
class TeamCreate:
    slug: str
    name: str
    parent: str | None


@dataclass
class TeamReparent:
    slug: str
    old_parent: str | None
    new_parent: str | None


@dataclass
class PersonCreate:
    row: DirectoryRow


@dataclass
class PersonChange:
    email: str
    row: DirectoryRow | None
    fields: dict[str, tuple[object, object]] = field(default_factory=dict)
    move: tuple[str | None, str] | None = None
    add_home_membership: bool = False  # home membership missing although the team did not change
    rejoin: bool = False
    leave: bool = False
    leave_reason: str = ""

    @property
    def empty(self) -> bool:
        return not (
            self.fields or self.move or self.add_home_membership or self.rejoin or self.leave
        )


@dataclass
class DirectoryPlan:
    teams_created: list[TeamCreate] = field(default_factory=list)
    teams_reparented: list[TeamReparent] = field(default_factory=list)
    people_created: list[PersonCreate] = field(default_factory=list)
    people_changed: list[PersonChange] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        changed = self.people_changed
        return {
            "teams_created": len(self.teams_created),
            "teams_updated": len(self.teams_reparented),
            "created": len(self.people_created),
            "updated": sum(1 for c in changed if c.fields),
            "moved": sum(1 for c in changed if c.move),
            "memberships_added": sum(1 for c in changed if c.add_home_membership),
            "rejoined": sum(1 for c in changed if c.rejoin),
            "left": sum(1 for c in changed if c.leave),
        }

    @property
    def changed(self) -> bool:
        return any(self.counts().values())

    def diff_lines(self) -> list[str]:
        def show(value: object) -> str:
            if value is None or value == "":
                return "-"
            return value.isoformat() if isinstance(value, date) else str(value)

        lines: list[str] = []
        for t in self.teams_created:
            lines.append(f"+ team {t.slug} (name {t.name!r}, parent {show(t.parent)})")
        for tr in self.teams_reparented:
            lines.append(f"~ team {tr.slug}: parent {show(tr.old_parent)} -> {show(tr.new_parent)}")
        for p in self.people_created:
            r = p.row
            lines.append(
                f"+ person {r.email}: name {r.name!r}, team {r.team}, manager "
                f"{show(r.manager_email)}, {r.worker_type}, {r.status}, "
                f"start {show(r.start_date)}, end {show(r.end_date)}"
            )
        for c in self.people_changed:
            if c.fields:
                parts = "; ".join(
                    f"{name} {show(old)} -> {show(new)}" for name, (old, new) in c.fields.items()
                )
                lines.append(f"~ person {c.email}: {parts}")
            if c.move:
                lines.append(f"> move {c.email}: team {show(c.move[0])} -> {c.move[1]}")
            if c.add_home_membership:
                # only set for a person in the file, so the row is there
                lines.append(f"= membership {c.email}: added to home team {c.row.team}")  # type: ignore[union-attr]
            if c.rejoin:
                lines.append(f"< rejoin {c.email}: leaver -> active")
            if c.leave:
                lines.append(f"- leaver {c.email}: {c.leave_reason}")
        return lines


def _ordered_new_teams(new: dict[str, str | None]) -> list[str]:
    """New team slugs, every parent before its children (no cycles: validated before)."""
    ordered: list[str] = []
    placed: set[str] = set()
    for slug in new:
        chain = []
        current: str | None = slug
        while current is not None and current in new and current not in placed:
            chain.append(current)
            current = new[current]
        for item in reversed(chain):
            ordered.append(item)
            placed.add(item)
    return ordered


def plan(
    rows: Sequence[DirectoryRow],
    *,
    people: Mapping[str, PersonState],
    teams: Mapping[str, TeamState],
    full: bool,
) -> DirectoryPlan:
    """What applying validated ``rows`` to the snapshot would change (nothing, the second time).

    Rules: a team's parent is changed only when a row names one (an empty
    ``parent_team`` means "not stated"); new teams are named from their slug; an
    empty ``end_date`` on a leaver keeps the recorded leaving date.
    """
    result = DirectoryPlan()

    # Teams.
    declared: dict[str, str] = {}
    mentioned: list[str] = []
    for row in rows:
        for slug in (row.parent_team, row.team):
            if slug and slug not in mentioned:
                mentioned.append(slug)
        if row.parent_team:
            declared.setdefault(row.team, row.parent_team)
    new = {slug: declared.get(slug) for slug in mentioned if slug not in teams}
    for slug in _ordered_new_teams(new):
        result.teams_created.append(TeamCreate(slug, team_name_from_slug(slug), new[slug]))
    for slug, parent in declared.items():
        if slug in teams and teams[slug].parent_slug != parent:
            result.teams_reparented.append(TeamReparent(slug, teams[slug].parent_slug, parent))

    # People in the file.
    for row in rows:
        state = people.get(row.email)
        if state is None:
            result.people_created.append(PersonCreate(row))
            continue
        change = PersonChange(email=row.email, row=row)
        wanted = {
            "name": row.name,
            "worker_type": row.worker_type,
            "start_date": row.start_date,
            "end_date": row.end_date,
            "manager": row.manager_email,
        }
        held = {
            "name": state.name,
            "worker_type": state.worker_type,
            "start_date": state.start_date,
            "end_date": state.end_date,
            "manager": state.manager_email,
        }
        if row.status == "leaver" and row.end_date is None:
            wanted.pop("end_date")  # unknown in the file: keep the recorded leaving date
        leaving = row.status == "leaver" and state.status != "leaver"
        rejoining = row.status == "active" and state.status == "leaver"
        if leaving or rejoining:
            wanted.pop("end_date", None)  # recorded by the leave/rejoin event itself
        for name, value in wanted.items():
            if held[name] != value:
                change.fields[name] = (held[name], value)
        if state.team_slug != row.team:
            change.move = (state.team_slug, row.team)
        elif state.home_role is None and row.status == "active":
            change.add_home_membership = True
        change.rejoin = rejoining
        if leaving:
            change.leave = True
            change.leave_reason = "status leaver in the directory"
        if not change.empty:
            result.people_changed.append(change)

    # --full: active people missing from the file leave (local superusers are kept).
    if full:
        in_file = {row.email for row in rows}
        for email in sorted(people):
            state = people[email]
            if email in in_file or state.status != "active" or state.is_superuser:
                continue
            result.people_changed.append(
                PersonChange(
                    email=email,
                    row=None,
                    leave=True,
                    leave_reason="missing from a full directory import",
                )
            )
    return result


@dataclass
class DirectoryImportResult:
    """What an import changed (or, for a dry run, would change)."""

    plan: DirectoryPlan
    rows: int
    dry_run: bool
    held: bool = False  # planned but kept for a person to confirm; nothing was applied

    @property
    def counts(self) -> dict[str, int]:
        return self.plan.counts()

    @property
    def changed(self) -> bool:
        return self.plan.changed

    def diff_lines(self) -> list[str]:
        return self.plan.diff_lines()

    def summary(self) -> str:
        counts = ", ".join(f"{name} {value}" for name, value in self.counts.items())
        verb = "would change" if self.dry_run else "changed"
        head = f"{self.rows} rows read; " + (f"{verb}: {counts}" if self.changed else "no changes")
        return head
