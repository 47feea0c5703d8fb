"""Role mining (P2) on the HP Labs data sets against the best published role counts.

Runs the engine on every set in ../shared/data/rolemining (and, with --rmplib, the RMPlib PLAIN
instances), verifies each cover and writes bench/results/role_mining.json.

    .venv/bin/python bench/bench_role_mining.py [--time-limit 60] [--rmplib] [--only hc,apj]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import write_results  # noqa: E402

from patterns.mining import mine_roles, read_upa, verify_cover  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "rolemining"
# file -> (name in the literature, best published role count)
HP_SETS = {
    "hc": ("healthcare", 14),
    "domino": ("domino", 20),
    "emea": ("emea", 34),
    "fire1": ("firewall1", 64),
    "americas_small": ("americas_small", 178),
    "customer": ("customer", 276),
    "apj": ("apj", 453),
}


def run_one(path: Path, fmt: str, time_limit: float) -> dict:
    pairs = read_upa(path, fmt)
    started = time.perf_counter()
    result = mine_roles(pairs, time_limit=time_limit)
    wall = time.perf_counter() - started
    problems = verify_cover(pairs, result.roles)  # independent re-check of the engine's own
    return {
        "users": result.stats["users"],
        "permissions": result.stats["permissions"],
        "assignments": result.stats["assignments"],
        "roles": len(result.roles),
        "lower_bound": result.lower_bound,
        "proven_optimal": result.optimal,
        "essential_roles": result.stats["essential_roles"],
        "seconds": round(wall, 3),
        "seconds_to_best": result.stats["seconds_to_best"],
        "verified": result.exact and not problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--rmplib", action="store_true", help="also run the RMPlib instances")
    parser.add_argument("--only", help="comma-separated file stems")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None

    sets = []
    for stem, (name, published) in HP_SETS.items():
        if only and stem not in only:
            continue
        row = {"set": name, "file": f"{stem}.txt", "published_best": published}
        row.update(run_one(DATA / f"{stem}.txt", "pairs", args.time_limit))
        row["hits_published"] = row["roles"] <= published
        row["within_time"] = row["seconds_to_best"] <= 60
        print(
            f"{name:15} {row['users']:6} x {row['permissions']:5} {row['assignments']:7}  "
            f"roles {row['roles']:4} (published {published:4}, lower bound {row['lower_bound']:4})"
            f"  {row['seconds']:6.2f}s  verified={row['verified']}",
            flush=True,
        )
        sets.append(row)

    rmplib = []
    if args.rmplib:
        for path in sorted((DATA / "rmplib").glob("*/*.rmp")):
            if only and path.stem not in only:
                continue
            generating = None
            for line in path.read_text(encoding="utf-8-sig").splitlines():
                if "number of roles used" in line:
                    generating = int(line.rsplit(":", 1)[1])
            row = {"set": path.stem, "generating_roles": generating}
            row.update(run_one(path, "rmp", args.time_limit))
            print(
                f"{path.stem:15} roles {row['roles']:4} (generated with {generating}, "
                f"lower bound {row['lower_bound']:4})  {row['seconds']:6.2f}s  "
                f"verified={row['verified']}",
                flush=True,
            )
            rmplib.append(row)

    figures = {
        "benchmark": "role mining (P2): minimum exact role cover",
        "time_limit_s": args.time_limit,
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or None},
        "hp_sets": sets,
        "all_hit_published": all(r["hits_published"] for r in sets),
        "all_verified": all(r["verified"] for r in sets + rmplib),
    }
    if rmplib:
        figures["rmplib"] = rmplib
    write_results("role_mining", figures)


if __name__ == "__main__":
    main()
