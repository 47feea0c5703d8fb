"""The grouped figures behind the team dashboard: daily series, breakdowns by dimension,
resources, movers, commitment and budget burn (each a fixed number of queries).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Min, Q, Sum

from portal.core.money import ZERO, money, round_parts

from ...models import Allocation, CostDaily, ImportRun, ReattributionRun
from ..forecast import month_end
from ..models import (
    CostResourceDaily,
    CostResourceTeamDaily,
    RollupBuild,
)
from .common import (
    SHARED_ROW,
    shift_year,
)


def compare_range(start: dt.date, end: dt.date, kind: str) -> tuple[dt.date, dt.date] | None:
    if kind == "previous":
        length = (end - start).days + 1
        return start - dt.timedelta(days=length), start - dt.timedelta(days=1)
    if kind == "year":
        return shift_year(start), shift_year(end)
    return None


def _team_days(
    *, team_id: int, start: dt.date, end: dt.date, month: dt.date, as_of: dt.date
) -> tuple[dict[dt.date, Decimal], dict]:
    """The team's daily billed cost over [start, end] and the month's totals (as
    :func:`_month_totals`) in two index-friendly queries: one over the team's days, one over
    the unallocated days of the month."""
    until = min(month_end(month), as_of)
    rows = (
        CostDaily.objects.filter(team_id=team_id, day__gte=start, day__lte=end)
        .order_by()
        .values_list("day")
        .annotate(Sum("billed_cost"), Sum("effective_cost"), Min("billing_currency"))
    )
    series, in_month = {}, []
    for day, billed, effective, currency in rows:
        series[day] = billed or ZERO
        if month <= day <= until:
            in_month.append((billed or ZERO, effective or ZERO, currency))
    unallocated = CostDaily.objects.filter(
        team__isnull=True, day__gte=month, day__lte=until
    ).aggregate(s=Sum("billed_cost"))["s"]
    totals = {
        "billed": sum((b for b, _, _ in in_month), ZERO) if in_month else None,
        "effective": sum((e for _, e, _ in in_month), ZERO) if in_month else None,
        "currency": min((c for _, _, c in in_month if c), default=None),
        "unallocated": unallocated,
    }
    return series, totals


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def _window(cur: tuple, prev: tuple | None) -> Q:
    window = Q(day__gte=cur[0], day__lte=cur[1])
    if prev:
        window |= Q(day__gte=prev[0], day__lte=prev[1])
    return window


def rollup_version() -> str:
    """Changes whenever the rollups may have changed: a resource-rollup build, a finished
    import or re-attribution (one query). Part of the dashboard's cache key, so an import or
    a re-attribution invalidates every cached dashboard at once."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT MAX(built_at) FROM {RollupBuild._meta.db_table}), "  # noqa: S608
            f"(SELECT COUNT(*) FROM {RollupBuild._meta.db_table}), "
            f"(SELECT MAX(finished_at) FROM {ImportRun._meta.db_table}), "
            f"(SELECT COUNT(*) FROM {ImportRun._meta.db_table}), "
            f"(SELECT MAX(finished_at) FROM {ReattributionRun._meta.db_table})"
        )
        row = cursor.fetchone()
    return "|".join("" if v is None else str(v) for v in row)


def _daily_breakdowns(qs, *, cur: tuple, prev: tuple | None, total: Decimal):
    """By service, by category, by region and the shared total of a range: one grouped
    query over the team's ``CostDaily`` rows (a few dozen groups), split in Python."""
    cur_q = Q(day__gte=cur[0], day__lte=cur[1])
    ann = {"amount": Sum("billed_cost", filter=cur_q)}
    if prev:
        ann["prev"] = Sum("billed_cost", filter=Q(day__gte=prev[0], day__lte=prev[1]))
    dims = ("service_name", "service_category", "region_id")
    rows = list(qs.order_by().values(*dims, "allocation").annotate(**ann))
    shared: dict[str, Any] = {"amount": ZERO, "prev": ZERO if prev else None}
    out = []
    for key in dims:
        acc: dict[str, dict[str, Any]] = {}
        for r in rows:
            e = acc.setdefault(r[key], {key: r[key], "amount": ZERO})
            e["amount"] += r["amount"] or ZERO
            if prev:
                e["prev"] = e.get("prev", ZERO) + (r["prev"] or ZERO)
        ordered = sorted(acc.values(), key=lambda x, k=key: (-x["amount"], x[k]))  # type: ignore[misc]
        out.append(_with_shares(ordered, key, total))
    for r in rows:
        if r["allocation"] == Allocation.SHARED:
            shared["amount"] += r["amount"] or ZERO
            if prev:
                shared["prev"] += r["prev"] or ZERO
    return out[0], out[1], out[2], shared


def _with_shares(rows: list[dict], key: str, total: Decimal) -> list[dict]:
    """Display rows of a complete breakdown: amounts and previous amounts rounded so that
    each column sums to its rounded total (:func:`round_parts`), the change between the
    two rounded figures, and the exact share of ``total``."""
    amounts = round_parts([r["amount"] for r in rows])
    has_prev = [r.get("prev") is not None for r in rows]
    prevs = round_parts([r.get("prev") for r in rows])
    out = []
    for r, amount, prev, known in zip(rows, amounts, prevs, has_prev, strict=True):
        out.append(
            {
                "key": r[key] or "(none)",
                "amount": amount,
                "prev": prev if known else None,
                "delta": amount - prev if known else None,
                "share": (r["amount"] / total * 100) if total else None,
            }
        )
    return out


