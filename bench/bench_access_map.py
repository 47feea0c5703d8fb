"""Access map (P1) at 300 people × 300 entitlements: server time of the team map page, the
service map and the outliers page, plus a role-mining run over the same team.

Creates a dedicated PostgreSQL database (``tollgate_bench_patterns``), bulk-inserts one team
of PEOPLE people whose access comes from ROLES hidden roles (2–4 each) plus a little noise
over ENTITLEMENTS entitlements (a benchmark, not the audited write path), then renders each
page N times in-process with the Django test client and reports p50/p95 server time, query
count and response size. Drops the database afterwards (unless --keep).
Results: bench/results/access_map.json.

    .venv/bin/python bench/bench_access_map.py [--n 20] [--keep]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _common import drop_database, recreate_database, setup_django, write_results  # noqa: E402

PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "tollgate_bench_patterns"

PEOPLE = 300
ENTITLEMENTS = 300
SERVICES = 30
ROLES = 40
NOISE = 0.01  # share of extra random (person, entitlement) grants


def build_fixtures(rng: random.Random) -> dict:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from access.models import Entitlement, Grant, Risk, Service
    from accounts.models import Membership, Team, User

    now = timezone.now()
    password = make_password(None)
    team = Team.objects.create(slug="big-team", name="Big Team")
    owners = Team.objects.create(slug="owners", name="Owners")
    lead = User.objects.create(email="lead@bench.test", name="Lead", team=team, password=password)
    admin = User.objects.create(
        email="admin@bench.test", name="Admin", team=owners, password=password
    )
    admin.groups.add(Group.objects.get_or_create(name="platform-admin")[0])
    people = User.objects.bulk_create(
        [
            User(
                email=f"p{i:03d}@bench.test",
                name=f"Person {i:03d}",
                team=team,
                manager=lead,
                worker_type="contractor" if i % 10 == 0 else "employee",
                password=password,
            )
            for i in range(PEOPLE - 1)
        ]
    )
    Membership.objects.bulk_create(
        [Membership(team=team, user=lead, role="lead")]
        + [Membership(team=team, user=p) for p in people]
    )
    services = Service.objects.bulk_create(
        [
            Service(slug=f"svc-{i:02d}", name=f"Service {i:02d}", owner_team=owners)
            for i in range(SERVICES)
        ]
    )
    risks = list(Risk.values)
    ents = Entitlement.objects.bulk_create(
        [
            Entitlement(
                service=services[i % SERVICES],
                slug=f"ent-{i:03d}",
                name=f"Entitlement {i:03d}",
                risk=risks[(i * 7) % 4],
            )
            for i in range(ENTITLEMENTS)
        ]
    )
    roles = [rng.sample(ents, rng.randint(3, 12)) for _ in range(ROLES)]
    holders = [lead, *people]
    pairs: set[tuple[int, int]] = set()
    for person in holders:
        for role in rng.sample(roles, rng.randint(2, 4)):
            pairs.update((person.pk, e.pk) for e in role)
    for _ in range(int(NOISE * PEOPLE * ENTITLEMENTS)):
        pairs.add((rng.choice(holders).pk, rng.choice(ents).pk))
    Grant.objects.bulk_create(
        [
            Grant(
                principal_id=u,
                entitlement_id=e,
                status="active",
                starts_at=now,
                ends_at=now + timedelta(days=60),
                reason="bench",
            )
            for u, e in sorted(pairs)
        ],
        batch_size=5000,
    )
    return {"team": team, "admin": admin, "service": services[0], "grants": len(pairs)}


def measure(client, url: str, n: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm-up
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
        "queries": len(ctx.captured_queries),
        "bytes": len(response.content),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    recreate_database(DB_NAME)
    setup_django(DB_NAME)
    try:
        rng = random.Random(20261125)
        started = time.perf_counter()
        fx = build_fixtures(rng)
        setup_s = time.perf_counter() - started
        from django.test import Client

        from patterns import selectors
        from patterns.services import mining_run_create, mining_run_execute

        client = Client()
        client.force_login(fx["admin"])
        team_url = f"/patterns/map/teams/{fx['team'].slug}/"
        pages = {
            "team_map": measure(client, team_url, args.n),
            "service_map": measure(client, f"/patterns/map/services/{fx['service'].slug}/", args.n),
            "outliers_team": measure(client, f"/patterns/outliers/?team={fx['team'].slug}", args.n),
        }
        matrix = selectors.team_access_matrix(team=fx["team"])
        start = time.perf_counter()
        run = mining_run_create(actor=fx["admin"], team=fx["team"], time_limit=30)
        run = mining_run_execute(run_id=run.pk)
        run.refresh_from_db()
        mining_s = time.perf_counter() - start
        pages["team_map_ordered_by_roles"] = measure(client, team_url, args.n)
        person = matrix.rows[len(matrix.rows) // 2]["id"]
        pages["team_map_with_comparison"] = measure(client, f"{team_url}?person={person}", args.n)
        figures = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "database": "PostgreSQL",
            # the machine is shared: the 1-minute load average when the pages were measured
            "load_average_1m": round(os.getloadavg()[0], 2),
            "matrix": {
                "people": len(matrix.rows),
                "entitlements": len(matrix.cols),
                "active_grants": matrix.cells,
            },
            "setup_seconds": round(setup_s, 1),
            "runs_per_page": args.n,
            "pages": pages,
            "mining_run": {
                "status": run.status,
                "seconds": round(mining_s, 2),
                **{k: run.stats.get(k) for k in ("roles", "lower_bound", "optimal", "exact")},
            },
        }
        write_results("access_map", figures)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    main()
