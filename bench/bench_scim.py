"""SCIM 2.0 (/scim/v2/) at scale, on PostgreSQL: 100k people and 2,000 teams bulk-loaded.

Creates ``tollgate_bench_scim``, bulk-inserts 2,000 teams and 100,000 people (home memberships,
a manager each), then drives the real endpoint in-process (Django's test client: URL routing,
middleware, token authentication, rate limit, views, the directory service, audit) with a SCIM
client token made by ``scim_client_create``:

* GET /scim/v2/Users?filter=userName eq "…" for 500 random people: p50/p95/p99 (target p95 <= 50 ms)
* an initial push of 10,000 new people by POST /scim/v2/Users (target <= 120 s)
* one PATCH adding 1,000 members to a group (target <= 2 s)

Prints the figures and writes bench/results/bench_scim.json.

    .venv/bin/python bench/bench_scim.py [--keep] [--users N] [--push N] [--db NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _common import drop_database, recreate_database, setup_django, write_results  # noqa: E402

DB_NAME = "tollgate_bench_scim"
TEAMS = 2_000
SEED = 20261125


def load(users: int) -> None:
    """2,000 teams (40 top-level, the rest below them) and ``users`` people, by COPY-speed
    bulk inserts: the setup is not what is measured."""
    from django.db import connection

    from accounts.models import Membership, Team, User

    rng = random.Random(SEED)
    now = "2026-01-01T00:00:00Z"
    tops = [Team(slug=f"div-{i:02d}", name=f"Division {i:02d}") for i in range(40)]
    Team.objects.bulk_create(tops)
    tops = list(Team.objects.order_by("pk"))
    rest = [
        Team(slug=f"team-{i:04d}", name=f"Team {i:04d}", parent=tops[i % len(tops)])
        for i in range(TEAMS - len(tops))
    ]
    Team.objects.bulk_create(rest, batch_size=1000)
    team_ids = list(Team.objects.values_list("pk", flat=True))
    batch: list[User] = []
    for i in range(users):
        batch.append(
            User(
                email=f"person{i:06d}@corp.test",
                name=f"Person {i:06d}",
                team_id=team_ids[i % len(team_ids)],
                start_date=date(2020, 1, 1),
                password="!",  # noqa: S106  (an unusable password)
            )
        )
        if len(batch) == 5000:
            User.objects.bulk_create(batch)
            batch = []
    if batch:
        User.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        # Each person reports to the first person of their team (their lead).
        cursor.execute(
            """
            UPDATE accounts_user u SET manager_id = lead.id
            FROM (SELECT team_id, min(id) AS id FROM accounts_user GROUP BY team_id) lead
            WHERE u.team_id = lead.team_id AND u.id <> lead.id
            """
        )
        cursor.execute(
            "INSERT INTO accounts_membership (team_id, user_id, role, since) "
            "SELECT team_id, id, 'member', %s FROM accounts_user",
            [now],
        )
        cursor.execute("ANALYZE")
    del rng
    assert Membership.objects.count() == users


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--push", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument(
        "--db",
        default=DB_NAME,
        help="the database to (re)create (another bench may use the default)",
    )
    args = parser.parse_args()

    os.environ["TOLLGATE_SCIM_RATE_PER_MINUTE"] = "1000000"  # the bench measures, not limits
    recreate_database(args.db)
    setup_django(args.db)

    from django.db import connection, reset_queries
    from django.test import Client

    from accounts.models import Team, User
    from portal.core.actors import BENCH, CLI
    from scim.constants import CONTENT_TYPE, ENTERPRISE, PATCH_OP, USER
    from scim.services import scim_client_create

    del BENCH
    started = time.perf_counter()
    load(args.users)
    setup_seconds = time.perf_counter() - started
    _, token = scim_client_create(actor=CLI, name="Bench IdP")
    http = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    rng = random.Random(SEED)
    figures: dict = {
        "users": User.objects.count(),
        "teams": Team.objects.count(),
        "setup_seconds": round(setup_seconds, 1),
    }

    # 1. Lookups by userName (what Okta and Entra ID do before creating a person).
    times = []
    for _ in range(args.lookups):
        email = f"Person{rng.randrange(args.users):06d}@corp.test"
        url = "/scim/v2/Users?filter=" + quote(f'userName eq "{email}"')
        t0 = time.perf_counter()
        response = http.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        body = json.loads(response.content)
        assert response.status_code == 200 and body["totalResults"] == 1, body
    figures["get_filter_username_ms"] = {
        "n": len(times),
        "p50": round(statistics.median(times), 2),
        "p95": round(percentile(times, 95), 2),
        "p99": round(percentile(times, 99), 2),
        "target_p95": 50,
    }
    print("GET Users?filter=userName eq", figures["get_filter_username_ms"], flush=True)

    # 2. The initial push: POST each new person (department = an existing team, a manager).
    teams = list(Team.objects.values_list("name", flat=True)[:200])
    managers = list(User.objects.order_by("pk").values_list("pk", flat=True)[:500])
    t0 = time.perf_counter()
    slow = []
    for i in range(args.push):
        body = {
            "schemas": [USER, ENTERPRISE],
            "userName": f"new{i:05d}@corp.test",
            "displayName": f"New Person {i:05d}",
            "externalId": f"00u{i:05d}",
            "active": True,
            ENTERPRISE: {
                "department": teams[i % len(teams)],
                "manager": {"value": str(managers[i % len(managers)])},
                "employeeNumber": f"E{i:05d}",
            },
        }
        s0 = time.perf_counter()
        response = http.post("/scim/v2/Users", data=json.dumps(body), content_type=CONTENT_TYPE)
        slow.append((time.perf_counter() - s0) * 1000)
        assert response.status_code == 201, response.content
        if (i + 1) % 2000 == 0:
            print(f"  pushed {i + 1} in {time.perf_counter() - t0:.1f} s", flush=True)
    push_seconds = time.perf_counter() - t0
    figures["initial_push"] = {
        "users": args.push,
        "seconds": round(push_seconds, 1),
        "per_user_ms_p50": round(statistics.median(slow), 2),
        "per_user_ms_p95": round(percentile(slow, 95), 2),
        "target_seconds": 120,
    }
    print("POST Users (initial push)", figures["initial_push"], flush=True)

    # 3. PATCH adding 1,000 members to one group.
    group = Team.objects.get(slug="team-0100")
    new_ids = list(
        User.objects.filter(email__startswith="new").order_by("pk").values_list("pk", flat=True)
    )[:1000]
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "add", "path": "members", "value": [{"value": str(pk)} for pk in new_ids]}
        ],
    }
    reset_queries()
    t0 = time.perf_counter()
    response = http.patch(
        f"/scim/v2/Groups/{group.pk}", data=json.dumps(patch), content_type=CONTENT_TYPE
    )
    patch_seconds = time.perf_counter() - t0
    assert response.status_code == 200, response.content
    members = len(json.loads(response.content)["members"])
    figures["patch_add_1000_members"] = {
        "seconds": round(patch_seconds, 3),
        "members_after": members,
        "target_seconds": 2,
    }
    print("PATCH Groups add 1,000 members", figures["patch_add_1000_members"], flush=True)
    figures["passed"] = (
        figures["get_filter_username_ms"]["p95"] <= 50
        and push_seconds <= 120
        and patch_seconds <= 2
    )
    connection.close()
    write_results("bench_scim", figures)
    if not args.keep:
        drop_database(args.db)


if __name__ == "__main__":
    main()
