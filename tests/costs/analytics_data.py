"""Hand-built cost data for the analytics tests: FOCUS rows loaded through the importer."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal

from costs import services
from costs.analytics.rollups import resource_rollups_rebuild
from costs.ingest.focus import COLUMNS, focus_row
from costs.models import CostDaily
from portal.core.actors import COSTS

from .conftest import do_import


def tag_rules(*teams) -> None:
    for i, team in enumerate(teams):
        services.rule_save(
            actor=COSTS,
            rule=None,
            data={
                "name": f"tag {team.slug}",
                "position": 10 * (i + 1),
                "tag_key": "team",
                "tag_value": team.slug,
                "method": "direct",
                "team": team.slug,
                "target_project": "",
            },
        )


def load_rows(tmp_path, rows: list[dict], source: str = "test") -> None:
    path = tmp_path / f"{source}.csv"
    header = list(COLUMNS)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for r in rows:
            writer.writerow([r.get(c, "") for c in header])
    run = do_import(path, source=source)
    assert run.status == "succeeded", run.errors
    periods = list(CostDaily.objects.values_list("billing_period_start", flat=True).distinct())
    resource_rollups_rebuild(periods=periods)


def line(
    day: dt.date,
    team: str | None,
    cost,
    *,
    service="Amazon Elastic Compute Cloud",
    category="Compute",
    resource="i-1",
    region="us-east-1",
    **extra,
) -> dict:
    return focus_row(
        day,
        cost=Decimal(str(cost)),
        tags={"team": team} if team else None,
        ServiceName=service,
        ServiceCategory=category,
        ResourceId=resource,
        region=region,
        ConsumedQuantity=extra.pop("qty", 24),
        PricingQuantity=24,
        **extra,
    )


def standard_org_costs(tmp_path, org, *, days: int = 70, today: dt.date | None = None) -> dt.date:
    """payments: EC2 (two resources) and RDS; search: EC2; other: S3; plus unallocated."""
    today = today or dt.date.today()
    tag_rules(org["payments"], org["search"], org["other"])
    rows = []
    for back in range(days, -1, -1):
        d = today - dt.timedelta(days=back)
        wk = Decimal("0.8") if d.weekday() >= 5 else Decimal("1")
        rows.append(line(d, "payments", Decimal("20.5") * wk + back % 3, resource="i-pay-1"))
        rows.append(
            line(d, "payments", Decimal("7.25") * wk, resource="i-pay-2", region="eu-west-1")
        )
        rows.append(
            line(
                d,
                "payments",
                Decimal("11.125"),
                service="Amazon Relational Database Service",
                category="Databases",
                resource="db-pay",
            )
        )
        rows.append(line(d, "search", Decimal("13.75") * wk, resource="i-search"))
        rows.append(
            line(
                d,
                "other",
                Decimal("4.5"),
                service="Amazon Simple Storage Service",
                category="Storage",
                resource="bucket-other",
            )
        )
        rows.append(line(d, None, Decimal("3.3"), resource="i-nobody"))
    load_rows(tmp_path, rows)
    return today
