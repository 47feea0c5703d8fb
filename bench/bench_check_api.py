"""Check API (A10) under gunicorn: p50/p99 latency and throughput beside /healthz.

Builds a dedicated PostgreSQL database (``tollgate_bench_check``) with 1M grants
(100k people x 10 entitlements each, over 100 services x 10 entitlements; 90 % active,
5 % revoked, 5 % expired), inserted with one ``generate_series`` statement. Serves the
portal with gunicorn (2 sync workers, production settings, Redis cache) on 127.0.0.1
and loads it from ``wrk`` (a separate process) with a service token holding
``check:*``. Phases, each ``--seconds`` long, in one run against one server:

1. ``healthz``     - GET /healthz (the trivial endpoint: middleware only), sent by the
                     same Lua generator as the checks (same random body, as a GET it
                     ignores), so that wrk, which shares the two cores, does the same work;
2. ``check_cold``  - the cache is flushed, then random (principal, entitlement) pairs
                     drawn from all 1M grants (almost every request misses);
3. ``check_hot``   - pairs drawn from a 5k working set, after one warm-up pass through
                     the batch endpoint and an unmeasured hot phase twice as long (which
                     fills each worker's near cache), run in rounds alternating with
                     ``healthz`` (both see the same load): the steady state of a service
                     asking about its active users.

Cache hit ratio per phase comes from Redis ``keyspace_hits/misses`` deltas: in a warm
phase the version keys always hit, so every miss is an answer miss (conservative): the
share of checks answered without the database. The near-cache hit ratio (checks answered
from a worker's memory, no Redis round trip) is 1 - MGET calls / requests, from Redis
``INFO commandstats``; each of the two workers fills its own near cache during round 1.
Results: bench/results/check_api.json. Targets: p99 <= 10 ms, throughput >= 0.8x healthz.

    .venv/bin/python bench/bench_check_api.py [--seconds 10] [--rounds 3] [--connections 4] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _common import drop_database, recreate_database  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "check_api.json"
PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "tollgate_bench_check"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
PORT = int(os.environ.get("BENCH_PORT", "18765"))

PEOPLE = 100_000
SERVICES = 100
ENTS_PER_SERVICE = 10
GRANTS_PER_PERSON = 10  # 1M grants
HOT_PEOPLE = 500  # x 10 entitlements = 5k hot pairs
TARGET_P99_MS = 10.0
TARGET_RATIO = 0.8


def server_env() -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{PG}/{DB_NAME}",
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        TOLLGATE_ENV="production",
        DEBUG="false",
        SECRET_KEY="bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",  # noqa: S106
        AUDIT_CHAIN_KEY="bench-only-audit-chain-key-0123456789",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",  # loopback without a TLS proxy
        LOG_LEVEL="WARNING",
        CELERY_TASK_ALWAYS_EAGER="true",
        DJANGO_SETTINGS_MODULE="portal.settings",
    )
    return env


def populate(env: dict) -> tuple[str, int]:
    """Migrate, insert the catalog, people and 1M grants; return (token, first user id)."""
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from access.models import Entitlement, Service
    from accounts.models import Team, User
    from portal.core.actors import CLI
    from tokens.management.commands.create_service_token import service_token_create

    team = Team.objects.create(slug="bench", name="Bench")
    services = Service.objects.bulk_create(
        Service(slug=f"s-{i}", name=f"S {i}", owner_team=team) for i in range(SERVICES)
    )
    Entitlement.objects.bulk_create(
        Entitlement(
            service=svc,
            slug=f"e-{j}",
            name=f"E {j}",
            risk="low",
            max_duration_days=90,
            default_duration_days=30,
        )
        for svc in services
        for j in range(ENTS_PER_SERVICE)
    )
    User.objects.bulk_create(
        (
            User(email=f"u{i}@bench.test", name=f"U {i}", password="!", team=team)  # noqa: S106
            for i in range(PEOPLE)
        ),
        batch_size=10_000,
    )
    first_uid = User.objects.order_by("id").values_list("id", flat=True).first()
    n_ents = SERVICES * ENTS_PER_SERVICE
    with connection.cursor() as cur:
        cur.execute("SELECT min(id) FROM access_entitlement")
        first_eid = cur.fetchone()[0]
        # person u holds entitlements (u*7 + k) mod 1000, k = 0..9: ten distinct ones.
        # Entitlement ids follow service order (bulk_create), so id = first + s*10 + e.
        cur.execute(
            """
            INSERT INTO access_grant (principal_id, entitlement_id, status, starts_at, ends_at,
                reason, approved_by, revoke_reason, version, created_at, updated_at, break_glass,
                revoked_at)
            SELECT %(u0)s + u, %(e0)s + ((u * 7 + k) %% %(ne)s),
                   CASE WHEN (u + k) %% 20 = 0 THEN 'revoked' ELSE 'active' END,
                   now() - interval '30 days',
                   CASE WHEN (u + k) %% 20 = 1 THEN now() - interval '1 day'
                        ELSE now() + interval '60 days' END,
                   'bench', '[]'::jsonb, '', 1, now(), now(), false,
                   CASE WHEN (u + k) %% 20 = 0 THEN now() - interval '2 days' END
            FROM generate_series(0, %(np)s - 1) AS u, generate_series(0, %(g)s - 1) AS k
            """,
            {"u0": first_uid, "e0": first_eid, "ne": n_ents, "np": PEOPLE, "g": GRANTS_PER_PERSON},
        )
        cur.execute("ANALYZE")
        cur.execute("SELECT count(*) FROM access_grant")
        total = cur.fetchone()[0]
    assert total == PEOPLE * GRANTS_PER_PERSON, total
    _token, plaintext = service_token_create(
        actor=CLI, service=services[0], name="bench", scope_all=True
    )
    return plaintext, first_uid


LUA = """
local mode = "%(mode)s"
local u0, people, hot, ne = %(u0)d, %(people)d, %(hot)d, %(ne)d
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end
function init(args)
  math.randomseed(os.time() * 1000 + tid)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  local span = (mode == "hot") and hot or people
  local u = math.random(0, span - 1)
  local k = math.random(0, 9)
  local e = (u * 7 + k) %% ne
  local body = string.format(
    '{"principal": "%%d", "service": "s-%%d", "entitlement": "e-%%d"}',
    u0 + u, math.floor(e / 10), e %% 10)
  if mode == "health" then
    -- the trivial endpoint gets the same generated request, as a GET it ignores
    return wrk.format("GET", "/healthz", nil, body)
  end
  return wrk.format(nil, "/api/v1/check", nil, body)
