"""Re-attribution time after a rule change, on lines loaded by bench_focus_ingest.

Loads BENCH_REATTR_ROWS rows (default 1,000,000; the issue asks for 10M) if the bench
database has fewer, adds a rule that moves a tagged slice of the lines to a team, and times
the set-based re-attribution (distinct attribute sets -> rules -> UPDATE ... FROM -> rollups).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import ROOT, ensure_database, run_measured, write_results  # noqa: E402
from _focusgen import build  # noqa: E402


def main() -> None:
    rows = int(os.environ.get("BENCH_REATTR_ROWS", "1000000"))
    env = ensure_database()
    os.environ.update(
        {
            k: v
            for k, v in env.items()
            if k in ("DATABASE_URL", "CELERY_TASK_ALWAYS_EAGER", "LOG_LEVEL")
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from accounts.models import Team
    from costs import services
    from costs.models import AttributionRule, CostLine
    from portal.core.actors import BENCH

    source = f"bench-{rows}"
    if CostLine.objects.filter(source__name=source).count() != rows:
        work = Path(os.environ.get("BENCH_WORK_DIR", "/tmp/tollgate-bench"))
        work.mkdir(parents=True, exist_ok=True)
        path = work / f"focus_{rows}.csv"
        if not path.exists():
            build(path, rows)
        run_measured(
            [
                sys.executable,
                "manage.py",
                "import_focus",
                str(path),
                "--source",
                source,
                "--no-progress",
            ],
            env,
        )
    team, _ = Team.objects.get_or_create(slug="bench-team", defaults={"name": "Bench team"})
    AttributionRule.objects.filter(name__startswith="bench ").update(enabled=False)
    name = f"bench prod {int(time.time())}"
    services.rule_save(
        actor=BENCH,
        rule=None,
        data={
            "name": name,
            "position": 1,
            "tag_key": "ENVIRONMENT",
            "tag_value": "prod",
            "method": "direct",
            "team": team.slug,
        },
    )
    periods = sorted(
        set(
            CostLine.objects.filter(source__name=source)
            .values_list("billing_period_start", flat=True)
            .distinct()
        )
    )
    total = CostLine.objects.filter(billing_period_start__in=periods).count()
    start = time.perf_counter()
    from django.db import transaction

    with transaction.atomic():
        changed = services.reattribute_lines(periods=periods, rules=services.enabled_rule_specs())
    elapsed = time.perf_counter() - start
    AttributionRule.objects.filter(name=name).update(enabled=False)
    start2 = time.perf_counter()
    with transaction.atomic():
        back = services.reattribute_lines(periods=periods, rules=services.enabled_rule_specs())
    elapsed2 = time.perf_counter() - start2
    write_results(
        "bench_reattribute",
        {
            "database": "postgresql",
            "lines_in_periods": total,
            "rule_change": "tag environment=prod -> one team",
            "lines_changed": changed,
            "reattribute_s": round(elapsed, 2),
            "lines_changed_back": back,
            "reattribute_back_s": round(elapsed2, 2),
            "note": f"{rows:,} lines measured; the issue's 10M was not run in this time box",
        },
    )


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
