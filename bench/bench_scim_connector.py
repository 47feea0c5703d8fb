"""SCIM connector throughput: grants per second through the outbox and a real Celery worker.

Starts a real SCIM 2.0 server (scim2-server's test server, its own process on a free loopback
port), creates ``tollgate_bench_scim`` (the portal's database), starts one ``celery worker``
(solo pool, prefetch 1: the production worker's settings) on a unique queue, then submits N
auto-approved requests for a SCIM-backed entitlement in a burst and measures the time from the
first submit until every grant is ``active`` (each job found or created the user downstream and
PATCHed it into the group). Checks that the group then holds each person exactly once and that
each person has one SCIM user. For comparison it also times the connector alone (grants called
in this process, no outbox, no worker) on a second group. Drops the database at the end.

    .venv/bin/python bench/bench_scim_connector.py [--n 100]
    BENCH_REDIS_URL=redis://127.0.0.1:6379/12 (default)  BENCH_PG_URL=postgres://...:5432
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "scim_connector.json"
PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
DB_NAME = "tollgate_bench_scim"
QUEUE = f"bench-scim-{uuid.uuid4().hex[:8]}"
TOKEN_ENV = "TOLLGATE_BENCH_SCIM_TOKEN"  # noqa: S105 - the name of a variable


def admin() -> psycopg.Connection:
    return psycopg.connect(f"{PG}/postgres", autocommit=True)


def env_for_portal(token: str) -> dict:
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
        "EMAIL_URL": "dummymail://",
        TOKEN_ENV: token,
    }


def start_worker(log: Path, token: str) -> subprocess.Popen:
    env = {**os.environ, **env_for_portal(token)}
    celery = Path(sys.executable).with_name("celery")
    log.parent.mkdir(parents=True, exist_ok=True)
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
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    from tests.connectors.scim_server import running_scim_server

    with running_scim_server() as server:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        os.environ.update(env_for_portal(server.token))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        import django

        django.setup()
        import logging

        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        logging.getLogger("portal.audit").setLevel(logging.WARNING)
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        worker = start_worker(ROOT / "var" / "bench_scim_worker.log", server.token)
        try:
            figures = run(args.n, server, worker)
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
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"written to {RESULTS.relative_to(ROOT)}")
    if not figures["ok"]:
        raise SystemExit("the SCIM connector benchmark found wrong downstream state")


def wait_for_worker(worker: subprocess.Popen) -> None:
    import redis

    from portal.core.tasks import ping

    client = redis.Redis.from_url(REDIS)
    token = uuid.uuid4().hex
    ping.apply_async(args=[token], queue=QUEUE)
    deadline = time.monotonic() + 60
    while not client.get(f"tollgate:pong:{token}"):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the worker did not start; see var/bench_scim_worker.log")
        time.sleep(0.05)


def run(n: int, server, worker: subprocess.Popen) -> dict:
    from django.db.models import Count

    from access import services
    from access.models import ApprovalPolicy, Entitlement, Grant, PolicyStage, Service, SyncJob
    from accounts.models import Team, User
    from connectors.base import EntitlementRef, PrincipalRef
    from connectors.scim import ScimConnector

    server.create_group("bench-workers")
    server.create_group("bench-direct")
    team = Team.objects.create(slug="bench", name="Bench")
    service = Service.objects.create(
        slug="wiki",
        name="Wiki",
        owner_team=team,
        connector="scim",
        connector_config={"base_url": server.base_url, "token_env": TOKEN_ENV},
    )
    policy = ApprovalPolicy.objects.create(slug="auto", name="Auto")
    PolicyStage.objects.create(policy=policy, order=0, approver_kind="manager")
    ent = Entitlement.objects.create(
        service=service,
        slug="edit",
        name="Edit",
        policy=policy,
        connector_config={"group": "bench-workers"},
    )
    people = [
        User.objects.create_user(f"person{i:04d}@bench.test", None, team=team) for i in range(n)
    ]
    policy.auto_approve_users.set(people)
    wait_for_worker(worker)

    # Through the outbox and the worker: a burst of approvals, then wait for every grant.
    started = time.perf_counter()
    for person in people:
        services.access_request_submit(
            actor=person, principal=person, entitlement=ent, justification="benchmark"
        )
    submitted = time.perf_counter() - started
    deadline = time.monotonic() + max(300, 3 * n)
    while Grant.objects.filter(entitlement=ent, status=Grant.Status.ACTIVE).count() < n:
        if time.monotonic() > deadline or worker.poll() is not None:
            counts = dict(
                Grant.objects.filter(entitlement=ent)
                .values_list("status")
                .annotate(n=Count("pk"))
                .values_list("status", "n")
            )
            raise SystemExit(f"not every grant became active ({counts}); see the worker log")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    jobs = list(SyncJob.objects.filter(service=service).values_list("started_at", "finished_at"))
    job_ms = sorted((end - start).total_seconds() * 1000 for start, end in jobs)
    members = server.member_user_names("bench-workers")
    users_per_person = [len(server.users(p.email)) for p in people[:20]]

    # The connector alone, in this process, on another group (no outbox, no worker).
    connector = ScimConnector({"base_url": server.base_url, "token_env": TOKEN_ENV})
    direct = EntitlementRef("wiki", "direct", {"group": "bench-direct"})
    direct_people = [PrincipalRef(f"direct{i:04d}@bench.test") for i in range(min(n, 100))]
    t0 = time.perf_counter()
    for index, principal in enumerate(direct_people):
        connector.grant(principal, direct, idempotency_key=f"bench-{index}")
    direct_elapsed = time.perf_counter() - t0
    t0 = time.perf_counter()
    for index, principal in enumerate(direct_people):
        connector.grant(principal, direct, idempotency_key=f"bench-again-{index}")
    repeat_elapsed = time.perf_counter() - t0

    ok = (
        sorted(members) == sorted(p.email for p in people)
        and all(count == 1 for count in users_per_person)
        and len(jobs) == n
    )
    return {
        "grants": n,
        "worker": "1 celery worker, solo pool, prefetch 1",
        "submit_seconds": round(submitted, 2),
        "through_worker_seconds": round(elapsed, 2),
        "through_worker_grants_per_second": round(n / elapsed, 1),
        "job_ms_p50": round(statistics.median(job_ms), 1),
        "job_ms_p95": round(job_ms[max(0, int(round(0.95 * len(job_ms))) - 1)], 1),
        "connector_only_new_grants_per_second": round(len(direct_people) / direct_elapsed, 1),
        "connector_only_repeat_grants_per_second": round(len(direct_people) / repeat_elapsed, 1),
        "downstream_members": len(members),
        "server": "scim2-server test server (in-memory, one process)",
        "ok": ok,
    }


if __name__ == "__main__":
    main()
