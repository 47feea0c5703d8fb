"""Reconciliation of an LDAP group with 20,000 members against 20,000 grants, 1% drift.

Starts a throw-away slapd (tests/support/slapd.py: free loopback ports, StartTLS with a
throw-away CA), creates ``tollgate_bench_ldap_reconcile`` and bulk-inserts 20,000 people with
an active grant each of one LDAP-backed entitlement (fixtures, not the audited write path).
The group ``cn=bench`` (groupOfNames) holds the granted people minus 100 (0.5%, missing
downstream) plus 100 people nobody granted (0.5%, unmanaged): 200 differences. A child
process runs ``reconcile_service(mode="report")`` with the real ``ldap`` connector over
StartTLS; the parent measures its wall time and peak RSS (``wait4``). Targets: <= 10 s,
<= 300 MB, DriftItem rows == injected drift.

    .venv/bin/python bench/bench_ldap_reconcile.py [--keep]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from _common import drop_database, recreate_database, setup_django  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ldap_reconcile.json"
DB_NAME = "tollgate_bench_ldap_reconcile"
MEMBERS = 20_000
MISSING = 100  # 0.5% of the grants are not in the group
UNMANAGED = 100  # 0.5% extra members nobody granted
SEED = 20261206
PASSWORD_ENV = "TOLLGATE_BENCH_LDAP_PASSWORD"  # noqa: S105 - a variable name


def service_config(url: str, ca_file: str) -> dict:
    from tests.support import slapd as support

    return {
        "url": url,
        "security": "starttls",
        "ca_file": ca_file,
        "bind_dn": support.SERVICE_DN,
        "password_env": PASSWORD_ENV,
        "base": support.GROUPS,
        "people_base": support.PEOPLE,
        "groups": {"member": "bench"},
    }


def uid(i: int) -> str:
    return f"p{i:05d}"


def seed_database(url: str, ca_file: str) -> None:
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from access.models import Entitlement, Grant, Service
    from accounts.models import Team, User

    password = make_password(None)
    team = Team.objects.create(slug="bench", name="Bench")
    service = Service.objects.create(
        slug="directory",
        name="Directory",
        owner_team=team,
        connector="ldap",
        connector_config=service_config(url, ca_file),
    )
    ent = Entitlement.objects.create(service=service, slug="member", name="Member")
    people = User.objects.bulk_create(
        [
            User(email=f"{uid(i)}@bench.test", name=f"P {i}", team=team, password=password)
            for i in range(MEMBERS)
        ],
        batch_size=2000,
    )
    end = timezone.now() + timezone.timedelta(days=90)
    Grant.objects.bulk_create(
        [
            Grant(principal=p, entitlement=ent, status="active", ends_at=end, reason="b")
            for p in people
        ],
        batch_size=5000,
    )


def seed_ldap(server) -> None:
    from tests.support import slapd as support

    rng = random.Random(SEED)
    missing = set(rng.sample(range(MEMBERS), MISSING))
    members = [f"uid={uid(i)},{support.PEOPLE}" for i in range(MEMBERS) if i not in missing]
    members += [f"uid=ghost{i:04d},{support.PEOPLE}" for i in range(UNMANAGED)]
    rng.shuffle(members)
    conn = server.admin()
    try:
        ok = conn.add(
            f"cn=bench,{support.GROUPS}", ["groupOfNames"], {"cn": "bench", "member": members}
        )
        if not ok:
            raise SystemExit(f"cannot create the bench group: {conn.result}")
    finally:
        conn.unbind()


def plan_child() -> None:
    from access.models import DriftItem, Grant, Service, SyncJob
    from access.services import reconcile_service

    service = Service.objects.get(slug="directory")
    grants_before = Grant.objects.filter(status="active").count()
    start = time.perf_counter()
    run = reconcile_service(service_id=service.pk, mode="report")
    elapsed = time.perf_counter() - start
    kinds = dict.fromkeys(("missing", "unmanaged"), 0)
    for kind in DriftItem.objects.filter(run=run).values_list("kind", flat=True):
        kinds[kind] = kinds.get(kind, 0) + 1
    print(
        json.dumps(
            {
                "reconcile_seconds": round(elapsed, 3),
                "status": run.status,
                "error": run.error,
                "grants_checked": run.grants_checked,
                "holders_seen": run.holders_seen,
                "missing": run.missing,
                "unmanaged": run.unmanaged,
                "drift_items_written": sum(kinds.values()),
                "drift_items_by_kind": kinds,
                "grants_unchanged": Grant.objects.filter(status="active").count() == grants_before,
                "sync_jobs": SyncJob.objects.count(),
            }
        )
    )


def run_child(mode: str, env: dict) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, mode],
        cwd=ROOT,
        env=env,
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
    from tests.support import slapd as support

    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    recreate_database(DB_NAME)
    server = support.start()
    try:
        env = dict(
            os.environ,
            BENCH_LDAP_URL=server.url,
            BENCH_LDAP_CA=str(server.ca_file),
            **{PASSWORD_ENV: server.service_password},
        )
        ldap_start = time.perf_counter()
        seed_ldap(server)
        ldap_seed_seconds = time.perf_counter() - ldap_start
        seed_seconds, _, _ = run_child("--seed", env)
        wall, rss_mb, out = run_child("--plan", env)
        figures = json.loads(out.strip().splitlines()[-1])
        drift = MISSING + UNMANAGED
        figures.update(
            {
                "members_in_group": MEMBERS - MISSING + UNMANAGED,
                "grants": MEMBERS,
                "injected_drift": drift,
                "transport": "StartTLS (throw-away CA), real slapd",
                "child_wall_seconds": round(wall, 2),
                "peak_rss_mb": rss_mb,
                "seed_seconds": round(seed_seconds + ldap_seed_seconds, 1),
                "targets": {"seconds": 10.0, "peak_rss_mb": 300},
                "command": "python bench/bench_ldap_reconcile.py",
            }
        )
        figures["ok"] = (
            figures["status"] == "done"
            and figures["reconcile_seconds"] <= 10.0
            and rss_mb <= 300
            and figures["drift_items_by_kind"] == {"missing": MISSING, "unmanaged": UNMANAGED}
            and figures["grants_unchanged"]
            and figures["sync_jobs"] == 0
        )
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures, indent=2))
        print(f"written to {RESULTS.relative_to(ROOT)}")
        if not figures["ok"]:
            raise SystemExit("LDAP reconciliation benchmark missed its targets")
    finally:
        server.cleanup()
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--seed", "--plan"):
        setup_django(DB_NAME, migrate=sys.argv[1] == "--seed")
        if sys.argv[1] == "--seed":
            seed_database(os.environ["BENCH_LDAP_URL"], os.environ["BENCH_LDAP_CA"])
        else:
            plan_child()
    else:
        main()
