"""Daily rollups (``CostDaily``) per billing period: what every cost page reads.

Rebuilt set-wise for whole billing periods (after an import or a re-attribution), in one
pass over the lines (grouped into a temporary table): directly attributed and unallocated
lines are grouped in SQL; lines of a shared-cost rule
are grouped the same way and each group is split across the rule's teams in Python
(:func:`costs.attribution.split_amount`), so for every period
``sum(rollup billed) == sum(line billed)`` exactly, and attributed + unallocated = total.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db import connection
from django.db.models import Sum

from .attribution import RuleSpec, share_weights, split_amount
from .models import Allocation, AttributionRule, CostDaily

DIMS = (
    "attributed_service",
    "project",
    "provider_name",
    "service_name",
    "service_category",
    "region_id",
    "charge_category",
    "billing_currency",
)


def _day_expr() -> str:
    if connection.vendor == "postgresql":
        return "(charge_period_start AT TIME ZONE 'UTC')::date"
    return "date(charge_period_start)"


def rebuild_rollups(*, periods: list[dt.date], rules=None) -> int:
    """Replace the rollups of ``periods``. ``rules``: RuleSpecs (default: from the DB)."""
    if not periods:
        return 0
    marks = ", ".join(["%s"] * len(periods))
    dims = ", ".join(DIMS)
    day = _day_expr()
    pg = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if pg:
            # enough memory to group a month in a hash table instead of sorting on disk
            cursor.execute("SET LOCAL work_mem = '256MB'")
            # Freshly loaded lines have no statistics yet, so the planner expects a few
            # thousand rows and sorts a month by a dozen text keys (2.5x slower than hashing
            # at 1M lines). Hash instead, for these statements only (restored below).
            cursor.execute("SELECT current_setting('enable_sort')")
            sort_setting = cursor.fetchone()[0]
            cursor.execute("SELECT set_config('enable_sort', 'off', true)")
        cursor.execute(
            f"DELETE FROM costs_costdaily WHERE billing_period_start IN ({marks})",  # noqa: S608
            list(periods),
        )
        # One pass over the lines: grouped by everything both outputs need (the rule only
        # for shared lines, so direct and unallocated groups are already final).
        cursor.execute("DROP TABLE IF EXISTS costs_rollup_groups")
        cursor.execute(
            "CREATE TEMP TABLE costs_rollup_groups AS "  # noqa: S608
            f"SELECT billing_period_start, {day} AS day, team_id, allocation, "
            f"CASE WHEN allocation = %s THEN rule_id END AS rule_id, {dims}, "
            "SUM(billed_cost) AS billed, SUM(effective_cost) AS effective, "
            "SUM(list_cost) AS listed, COUNT(*) AS n "
            f"FROM costs_costline WHERE billing_period_start IN ({marks}) "
            f"GROUP BY billing_period_start, {day}, team_id, allocation, "
            f"CASE WHEN allocation = %s THEN rule_id END, {dims}",
            [Allocation.SHARED, *periods, Allocation.SHARED],
        )
        cursor.execute(
            f"INSERT INTO costs_costdaily (billing_period_start, day, team_id, allocation, {dims}, "  # noqa: S608
            "billed_cost, effective_cost, list_cost, lines) "
            f"SELECT billing_period_start, day, team_id, allocation, {dims}, "
            "billed, effective, COALESCE(listed, 0), n "
            "FROM costs_rollup_groups WHERE allocation <> %s",
            [Allocation.SHARED],
        )
        inserted = cursor.rowcount
        cursor.execute(
            f"SELECT rule_id, billing_period_start, day, {dims}, "  # noqa: S608
            "SUM(billed), SUM(effective), COALESCE(SUM(listed), 0), SUM(n) "
            "FROM costs_rollup_groups WHERE allocation = %s "
            f"GROUP BY rule_id, billing_period_start, day, {dims}",
            [Allocation.SHARED],
        )
        shared = cursor.fetchall()
        cursor.execute("DROP TABLE costs_rollup_groups")
        if pg:
            cursor.execute("SELECT set_config('enable_sort', %s, true)", [sort_setting])
    if not shared:
        return inserted
    if rules is None:
        rules = [RuleSpec.from_model(r) for r in AttributionRule.objects.prefetch_related("shares")]
    specs = {r.id: r for r in rules}
    weights_cache: dict = {}
    out: list[CostDaily] = []
    ndims = len(DIMS)
    for row in shared:
        rule_id, period, day_value = row[0], row[1], row[2]
        dim_values = dict(zip(DIMS, row[3 : 3 + ndims], strict=True))
        billed, effective, listed, count = row[3 + ndims :]
        count = int(count)
        billed, effective, listed = (_dec(billed), _dec(effective), _dec(listed))
        if isinstance(period, str):
            period = dt.date.fromisoformat(period)
        if isinstance(day_value, str):
            day_value = dt.date.fromisoformat(day_value)
        cache_key = (rule_id, period)
        if cache_key not in weights_cache:
            weights_cache[cache_key] = _weights(specs.get(rule_id), period)
        weights = weights_cache[cache_key]
        if not weights:  # a shared rule with nobody to share with: stays visible, unallocated
            out.append(
                CostDaily(
                    billing_period_start=period,
                    day=day_value,
                    team=None,
                    allocation=Allocation.UNALLOCATED,
                    billed_cost=billed,
                    effective_cost=effective,
                    list_cost=listed,
                    lines=count,
                    **dim_values,
                )
            )
            continue
        parts = [split_amount(x, weights) for x in (billed, effective, listed)]
        largest = max(range(len(weights)), key=lambda i: (weights[i][1], -i))
        for i, (team_id, _) in enumerate(weights):
            out.append(
                CostDaily(
                    billing_period_start=period,
                    day=day_value,
                    team_id=team_id,
                    allocation=Allocation.SHARED,
                    billed_cost=parts[0][team_id],
                    effective_cost=parts[1][team_id],
                    list_cost=parts[2][team_id],
                    lines=count if i == largest else 0,
                    **dim_values,
                )
            )
    CostDaily.objects.bulk_create(out, batch_size=2000)
    return inserted + len(out)


def _dec(value) -> Decimal:
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value)).quantize(Decimal("1e-12"))


def _weights(spec: RuleSpec | None, period: dt.date) -> list[tuple[int, Decimal]]:
    if spec is None or spec.method == "direct":
        return []
    spend = None
    if spec.method == "proportional":
        rows = (
            CostDaily.objects.filter(
                billing_period_start=period,
                allocation=Allocation.DIRECT,
                service_category__iexact=spec.proportional_category,
                team__isnull=False,
            )
            .values("team_id")
            .annotate(total=Sum("billed_cost"))
        )
        spend = {r["team_id"]: _dec(r["total"]) for r in rows}
    merged: dict[int, Decimal] = defaultdict(Decimal)
    for team_id, weight in share_weights(spec, category_spend=spend):
        merged[team_id] += weight
    return [(t, w) for t, w in merged.items() if w > 0]