end
"""


def wrk(path: str, seconds: int, conns: int, token: str, script: str | None) -> dict:
    cmd = ["wrk", "-t", str(min(conns, 2)), "-c", str(conns), "-d", f"{seconds}s", "--latency"]
    cmd += ["-H", f"Authorization: Bearer {token}"]
    if script:
        cmd += ["-s", script]
    cmd.append(f"http://127.0.0.1:{PORT}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def _ms(value: str) -> float:
    num, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(num) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def merge_rounds(runs: list[dict]) -> dict:
    """Requests and rps summed over the rounds; latency percentiles: the worst round's."""
    seconds = sum(r["requests"] / r["rps"] for r in runs if r["rps"])
    requests = sum(r["requests"] for r in runs)
    return {
        "requests": requests,
        "rps": round(requests / seconds, 2) if seconds else 0.0,
        "p50_ms": max(r["p50_ms"] for r in runs),
        "p90_ms": max(r["p90_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "p99_ms_per_round": [r["p99_ms"] for r in runs],
        "non_2xx": sum(r["non_2xx"] for r in runs),
    }


def parse_wrk(out: str) -> dict:
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(pct["50"]),
        "p90_ms": _ms(pct["90"]),
        "p99_ms": _ms(pct["99"]),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
    }


def redis_stats(client) -> tuple[int, int]:
    info = client.info("stats")
    return info["keyspace_hits"], info["keyspace_misses"]


def mget_calls(client) -> int:
    return int(client.info("commandstats").get("cmdstat_mget", {}).get("calls", 0))


def wait_for_server(proc) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited at start-up")
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=0.2):
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=2).read()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def smoke(token: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/api/v1/check",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 (loopback http)
        return json.loads(resp.read())


def warm_working_set(token: str, u0: int) -> None:
    n_ents = SERVICES * ENTS_PER_SERVICE
    pairs = [(u, k) for u in range(HOT_PEOPLE) for k in range(GRANTS_PER_PERSON)]
    for i in range(0, len(pairs), 100):
        checks = []
        for u, k in pairs[i : i + 100]:
            e = (u * 7 + k) % n_ents
            checks.append({"principal": str(u0 + u), "service": f"s-{e // 10}",
                           "entitlement": f"e-{e % 10}"})  # fmt: skip
        req = urllib.request.Request(
            f"http://127.0.0.1:{PORT}/api/v1/check/batch",
            data=json.dumps({"checks": checks}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback http)
            assert len(json.loads(resp.read())["results"]) == len(checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    import redis

    env = server_env()
    rclient = redis.Redis.from_url(REDIS_URL)
    t0 = time.perf_counter()
    recreate_database(DB_NAME)
    token, u0 = populate(env)
    setup_s = time.perf_counter() - t0
    rclient.flushdb()
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "portal.wsgi:application", "-w", "2",
         "-b", f"127.0.0.1:{PORT}", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    figures: dict = {}
    try:
        wait_for_server(server)
        # Correctness on the loaded data before timing anything.
        sample = {
            "allowed": smoke(token, {"principal": str(u0 + 2), "service": "s-1", "entitlement": "e-4"}),
            "revoked": smoke(token, {"principal": str(u0), "service": "s-0", "entitlement": "e-0"}),
            "expired": smoke(token, {"principal": str(u0), "service": "s-0", "entitlement": "e-1"}),
        }  # fmt: skip
        assert sample["allowed"]["allowed"] is True, sample
        assert sample["revoked"]["allowed"] is False and "revoked" in sample["revoked"]["reason"]
        assert sample["expired"]["allowed"] is False and "expired" in sample["expired"]["reason"]

        lua = {}
        for mode in ("cold", "hot", "health"):
            fh = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
            fh.write(LUA % {"mode": mode, "u0": u0, "people": PEOPLE, "hot": HOT_PEOPLE,
                            "ne": SERVICES * ENTS_PER_SERVICE})  # fmt: skip
            fh.close()
            lua[mode] = fh.name
        conns, secs = args.connections, args.seconds
        load_at_start = os.getloadavg()[0]  # wrk, gunicorn, PostgreSQL and Redis share it
        wrk("/healthz", 3, conns, token, None)  # warm both workers up
        phases = {}

        rclient.flushdb()
        h0, m0 = redis_stats(rclient)
        phases["check_cold"] = wrk("/", secs, conns, token, lua["cold"])
        h1, m1 = redis_stats(rclient)
        # Cold: the answer and (first time) the principal's version key miss, so count
        # answer hits as requests minus misses beyond the version-key misses, floored at 0.
        phases["check_cold"]["redis_keyspace"] = {"hits": h1 - h0, "misses": m1 - m0}
        phases["check_cold"]["cache_hit_ratio"] = round(
            max(0.0, 1 - (m1 - m0) / max(2 * phases["check_cold"]["requests"], 1)), 4
        )

        warm_working_set(token, u0)  # every hot pair once, through the batch endpoint
        # Unmeasured: each worker fills its own near cache (a pair must reach both workers;
        # twice the phase length leaves about 2 % of the working set unseen by a worker).
        wrk("/", 2 * secs, conns, token, lua["hot"])
        # The trivial endpoint and the hot check alternate in rounds, so that a change in
        # the machine's load (it is shared) hits both alike; the ratio sums the rounds.
        h2, m2 = redis_stats(rclient)
        mget0 = mget_calls(rclient)
        rounds = []
        for _ in range(args.rounds):
            health = wrk("/", secs, conns, token, lua["health"])
            hot = wrk("/", secs, conns, token, lua["hot"])
            rounds.append({"healthz": health, "check_hot": hot})
        h3, m3 = redis_stats(rclient)
        mget1 = mget_calls(rclient)
        phases["healthz"] = merge_rounds([r["healthz"] for r in rounds])
        phases["check_hot"] = merge_rounds([r["check_hot"] for r in rounds])
        phases["rounds"] = rounds
        phases["check_hot"]["cache_hit_ratio"] = round(
            1 - (m3 - m2) / max(phases["check_hot"]["requests"], 1), 4
        )
        phases["check_hot"]["redis_keyspace"] = {"hits": h3 - h2, "misses": m3 - m2}
        # A check answered from a worker's near cache sends no MGET to Redis.
        phases["check_hot"]["redis_mget_calls"] = mget1 - mget0
        phases["check_hot"]["near_cache_hit_ratio"] = round(
            1 - (mget1 - mget0) / max(phases["check_hot"]["requests"], 1), 4
        )
        for path in lua.values():
            os.unlink(path)

        ratio = phases["check_hot"]["rps"] / phases["healthz"]["rps"]
        figures = {
            "dataset": {
                "grants": PEOPLE * GRANTS_PER_PERSON,
                "people": PEOPLE,
                "entitlements": SERVICES * ENTS_PER_SERVICE,
                "hot_pairs": HOT_PEOPLE * GRANTS_PER_PERSON,
                "setup_seconds": round(setup_s, 1),
            },
            "host": {"cpus": os.cpu_count(), "load_avg_1m_at_start": round(load_at_start, 2)},
            "server": "gunicorn 2 sync workers, production settings, Redis cache, PostgreSQL",
            "load": f"wrk {min(conns, 2)} threads, {conns} connections, {secs} s per phase; "
            f"healthz and check_hot alternate over {args.rounds} rounds, both from one Lua "
            "request generator (healthz gets the same body as a GET)",
            "phases": phases,
            "check_p50_ms": phases["check_hot"]["p50_ms"],
            "check_p99_ms": phases["check_hot"]["p99_ms"],
            "cold_cache_p99_ms": phases["check_cold"]["p99_ms"],
            "cache_hit_ratio": phases["check_hot"]["cache_hit_ratio"],
            "near_cache_hit_ratio": phases["check_hot"]["near_cache_hit_ratio"],
            "throughput_ratio_vs_healthz": round(ratio, 3),
            "targets": {"p99_ms": TARGET_P99_MS, "throughput_ratio": TARGET_RATIO},
            "meets_p99": phases["check_hot"]["p99_ms"] <= TARGET_P99_MS,
            "meets_throughput": ratio >= TARGET_RATIO,
            "samples": sample,
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if not args.keep:
            drop_database(DB_NAME)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(json.dumps(figures, indent=2, default=str))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
