"""Team dashboard server time with many cost lines in PostgreSQL, and its query count.

Lines are generated set-wise (``INSERT … SELECT generate_series``) straight into the
partitioned ``costs_costline`` (the importer's speed is benchmarked elsewhere), then the
rollups are built as an import would. The dashboard reads only rollups, so its time depends
on the rollup rows of one team, which are reported with the line count.
``BENCH_LINES`` (default 2,000,000) sets the size. Writes bench/results/dashboard.json.
Also times a full anomaly + suggestion run and reports peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tollgate_bench_dash"
)
from _common import DB_URL, ensure_database, write_results  # noqa: E402

LINES = int(os.environ.get("BENCH_LINES", "2000000"))
TEAMS, RESOURCES_PER_TEAM, MONTHS = 40, 250, 6


def child() -> None:
    import datetime as dt

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Membership, Team, User
    from costs.analytics import services, suggestions
    from costs.analytics.models import CostResourceDaily
    from costs.analytics.rollups import resource_rollups_rebuild
    from costs.models import BillingSource, CostDaily, CostLine, ImportRun
    from costs.partitioning import ensure_month_partitions
    from costs.rollups import rebuild_rollups

    today = dt.date.today()
    first = (today.replace(day=1) - dt.timedelta(days=31 * (MONTHS - 1))).replace(day=1)
    figures: dict = {"lines_target": LINES}
    if CostLine.objects.count() < LINES:
        t = time.perf_counter()
        with connection.cursor() as c:
            c.execute("TRUNCATE costs_costline, costs_costdaily, costs_costresourcedaily")
        teams = []
        for i in range(TEAMS):
            team, _ = Team.objects.get_or_create(
                slug=f"bench-{i:02d}", defaults={"name": f"Bench {i}"}
            )
            teams.append(team)
        src, _ = BillingSource.objects.get_or_create(name="bench-dash")
        run = ImportRun.objects.create(source=src, file_name="generated", status="succeeded")
        months = []
        m = first
        while m <= today:
            months.append(m)
            m = (m + dt.timedelta(days=32)).replace(day=1)
        ensure_month_partitions(set(months))
        days = (today - first).days + 1
        per_day = max(1, LINES // days)
        team_ids = [t.pk for t in teams]
        with connection.cursor() as c:
            c.execute(
                "INSERT INTO costs_costline (source_id, import_run_id, billing_period_start, billing_period_end, "
                "charge_period_start, charge_period_end, billing_account_id, sub_account_id, charge_category, "
                "provider_name, service_name, service_category, region_id, resource_id, sku_id, pricing_category, "
                "consumed_quantity, billed_cost, effective_cost, list_cost, billing_currency, tags, attr_key, "
                "allocation, team_id, attributed_service, project, billing_account_name, sub_account_name, "
                "charge_class, charge_frequency, charge_description, publisher_name, invoice_issuer_name, region_name, "
                "availability_zone, resource_name, resource_type, sku_price_id, pricing_unit, consumed_unit, "
                "commitment_discount_id, commitment_discount_name, commitment_discount_category, "
                "commitment_discount_type, commitment_discount_status) "
                "SELECT %s, %s, date_trunc('month', d)::date, (date_trunc('month', d) + interval '1 month')::date, "
                "d, d + interval '1 day', 'acct', 'sub' || (n %% 50), 'Usage', 'AWS', "
                "'svc-' || (n %% 12), (ARRAY['Compute','Storage','Databases','Networking'])[1 + n %% 4], "
                "'region-' || (n %% 5), 'res-' || (n %% %s), 'sku-' || (n %% 30), 'Standard', 24, "
                "round((random() * 10)::numeric, 6), round((random() * 9)::numeric, 6), 11, 'USD', "
                "'{\"team\": \"x\"}'::jsonb, n %% 1000, 'direct', (%s::bigint[])[1 + (n / %s) %% %s], '', '', "
                "'', '', '', 'Usage-Based', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '' "
                "FROM generate_series(%s::timestamptz, %s::timestamptz, interval '1 day') d, "
                "generate_series(1, %s) n",
                [
                    src.pk,
                    run.pk,
                    TEAMS * RESOURCES_PER_TEAM,
                    team_ids,
                    RESOURCES_PER_TEAM,
                    TEAMS,
                    f"{first} 00:00+00",
                    f"{today} 00:00+00",
                    per_day,
                ],
            )
        figures["generate_seconds"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        rebuild_rollups(periods=months)
        resource_rollups_rebuild(periods=months)
        figures["rollup_build_seconds"] = round(time.perf_counter() - t, 1)
        with connection.cursor() as c:
            c.execute("ANALYZE costs_costdaily; ANALYZE costs_costresourcedaily")
    team = Team.objects.get(slug="bench-07")
    user, _ = User.objects.get_or_create(email="bench-lead@bench.test", defaults={"team": team})
    Membership.objects.get_or_create(team=team, user=user, defaults={"role": "lead"})
    figures["cost_lines"] = CostLine.objects.count()
    figures["costdaily_rows_total"] = CostDaily.objects.count()
    figures["costdaily_rows_team"] = CostDaily.objects.filter(team=team).count()
    figures["resource_rollup_rows_total"] = CostResourceDaily.objects.count()
    figures["resource_rollup_rows_team"] = CostResourceDaily.objects.filter(team=team).count()
    client = Client()
    client.force_login(user)
    url = "/teams/bench-07/costs/"
    for _ in range(3):
        assert client.get(url).status_code == 200
    times = []
    for i in range(40):
        q = "" if i % 2 else "?compare=year"
        t = time.perf_counter()
        r = client.get(url + q)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    times.sort()
    figures["dashboard_ms"] = {
        "p50": round(times[len(times) // 2], 1),
        "p95": round(times[int(len(times) * 0.95) - 1], 1),
        "max": round(times[-1], 1),
    }
    figures["dashboard_queries"] = len(ctx)
    t = time.perf_counter()
    services.anomalies_detect(days=7)
    suggestions.suggestions_run()
    figures["anomaly_and_suggestion_run_seconds"] = round(time.perf_counter() - t, 2)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(figures))


def main() -> None:
    env = ensure_database()
    env["BENCH_CHILD"] = "1"
    out = subprocess.run(
        [sys.executable, __file__], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["database"] = DB_URL.rsplit("/", 1)[1]
    figures["target"] = (
        "p95 <= 150 ms with 10M lines; pages read rollups, so time scales with one team's rollup rows"
    )
    write_results("dashboard", figures)


if __name__ == "__main__":
    if os.environ.get("BENCH_CHILD"):
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        child()
    else:
        main()
