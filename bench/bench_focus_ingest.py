"""FOCUS ingestion vs a bare PostgreSQL COPY of the same file, and peak RSS by file size.

Files are built by replicating the real FOCUS sample (../shared/data/costs) over resources
and days. Sizes: BENCH_INGEST_SIZES (default "100000,1000000": 1M rows is the largest that
runs in a few minutes here; the issue asks for 10M, set BENCH_INGEST_SIZES to try it).
The bare COPY streams the same bytes, through psycopg, into an unindexed all-text table.

Two ingest figures per size, both from one run of ``import_focus`` in a child process:
``service_s`` is the command itself (read, validate, attribute, COPY, replace, roll up,
commit; Python and Django start-up excluded) and is what the 0.5x target refers to;
``process_s`` adds interpreter and Django start-up. Before each size the bench source's
previous lines are deleted (untimed), so every run is a first import of its period.
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


def bare_copy(path: Path) -> float:
    with open(path, newline="", encoding="utf-8") as fh:
        width = len(next(csv.reader(fh)))
    cols = ", ".join(f"c{i} text" for i in range(width))
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_bare_copy")
        conn.execute(f"CREATE TABLE bench_bare_copy ({cols})")
        start = time.perf_counter()
        with (
            conn.cursor() as cur,
            open(path, "rb") as fh,
            cur.copy("COPY bench_bare_copy FROM STDIN (FORMAT csv, HEADER true)") as copy,
        ):
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE bench_bare_copy")
    return elapsed


DRIVER = """
import os, sys, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
import django
django.setup()
from django.core.management import call_command
start = time.perf_counter()
call_command("import_focus", sys.argv[1], "--source", sys.argv[2], "--no-progress")
print("SERVICE_S", time.perf_counter() - start)
"""


def clear_source(name: str) -> None:
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM costs_costline WHERE source_id IN "
            "(SELECT id FROM costs_billingsource WHERE name = %s)",
            [name],
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
        copy_s = bare_copy(path)
        clear_source(f"bench-{n}")
        process_s, rss_mb, out = run_measured(
            [sys.executable, "-c", DRIVER, str(path), f"bench-{n}"], env
        )
        service_s = float(out.rsplit("SERVICE_S", 1)[1])
        figures["sizes"][n] = {
            "file_mb": round(path.stat().st_size / 1e6, 1),
            "bare_copy_s": round(copy_s, 2),
            "bare_copy_rows_per_s": round(n / copy_s),
            "service_s": round(service_s, 2),
            "service_rows_per_s": round(n / service_s),
            "ratio_vs_bare_copy": round(copy_s / service_s, 3),
            "process_s": round(process_s, 2),
            "ratio_vs_bare_copy_with_startup": round(copy_s / process_s, 3),
            "ingest_peak_rss_mb": rss_mb,
            "timings": last_timings(),
            "command_output": out.rsplit("SERVICE_S", 1)[0].strip(),
        }
        print(n, figures["sizes"][n], flush=True)
    rss = [v["ingest_peak_rss_mb"] for v in figures["sizes"].values()]
    figures["rss_spread_mb"] = max(rss) - min(rss)
    figures["targets"] = {"ratio_vs_bare_copy": ">= 0.5", "rss_spread_mb": "<= 100 (100k vs 10M)"}
    figures["note"] = (
        "service_s: the whole import_focus command in-process (read, validate every value, "
        "attribute, COPY into the partitioned, indexed table, replace the period, roll up, "
        "commit); process_s adds Python/Django start-up. ratio_vs_bare_copy uses service_s. "
        f"Host: {os.cpu_count()} CPUs shared with other jobs, so figures vary run to run."
    )
    write_results("bench_focus_ingest", figures)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
