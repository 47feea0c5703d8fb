"""Load and chaos soak (O6): a fixed-rate mix against the real processes while components fail.

Runs, all on loopback: gunicorn (``deploy/gunicorn.conf.py``, 3 workers, multiprocess
metrics), a real Celery worker and beat, PostgreSQL (the machine's server, database
``tollgate_soak``) and a throw-away ``redis-server`` on a free port with its own data
directory (cache and broker). For ``--minutes`` (default 10) it sends, at fixed rates:

* ``check``     single checks (a share aimed at grants revoked during the run),
* ``batch``     batch checks of 20,
* ``page``      portal pages as a signed-in person,
* ``submit``/``approve``  an access request through the API, approved at once by the manager
  (the grant is then provisioned by the worker through the outbox),
* ``revoke``    revocations of held grants through the API (an admin's token),

and in turn: restarts Redis empty; restarts Redis from an older snapshot (``SAVE`` earlier,
then ``SHUTDOWN NOSAVE`` and a start on that dump); restarts PostgreSQL
(``pg_ctlcluster --skip-systemctl-redirect <version> main restart``; started again in a
``finally`` if it is down); SIGKILLs the worker (and starts a new one).

It writes ``bench/results/soak.json``: throughput and p50/p99 per kind before, during and after
each fault, every 5xx (or connection failure) with the window it falls in, the time to
recover, the RSS of every process over time (and its growth), and correctness: no check
answered "allowed" for a revocation committed before the check was sent (wrong allows), no
sync job lost (every approved request's grant is provisioned, every revocation carried out),
and ``verify_audit`` clean at the end.

    python bench/soak.py [--minutes 10] [--keep]       (make soak; SOAK_MINUTES=3 make soak)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _common import drop_database, recreate_database  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "soak.json"
PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "tollgate_soak"
BIN = Path(sys.executable).parent

CHECK_PEOPLE = 200
CHECK_ENTS = 5
REQUESTERS = 40
REQ_ENTS = 10
# requests per second of each kind (the machine has two shared cores)
RATES = {"check": 30.0, "batch": 3.0, "page": 3.0, "submit": 0.5, "revoke": 0.5}
THREADS = {"check": 4, "batch": 2, "page": 2, "submit": 1, "revoke": 1}
REVOKED_SHARE = 0.3  # of single checks, aimed at pairs already revoked


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_version() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def pg_ctl(action: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", action],
        capture_output=True,
        text=True,
    )


def pg_is_up() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0


# --- processes ---------------------------------------------------------------------------


class Redis:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.dir), "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        for _ in range(100):
            if self.client().ping():
                return
        raise RuntimeError("redis-server did not start")

    def client(self):
        import redis

        for _ in range(50):
            try:
                c = redis.Redis(port=self.port, socket_timeout=2)
                c.ping()
                return c
            except redis.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("redis-server unreachable")

    def shutdown_nosave(self) -> None:
        import redis

        with contextlib.suppress(redis.ConnectionError):
            redis.Redis(port=self.port, socket_timeout=2).shutdown(nosave=True)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def snapshot(self) -> Path:
        self.client().save()
        saved = self.dir / "snapshot.rdb"
        shutil.copy(self.dir / "dump.rdb", saved)
        return saved

    def restart(self, *, from_snapshot: Path | None = None) -> None:
        self.shutdown_nosave()
        dump = self.dir / "dump.rdb"
        dump.unlink(missing_ok=True)
        if from_snapshot is not None:
            shutil.copy(from_snapshot, dump)
        self.start()


def children(pid: int) -> list[int]:
    try:
        raw = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in raw.split()]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --- seed ----------------------------------------------------------------------------------


def seed(env: dict) -> dict:
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from access.models import ApprovalPolicy, Entitlement, Grant, PolicyStage, Service
    from accounts.models import Membership, PlatformRole, Team, User
    from portal.core.actors import CLI
    from tokens.management.commands.create_service_token import service_token_create
    from tokens.services import api_token_create

    platform = Team.objects.create(slug="platform", name="Platform")
    eng = Team.objects.create(slug="eng", name="Engineering", parent=platform)
    admin = User.objects.create_user("admin@soak.test", None, team=platform)
    admin.groups.add(Group.objects.get_or_create(name=PlatformRole.PLATFORM_ADMIN)[0])
    manager = User.objects.create_user("manager@soak.test", None, team=eng)
    Membership.objects.create(team=platform, user=admin)
    Membership.objects.create(team=eng, user=manager, role=Membership.Role.LEAD)
    requesters = User.objects.bulk_create(
        User(email=f"r{i}@soak.test", name=f"R {i}", password="!", team=eng, manager=manager)  # noqa: S106
        for i in range(REQUESTERS)
    )
    people = User.objects.bulk_create(
        User(email=f"c{i}@soak.test", name=f"C {i}", password="!", team=eng)  # noqa: S106
        for i in range(CHECK_PEOPLE)
    )
    Membership.objects.bulk_create(Membership(team=eng, user=u) for u in [*requesters, *people])
    checked = Service.objects.create(
        slug="soak-check", name="Soak check", owner_team=platform, connector="fake",
        connector_config={"namespace": "soak-check"},
    )  # fmt: skip
    requested = Service.objects.create(
        slug="soak-req", name="Soak requests", owner_team=platform, connector="fake",
        connector_config={"namespace": "soak-req"},
    )  # fmt: skip
    policy = ApprovalPolicy.objects.create(slug="manager-approves", name="Manager approves")
    PolicyStage.objects.create(policy=policy, order=0, approver_kind="manager", required=1)
    check_ents = [
        Entitlement.objects.create(service=checked, slug=f"e{j}", name=f"E {j}", risk="low")
        for j in range(CHECK_ENTS)
    ]
    req_ents = [
        Entitlement.objects.create(
            service=requested,
            slug=f"r{j}",
            name=f"R {j}",
            risk="low",
            policy=policy,
            max_duration_days=90,
            default_duration_days=30,
        )  # fmt: skip
        for j in range(REQ_ENTS)
    ]
    now = timezone.now()
    grants = Grant.objects.bulk_create(
        Grant(
            principal=p,
            entitlement=e,
            status=Grant.Status.ACTIVE,
            starts_at=now,
            ends_at=now + timezone.timedelta(days=60),
            reason="soak seed",
        )  # fmt: skip
        for p in people
        for e in check_ents
    )
    _t, service_token = service_token_create(
        actor=CLI, service=checked, name="soak", scope_all=True
    )
    tokens = {
        "admin": api_token_create(actor=admin, user=admin, name="soak")[1],
        "manager": api_token_create(actor=manager, user=manager, name="soak")[1],
        "requesters": [api_token_create(actor=u, user=u, name="soak")[1] for u in requesters],
    }
    session = SessionStore()
    session[SESSION_KEY] = str(requesters[0].pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = requesters[0].get_session_auth_hash()
    session.create()
    return {
        "service_token": service_token,
        "tokens": tokens,
        "session": session.session_key,
        "pairs": [(g.id, g.principal.email, g.entitlement.slug) for g in grants],
        "req_ents": [e.id for e in req_ents],
    }


# --- load ----------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since the start, when sent
    kind: str
    ms: float
    status: int  # 0: no answer (connection refused, timeout)


@dataclass
class State:
    start: float
    base: str
    seeded: dict
    samples: list[Sample] = field(default_factory=list)
    revoked_at: dict[tuple[str, str], float] = field(default_factory=dict)
    wrong_allows: list[dict] = field(default_factory=list)
    approved: list[int] = field(default_factory=list)
    revoked_grants: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def now(self) -> float:
        return time.monotonic() - self.start


def call(state: State, kind: str, method: str, path: str, *, token=None, body=None, cookie=None):
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = cookie
    req = urllib.request.Request(state.base + path, data=data, headers=headers, method=method)  # noqa: S310 (loopback http)
    sent = state.now()
    t0 = time.perf_counter()
    status, payload = 0, None
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (loopback http)
            status = resp.status
            raw = resp.read()
            if resp.headers.get("Content-Type", "").startswith("application/json"):
                payload = json.loads(raw)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, TimeoutError):
        status = 0
    ms = (time.perf_counter() - t0) * 1000
    with state.lock:
        state.samples.append(Sample(sent, kind, ms, status))
    return sent, status, payload


def _check_answer(state: State, sent: float, principal: str, ent: str, allowed: bool) -> None:
    revoked = state.revoked_at.get((principal, ent))
    if allowed and revoked is not None and sent > revoked:
        with state.lock:
            state.wrong_allows.append(
                {
                    "t": round(sent, 3),
                    "principal": principal,
                    "entitlement": ent,
                    "revoked_at": round(revoked, 3),
                }  # fmt: skip
            )


def _pick(state: State, rng: random.Random) -> tuple[str, str]:
    revoked = list(state.revoked_at)
    if revoked and rng.random() < REVOKED_SHARE:
        return rng.choice(revoked)
    _gid, principal, ent = rng.choice(state.seeded["pairs"])
    return principal, ent


def do_check(state: State, rng: random.Random) -> None:
    principal, ent = _pick(state, rng)
    body = {"principal": principal, "service": "soak-check", "entitlement": ent}
    sent, status, payload = call(
        state, "check", "POST", "/api/v1/check", token=state.seeded["service_token"], body=body
    )
    if status == 200 and payload is not None:
        _check_answer(state, sent, principal, ent, payload["allowed"])


def do_batch(state: State, rng: random.Random) -> None:
    items = [_pick(state, rng) for _ in range(20)]
    body = {
        "checks": [{"principal": p, "service": "soak-check", "entitlement": e} for p, e in items]
    }
    sent, status, payload = call(
        state,
        "batch",
        "POST",
        "/api/v1/check/batch",
        token=state.seeded["service_token"],
        body=body,
    )
    if status == 200 and payload is not None:
        for (p, e), result in zip(items, payload["results"], strict=True):
            _check_answer(state, sent, p, e, result["allowed"])


PAGES = ("/", "/catalog/", "/requests/", "/grants/")


def do_page(state: State, rng: random.Random) -> None:
    call(state, "page", "GET", rng.choice(PAGES), cookie=f"sessionid={state.seeded['session']}")


def do_submit(state: State, rng: random.Random) -> None:
    with state.lock:
        n = len(state.approved) + sum(1 for s in state.samples if s.kind == "submit")
    tokens = state.seeded["tokens"]["requesters"]
    token = tokens[n % len(tokens)]
    ent = state.seeded["req_ents"][(n // len(tokens)) % len(state.seeded["req_ents"])]
    body = {"entitlement": ent, "justification": "soak", "duration_days": 30}
    _sent, status, payload = call(
        state, "submit", "POST", "/api/v1/requests/", token=token, body=body
    )
    if status != 201 or payload is None:
        return
    _s, status, _p = call(
        state, "approve", "POST", f"/api/v1/requests/{payload['id']}/approve",
        token=state.seeded["tokens"]["manager"], body={"reason": "soak"},
    )  # fmt: skip
    if status == 200:
        with state.lock:
            state.approved.append(payload["id"])


def do_revoke(state: State, rng: random.Random) -> None:
    with state.lock:
        held = [p for p in state.seeded["pairs"] if (p[1], p[2]) not in state.revoked_at]
    if not held:
        return
    gid, principal, ent = rng.choice(held)
    _sent, status, _payload = call(
        state, "revoke", "POST", f"/api/v1/grants/{gid}/revoke",
        token=state.seeded["tokens"]["admin"], body={"reason": "soak"},
    )  # fmt: skip
    if status == 200:
        committed = state.now()  # the answer came after the commit
        with state.lock:
            state.revoked_at[(principal, ent)] = committed
            state.revoked_grants.append(gid)


ACTIONS = {"check": do_check, "batch": do_batch, "page": do_page, "submit": do_submit,
           "revoke": do_revoke}  # fmt: skip


def driver(state: State, kind: str, index: int) -> None:
    """Send ``kind`` at its fixed rate (shared by its threads); a late tick is sent at once."""
    rng = random.Random(hash((kind, index)))
    interval = THREADS[kind] / RATES[kind]
    next_at = state.now() + rng.random() * interval
    while not state.stop.is_set():
        delay = next_at - state.now()
        if delay > 0:
            state.stop.wait(delay)
            if state.stop.is_set():
                return
        ACTIONS[kind](state, rng)
        next_at += interval


# --- the run -------------------------------------------------------------------------------


class Soak:
    def __init__(self, minutes: float, workdir: Path, faults: set[str] | None = None):
        self.seconds = minutes * 60
        self.only = faults
        self.workdir = workdir
        self.redis = Redis(workdir)
        self.port = free_port()
        self.metrics_dir = workdir / "metrics"
        self.metrics_dir.mkdir()
        self.checkpoints = workdir / "audit-checkpoints.jsonl"
        self.gunicorn: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.beat: subprocess.Popen | None = None
        self.rss: dict[str, list[tuple[float, float]]] = {}
        self.faults: list[dict] = []
        self.exits: list[dict] = []  # processes that died on their own (the harness restarts them)

    def env(self) -> dict:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=f"{PG}/{DB_NAME}",
            REDIS_URL=self.redis.url,
            CELERY_BROKER_URL=self.redis.url,
            DEBUG="false",
            LOG_LEVEL="WARNING",
            CELERY_TASK_ALWAYS_EAGER="false",
            DJANGO_SETTINGS_MODULE="portal.settings",
            AUDIT_CHECKPOINT_FILE=str(self.checkpoints),
            PROMETHEUS_MULTIPROC_DIR=str(self.metrics_dir),
            TOLLGATE_SYNC_SWEEP_GRACE_SECONDS="10",
            TOLLGATE_SYNC_LEASE_SECONDS="30",
            WORKER_HEARTBEAT_MAX_AGE="30",
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GUNICORN_WORKERS="3",
        )
        return env

    def start_web(self) -> None:
        log = open(self.workdir / "web.log", "a")  # noqa: SIM115 (the child keeps it)
        self.gunicorn = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "portal.wsgi:application",
             "--log-level", "warning"],
            cwd=ROOT, env=self.env(), stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2).read()  # noqa: S310
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def start_worker(self) -> None:
        log = open(self.workdir / "worker.log", "a")  # noqa: SIM115 (the child keeps it)
        self.worker = subprocess.Popen(
            [str(BIN / "celery"), "-A", "portal", "worker", "-Q", "default,sync,ingest,notify,reports",
             "-c", "2", "--prefetch-multiplier=1", "-l", "WARNING", "-n", f"soak{time.time_ns()}@%h"],
            cwd=ROOT, env=self.env(), stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip

    def start_beat(self) -> None:
        log = open(self.workdir / "beat.log", "a")  # noqa: SIM115
        self.beat = subprocess.Popen(
            [str(BIN / "celery"), "-A", "portal", "beat", "-l", "WARNING",
             "-s", str(self.workdir / "beat-schedule")],
            cwd=ROOT, env=self.env(), stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip

    def sample_rss(self, t: float) -> None:
        roles = {"redis": self.redis.proc, "gunicorn": self.gunicorn, "worker": self.worker,
                 "beat": self.beat}  # fmt: skip
        for role, proc in roles.items():
            if proc is None or proc.poll() is not None:
                continue
            for i, pid in enumerate([proc.pid, *children(proc.pid)]):
                mb = rss_mb(pid)
                if mb is not None:
                    name = f"{role}:{'main' if i == 0 else 'child'}:{pid}"
                    self.rss.setdefault(name, []).append((round(t, 1), round(mb, 1)))

    def fault(self, state: State, name: str, action) -> None:
        t0 = state.now()
        print(f"[{t0:7.1f}s] fault: {name}", flush=True)
        detail = action() or {}
        self.faults.append({"fault": name, "t": round(t0, 2),
                            "component_down_s": round(state.now() - t0, 2), **detail})  # fmt: skip

    def supervise(self, state: State) -> None:
        """What systemd (Restart=always) does in production: start a process that exited."""
        for name, proc, start in (("worker", self.worker, self.start_worker),
                                  ("beat", self.beat, self.start_beat)):  # fmt: skip
            if proc is not None and proc.poll() is not None:
                self.exits.append({"process": name, "t": round(state.now(), 1),
                                   "returncode": proc.returncode})  # fmt: skip
                print(f"[{state.now():7.1f}s] {name} exited ({proc.returncode}); restarting")
                start()

    def kill_worker(self) -> dict:
        assert self.worker is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()
        time.sleep(2)
        self.start_worker()
        return {}

    def restart_pg(self) -> dict:
        result = pg_ctl("restart")
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctlcluster restart failed: {result.stderr}")
        for _ in range(100):
            if pg_is_up():
                break
            time.sleep(0.1)
        return {}

    def run(self) -> dict:
        recreate_database(DB_NAME)
        self.redis.start()
        seed_env = self.env()
        del seed_env["PROMETHEUS_MULTIPROC_DIR"]  # this process's counts are not the portal's
        seeded = seed(seed_env)
        self.start_web()
        self.start_worker()
        self.start_beat()
        state = State(start=time.monotonic(), base=f"http://127.0.0.1:{self.port}", seeded=seeded)
        threads = [
            threading.Thread(target=driver, args=(state, kind, i), daemon=True)
            for kind, n in THREADS.items()
            for i in range(n)
        ]
        for t in threads:
            t.start()
        total = self.seconds
        schedule = [
            (0.15, "redis_restart_empty", lambda: self.redis.restart() or {}),
            (0.30, "redis_snapshot_taken", lambda: {"snapshot": str(self.snapshot_taken())}),
            (0.45, "redis_restore_older_snapshot",
             lambda: self.redis.restart(from_snapshot=self.redis.dir / "snapshot.rdb") or {}),
            (0.60, "postgresql_restart", self.restart_pg),
            (0.75, "worker_sigkill", self.kill_worker),
        ]  # fmt: skip
        if self.only is not None:
            schedule = [f for f in schedule if f[1] in self.only or f[1] == "redis_snapshot_taken"]
        try:
            while state.now() < total:
                self.sample_rss(state.now())
                self.supervise(state)
                while schedule and state.now() >= schedule[0][0] * total:
                    _at, name, action = schedule.pop(0)
                    self.fault(state, name, action)
                time.sleep(min(2.0, max(0.1, total - state.now())))
        finally:
            state.stop.set()
            for t in threads:
                t.join(timeout=20)
        run_s = state.now()
        drained = self.drain(seeded, state)
        metrics_text = self.scrape()
        verify = subprocess.run(
            [sys.executable, "manage.py", "verify_audit", "--no-checkpoint"],
            cwd=ROOT, env=self.env(), capture_output=True, text=True,
        )  # fmt: skip
        return self.report(state, run_s, drained, verify, metrics_text)

    def snapshot_taken(self) -> Path:
        return self.redis.snapshot()

    def drain(self, seeded: dict, state: State, timeout: float = 240.0) -> dict:
        """Wait for every job to finish (the sweeper re-sends what a fault lost)."""
        from django.db import OperationalError, connections
        from django.db.models import Count

        from access.models import AccessRequest, Grant, SyncJob

        deadline = time.monotonic() + timeout
        t0 = time.monotonic()
        connections.close_all()  # this process's connection did not survive the PostgreSQL restart
        while time.monotonic() < deadline:
            try:
                open_jobs = SyncJob.objects.filter(status__in=("pending", "running")).count()
            except OperationalError:
                connections.close_all()
                time.sleep(1)
                continue
            if open_jobs == 0:
                break
            self.sample_rss(state.now())
            self.supervise(state)
            time.sleep(2)
        statuses = {
            row["status"]: row["n"]
            for row in SyncJob.objects.values("status").annotate(n=Count("pk"))
        }
        granted = Grant.objects.filter(entitlement__service__slug="soak-req")
        missing_grant_jobs = granted.exclude(sync_jobs__operation="grant").count()
        not_active = granted.exclude(status=Grant.Status.ACTIVE).count()
        # The mix cycles through person x entitlement pairs, so a later approval of a pair
        # extends the grant the first one made: count pairs, not requests.
        approved_pairs = set(
            AccessRequest.objects.filter(pk__in=state.approved).values_list(
                "principal_id", "entitlement_id"
            )
        )
        active_pairs = set(
            granted.filter(status=Grant.Status.ACTIVE).values_list("principal_id", "entitlement_id")
        )
        revoked = Grant.objects.filter(pk__in=state.revoked_grants)
        not_revoked = revoked.exclude(status=Grant.Status.REVOKED).count()
        missing_revoke_jobs = revoked.exclude(sync_jobs__operation="revoke").count()
        return {
            "drain_s": round(time.monotonic() - t0, 1),
            "jobs_by_status": statuses,
            "approved_requests": len(state.approved),
            "approved_pairs": len(approved_pairs),
            "approvals_extending_a_held_grant": len(state.approved) - len(approved_pairs),
            "granted_through_requests": granted.count(),
            "grants_not_active": not_active,
            "grants_without_grant_job": missing_grant_jobs,
            "approved_pairs_without_active_grant": len(approved_pairs - active_pairs),
            "revocations": len(state.revoked_grants),
            "revoked_grants_not_revoked": not_revoked,
            "revoked_grants_without_revoke_job": missing_revoke_jobs,
        }

    def scrape(self) -> str:
        try:
            return (
                urllib.request.urlopen(  # noqa: S310 (loopback http)
                    f"http://127.0.0.1:{self.port}/metrics", timeout=10
                )
                .read()
                .decode()
            )
        except OSError as exc:
            return f"# scrape failed: {exc}"

    # --- the report ---------------------------------------------------------------------

    def report(self, state, run_s, drained, verify, metrics_text) -> dict:
        samples = sorted(state.samples, key=lambda s: s.t)
        faults = [f for f in self.faults if f["fault"] != "redis_snapshot_taken"]
        bad = [s for s in samples if s.status == 0 or s.status >= 500]
        edges = [f["t"] for f in faults] + [run_s]
        windows = []
        first = faults[0]["t"] if faults else run_s
        windows.append(("baseline", max(0.0, first - 30), first))
        for i, f in enumerate(faults):
            end = edges[i + 1]
            errors_after = [s.t for s in bad if f["t"] <= s.t < end]
            recovered = (
                max(errors_after) + 0.001 if errors_after else f["t"] + f["component_down_s"]
            )
            f["recovery_s"] = round(recovered - f["t"], 2)
            f["errors"] = len(errors_after)
            windows.append((f"{f['fault']}:during", f["t"], recovered))
            windows.append((f"{f['fault']}:after", recovered, min(end, recovered + 30)))

        def stats(lo: float, hi: float) -> dict:
            out = {}
            for kind in ("check", "batch", "page", "submit", "approve", "revoke"):
                ms = [s.ms for s in samples if s.kind == kind and lo <= s.t < hi and s.status]
                if not ms:
                    continue
                ms.sort()
                out[kind] = {
                    "n": len(ms),
                    "per_s": round(len(ms) / max(hi - lo, 0.001), 2),
                    "p50_ms": round(ms[len(ms) // 2], 1),
                    "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
                }
            return out

        def window_of(t: float) -> str:
            name = "between"
            for label, lo, hi in windows:
                if lo <= t < hi:
                    name = label
            return name

        growth = {}
        for name, series in self.rss.items():
            if len(series) < 8 or series[-1][0] - series[0][0] < 0.5 * run_s:
                continue  # restarted during the run: too short to judge
            n = len(series)
            early = statistics.median(v for _, v in series[n // 5 : n // 5 + max(2, n // 10)])
            late = statistics.median(v for _, v in series[-max(2, n // 10) :])
            growth[name] = round(100 * (late - early) / early, 1)
        from prometheus_client.parser import text_string_to_metric_families

        metric_sums: dict[str, float] = {}
        try:
            for fam in text_string_to_metric_families(metrics_text):
                for s in fam.samples:
                    if s.name in ("tollgate_check_answers_total", "tollgate_check_decisions_total"):
                        key = f"{s.name}{{{','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))}}}"
                        metric_sums[key] = metric_sums.get(key, 0) + s.value
                    if s.name == "tollgate_celery_task_runs_total":
                        metric_sums["celery_task_runs"] = (
                            metric_sums.get("celery_task_runs", 0) + s.value
                        )
        except Exception as exc:  # noqa: BLE001 - the report goes on without it
            metric_sums["parse_error"] = str(exc)  # type: ignore[assignment]
        counts = {k: sum(1 for s in samples if s.kind == k) for k in ACTIONS}
        counts["approve"] = sum(1 for s in samples if s.kind == "approve")
        return {
            "minutes": round(run_s / 60, 2),
            "rates_per_s": RATES,
            "requests": counts,
            "throughput_per_s": round(len(samples) / run_s, 2),
            "whole_run": stats(0, run_s),
            "windows": {
                label: {"from_s": round(lo, 1), "to_s": round(hi, 1), **stats(lo, hi)}
                for label, lo, hi in windows
            },  # fmt: skip
            "faults": faults,
            "process_exits_restarted_by_harness": self.exits,
            "errors_5xx_or_no_answer": {
                "count": len(bad),
                "by_window": {
                    w: sum(1 for s in bad if window_of(s.t) == w)
                    for w in sorted({window_of(s.t) for s in bad})
                },  # fmt: skip
                "first": [
                    {"t": round(s.t, 2), "kind": s.kind, "status": s.status} for s in bad[:20]
                ],
            },
            "correctness": {
                "revocations_committed": len(state.revoked_at),
                "wrong_allows": len(state.wrong_allows),
                "wrong_allow_examples": state.wrong_allows[:10],
                **drained,
                "verify_audit_ok": verify.returncode == 0,
                "verify_audit_output": (verify.stdout + verify.stderr).strip()[-500:],
            },
            "rss_growth_pct_long_lived": growth,
            "rss_max_growth_pct": max(growth.values()) if growth else None,
            "rss_mb_series": self.rss,
            "metrics_at_end": metric_sums,
        }

    def stop(self) -> None:
        for proc in (self.gunicorn, self.worker, self.beat):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        self.redis.shutdown_nosave()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--faults", default="", help="comma-separated subset of the faults (default: all)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tollgate-soak-"))
    only = set(args.faults.split(",")) if args.faults else None
    soak = Soak(args.minutes, workdir, only)
    try:
        figures = soak.run()
    finally:
        soak.stop()
        if not pg_is_up():  # never leave the machine's PostgreSQL down
            pg_ctl("start")
        if not args.keep:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # noqa: BLE001, S110 - Django may not be set up
                pass
            drop_database(DB_NAME)
    figures["workdir"] = str(workdir)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=1, default=str) + "\n")
    summary = {k: v for k, v in figures.items() if k not in ("rss_mb_series", "windows")}
    print(json.dumps(summary, indent=1, default=str))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
