"""First start: a fresh clone, ``make run``, until the sign-in page answers 200; then stop it
and ``make run`` again (the second start). Target: <= 120 s for the first (install with a warm
pip cache, migrations, the whole demo seed, the server up), <= 10 s for the second.

The clone is of this checkout's current branch (committed state), into a temporary directory,
served on a free port (``make run PORT=...``). Besides wall times it records when each phase
ended (from ``make run``'s output), the demo seed's own wall and CPU seconds, the CPU seconds
the whole run used (``RUSAGE_CHILDREN``: a figure the other load on a shared machine barely
moves) and the load average, so a slow figure on a busy machine can be read for what it is.

    .venv/bin/python bench/bench_first_start.py [--keep] [--branch NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "first_start.json"
FIRST_TARGET_S = 120.0
SECOND_TARGET_S = 10.0
TIMEOUT_S = 900.0
# Lines of `make run`'s output that end a phase (first match wins).
PHASES = {
    "seed_started": re.compile(r"^people:$"),
    "seed_done": re.compile(r"demo data ready|demo data already present"),
    "server_starting": re.compile(r"Tollgate is starting on"),
}
SEED_RE = re.compile(r"demo data ready \((?P<wall>[\d.]+) s; (?P<cpu>[\d.]+) s of CPU\)")
STEP_NAME_RE = re.compile(r"^[a-z_]+:$")  # a step's name, printed when it starts
STEP_RE = re.compile(r"^\s+\((?P<wall>[\d.]+) s; (?P<cpu>[\d.]+) s of CPU\)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def current_branch() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--abbrev-ref", "HEAD"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def stop_demo_ldap(clone: Path) -> None:
    """Stop the clone's demo slapd: ``make run`` starts it in its own session so that it
    outlives the portal between runs, so stopping ``make run`` leaves it running."""
    pidfile = clone / "var" / "demo-ldap" / "slapd.pid"
    # no pid file: no demo LDAP (slapd not installed), or it has stopped already
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start(clone: Path, port: int, log: list[tuple[float, str]]) -> tuple[float, dict, object]:
    """``make run`` until the sign-in page answers; returns (seconds, phase times, process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: stopped as a whole
    )
    phases: dict[str, float] = {}

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            at = time.perf_counter() - started
            log.append((at, line.rstrip("\n")))
            for name, pattern in PHASES.items():
                if name not in phases and pattern.search(line):
                    phases[name] = round(at, 1)

    threading.Thread(target=read, daemon=True).start()
    url = f"http://127.0.0.1:{port}/accounts/login/"
    while not answers(url):
        if proc.poll() is not None:
            tail = "\n".join(line for _, line in log[-30:])
            raise RuntimeError(f"make run exited with {proc.returncode}:\n{tail}")
        if time.perf_counter() - started > TIMEOUT_S:
            stop(proc)
            raise RuntimeError(f"the sign-in page did not answer within {TIMEOUT_S:.0f} s")
        time.sleep(0.25)
    return time.perf_counter() - started, phases, proc


def stop(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def seed_figures(log: list[tuple[float, str]]) -> dict:
    out: dict = {}
    current = None
    for _, line in log:
        match = SEED_RE.search(line)
        if match:
            out["seed_wall_s"] = float(match["wall"])
            out["seed_cpu_s"] = float(match["cpu"])
        if STEP_NAME_RE.match(line):
            current = line.rstrip(":")
        step = STEP_RE.match(line)
        if step and current:
            out.setdefault("steps", {})[current] = {
                "wall_s": float(step["wall"]),
                "cpu_s": float(step["cpu"]),
            }
            current = None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--branch", default=None, help="branch to clone (default: the current)")
    parser.add_argument("--keep", action="store_true", help="keep the clone directory")
    args = parser.parse_args()
    branch = args.branch or current_branch()
    workdir = Path(tempfile.mkdtemp(prefix="tollgate-first-start-"))
    clone = workdir / "tollgate"
    port = free_port()
    figures: dict = {
        "branch": branch,
        "commit": subprocess.run(
            ["git", "rev-parse", branch], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "targets_s": {"first": FIRST_TARGET_S, "second": SECOND_TARGET_S},
    }
    try:
        subprocess.run(
            ["git", "clone", "-q", "--branch", branch, "--single-branch", str(ROOT), str(clone)],
            check=True,
        )
        first_log: list[tuple[float, str]] = []
        cpu = cpu_of_children()
        first_s, first_phases, proc = start(clone, port, first_log)
        stop(proc)
        first_cpu = cpu_of_children() - cpu
        second_log: list[tuple[float, str]] = []
        cpu = cpu_of_children()
        second_s, second_phases, proc = start(clone, port, second_log)
        stop(proc)
        second_cpu = cpu_of_children() - cpu
    finally:
        if not args.keep:
            stop_demo_ldap(clone)
            shutil.rmtree(workdir, ignore_errors=True)
    figures.update(
        {
            "first_start_s": round(first_s, 1),
            "first_start_phases_s": first_phases,
            "first_start_cpu_s": round(first_cpu, 1),
            **seed_figures(first_log),
            "second_start_s": round(second_s, 1),
            "second_start_phases_s": second_phases,
            "second_start_cpu_s": round(second_cpu, 1),
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "first_ok": first_s <= FIRST_TARGET_S,
            "second_ok": second_s <= SECOND_TARGET_S,
            "clone_kept_at": str(clone) if args.keep else None,
        }
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0 if figures["first_ok"] and figures["second_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
