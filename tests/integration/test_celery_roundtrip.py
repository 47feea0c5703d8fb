"""A real Celery round trip: this process → Redis → a `celery worker` process → Redis/DB.

Needs PostgreSQL and Redis running (as `make test` ensures); a missing service fails
these tests, it never skips them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from audit.tasks import audit_checkpoint
from portal.celery import app as celery_app
from portal.core.health import HEARTBEAT_KEY
from portal.core.tasks import heartbeat, ping
from tests.audit.helpers import append_events, require_postgresql

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("integration")]

BASE_DIR = Path(settings.BASE_DIR)
TIMEOUT = 60.0


@dataclass
class Worker:
    process: subprocess.Popen
    queue: str
    log: Path
    checkpoint_file: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _redis() -> redis.Redis:
    url = settings.REDIS_URL
    assert url.startswith("redis://"), f"integration tests need REDIS_URL=redis://..., not {url!r}"
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable: {exc}")
    return client


def _database_url() -> str:
    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def _wait_for(condition, worker: Worker, what: str):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}):\n{worker.output()}")
        time.sleep(0.1)
    pytest.fail(f"timed out after {TIMEOUT}s waiting for {what}; worker log:\n{worker.output()}")


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Worker]:
    with django_db_blocker.unblock():
        require_postgresql()
        database_url = _database_url()
    _redis()
    tmp = tmp_path_factory.mktemp("worker")
    queue = f"test-roundtrip-{uuid.uuid4().hex[:12]}"
    log = tmp / "worker.log"
    checkpoint_file = tmp / "checkpoints.jsonl"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DATABASE_URL": database_url,
        "AUDIT_CHECKPOINT_FILE": str(checkpoint_file),
    }
    celery = Path(sys.executable).with_name("celery")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(celery),
                "-A",
                "portal",
                "worker",
                "--pool",
                "solo",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "INFO",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    handle = Worker(process=process, queue=queue, log=log, checkpoint_file=checkpoint_file)
    try:
        yield handle
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        client = redis.Redis.from_url(settings.REDIS_URL)
        for key in client.scan_iter(match=f"*{queue}*"):  # the queue and kombu's bindings
            client.delete(key)


@pytest.fixture
def real_queue():
    """Send for real (the suite runs tasks eagerly by default)."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


@pytest.mark.django_db
def test_ping_goes_through_redis_to_a_real_worker(worker, real_queue):
    r = _redis()
    token = uuid.uuid4().hex
    key = f"tollgate:pong:{token}"
    assert r.get(key) is None

    ping.apply_async(args=[token], queue=worker.queue)

    assert _wait_for(lambda: r.get(key), worker, f"the pong key {key}") == b"pong"
    assert 0 < r.ttl(key) <= 60
    r.delete(key)


@pytest.mark.django_db
def test_worker_heartbeat_makes_readyz_ready(worker, real_queue, client, admin, settings):
    settings.READYZ_REQUIRE_WORKER = True
    client.force_login(admin)
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    r = _redis()
    r.delete(HEARTBEAT_KEY)
    assert client.get("/readyz").json()["failing"] == ["worker"]

    heartbeat.apply_async(queue=worker.queue)

    _wait_for(lambda: r.get(HEARTBEAT_KEY), worker, "the worker heartbeat")
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    r.delete(HEARTBEAT_KEY)


@pytest.mark.django_db(transaction=True)
def test_worker_reads_the_test_database(worker, real_queue):
    """audit_checkpoint runs in the worker, reads the chain head and writes the checkpoint."""
    events = append_events(3, prefix="worker")
    expected = {"seq": events[-1].seq, "hash": events[-1].hash, "note": "interval"}

    audit_checkpoint.apply_async(queue=worker.queue)

    def checkpoint():
        if not worker.checkpoint_file.exists():
            return None
        lines = worker.checkpoint_file.read_text().splitlines()
        return json.loads(lines[-1]) if lines else None

    written = _wait_for(checkpoint, worker, "the audit checkpoint")
    assert {k: written[k] for k in expected} == expected
