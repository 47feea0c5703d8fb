"""Standards scan (P6): every standard of a seven-kind document over 100k held grants, on PostgreSQL.

Creates ``tollgate_bench_policy``, bulk-inserts 2,000 people (10% contractors) in 20 teams,
40 services x 10 entitlements, and 100k grants (50 per person; 5% without an end date, terms of
1-180 days), then a child process applies a document with one standard of every kind and runs
the scan twice: cold (every violation is new) and steady (nothing changed: only last_seen moves).
The parent measures the child's peak RSS (``wait4``); the child times each scan and counts its SQL
statements.

    .venv/bin/python bench/bench_policy_scan.py [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _common import setup_django  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "policy_scan.json"
PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "tollgate_bench_policy"
PEOPLE = 2_000
TEAMS = 20
SERVICES = 40
ENTS_PER_SERVICE = 10
GRANTS_PER_PERSON = 50
SEED = 20261125

DOCUMENT = """
- id: tier0-admin-security
  title: Tier-0 admin needs security approval
  severity: critical
  owner: service-owner
  scope: {tier: [0], risk: [critical]}
  check: {kind: requires_stage, stage: security}
- id: tier0-admin-7-days
  title: Tier-0 admin at most 7 days
  severity: high
  owner: service-owner
  scope: {tier: [0], risk: [critical]}
  check: {kind: max_duration_days, days: 7}
- id: contractors-no-standing-write
  title: No standing production write for contractors
  severity: high
  owner: team-00
  scope: {tier: [0, 1], risk: [medium, high, critical], worker_type: contractor}
  check: {kind: no_standing_access, max_days: 30}
- id: end-date-above-medium
  title: End date above medium risk
  severity: high
  owner: service-owner
  check: {kind: end_date_required_above_risk, risk: medium}
- id: two-owners
  title: Two owners
  severity: medium
  owner: service-owner
  check: {kind: min_service_owners, min: 2}
- id: owner-and-cost
  title: Owner and seat cost
  severity: low
  owner: service-owner
  check: {kind: entitlement_has_owner_and_cost}
- id: sod
  title: Maker-checker
  severity: critical
  owner: service-owner
  check:
    kind: sod_pairs
    pairs:
      - [svc-00/ent-0, svc-00/ent-1]
      - [svc-01/ent-0, svc-02/ent-0]
"""


def seed() -> None:
    from datetime import timedelta

    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.utils import timezone

    from access.models import Entitlement, Grant, Service
    from accounts.models import Membership, Team, User

    call_command("migrate", verbosity=0)
    rng = random.Random(SEED)
    password = make_password(None)
    teams = Team.objects.bulk_create(
        [Team(slug=f"team-{i:02d}", name=f"Team {i}") for i in range(TEAMS)]
    )
    services = Service.objects.bulk_create(
        [
            Service(
                slug=f"svc-{i:02d}", name=f"Service {i}", owner_team=teams[i % TEAMS], tier=i % 4
            )
            for i in range(SERVICES)
        ]
    )
    risks = ["low", "low", "medium", "medium", "high", "high", "critical", "low", "medium", "high"]
    ents = Entitlement.objects.bulk_create(
        [
            Entitlement(
                service=s,
                slug=f"ent-{j}",
                name=f"Ent {j}",
                risk=risks[j],
                max_duration_days=365,
                seat_cost_monthly=0 if j % 3 == 0 else 10,
            )
            for s in services
            for j in range(ENTS_PER_SERVICE)
        ]
    )
    people = User.objects.bulk_create(
        [
            User(
                email=f"p{i:05d}@bench.test",
                name=f"P {i}",
                team=teams[i % TEAMS],
                password=password,
                worker_type="contractor" if rng.random() < 0.1 else "employee",
            )
            for i in range(PEOPLE)
        ],
        batch_size=1000,
    )
    # Leads: two in even teams, one in odd teams (so some services lack a second owner).
    Membership.objects.bulk_create(
        [
            Membership(
                team=p.team,
                user=p,
                role="lead" if i < TEAMS or (i < 2 * TEAMS and i % 2 == 0) else "member",
            )
            for i, p in enumerate(people)
        ],
        batch_size=2000,
    )
    now = timezone.now()
    batch = []
    for person in people:
        for ent in rng.sample(ents, GRANTS_PER_PERSON):
            start = now - timedelta(days=rng.randint(0, 60))
            ends = None if rng.random() < 0.05 else start + timedelta(days=rng.randint(1, 180))
            batch.append(
                Grant(
                    principal=person,
                    entitlement=ent,
                    status="active",
                    starts_at=start,
                    ends_at=ends,
                    reason="bench",
                )
            )
        if len(batch) >= 20_000:
            Grant.objects.bulk_create(batch, batch_size=5000)
            batch = []
    Grant.objects.bulk_create(batch, batch_size=5000)


def scan_child() -> None:
    from django.db import connection

    from access.models import Grant
    from portal.core.actors import BENCH
    from standards.models import Violation
    from standards.services import standards_apply, standards_scan

    standards_apply(actor=BENCH, text=DOCUMENT.lstrip(), check_base=False)
    figures: dict = {"grants": Grant.objects.count()}
    for label in ("cold", "steady"):
        queries = [0]

        def count(execute, sql, params, many, context, queries=queries):
            queries[0] += 1
            return execute(sql, params, many, context)

        start = time.perf_counter()
        with connection.execute_wrapper(count):
            scan = standards_scan()
        figures[label] = {
            "seconds": round(time.perf_counter() - start, 3),
            "queries": queries[0],
            "violating": scan.violating,
            "opened": scan.opened,
            "resolved": scan.resolved,
            "subjects": scan.subjects,
        }
    figures["open_violations"] = Violation.objects.filter(resolved_at__isnull=True).count()
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("mode", nargs="?", default="")
    args = parser.parse_args()
    if args.mode in ("seed", "scan"):
        setup_django(DB_NAME, migrate=False)
        seed() if args.mode == "seed" else scan_child()
        return
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    try:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "seed"], cwd=ROOT, check=True)
        seed_seconds = time.perf_counter() - t0
        proc = subprocess.Popen(
            [sys.executable, __file__, "scan"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out = proc.stdout.read().decode()
        err = proc.stderr.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"scan failed:\n{err[-3000:]}")
        figures = json.loads(out.strip().splitlines()[-1])
        figures["peak_rss_mb"] = usage.ru_maxrss // 1024
        figures["seed_seconds"] = round(seed_seconds, 1)
        figures["database"] = "postgresql"
        figures["standards"] = 7
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures, indent=2))
        print(f"written to {RESULTS.relative_to(ROOT)}")
    finally:
        if not args.keep:
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
