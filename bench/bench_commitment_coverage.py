"""Commitment coverage and utilisation for a month of 10M cost lines, read from rollups.

Generates ``BENCH_LINES`` lines (default 10,000,000) for September 2024 set-wise
(``INSERT … SELECT generate_series``) into the partitioned ``costs_costline``: 20 teams,
4,000 resources, 12 services; a tenth of the resources run under one of 7 savings plans
(``Committed`` pricing, ``Used``; every fifth day-round of their lines ``Unused``), 2 % of the lines are
shared by a fixed-share rule. Builds the rollups the way an import does (cost rollup, then
the resource rollup, which builds the commitment rollup), then times the org's figures
(utilisation per commitment, coverage per service and team, savings per team) and one
team's, each 5 times (target: ≤ 2 s). ``BENCH_DATABASE_URL`` (default
``tollgate_bench_commit``). Writes bench/results/bench_commitment_coverage.json.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))  # this checkout's apps, not the editable install's
os.environ.setdefault(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tollgate_bench_commit"
)
from _common import ensure_database, write_results  # noqa: E402

LINES = int(os.environ.get("BENCH_LINES", "10000000"))
MONTH = dt.date(2024, 9, 1)
TEAMS, RESOURCES = 20, 4000


def build(figures: dict) -> None:
    from django.db import connection

    from accounts.models import Team
    from costs.analytics.rollups import resource_rollups_rebuild
    from costs.models import AttributionRule, BillingSource, CostLine, ImportRun, RuleShare
    from costs.partitioning import ensure_month_partitions
    from costs.rollups import rebuild_rollups

    if CostLine.objects.filter(billing_period_start=MONTH).count() == LINES:
        return
    t = time.perf_counter()
    teams = [
        Team.objects.get_or_create(slug=f"bench-{i:02d}", defaults={"name": f"Bench {i}"})[0]
        for i in range(TEAMS)
    ]
    rule, created = AttributionRule.objects.get_or_create(
        name="bench shared", defaults={"position": 1000, "method": "fixed", "tag_key": "shared"}
    )
    if created:
        for team, weight in zip(teams[:3], (5, 3, 2), strict=True):
            RuleShare.objects.create(rule=rule, team=team, weight=weight)
    src, _ = BillingSource.objects.get_or_create(name="bench-commit")
    run = ImportRun.objects.create(source=src, file_name="generated", status="succeeded")
    ensure_month_partitions({MONTH})
    with connection.cursor() as c:
        c.execute("DELETE FROM costs_costline WHERE billing_period_start = %s", [MONTH])
        c.execute(
            "INSERT INTO costs_costline (source_id, import_run_id, billing_period_start, "
            "billing_period_end, charge_period_start, charge_period_end, billing_account_id, "
            "sub_account_id, charge_category, provider_name, service_name, service_category, "
            "region_id, resource_id, sku_id, pricing_category, consumed_quantity, billed_cost, "
            "effective_cost, list_cost, billing_currency, tags, attr_key, allocation, team_id, "
            "rule_id, attributed_service, project, billing_account_name, sub_account_name, "
            "charge_class, charge_frequency, charge_description, publisher_name, "
            "invoice_issuer_name, region_name, availability_zone, resource_name, resource_type, "
            "sku_price_id, pricing_unit, consumed_unit, commitment_discount_id, "
            "commitment_discount_name, commitment_discount_category, commitment_discount_type, "
            "commitment_discount_status) "
            "SELECT %s, %s, %s::date, (%s::date + interval '1 month')::date, "
            "%s::timestamptz + (n %% 30) * interval '1 day', "
            "%s::timestamptz + (n %% 30 + 1) * interval '1 day', 'acct', 'sub' || (r %% 50), "
            "'Usage', 'AWS', 'svc-' || (r %% 12), "
            "(ARRAY['Compute','Storage','Databases','Networking'])[1 + r %% 4], "
            "'region-' || (r %% 5), 'res-' || r, 'sku-' || (r %% 30), "
            "CASE WHEN r %% 10 = 0 THEN 'Committed' ELSE 'Standard' END, 24, "
            "round((random() * 10)::numeric, 6), round((random() * 9)::numeric, 6), "
            "round((10 + random() * 4)::numeric, 6), 'USD', '{}'::jsonb, r %% 1000, "
            "CASE WHEN n %% 50 = 0 THEN 'shared' ELSE 'direct' END, "
            "CASE WHEN n %% 50 = 0 THEN NULL ELSE (%s::bigint[])[1 + r %% %s] END, "
            "CASE WHEN n %% 50 = 0 THEN %s::bigint END, '', '', '', '', '', 'Usage-Based', "
            "'usage', '', '', '', '', 'res ' || r, 'type-' || (r %% 7), '', '', '', "
            "CASE WHEN r %% 10 = 0 THEN 'sp-' || (r %% 7) ELSE '' END, "
            "CASE WHEN r %% 10 = 0 THEN 'plan ' || (r %% 7) ELSE '' END, "
            "CASE WHEN r %% 10 = 0 THEN 'Spend' ELSE '' END, "
            "CASE WHEN r %% 10 = 0 THEN 'Savings Plan' ELSE '' END, "
            "CASE WHEN r %% 10 = 0 THEN (CASE WHEN (n / %s) %% 5 = 0 THEN 'Unused' ELSE 'Used' END) "
            "ELSE '' END "
            "FROM generate_series(0, %s - 1) n, LATERAL (SELECT n %% %s AS r) x",
            [
                src.pk,
                run.pk,
                MONTH,
                MONTH,
                f"{MONTH} 00:00+00",
                f"{MONTH} 00:00+00",
                [t.pk for t in teams],
                TEAMS,
                rule.pk,
                RESOURCES,
                LINES,
                RESOURCES,
            ],
        )
    figures["generate_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    rebuild_rollups(periods=[MONTH])
    figures["cost_rollup_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    resource_rollups_rebuild(periods=[MONTH])
    figures["resource_and_commitment_rollup_s"] = round(time.perf_counter() - t, 1)
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE costs_costcommitmentdaily")


def main() -> None:
    env = ensure_database()
    os.environ.update(
        {k: v for k, v in env.items() if k in ("DATABASE_URL", "CELERY_TASK_ALWAYS_EAGER")}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from accounts.models import Team
    from costs.analytics.commitments import month_figures
    from costs.analytics.models import CostCommitmentDaily
    from costs.models import CostLine

    figures: dict = {"database": "postgresql", "lines_target": LINES}
    build(figures)
    figures["cost_lines"] = CostLine.objects.filter(billing_period_start=MONTH).count()
    figures["commitment_rollup_rows"] = CostCommitmentDaily.objects.filter(
        billing_period_start=MONTH
    ).count()
    team = Team.objects.get(slug="bench-10")  # runs committed resources
    figures["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    for label, team_id in (("org", None), ("team", team.pk)):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            result = month_figures(month=MONTH, team_id=team_id)
            times.append(time.perf_counter() - t)
        figures[f"{label}_seconds"] = {
            "median": round(statistics.median(times), 3),
            "max": round(max(times), 3),
        }
        figures[f"{label}_coverage_pct"] = str(result["coverage_pct"])
        figures[f"{label}_utilisation_pct"] = str(result["utilisation_pct"])
        figures[f"{label}_commitments"] = len(result["commitments"])
    figures["target_s"] = 2.0
    figures["met"] = max(figures["org_seconds"]["max"], figures["team_seconds"]["max"]) <= 2.0
    write_results("bench_commitment_coverage", figures)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
