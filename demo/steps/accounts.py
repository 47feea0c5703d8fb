"""Demo step ``people``: the demo org's people and teams (deterministic; never in production).

The people arrive the way real ones do: as HR directory rows applied through
:func:`accounts.services.directory_import`, so the demo has a real audit trail. Two
directory snapshots are applied on a fresh database, "last month" (everyone active in
their first team) and "today" (a few movers and leavers), so the trail also shows
``user.moved`` and ``user.left``. On a database that already holds the demo only
"today" is applied, which changes nothing. Team leads and platform roles are then set
through their services. Passwords are not a directory attribute; the fixed demo
accounts get theirs here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, timedelta

from django.contrib.auth.hashers import make_password

from accounts.models import PlatformRole, Team, User
from accounts.services import directory_import, membership_set_role, user_set_roles
from demo.tables import load_yaml
from portal.core.actors import DEMO

DEMO_PASSWORD = "tollgate-demo"  # noqa: S105 - the documented demo password
DOMAIN = "tollgate.test"
ACTOR = DEMO

# (slug, parent): three levels, 25 teams (demo/data/teams.yaml).
TEAMS: list[tuple[str, str | None]] = [(t["slug"], t["parent"]) for t in load_yaml("teams.yaml")]
PARENT = dict(TEAMS)
LEAF_TEAMS = [slug for slug, _ in TEAMS if slug not in set(PARENT.values())]


@dataclass(frozen=True)
class DemoAccount:
    email: str
    name: str
    team: str
    roles: tuple[str, ...] = ()
    lead: bool = False


# The fixed demo logins, one per persona (demo/data/accounts.yaml).
DEMO_ACCOUNTS = [
    DemoAccount(
        f"{a['login']}@{DOMAIN}",
        a["name"],
        a["team"],
        roles=tuple(PlatformRole(role) for role in a.get("roles", ())),
        lead=bool(a.get("lead", False)),
    )
    for a in load_yaml("accounts.yaml")
]
DEMO_EMAILS = [a.email for a in DEMO_ACCOUNTS]

_NAMES = load_yaml("names.yaml")
FIRST_NAMES: list[str] = _NAMES["first"]
LAST_NAMES: list[str] = _NAMES["last"]


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    team: str
    manager: str | None
    worker_type: str
    start: date
    end: date | None
    status: str = "active"

    def row(self) -> dict[str, str]:
        return {
            "email": self.email,
            "name": self.name,
            "team": self.team,
            "parent_team": PARENT[self.team] or "",
            "manager_email": self.manager or "",
            "worker_type": self.worker_type,
            "status": self.status,
            "start_date": self.start.isoformat(),
            "end_date": self.end.isoformat() if self.end else "",
        }


def _start_date(rng: random.Random) -> date:
    return date(2015, 1, 5) + timedelta(days=rng.randrange(0, 11 * 365))


def build_directory(rng: random.Random) -> tuple[list[Person], list[Person], dict[str, str]]:
    """Two directory snapshots (last month, today) and the lead of each team.

    Deterministic for a given ``rng`` seed and independent of today's date.
    """
    used: set[str] = set(DEMO_EMAILS)

    def new_name() -> tuple[str, str]:
        while True:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{first}.{last}@{DOMAIN}".lower()
            n = 2
            while email in used:
                email = f"{first}.{last}{n}@{DOMAIN}".lower()
                n += 1
            used.add(email)
            return email, f"{first} {last}"

    leads: dict[str, str] = {}
    lead_names: dict[str, str] = {}
    fixed = {a.team: a for a in DEMO_ACCOUNTS if a.lead}
    for slug, _ in TEAMS:
        if slug in fixed:
            leads[slug], lead_names[slug] = fixed[slug].email, fixed[slug].name
        else:
            leads[slug], lead_names[slug] = new_name()
    people: list[Person] = []
    for slug, parent in TEAMS:
        people.append(
            Person(
                email=leads[slug],
                name=lead_names[slug],
                team=slug,
                manager=leads[parent] if parent else None,
                worker_type="employee",
                start=_start_date(rng),
                end=None,
            )
        )
    for account in DEMO_ACCOUNTS:
        if account.lead:
            continue
        people.append(
            Person(
                email=account.email,
                name=account.name,
                team=account.team,
                manager=leads[account.team],
                worker_type="employee",
                start=_start_date(rng),
                end=None,
            )
        )
    members: list[Person] = []
    for slug in LEAF_TEAMS:
        for _ in range(rng.randint(13, 19)):
            email, name = new_name()
            contractor = rng.random() < 0.1
            start = _start_date(rng)
            members.append(
                Person(
                    email=email,
                    name=name,
                    team=slug,
                    manager=leads[slug],
                    worker_type="contractor" if contractor else "employee",
                    start=start,
                    end=date(2027, 1, 1) + timedelta(days=rng.randrange(0, 365))
                    if contractor
                    else None,
                )
            )
    last_month = people + members

    # Today: five people left, three moved to another team.
    chosen = rng.sample(range(len(members)), 8)
    today_members = list(members)
    for i in chosen[:5]:
        m = today_members[i]
        today_members[i] = replace(
            m, status="leaver", end=date(2026, 10, 1) + timedelta(days=rng.randrange(0, 30))
        )
    for i in chosen[5:]:
        m = today_members[i]
        target = rng.choice([t for t in LEAF_TEAMS if t != m.team])
        today_members[i] = replace(m, team=target, manager=leads[target])
    today = people + today_members
    return last_month, today, leads


def seed_people(*, stdout, rng: random.Random) -> None:
    last_month, today, leads = build_directory(rng)
    fresh = not User.objects.filter(email=DEMO_ACCOUNTS[0].email).exists()
    if fresh:
        result = directory_import(
            rows=[p.row() for p in last_month],
            full=False,
            dry_run=False,
            actor=ACTOR,
            source="demo-directory-last-month",
        )
        stdout.write(f"people (last month's directory): {result.summary()}")
    result = directory_import(
        rows=[p.row() for p in today],
        full=False,  # leavers are explicit rows; --full would also retire non-demo accounts
        dry_run=False,
        actor=ACTOR,
        source="demo-directory-today",
    )
    stdout.write(f"people (today's directory): {result.summary()}")

    teams = {team.slug: team for team in Team.objects.filter(slug__in=leads)}
    users = {u.email: u for u in User.objects.filter(email__in=[*leads.values(), *DEMO_EMAILS])}
    for slug, email in leads.items():
        membership_set_role(
            actor=ACTOR, team=teams[slug], user=users[email], role="lead", reason="demo team lead"
        )
    # One hash of the (public) demo password for every demo login: hashing is slow on purpose
    # (about 0.3 s each), and the demo has no secret to keep.
    hashed = make_password(DEMO_PASSWORD)
    for account in DEMO_ACCOUNTS:
        user = users[account.email]
        user_set_roles(actor=ACTOR, user=user, roles=list(account.roles), reason="demo roles")
        if not user.has_usable_password():
            user.password = hashed
            user.save(update_fields=["password"])
    stdout.write(
        f"demo logins (password {DEMO_PASSWORD}): " + ", ".join(a.email for a in DEMO_ACCOUNTS)
    )
