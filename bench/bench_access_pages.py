"""Access pages under load: inbox, catalog and my-requests server time with 10k pending
requests and 1k entitlements on PostgreSQL.

Creates a dedicated database (``tollgate_bench``), bulk-inserts the fixtures directly (a
benchmark, not the audited write path), then renders each page N times in-process with the
Django test client and reports p50/p95 server time and the query count per page. Drops the
database afterwards. Results: bench/results/access_pages.json.

    .venv/bin/python bench/bench_access_pages.py [--n 50] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _common import drop_database, recreate_database, setup_django  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "access_pages.json"
PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "tollgate_bench"

PENDING = 10_000
ENTITLEMENTS = 1_000
SERVICES = 100
TEAMS = 40
PEOPLE = 3_000
INBOX_ITEMS = 2_000  # pending requests that wait on the benchmarked approver
ACTIVE_GRANTS = 30_000
MY_REQUESTS = 300


def build_fixtures(rng: random.Random) -> dict:
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from access.models import (
        AccessRequest,
        ApprovalAssignment,
        ApprovalPolicy,
        Entitlement,
        Grant,
        PolicyStage,
        Risk,
        Service,
    )
    from accounts.models import Membership, Team, User

    now = timezone.now()
    password = make_password(None)
    teams = Team.objects.bulk_create(
        [Team(slug=f"team-{i}", name=f"Team {i}") for i in range(TEAMS)]
    )
    approver = User.objects.create(
        email="approver@bench.test", name="Busy Approver", team=teams[0], password=password
    )
    requester = User.objects.create(
        email="requester@bench.test",
        name="Many Requests",
        team=teams[1],
        manager=approver,
        password=password,
    )
    leads = User.objects.bulk_create(
        [
            User(email=f"lead{i}@bench.test", name=f"Lead {i}", team=t, password=password)
            for i, t in enumerate(teams)
        ]
    )
    people = User.objects.bulk_create(
        [
            User(
                email=f"p{i}@bench.test",
                name=f"Person {i}",
                team=teams[i % TEAMS],
                # A fifth of everyone reports to the benchmarked approver: their inbox is full.
                manager=approver if i % 5 == 0 else leads[i % TEAMS],
                password=password,
            )
            for i in range(PEOPLE)
        ]
    )
    Membership.objects.bulk_create(
        [Membership(team=u.team, user=u) for u in [approver, requester, *leads, *people]]
    )
    policy = ApprovalPolicy.objects.create(slug="default", name="Manager, then service owner")
    PolicyStage.objects.bulk_create(
        [
            PolicyStage(policy=policy, order=0, approver_kind="manager", name="Manager"),
            PolicyStage(
                policy=policy, order=1, approver_kind="service_owner", name="Service owner"
            ),
        ]
    )
    services = Service.objects.bulk_create(
        [
            Service(
                slug=f"service-{i}",
                name=f"Service {i:03d}",
                owner_team=teams[i % TEAMS],
                tier=i % 4,
                description=f"Benchmark service {i}",
            )
            for i in range(SERVICES)
        ]
    )
    risks = list(Risk.values)
    kinds = [
        "read",
        "write",
        "deploy",
        "admin",
        "on-call",
        "viewer",
        "editor",
        "billing",
        "exec",
        "migrate",
    ]
    ents = Entitlement.objects.bulk_create(
        [
            Entitlement(
                service=services[i % SERVICES],
                slug=kinds[i // SERVICES],
                name=kinds[i // SERVICES].title(),
                risk=risks[i % 4],
                default_duration_days=30,
                max_duration_days=90,
                seat_cost_monthly=Decimal(i % 7 * 5),
            )
            for i in range(ENTITLEMENTS)
        ]
    )
    stages = [
        {
            "name": "Manager",
            "kind": "manager",
            "required": 1,
            "group_id": None,
            "user_ids": [],
            "source": "policy:default",
        },
        {
            "name": "Service owner",
            "kind": "service_owner",
            "required": 1,
            "group_id": None,
            "user_ids": [],
            "source": "policy:default",
        },
    ]
    # 10k pending requests, one per (principal, entitlement); INBOX_ITEMS of them wait on the approver.
    reports = [p for p in people if p.manager_id == approver.pk]
    others = [p for p in people if p.manager_id != approver.pk]
    pairs: set[tuple[int, int]] = set()
    rows: list[AccessRequest] = []
    while len(rows) < PENDING:
        principal = rng.choice(reports) if len(rows) < INBOX_ITEMS else rng.choice(others)
        ent = rng.choice(ents)
        if (principal.pk, ent.pk) in pairs:
            continue
        pairs.add((principal.pk, ent.pk))
        created = now - timedelta(hours=rng.uniform(0, 240))
        rows.append(
            AccessRequest(
                requester=principal,
                principal=principal,
                entitlement=ent,
                justification="benchmark",
                duration_days=30,
                stages=stages,
                created_at=created,
                stage_started_at=created,
                updated_at=created,
            )
        )
    reqs = AccessRequest.objects.bulk_create(rows, batch_size=2000)
    ApprovalAssignment.objects.bulk_create(
        [ApprovalAssignment(request=r, stage=0, approver_id=r.principal.manager_id) for r in reqs],
        batch_size=5000,
    )
    # The requester's own history (my-requests page): every status.
    statuses = ["pending", "approved", "denied", "cancelled", "expired"]
    mine = []
    for i in range(MY_REQUESTS):
        status = statuses[i % 5] if i >= 5 else "pending"
        ent = ents[(i * 7) % ENTITLEMENTS]
        if status == "pending" and (requester.pk, ent.pk) in pairs:
            continue
        pairs.add((requester.pk, ent.pk))
        created = now - timedelta(days=rng.uniform(0, 365))
        mine.append(
            AccessRequest(
                requester=requester,
                principal=requester,
                entitlement=ent,
                justification="mine",
                duration_days=30,
                stages=stages,
                status=status,
                created_at=created,
                updated_at=created,
                decided_at=None if status == "pending" else created + timedelta(hours=3),
            )
        )
    AccessRequest.objects.bulk_create(mine)
    # Active grants, so the inbox's "peers who hold it" and "other access" have data.
    held: set[tuple[int, int]] = set()
    grants = []
    while len(grants) < ACTIVE_GRANTS:
        p, e = rng.choice(people), rng.choice(ents)
        if (p.pk, e.pk) in held:
            continue
        held.add((p.pk, e.pk))
        grants.append(
            Grant(
                principal=p,
                entitlement=e,
                status="active",
                ends_at=now + timedelta(days=rng.randint(1, 90)),
                reason="benchmark",
            )
        )
    Grant.objects.bulk_create(grants, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"approver": approver, "requester": requester}


class QueryLog:
    """Counts (and keeps) every statement the page runs, whatever the DEBUG setting."""

    def __init__(self):
        self.queries: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append(((time.perf_counter() - start) * 1000, sql))


def measure(client, url: str, n: int) -> dict:
    from django.db import connection

    for _ in range(3):  # warm-up (template loading, connection)
        assert client.get(url).status_code == 200, url
    log = QueryLog()
    with connection.execute_wrapper(log):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    slowest = sorted(log.queries, reverse=True)[:3]
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    times.sort()
    return {
        "url": url,
        "n": n,
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, int(round(0.95 * n)) - 1)], 1),
        "max_ms": round(times[-1], 1),
        "queries": len(log.queries),
        "query_ms": round(sum(ms for ms, _ in log.queries), 1),
        "slowest_queries": [{"ms": round(ms, 1), "sql": sql[:300]} for ms, sql in slowest],
        "bytes": len(response.content),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the tollgate_bench database")
    args = parser.parse_args()
    recreate_database(DB_NAME)
    try:
        setup_django(DB_NAME)
        from django.test import Client
        from django.urls import reverse

        started = time.perf_counter()
        people = build_fixtures(random.Random(4))
        fixture_s = time.perf_counter() - started
        from access.models import AccessRequest, ApprovalAssignment, Entitlement, Grant
        from access.selectors import approval_inbox

        approver, requester = people["approver"], people["requester"]
        inbox_items = approval_inbox(viewer=approver).count()
        pages = {}
        for name, user, url in [
            ("inbox", approver, reverse("access:approvals")),
            ("catalog", requester, reverse("access:catalog")),
            ("catalog_search", requester, reverse("access:catalog") + "?q=service-4&risk=high"),
            ("my_requests", requester, reverse("access:request-list")),
        ]:
            client = Client()
            client.force_login(user)
            pages[name] = measure(client, url, args.n)
        figures = {
            "benchmark": "access pages: server time in-process, Django test client",
            "database": "PostgreSQL",
            "data": {
                "pending_requests": AccessRequest.objects.filter(status="pending").count(),
                "entitlements": Entitlement.objects.count(),
                "active_grants": Grant.objects.filter(status="active").count(),
                "assignments": ApprovalAssignment.objects.count(),
                "inbox_items_for_approver": inbox_items,
                "my_requests_for_requester": AccessRequest.objects.filter(
                    requester=requester
                ).count(),
            },
            "fixture_seconds": round(fixture_s, 1),
            "pages": pages,
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
        print(json.dumps(figures, indent=2))
        print(f"written to {RESULTS.relative_to(ROOT)}")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    main()
