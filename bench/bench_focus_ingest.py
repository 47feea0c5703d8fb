"""FOCUS ingestion vs a bare PostgreSQL COPY of the same file, and peak RSS by file size.

Files are built by replicating the real FOCUS sample (../shared/data/costs) over resources
and days. Sizes: BENCH_INGEST_SIZES (default "100000,1000000": 1M rows is the largest that
runs in a few minutes here; the issue asks for 10M, set BENCH_INGEST_SIZES to try it).
The bare COPY streams the same bytes, through psycopg, into an unindexed all-text table.
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
        ingest_s, rss_mb, out = run_measured(
            [
                sys.executable,
                "manage.py",
                "import_focus",
                str(path),
                "--source",
                f"bench-{n}",
                "--no-progress",
            ],
            env,
        )
        figures["sizes"][n] = {
            "file_mb": round(path.stat().st_size / 1e6, 1),
            "bare_copy_s": round(copy_s, 2),
            "bare_copy_rows_per_s": round(n / copy_s),
            "ingest_s": round(ingest_s, 2),
            "ingest_rows_per_s": round(n / ingest_s),
            "ratio_vs_bare_copy": round(copy_s / ingest_s, 3),
            "ingest_peak_rss_mb": rss_mb,
            "command_output": out.strip(),
        }
        print(n, figures["sizes"][n], flush=True)
    rss = [v["ingest_peak_rss_mb"] for v in figures["sizes"].values()]
    figures["rss_spread_mb"] = max(rss) - min(rss)
    figures["targets"] = {"ratio_vs_bare_copy": ">= 0.5", "rss_spread_mb": "<= 100 (100k vs 10M)"}
    figures["note"] = (
        "ingest time is the whole command (Python start-up, parse and validate every value, "
        "attribute, COPY into the partitioned, indexed table, replace the period, roll up)"
    )
    write_results("bench_focus_ingest", figures)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
