"""The resource-level daily rollup (``CostResourceDaily``): drill-down, checks and drivers.

Built set-wise per billing period with one ``INSERT … SELECT … GROUP BY`` over the cost
lines (like ``costs.rollups``; shared lines keep ``team = NULL`` here, their split lives in
``CostDaily``). An import or a re-attribution enqueues :func:`resource_rollups_rebuild` for
the periods it changed, after commit (``costs.analytics.tasks.enqueue_resource_rollups``), so
the import itself stays fast; the daily analytics task rebuilds every period whose lines
changed after its last build (:func:`resource_rollups_refresh`), the safety net for a lost
message.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from ..models import CostDaily, ImportRun, ReattributionRun
from .models import RollupBuild

GROUP = (
    "team_id",
    "allocation",
    "service_name",
    "service_category",
    "region_id",
    "charge_category",
    "pricing_category",
    "commitment_discount_status",
    "resource_id",
    "resource_name",
    "resource_type",
    "sku_id",
    "billing_currency",
)


def _exprs() -> tuple[str, str]:
    if connection.vendor == "postgresql":
        return (
            "(charge_period_start AT TIME ZONE 'UTC')::date",
            "(tags IS NOT NULL AND tags <> '{}'::jsonb)",
        )
    return (
        "date(charge_period_start)",
        "(tags IS NOT NULL AND tags NOT IN ('{}', 'null'))",
    )


def resource_rollups_rebuild(*, periods: list[dt.date]) -> int:
    """Replace the resource rollups of ``periods`` (billing period starts). Returns rows."""
    if not periods:
        return 0
    periods = sorted(set(periods))
    marks = ", ".join(["%s"] * len(periods))
    cols = ", ".join(GROUP)
    day, tagged = _exprs()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM costs_costresourcedaily WHERE billing_period_start IN ({marks})",  # noqa: S608
            periods,
        )
        cursor.execute(
            f"INSERT INTO costs_costresourcedaily (billing_period_start, day, tagged, {cols}, "  # noqa: S608
            "billed_cost, effective_cost, list_cost, consumed_quantity, lines) "
            f"SELECT billing_period_start, {day}, {tagged}, {cols}, SUM(billed_cost), "
            "SUM(effective_cost), COALESCE(SUM(list_cost), 0), COALESCE(SUM(consumed_quantity), 0), "
            f"COUNT(*) FROM costs_costline WHERE billing_period_start IN ({marks}) "
            f"GROUP BY billing_period_start, {day}, {tagged}, {cols}",
            periods,
        )
        rows = cursor.rowcount
        _team_resource_rebuild(cursor, periods, marks)
        _commitment_rebuild(cursor, periods, marks, day)
        now = timezone.now()
        for period in periods:
            RollupBuild.objects.update_or_create(
                billing_period_start=period, defaults={"built_at": now, "rows": 0}
            )
    return rows


def _team_resource_rebuild(cursor, periods: list[dt.date], marks: str) -> None:
    """The dashboard's narrow rollup (``CostResourceTeamDaily``) from the resource rollup."""
    cursor.execute(
        f"DELETE FROM costs_costresourceteamdaily WHERE billing_period_start IN ({marks})",  # noqa: S608
        periods,
    )
    cursor.execute(
        "INSERT INTO costs_costresourceteamdaily (billing_period_start, day, team_id, "  # noqa: S608
        "resource_id, service_name, billed_cost, effective_cost, committed_cost, "
        "on_demand_compute_cost, commitment_used_cost, commitment_unused_cost) "
        "SELECT billing_period_start, day, team_id, resource_id, service_name, SUM(billed_cost), "
        "SUM(effective_cost), "
        "SUM(CASE WHEN pricing_category = 'Committed' THEN effective_cost ELSE 0 END), "
        "SUM(CASE WHEN pricing_category = 'Standard' AND service_category = 'Compute' "
        "AND charge_category = 'Usage' THEN effective_cost ELSE 0 END), "
        "SUM(CASE WHEN commitment_discount_status = 'Used' THEN effective_cost ELSE 0 END), "
        "SUM(CASE WHEN commitment_discount_status = 'Unused' THEN effective_cost ELSE 0 END) "
        f"FROM costs_costresourcedaily WHERE billing_period_start IN ({marks}) "
        "AND team_id IS NOT NULL "
        "GROUP BY billing_period_start, day, team_id, resource_id, service_name "
        # stored in (team, day) order: a team's range is a few contiguous heap pages
        "ORDER BY team_id, day, resource_id",
        periods,
    )


COMMITMENT_GROUP = (
    "team_id",
    "allocation",
    "service_name",
    "pricing_category",
    "commitment_discount_id",
    "commitment_discount_name",
    "commitment_discount_category",
    "commitment_discount_type",
    "commitment_discount_status",
    "billing_currency",
)


def _commitment_rebuild(cursor, periods: list[dt.date], marks: str, day: str) -> None:
    """``CostCommitmentDaily``: standard- and committed-priced usage by commitment."""
    cols = ", ".join(COMMITMENT_GROUP)
    cursor.execute(
        f"DELETE FROM costs_costcommitmentdaily WHERE billing_period_start IN ({marks})",  # noqa: S608
        periods,
    )
    cursor.execute(
        f"INSERT INTO costs_costcommitmentdaily (billing_period_start, day, rule_id, {cols}, "  # noqa: S608
        "effective_cost, on_demand_cost, lines) "
        f"SELECT billing_period_start, {day}, "
        "CASE WHEN allocation = 'shared' THEN rule_id END, "
        f"{cols}, SUM(effective_cost), SUM(COALESCE(list_cost, effective_cost)), COUNT(*) "
        f"FROM costs_costline WHERE billing_period_start IN ({marks}) "
        "AND charge_category = 'Usage' "
        "AND (pricing_category IN ('Standard', 'Committed') OR commitment_discount_id <> '') "
        f"GROUP BY billing_period_start, {day}, CASE WHEN allocation = 'shared' THEN rule_id END, "
        f"{cols}",
        periods,
    )


def stale_periods() -> list[dt.date]:
    """Billing periods whose lines changed (import or re-attribution) after their last build."""
    periods = set(CostDaily.objects.values_list("billing_period_start", flat=True).distinct())
    built = dict(RollupBuild.objects.values_list("billing_period_start", "built_at"))
    last_reattr = ReattributionRun.objects.filter(status="succeeded").aggregate(
        t=Max("finished_at")
    )["t"]
    stale = {p for p in periods if p not in built}
    if last_reattr is not None:
        stale |= {p for p, t in built.items() if t < last_reattr and p in periods}
    runs = ImportRun.objects.filter(status="succeeded").filter(Q(finished_at__isnull=False))
    oldest = min(built.values(), default=None)
    if oldest is not None:
        runs = runs.filter(finished_at__gt=oldest)
    for run_periods, finished in runs.values_list("periods", "finished_at"):
        for raw in run_periods or []:
            p = dt.date.fromisoformat(raw)
            if p in built and built[p] < finished:
                stale.add(p)
    return sorted(stale)


def resource_rollups_refresh() -> list[dt.date]:
    periods = stale_periods()
    if periods:
        resource_rollups_rebuild(periods=periods)
    return periods
