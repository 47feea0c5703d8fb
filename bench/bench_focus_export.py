"""FOCUS export of a month's allocated lines: time and peak RSS at 1M and 10M rows.

Two months are generated set-wise (``INSERT … SELECT generate_series``, server-side: the
importer's speed is benchmarked elsewhere) into the partitioned ``costs_costline``: August
2024 with ``BENCH_SMALL`` lines (default 1,000,000) and September 2024 with ``BENCH_LARGE``
(default 10,000,000). 20 teams own the direct lines; 2 % of the lines are shared by a
fixed-share rule over three teams, so each shared line becomes three allocated rows. The
rollups are built with the functions an import calls. Then ``manage.py export_focus``
writes the org's month (every team and the unallocated rows) as CSV and as Parquet in a
child process each; the bench reports rows, seconds, rows/s and the child's peak RSS, and
checks that the export's ``BilledCost`` adds up to the month's lines.

Memory must stay flat from 1M to 10M (the rows stream from a server-side cursor; the
Parquet writer holds one row group). ``BENCH_FORMATS`` (default ``csv,parquet``),
``BENCH_DATABASE_URL`` (default ``tollgate_bench_export``). Writes
bench/results/bench_focus_export.json.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))  # this checkout's apps, not the editable install's
os.environ.setdefault(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tollgate_bench_export"
)
from _common import ensure_database, run_measured, write_results  # noqa: E402

SMALL = int(os.environ.get("BENCH_SMALL", "1000000"))
LARGE = int(os.environ.get("BENCH_LARGE", "10000000"))
FORMATS = os.environ.get("BENCH_FORMATS", "csv,parquet").split(",")
TEAMS, RESOURCES = 20, 4000
WORK = Path(os.environ.get("BENCH_WORK_DIR", "/tmp/tollgate-bench-export"))


def generate(month: dt.date, lines: int) -> float:
    """``lines`` lines spread over the month's days; returns seconds."""
    from django.db import connection

    from accounts.models import Team
    from costs.models import BillingSource, CostLine, ImportRun
    from costs.partitioning import ensure_month_partitions
    from costs.rollups import rebuild_rollups

    if CostLine.objects.filter(billing_period_start=month).count() == lines:
        return 0.0
    t = time.perf_counter()
    teams = [
        Team.objects.get_or_create(slug=f"bench-{i:02d}", defaults={"name": f"Bench {i}"})[0]
        for i in range(TEAMS)
    ]
    rule = _shared_rule(teams[:3])
    src, _ = BillingSource.objects.get_or_create(name="bench-export")
    run = ImportRun.objects.create(source=src, file_name="generated", status="succeeded")
    ensure_month_partitions({month})
    nxt = (month + dt.timedelta(days=32)).replace(day=1)
    days = (nxt - month).days
    with connection.cursor() as c:
        c.execute("DELETE FROM costs_costline WHERE billing_period_start = %s", [month])
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
            "SELECT %s, %s, %s::date, %s::date, "
            "%s::timestamptz + (n %% %s) * interval '1 day', "
            "%s::timestamptz + (n %% %s + 1) * interval '1 day', 'acct', 'sub' || (r %% 50), "
            "'Usage', 'AWS', 'svc-' || (r %% 12), "
            "(ARRAY['Compute','Storage','Databases','Networking'])[1 + r %% 4], "
            "'region-' || (r %% 5), 'res-' || r, 'sku-' || (r %% 30), 'Standard', 24, "
            "round((random() * 10)::numeric, 6), round((random() * 9)::numeric, 6), 11, 'USD', "
            '\'{"team": "x"}\'::jsonb, r %% 1000, '
            "CASE WHEN n %% 50 = 0 THEN 'shared' ELSE 'direct' END, "
            "CASE WHEN n %% 50 = 0 THEN NULL ELSE (%s::bigint[])[1 + r %% %s] END, "
            "CASE WHEN n %% 50 = 0 THEN %s::bigint END, '', '', '', '', '', 'Usage-Based', "
            "'usage', '', '', '', '', 'res ' || r, 'type-' || (r %% 7), '', '', '', "
            "'', '', '', '', '' "
            "FROM generate_series(0, %s - 1) n, LATERAL (SELECT n %% %s AS r) x",
            [
                src.pk,
                run.pk,
                month,
                nxt,
                f"{month} 00:00+00",
                days,
                f"{month} 00:00+00",
                days,
                [t.pk for t in teams],
                TEAMS,
                rule.pk,
                lines,
                RESOURCES,
            ],
        )
    rebuild_rollups(periods=[month])
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE costs_costdaily")
    return time.perf_counter() - t


def _shared_rule(teams):
    from costs.models import AttributionRule, RuleShare

    rule, created = AttributionRule.objects.get_or_create(
        name="bench shared", defaults={"position": 1000, "method": "fixed", "tag_key": "shared"}
    )
    if created:
        for team, weight in zip(teams, (5, 3, 2), strict=True):
            RuleShare.objects.create(rule=rule, team=team, weight=weight)
    return rule


def _csv_total(path: Path) -> tuple[int, Decimal]:
    rows, total = 0, Decimal(0)
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            rows += 1
            total += Decimal(r["BilledCost"])
    return rows, total


def _parquet_total(path: Path) -> tuple[int, Decimal]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["BilledCost"])
    return table.num_rows, Decimal(str(pc.sum(table.column("BilledCost")).as_py()))


def main() -> None:
    env = ensure_database()
    os.environ.update(
        {k: v for k, v in env.items() if k in ("DATABASE_URL", "CELERY_TASK_ALWAYS_EAGER")}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.db.models import Sum

    from costs.models import CostLine

    WORK.mkdir(parents=True, exist_ok=True)
    figures: dict = {"database": "postgresql", "runs": []}
    for month, lines in ((dt.date(2024, 8, 1), SMALL), (dt.date(2024, 9, 1), LARGE)):
        gen = generate(month, lines)
        line_total = CostLine.objects.filter(billing_period_start=month).aggregate(
            s=Sum("billed_cost")
        )["s"]
        for fmt in FORMATS:
            out = WORK / f"org-{month:%Y-%m}.{fmt}"
            seconds, rss_mb, stdout = run_measured(
                [
                    sys.executable,
                    "manage.py",
                    "export_focus",
                    "--month",
                    f"{month:%Y-%m}",
                    "--output",
                    str(out),
                ],
                env,
            )
            rows, total = (_csv_total if fmt == "csv" else _parquet_total)(out)
            run = {
                "month": f"{month:%Y-%m}",
                "lines": lines,
                "generate_and_rollup_s": round(gen, 1),
                "format": fmt,
                "allocated_rows": rows,
                "export_s": round(seconds, 1),
                "rows_per_s": round(rows / seconds),
                "peak_rss_mb": rss_mb,
                "file_mb": round(out.stat().st_size / 1e6, 1),
                "billed_total_matches_lines": total == line_total,
                "command_output": stdout.strip(),
            }
            print(run, flush=True)
            figures["runs"].append(run)
            out.unlink()
    by_fmt: dict = {}
    for r in figures["runs"]:
        by_fmt.setdefault(r["format"], []).append(r["peak_rss_mb"])
    figures["rss_growth_mb_small_to_large"] = {f: v[-1] - v[0] for f, v in by_fmt.items()}
    write_results("bench_focus_export", figures)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
