"""Shared pieces of the provisioning fault tests: a restartable real Celery worker, a
throwaway PostgreSQL target database for the PostgreSQL connector, and helpers.

Roles are cluster-wide, so every role of a run carries the run's unique prefix and is
dropped (with the target database) in a finally.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection
from psycopg import sql

from portal.celery import app as celery_app

BASE_DIR = Path(settings.BASE_DIR)
ADMIN_DSN = os.environ.get(
    "TOLLGATE_TEST_PG_ADMIN_DSN", "postgres://postgres@127.0.0.1:5432/postgres"
)
TIMEOUT = 45.0
LEASE_SECONDS = 3  # short, so a killed worker's job is re-queued within the test
GRACE_SECONDS = 1


def database_url() -> str:
    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def redis_client() -> redis.Redis:
    url = settings.REDIS_URL
    assert url.startswith("redis://"), f"integration tests need REDIS_URL=redis://..., not {url!r}"
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable: {exc}")
    return client


# --- The PostgreSQL target ------------------------------------------------------------
@dataclass
class PgTarget:
    dbname: str
    prefix: str  # every role of the run starts with it
    dsn_env: str
    dsn: str

    def admin(self, dbname: str | None = None) -> psycopg.Connection:
        return psycopg.connect(ADMIN_DSN, dbname=dbname or self.dbname, autocommit=True)

    def role(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def create_role(self, name: str) -> str:
        role = self.role(name)
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        return role

    def login_for(self, email: str) -> str:
        return f"{self.prefix}u_{email.split('@')[0].replace('.', '_')}"

    def members(self, role: str) -> list[str]:
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT u.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
                " JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = %s ORDER BY 1",
                (role,),
            ).fetchall()
        return [row[0] for row in rows]

    def memberships_of(self, login: str) -> list[str]:
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
                " JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s ORDER BY 1",
                (login,),
            ).fetchall()
        return [row[0] for row in rows]

    def grant_directly(self, role: str, login: str) -> None:
        with self.admin() as conn:
            conn.execute(
                sql.SQL(
                    "DO $$ BEGIN CREATE ROLE {} NOLOGIN; EXCEPTION WHEN duplicate_object "
                    "THEN NULL; END $$"
                ).format(sql.Identifier(login))
            )
            conn.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(login))
            )

    def hold_login_lock(self, login: str) -> psycopg.Connection:
        """Hold the connector's per-login advisory lock: its grant/revoke of ``login`` waits."""
        conn = self.admin()
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"tollgate:{login}",))
        return conn

    def waiting_on_lock(self) -> bool:
        with self.admin() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = %s",
                (self.dbname,),
            ).fetchone()
        return row[0] > 0

    def config(self, **extra) -> dict:
        return {
            "dsn_env": self.dsn_env,
            "login_prefix": f"{self.prefix}u_",
            "login_domains": ["example.com"],  # the test people keep plain logins
            **extra,
        }


def make_pg_target() -> PgTarget:
    run = f"tgp{secrets.token_hex(3)}_"
    dbname = f"tg_prov_{secrets.token_hex(5)}"
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    info.update(dbname=dbname)
    dsn = psycopg.conninfo.make_conninfo(**info)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return PgTarget(dbname=dbname, prefix=run, dsn_env="TOLLGATE_PG_TARGET_DSN", dsn=dsn)


def drop_pg_target(target: PgTarget) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target.dbname))
        )
        roles = [
            row[0]
            for row in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname::text, %s)"
                " ORDER BY length(rolname) DESC",
                (target.prefix,),
            )
        ]
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


# --- The worker -----------------------------------------------------------------------
@dataclass
class ProvisioningWorker:
    queue: str
    notify_queue: str
    env: dict
    log: Path
    mail_dir: Path
    process: subprocess.Popen | None = None
    starts: list[float] = field(default_factory=list)

    def start(self) -> None:
        celery = Path(sys.executable).with_name("celery")
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                str(celery),
                "-A",
                "portal",
                "worker",
                "--pool",
                "solo",
                "-Q",
                f"{self.queue},{self.notify_queue}",
                "-n",
                f"{self.queue}-{len(self.starts)}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--prefetch-multiplier=1",
                "-l",
                "INFO",
            ],
            cwd=BASE_DIR,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        self.starts.append(time.monotonic())
        self.wait_ready()

    def wait_ready(self) -> None:
        from portal.core.tasks import ping

        r = redis_client()
        token = uuid.uuid4().hex
        ping.apply_async(args=[token], queue=self.queue)
        self.wait_for(lambda: r.get(f"tollgate:pong:{token}"), "the worker to start")
        r.delete(f"tollgate:pong:{token}")

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no ack, no cleanup."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def wait_for(self, condition, what: str, timeout: float = TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.output()}")
            time.sleep(0.05)
        pytest.fail(f"timed out after {timeout}s waiting for {what}; worker log:\n{self.output()}")

    def mails(self) -> list[str]:
        if not self.mail_dir.exists():
            return []
        return [p.read_text(errors="replace") for p in sorted(self.mail_dir.iterdir())]


def make_worker(tmp: Path, target: PgTarget, extra_env: dict | None = None) -> ProvisioningWorker:
    queue = f"test-sync-{uuid.uuid4().hex[:10]}"
    mail_dir = tmp / "mail"
    mail_dir.mkdir(exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DATABASE_URL": database_url(),
        "AUDIT_CHECKPOINT_FILE": "",
        "EMAIL_URL": f"filemail:///{mail_dir}",
        "TOLLGATE_SYNC_QUEUE": queue,
        "TOLLGATE_NOTIFY_QUEUE": f"{queue}-notify",
        "TOLLGATE_SYNC_BACKOFF_BASE": "0.2",
        "TOLLGATE_SYNC_BACKOFF_CAP": "1",
        "TOLLGATE_SYNC_MAX_ATTEMPTS": "30",
        "TOLLGATE_SYNC_LEASE_SECONDS": str(LEASE_SECONDS),
        "TOLLGATE_SYNC_SWEEP_GRACE_SECONDS": str(GRACE_SECONDS),
        target.dsn_env: target.dsn,
        "LOG_LEVEL": "INFO",
        **(extra_env or {}),
    }
    return ProvisioningWorker(
        queue=queue,
        notify_queue=f"{queue}-notify",
        env=env,
        log=tmp / "worker.log",
        mail_dir=mail_dir,
    )


def cleanup_queues(worker: ProvisioningWorker) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=f"*{worker.queue}*"):
        client.delete(key)


class BrokerDown:
    """Point this process's Celery producer at a closed port (Redis itself keeps running:
    other engineers' tests share it), then restore it."""

    def __enter__(self):
        self.url = celery_app.conf.broker_url
        celery_app.conf.broker_url = "redis://127.0.0.1:1/12"
        self._reset()
        return self

    def __exit__(self, *exc):
        celery_app.conf.broker_url = self.url
        self._reset()
        return False

    @staticmethod
    def _reset() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
