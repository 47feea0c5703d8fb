"""Reconciliation plan: 100k active grants of one service, 1% drift, on PostgreSQL.

Creates ``tollgate_bench_reconcile``, bulk-inserts 1,000 people x 100 entitlements = 100k
active grants (fixtures, not the audited write path), and a downstream whose holders are
the grants minus 0.5% (missing downstream) plus 0.5% extra holders (unmanaged): 1,000
differences. A child process then runs ``reconcile_service(mode="report")``; the parent
measures its wall time and peak RSS (``wait4``). The child counts every SQL write statement
and the rows it touched, so "writes == drift" is checked, not assumed. Targets: <= 5 s,
<= 300 MB, DriftItem rows == injected drift, no grant or job written.

    .venv/bin/python bench/bench_reconcile.py [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _common import setup_django  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "reconcile.json"
PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "tollgate_bench_reconcile"
PEOPLE = 1_000
ENTITLEMENTS = 100
MISSING = 500  # 0.5% of the grants are not held downstream
UNMANAGED = 500  # 0.5% extra downstream holders nobody granted
SEED = 20261125
WRITE_RE = re.compile(r'^\s*(INSERT INTO|UPDATE|DELETE FROM)\s+"?(\w+)', re.IGNORECASE)


class ListConnector:
    """A downstream that answers list_holders from a prepared list (pages by slicing)."""

    supports_list_holders = True
    login_prefix = ""

    def __init__(self, holders):
        self.holders = holders

    def login_for(self, principal):
        return principal.login or principal.email

    def iter_holders(self, entitlement=None, *, page_size: int = 5000):
        for start in range(0, len(self.holders), page_size):
            yield from self.holders[start : start + page_size]


def seed() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from access.models import Entitlement, Grant, Service
    from accounts.models import Team, User

    password = make_password(None)
    team = Team.objects.create(slug="bench", name="Bench")
    service = Service.objects.create(
        slug="warehouse",
        name="Warehouse",
        owner_team=team,
        connector="fake",
        connector_config={"namespace": "bench"},
    )
    ents = Entitlement.objects.bulk_create(
        [
            Entitlement(service=service, slug=f"role-{i:03d}", name=f"Role {i}")
            for i in range(ENTITLEMENTS)
        ]
    )
    people = User.objects.bulk_create(
        [
            User(email=f"p{i:04d}@bench.test", name=f"P {i}", team=team, password=password)
            for i in range(PEOPLE)
        ],
        batch_size=1000,
    )
    end = timezone.now() + timezone.timedelta(days=90)
    batch = []
    for person in people:
        for ent in ents:
            batch.append(
                Grant(principal=person, entitlement=ent, status="active", ends_at=end, reason="b")
            )
        if len(batch) >= 20_000:
            Grant.objects.bulk_create(batch, batch_size=5000)
            batch = []
    Grant.objects.bulk_create(batch, batch_size=5000)


def plan_child() -> None:
    """Measured: build the downstream, reconcile, count the writes; print JSON."""
    from django.db import connection

    from access.models import DriftItem, Grant, ReconciliationRun, Service, SyncJob
    from access.services import reconcile_service
    from connectors.base import Holder

    rng = random.Random(SEED)
    service = Service.objects.get(slug="warehouse")
    pairs = list(
        Grant.objects.filter(entitlement__service=service, status="active")
        .values_list("principal__email", "entitlement__slug")
        .order_by("pk")
    )
    missing = set(rng.sample(range(len(pairs)), MISSING))
    holders = [Holder(e, s, "member") for i, (e, s) in enumerate(pairs) if i not in missing]
    holders += [
        Holder(f"ghost{i}@bench.test", f"role-{i % ENTITLEMENTS:03d}", "member")
        for i in range(UNMANAGED)
    ]
    rng.shuffle(holders)
    del pairs
    connector = ListConnector(holders)
    grants_before = Grant.objects.filter(status="active").count()

    writes: dict[str, int] = {}

    def count_writes(execute, sql, params, many, context):
        match = WRITE_RE.match(sql)
        if match:
            verb, table = match.group(1).split(" ")[0].upper(), match.group(2)
            result = execute(sql, params, many, context)
            writes[f"{verb} {table}"] = writes.get(f"{verb} {table}", 0) + max(
                context["cursor"].rowcount, 0
            )
            return result
        return execute(sql, params, many, context)

    start = time.perf_counter()
    with connection.execute_wrapper(count_writes):
        run = reconcile_service(service_id=service.pk, mode="report", connector=connector)
    elapsed = time.perf_counter() - start
    dry_start = time.perf_counter()
    plan = reconcile_service(service_id=service.pk, dry_run=True, connector=connector)
    dry_elapsed = time.perf_counter() - dry_start
    print(
        json.dumps(
            {
                "reconcile_seconds": round(elapsed, 3),
                "dry_run_seconds": round(dry_elapsed, 3),
                "grants_checked": run.grants_checked,
                "holders_seen": run.holders_seen,
                "missing": run.missing,
                "unmanaged": run.unmanaged,
                "wrong_level": run.wrong_level,
                "dry_run_drift": plan.drift,
                "drift_items_written": DriftItem.objects.filter(run=run).count(),
                "writes_by_table": writes,
                "grants_unchanged": Grant.objects.filter(status="active").count() == grants_before,
                "sync_jobs": SyncJob.objects.count(),
                "runs": ReconciliationRun.objects.count(),
            }
        )
    )


def run_child(mode: str) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{mode} failed:\n{err[-3000:]}")
    return time.perf_counter() - start, usage.ru_maxrss // 1024, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    try:
        seed_seconds, _, _ = run_child("--seed")
        wall, rss_mb, out = run_child("--plan")
        figures = json.loads(out.strip().splitlines()[-1])
        drift = MISSING + UNMANAGED
        drift_rows = figures["writes_by_table"].get("INSERT access_driftitem", 0)
        figures.update(
            {
                "grants": PEOPLE * ENTITLEMENTS,
                "injected_drift": drift,
                "child_wall_seconds": round(wall, 2),
                "peak_rss_mb": rss_mb,
                "seed_seconds": round(seed_seconds, 1),
                "targets": {"seconds": 5.0, "peak_rss_mb": 300},
                "ok": figures["reconcile_seconds"] <= 5.0
                and rss_mb <= 300
                and figures["drift_items_written"] == drift
                and drift_rows == drift
                and figures["grants_unchanged"]
                and figures["sync_jobs"] == 0
                and not any(
                    k.split(" ")[1] in ("access_grant", "access_syncjob")
                    for k in figures["writes_by_table"]
                ),
            }
        )
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures, indent=2))
        print(f"written to {RESULTS.relative_to(ROOT)}")
        if not figures["ok"]:
            raise SystemExit("reconciliation benchmark missed its targets")
    finally:
        if not args.keep:
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--seed", "--plan"):
        setup_django(DB_NAME, migrate=False)
        seed() if sys.argv[1] == "--seed" else plan_child()
    else:
        main()
