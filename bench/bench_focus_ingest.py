"""FOCUS ingestion vs a bare PostgreSQL COPY of the same file, and peak RSS by file size.

Files are built by replicating the real FOCUS sample (../shared/data/costs) over resources
and days. Sizes: BENCH_INGEST_SIZES (default "100000,1000000": 1M rows is the largest that
runs in a few minutes here; the issue asks for 10M, set BENCH_INGEST_SIZES to try it).
The bare COPY streams the same bytes, through psycopg, into an unindexed all-text table.

Two ingest figures per size, both from one run of ``import_focus`` in a child process:
``service_s`` is the command itself (read, validate, attribute, COPY, replace, roll up,
commit; Python and Django start-up excluded) and is what the 0.5x target refers to;
``process_s`` adds interpreter and Django start-up. The per-resource analytics rollups the
import's commit queues for a worker are caught and run after the import, timed apart as
``queued_rollup_task_s`` (``BENCH_INGEST_TASK=0`` skips them); ``ingest_peak_rss_mb`` is the
import's own peak, taken before they run. Before each size every bench source's
lines are deleted (untimed), so every run is a first import into an empty period, like
the bare COPY into an empty table. CPU seconds of the import process and of its backend
(and of the bare COPY's backend) are recorded too: the host is shared, and CPU time is far
less disturbed by other jobs than wall time.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from _common import DB_URL, ROOT, ensure_database, run_measured, write_results  # noqa: E402
from _focusgen import build  # noqa: E402

WORK = Path(os.environ.get("BENCH_WORK_DIR", "/tmp/tollgate-bench"))


def bare_copy(path: Path) -> tuple[float, float]:
    """Seconds for a bare COPY of ``path``, and the CPU seconds its backend used."""
    with open(path, newline="", encoding="utf-8") as fh:
        width = len(next(csv.reader(fh)))
    cols = ", ".join(f"c{i} text" for i in range(width))
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_bare_copy")
        conn.execute(f"CREATE TABLE bench_bare_copy ({cols})")
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        cpu0 = backend_cpu(pid)
        start = time.perf_counter()
        with (
            conn.cursor() as cur,
            open(path, "rb") as fh,
            cur.copy("COPY bench_bare_copy FROM STDIN (FORMAT csv, HEADER true)") as copy,
        ):
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - start
        cpu = backend_cpu(pid) - cpu0
        conn.execute("DROP TABLE bench_bare_copy")
    return elapsed, cpu


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) a local PostgreSQL backend has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


DRIVER = """
import os, sys, time, resource
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
import django
django.setup()
from django.core.management import call_command
from django.db import connection
sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
from bench_focus_ingest import backend_cpu
with connection.cursor() as cur:
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
def client_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
# In production the import's commit queues the per-resource analytics rollups for a
# worker; the command does not wait for them. Catch the queued call and time it apart.
from unittest import mock
from costs.analytics import tasks as analytics_tasks
queued = []
c0, s0 = client_cpu(), backend_cpu(pid)
start = time.perf_counter()
with mock.patch.object(analytics_tasks.resource_rollups_for_periods, "delay", queued.append):
    call_command("import_focus", sys.argv[1], "--source", sys.argv[2], "--no-progress")
elapsed = time.perf_counter() - start
print("CPU", client_cpu() - c0, backend_cpu(pid) - s0)
print("IMPORT_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
task_s = -1.0
if os.environ.get("BENCH_INGEST_TASK", "1") != "0":
    t0 = time.perf_counter()
    for keys in queued:
        analytics_tasks.resource_rollups_for_periods(keys)
    task_s = time.perf_counter() - t0
print("TASK_S", task_s)
print("SERVICE_S", elapsed)
"""


def clear_bench_lines() -> None:
    """Delete every bench source's lines, so each size is imported into an empty month.

    Without this the figures depend on what earlier runs left behind: the rollup step
    regroups the whole billing month, so a 100k import into a month still holding the 1M
    run's lines pays for grouping 1.1M lines.
    """
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM costs_costline WHERE source_id IN "
            "(SELECT id FROM costs_billingsource WHERE name LIKE 'bench-%%')"
        )
        conn.execute("VACUUM costs_costline")


def last_timings() -> dict:
    with psycopg.connect(DB_URL) as conn:
        row = conn.execute(
            "SELECT timings FROM costs_importrun ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return row[0] if row else {}


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_INGEST_SIZES", "100000,1000000").split(",")]
    env = ensure_database()
    WORK.mkdir(parents=True, exist_ok=True)
    figures: dict = {"database": "postgresql", "sizes": {}}
    for n in sizes:
        path = WORK / f"focus_{n}.csv"
        if not path.exists():
            build(path, n)
        copy_s, copy_cpu = bare_copy(path)
        clear_bench_lines()
        process_s, rss_mb, out = run_measured(
            [sys.executable, "-c", DRIVER, str(path), f"bench-{n}"], env
        )
        service_s = float(out.rsplit("SERVICE_S", 1)[1])
        task_s = float(out.rsplit("TASK_S", 1)[1].split()[0])
        # the import's own peak (the queued task, run after it in the same process, is not)
        import_rss_mb = round(int(out.rsplit("IMPORT_RSS_KB", 1)[1].split()[0]) / 1024)
        client_cpu, server_cpu = (float(x) for x in out.rsplit("CPU", 1)[1].split()[:2])
        figures["sizes"][n] = {
            "file_mb": round(path.stat().st_size / 1e6, 1),
            "bare_copy_s": round(copy_s, 2),
            "bare_copy_rows_per_s": round(n / copy_s),
            "service_s": round(service_s, 2),
            "service_rows_per_s": round(n / service_s),
            "ratio_vs_bare_copy": round(copy_s / service_s, 3),
            "process_s": round(process_s, 2),
            "ratio_vs_bare_copy_with_startup": round(copy_s / process_s, 3),
            "ingest_peak_rss_mb": import_rss_mb,
            "process_peak_rss_mb": rss_mb,  # including the queued task when it ran
            # CPU seconds, which the shared host's load does not inflate the way it does wall
            # time: the bare COPY's backend, and the import's own process and backend
            "bare_copy_server_cpu_s": round(copy_cpu, 2),
            "ingest_client_cpu_s": round(client_cpu, 2),
            "ingest_server_cpu_s": round(server_cpu, 2),
            "timings": last_timings(),
            # the analytics rollups the import queues (a worker's job, not the command's)
            "queued_rollup_task_s": round(task_s, 2) if task_s >= 0 else None,
            "command_output": out.rsplit("CPU", 1)[0].strip(),
        }
        print(n, figures["sizes"][n], flush=True)
    rss = [v["ingest_peak_rss_mb"] for v in figures["sizes"].values()]
    figures["rss_spread_mb"] = max(rss) - min(rss)
    figures["targets"] = {"ratio_vs_bare_copy": ">= 0.5", "rss_spread_mb": "<= 100 (100k vs 10M)"}
    figures["note"] = (
        "service_s: the whole import_focus command in-process (read, validate every value, "
        "attribute, COPY into the partitioned, indexed table, replace the period, roll up, "
        "commit); it queues the per-resource analytics rollups for a worker, timed apart as "
        "queued_rollup_task_s (BENCH_INGEST_TASK=0 skips it); process_s adds Python/Django start-up. ratio_vs_bare_copy uses service_s. "
        f"Host: {os.cpu_count()} CPUs shared with other jobs, so figures vary run to run."
    )
    write_results("bench_focus_ingest", figures)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
