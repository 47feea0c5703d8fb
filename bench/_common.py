"""Shared helpers for the cost benchmarks: a dedicated PostgreSQL database, timing, RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tollgate_bench_costs"
)


def ensure_database() -> dict:
    import psycopg

    name = DB_URL.rsplit("/", 1)[1]
    admin_url = DB_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    env = dict(
        os.environ, DATABASE_URL=DB_URL, CELERY_TASK_ALWAYS_EAGER="true", LOG_LEVEL="WARNING"
    )
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def run_measured(cmd: list[str], env: dict) -> tuple[float, int, str]:
    """Run ``cmd``; return wall seconds, the child's peak RSS in MB, and its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed: {err[-2000:]}")
    return elapsed, usage.ru_maxrss // 1024, out


def write_results(name: str, figures: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(json.dumps(figures, indent=2, default=str))
    print(f"written to {path.relative_to(ROOT)}")


# --- a dedicated database per benchmark, and Django in this process ----------------------

PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


def recreate_database(name: str) -> None:
    """Drop ``name`` (closing its sessions) and create it empty."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(name: str, *, migrate: bool = True) -> None:
    """Django on database ``name``: production-like (DEBUG off), tasks in-process, no Redis,
    no audit checkpoint file, audit log lines at WARNING; migrated unless told otherwise."""
    os.environ["DATABASE_URL"] = f"{PG}/{name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["DEBUG"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    os.environ["AUDIT_CHECKPOINT_FILE"] = ""
    os.environ.pop("REDIS_URL", None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import logging

    import django

    django.setup()
    logging.getLogger("portal.audit").setLevel(logging.WARNING)
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
