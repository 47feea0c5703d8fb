"""Unused-access detection (P4) over 100k grants on PostgreSQL: time and query counts.

Creates a dedicated database (``tollgate_bench_unused``), bulk-inserts 100k active grants
(5k people, 200 services, 1,000 entitlements; usage data fresh for 80% of the services;
last use: most recent, ~6% older than the window, ~4% never seen; starts spread over 400
days), then measures:

* the unused selector (``usage.rules.unused_grants``) counted in the database;
* ``grants_record_use`` moving last use of all 100k grants forward (bulk, only-forward);
* the first detection (``unused_detect``: creates, audits and schedules each removal);
* a second detection (idempotent: nothing new);
* the due-removal pass over a sample of removals whose notice ended (grant_revoke each).

Drops the database afterwards unless ``--keep``. Results: bench/results/unused_scan.json.

    .venv/bin/python bench/bench_unused_scan.py [--grants 100000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _common import drop_database, recreate_database, setup_django  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "unused_scan.json"
PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "tollgate_bench_unused"
PEOPLE = 5_000
SERVICES = 200
ENTITLEMENTS = 1_000
DUE_SAMPLE = 200


def build(rng: random.Random, n_grants: int) -> dict:
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from access.models import Entitlement, Grant, Service
    from accounts.models import Team, User
    from usage.services import coverage_mark, source_for_events

    now = timezone.now()
    password = make_password(None)
    teams = Team.objects.bulk_create([Team(slug=f"t{i}", name=f"T{i}") for i in range(40)])
    people = User.objects.bulk_create(
        [
            User(email=f"p{i}@bench.test", name=f"P{i}", team=teams[i % 40], password=password)
            for i in range(PEOPLE)
        ],
        batch_size=2000,
    )
    services = Service.objects.bulk_create(
        [Service(slug=f"s{i}", name=f"S{i}", owner_team=teams[i % 40]) for i in range(SERVICES)]
    )
    ents = Entitlement.objects.bulk_create(
        [
            Entitlement(service=services[i % SERVICES], slug=f"e{i}", name=f"E{i}")
            for i in range(ENTITLEMENTS)
        ]
    )
    pairs: set[tuple[int, int]] = set()
    rows = []
    while len(rows) < n_grants:
        p, e = rng.randrange(PEOPLE), rng.randrange(ENTITLEMENTS)
        if (p, e) in pairs:
            continue
        pairs.add((p, e))
        roll = rng.random()
        starts = now - timedelta(days=rng.uniform(0, 400))
        if roll < 0.04:
            last = None
        elif roll < 0.10:
            last = max(starts, now - timedelta(days=rng.uniform(91, 400)))
        else:
            last = max(starts, now - timedelta(days=rng.uniform(0, 89)))
        rows.append(
            Grant(
                principal=people[p],
                entitlement=ents[e],
                status="active",
                starts_at=starts,
                created_at=starts,
                ends_at=now + timedelta(days=rng.uniform(30, 365)),
                last_used_at=last,
            )
        )
    Grant.objects.bulk_create(rows, batch_size=5000)
    fresh = [s.pk for s in services[: int(SERVICES * 0.8)]]
    coverage_mark(
        source=source_for_events("bench"),
        service_ids=fresh,
        covered_since=now - timedelta(days=500),
        complete_until=now,
        attempt_at=now,
    )
    return {"now": now, "grants": len(rows)}


def measured(fn):
    """Run ``fn``; return its result, wall seconds and the number of SQL statements."""
    from django.db import connection

    count = 0

    def counter(execute, sql, params, many, context):
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counter):
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return result, round(seconds, 3), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grants", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    recreate_database(DB_NAME)
    try:
        setup_django(DB_NAME)
        from datetime import timedelta

        from access import services as access_services
        from access.models import Grant
        from access.services import grants_record_use
        from usage import services as usage
        from usage.models import UnusedRemoval, UsageCoverage
        from usage.rules import unused_grants

        rng = random.Random(7)
        t0 = time.perf_counter()
        built = build(rng, args.grants)
        build_s = round(time.perf_counter() - t0, 1)
        now = built["now"]
        count, select_s, select_q = measured(lambda: unused_grants(now=now).count())
        uses = dict(
            Grant.objects.filter(last_used_at__isnull=False).values_list("pk", "last_used_at")
        )
        moved, record_s, record_q = measured(
            lambda: grants_record_use(
                uses={pk: ts + timedelta(minutes=1) for pk, ts in uses.items()}, source="bench"
            )
        )
        with access_services.notifications_muted():
            created, detect_s, detect_q = measured(lambda: usage.unused_detect(now=now))
            again, again_s, again_q = measured(lambda: usage.unused_detect(now=now))
            due_ids = list(
                UnusedRemoval.objects.order_by("pk").values_list("pk", flat=True)[:DUE_SAMPLE]
            )
            UnusedRemoval.objects.exclude(pk__in=due_ids).update(
                remove_after=now + timedelta(days=30)
            )
            later = now + timedelta(days=8)
            usage.coverage_mark(  # usage data still fresh when the notice ends
                source=usage.source_for_events("bench"),
                service_ids=list(UsageCoverage.objects.values_list("service_id", flat=True)),
                covered_since=now - timedelta(days=500),
                complete_until=later,
                attempt_at=later,
            )
            due, due_s, due_q = measured(
                lambda: usage.removals_remove_due(now=now + timedelta(days=8))
            )
        figures = {
            "grants": built["grants"],
            "build_seconds": build_s,
            "unused_selector": {"unused": count, "seconds": select_s, "queries": select_q},
            "record_use": {
                "uses": len(uses),
                "moved": moved,
                "seconds": record_s,
                "queries": record_q,
            },
            "detect_first_run": {
                "created": created,
                "seconds": detect_s,
                "queries": detect_q,
                "per_removal_ms": round(1000 * detect_s / max(created, 1), 3),
            },
            "detect_second_run": {"created": again, "seconds": again_s, "queries": again_q},
            "remove_due": {**due, "seconds": due_s, "queries": due_q},
        }
        assert created == count, (created, count)
        assert again == 0
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures, indent=2))
    finally:
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    main()
