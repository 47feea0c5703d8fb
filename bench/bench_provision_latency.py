"""Request -> provisioned grant through a real Celery worker and the PostgreSQL connector.

Creates ``tollgate_bench_provision`` (the portal's database) and a throwaway target database
with one entitlement role, starts a real ``celery worker`` on a unique queue, then submits
N auto-approved requests one after another and measures, for each, the time from the
submit call until the grant is ``active`` (the worker granted the role in PostgreSQL and
recorded it). Checks that every login holds the role downstream exactly once. Target:
p95 <= 2 s. Drops both databases and every role it created.

    .venv/bin/python bench/bench_provision_latency.py [--n 50]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "provision_latency.json"
PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
DB_NAME = "tollgate_bench_provision"
TARGET_DB = f"tg_bench_target_{secrets.token_hex(4)}"
PREFIX = f"tgb{secrets.token_hex(3)}_"
QUEUE = f"bench-sync-{uuid.uuid4().hex[:8]}"


def admin(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(f"{PG}/{dbname}", autocommit=True)


def env_for_portal() -> dict:
    return {
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "REDIS_URL": REDIS,
        "CELERY_BROKER_URL": REDIS,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "AUDIT_CHECKPOINT_FILE": "",
        "TOLLGATE_SYNC_QUEUE": QUEUE,
        "TOLLGATE_NOTIFY_QUEUE": f"{QUEUE}-notify",
        "TOLLGATE_PG_TARGET_DSN": f"{PG}/{TARGET_DB}",
        "EMAIL_URL": "dummymail://",
    }


def start_worker(log: Path) -> subprocess.Popen:
    env = {**os.environ, **env_for_portal()}
    celery = Path(sys.executable).with_name("celery")
    return subprocess.Popen(
        [
            str(celery),
            "-A",
            "portal",
            "worker",
            "--pool",
            "solo",
            "-Q",
            f"{QUEUE},{QUEUE}-notify",
            "-n",
            f"{QUEUE}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--prefetch-multiplier=1",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TARGET_DB)))
    role = f"{PREFIX}read"
    with admin(TARGET_DB) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    os.environ.update(env_for_portal())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import logging

    logging.getLogger("portal.audit").setLevel(logging.WARNING)
    log = ROOT / "var" / "bench_provision_worker.log"
    worker = start_worker(log)
    try:
        figures = run(args.n, role, worker)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
        import redis

        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter(match=f"*{QUEUE}*"):
            client.delete(key)
        from django.db import connections

        connections.close_all()
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TARGET_DB))
            )
            for (name,) in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname::text, %s)", (PREFIX,)
            ).fetchall():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"written to {RESULTS.relative_to(ROOT)}")
    if not figures["ok"]:
        raise SystemExit("provisioning latency benchmark missed its target")


def run(n: int, role: str, worker: subprocess.Popen) -> dict:
    from access import services
    from access.models import ApprovalPolicy, Entitlement, Grant, PolicyStage, Service
    from accounts.models import Team, User
    from portal.core.tasks import ping

    team = Team.objects.create(slug="bench", name="Bench")
    service = Service.objects.create(
        slug="warehouse",
        name="Warehouse",
        owner_team=team,
        connector="postgres",
        connector_config={
            "dsn_env": "TOLLGATE_PG_TARGET_DSN",
            "roles": {"read": role},
            "login_prefix": f"{PREFIX}u_",
        },
    )
    policy = ApprovalPolicy.objects.create(slug="auto", name="Auto")
    PolicyStage.objects.create(policy=policy, order=0, approver_kind="manager")
    ent = Entitlement.objects.create(service=service, slug="read", name="Read", policy=policy)
    people = [
        User.objects.create_user(f"person{i:03d}@bench.test", None, team=team) for i in range(n)
    ]
    policy.auto_approve_users.set(people)

    # Wait for the worker: a ping round trip through Redis.
    import redis

    client = redis.Redis.from_url(REDIS)
    token = uuid.uuid4().hex
    ping.apply_async(args=[token], queue=QUEUE)
    deadline = time.monotonic() + 60
    while not client.get(f"tollgate:pong:{token}"):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the worker did not start; see var/bench_provision_worker.log")
        time.sleep(0.05)

    latencies = []
    for person in people:
        start = time.perf_counter()
        services.access_request_submit(
            actor=person, principal=person, entitlement=ent, justification="benchmark"
        )
        while not Grant.objects.filter(
            principal=person, entitlement=ent, status=Grant.Status.ACTIVE
        ).exists():
            if time.perf_counter() - start > 30:
                raise SystemExit(f"no active grant for {person.email} after 30 s")
            time.sleep(0.005)
        latencies.append(time.perf_counter() - start)

    with admin(TARGET_DB) as conn:
        members = conn.execute(
            "SELECT u.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
            " JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = %s",
            (role,),
        ).fetchall()
    ordered = sorted(latencies)
    p95 = ordered[max(0, int(round(0.95 * len(ordered))) - 1)]
    return {
        "requests": n,
        "p50_seconds": round(statistics.median(ordered), 3),
        "p95_seconds": round(p95, 3),
        "max_seconds": round(ordered[-1], 3),
        "mean_seconds": round(statistics.fmean(ordered), 3),
        "downstream_memberships": len(members),
        "distinct_logins": len({m[0] for m in members}),
        "target_p95_seconds": 2.0,
        "ok": p95 <= 2.0 and len(members) == n == len({m[0] for m in members}),
    }


if __name__ == "__main__":
    main()