def _resource_figures(
    *, team_id: int, cur: tuple, prev: tuple | None, total: Decimal, shared: dict
) -> tuple[list[dict], dict, list[dict], dict]:
    """Top resources, the team's share of shared costs, top movers and commitment figures of
    a range, from one grouped query over the narrow ``CostResourceTeamDaily`` (one row per
    resource and service in range: bounded by the team's resources, not by cost lines).

    Resources hold the directly attributed spend; ``shared`` (exact amounts) is the rest of
    the range's total, so it is rounded as one more part beside them."""
    cur_q = Q(day__gte=cur[0], day__lte=cur[1])
    window = cur_q
    ann = {
        "amount": Sum("billed_cost", filter=cur_q),
        "committed": Sum("committed_cost", filter=cur_q),
        "on_demand": Sum("on_demand_compute_cost", filter=cur_q),
        "used": Sum("commitment_used_cost", filter=cur_q),
        "unused": Sum("commitment_unused_cost", filter=cur_q),
    }
    if prev:
        prev_q = Q(day__gte=prev[0], day__lte=prev[1])
        window = cur_q | prev_q
        ann["prev"] = Sum("billed_cost", filter=prev_q)
    rows = list(
        CostResourceTeamDaily.objects.filter(window, team_id=team_id)
        .order_by()
        .values_list("resource_id", "service_name")
        .annotate(**ann)
    )
    keys = ("amount", "committed", "on_demand", "used", "unused", "prev")
    per_resource: dict[str, dict] = {}
    pairs, sums = [], dict.fromkeys(keys[1:5], ZERO)
    for row in rows:
        resource_id, _service, *values = row
        r = {k: v or ZERO for k, v in zip(keys, values, strict=False)}
        pairs.append({"resource_id": resource_id, "amount": r["amount"], "prev": r.get("prev")})
        for k in sums:
            sums[k] += r[k]
        acc = per_resource.setdefault(
            resource_id,
            {"resource_id": resource_id, "amount": ZERO, **({"prev": ZERO} if prev else {})},
        )
        acc["amount"] += r["amount"]
        if prev:
            acc["prev"] += r["prev"]
    # rounded over every resource, then cut: the top rows carry the same cents as the whole
    ranked = sorted(per_resource.values(), key=lambda x: (-x["amount"], x["resource_id"]))
    *by_resource, shared_row = _with_shares(
        [*ranked, {"resource_id": SHARED_ROW, **shared}], "resource_id", total
    )
    movers = []
    if prev:
        moved = sorted(pairs, key=lambda x: (-abs(x["amount"] - x["prev"]), x["resource_id"]))
        movers = [r for r in _with_shares(moved, "resource_id", total)[:10] if r["delta"]]
    commitment = _commitment(sums["committed"], sums["on_demand"], sums["used"], sums["unused"])
    return by_resource, shared_row, movers, commitment


def _commitment(committed: Decimal, on_demand: Decimal, used: Decimal, unused: Decimal) -> dict:
    eligible = committed + on_demand
    return {
        "committed": money(committed),
        "on_demand": money(on_demand),
        "coverage_pct": (committed / eligible * 100) if eligible else None,
        "used": money(used),
        "unused": money(unused),
        "utilisation_pct": (used / (used + unused) * 100) if (used + unused) else None,
    }


def _cumulative(series, month: dt.date, as_of: dt.date, summary: dict) -> dict:
    """Budget burn: cumulative actual to ``as_of``, the forecast path, the budget pace."""
    last = month_end(month)
    days = [month + dt.timedelta(days=i) for i in range((last - month).days + 1)]
    actual, running = [], ZERO
    for d in days:
        if d > as_of:
            break
        running += series.get(d, ZERO)
        actual.append((d, running))
    remaining = [d for d in days if d > as_of]
    forecast_path = []
    if remaining and actual:
        step = (summary["forecast"] - running) / len(remaining)
        value = running
        forecast_path.append((as_of, running))
        for d in remaining:
            value += step
            forecast_path.append((d, value))
    budget = summary["budget"]
    pace = [(d, budget * (i + 1) / len(days)) for i, d in enumerate(days)] if budget else []
    return {"actual": actual, "forecast": forecast_path, "pace": pace}


def commitment_stats(*, team_id: int | None, start: dt.date, end: dt.date) -> dict:
    """Commitment coverage (committed share of commitment-eligible usage) and utilisation
    (used share of the commitments' cost), from the resource rollup."""
    qs = CostResourceDaily.objects.filter(day__gte=start, day__lte=end)
    if team_id is not None:
        qs = qs.filter(team_id=team_id)
    agg = qs.aggregate(
        committed=Sum("effective_cost", filter=Q(pricing_category="Committed")),
        on_demand=Sum(
            "effective_cost",
            filter=Q(
                pricing_category="Standard", service_category="Compute", charge_category="Usage"
            ),
        ),
        used=Sum("effective_cost", filter=Q(commitment_discount_status="Used")),
        unused=Sum("effective_cost", filter=Q(commitment_discount_status="Unused")),
    )
    return _commitment(
        agg["committed"] or ZERO,
        agg["on_demand"] or ZERO,
        agg["used"] or ZERO,
        agg["unused"] or ZERO,
    )
