"""Reads behind the team dashboard, org overview, showback, budgets, anomalies, suggestions.

Every page reads the rollups (``CostDaily``, ``CostResourceDaily``), never raw lines, with a
fixed number of queries per page. Each function that a viewer triggers takes the viewer and
scopes by :mod:`costs.analytics.policies`; what the viewer may not see answers 404.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import Http404

from accounts.models import Team
from portal.core.errors import ValidationError
from portal.core.money import ZERO, money, round_field, round_parts

from ..models import Allocation, CostDaily, ImportRun, ReattributionRun
from ..policies import cost_team_ids_for
from .forecast import forecast_month, month_end
from .models import (
    Anomaly,
    Budget,
    CostResourceDaily,
    CostResourceTeamDaily,
    RollupBuild,
    Suggestion,
)
from .policies import may_view_org_costs, may_view_team_costs

DEFAULT_THRESHOLDS = (80, 100)
MAX_RANGE_DAYS = 731
TOP_N = 25
SHARED_ROW = "(share of shared costs)"


# --- parsing -------------------------------------------------------------------------------


def parse_month(raw: str | None, *, default: dt.date | None = None) -> dt.date:
    if not raw:
        if default is None:
            raise ValidationError("month is required, as YYYY-MM", field="month")
        return default.replace(day=1)
    try:
        return dt.datetime.strptime(raw.strip(), "%Y-%m").date()
    except ValueError:
        raise ValidationError("month must be YYYY-MM", field="month") from None


def parse_day(raw: str | None, field: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationError(f"{field} must be YYYY-MM-DD", field=field) from None


def previous_month(month: dt.date) -> dt.date:
    return (month.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def add_months(month: dt.date, n: int) -> dt.date:
    y, m = divmod(month.year * 12 + month.month - 1 + n, 12)
    return dt.date(y, m + 1, 1)


def shift_year(day: dt.date, years: int = -1) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


# --- scoping -------------------------------------------------------------------------------


def team_for_costs(*, viewer, slug: str) -> Team:
    """The team, or 404 when it does not exist or the viewer may not see its costs."""
    team = Team.objects.filter(slug=slug).first()
    if team is None or not may_view_team_costs(viewer, team):
        raise Http404("no such team")
    return team


def _require_org(viewer) -> None:
    if not may_view_org_costs(viewer):
        raise Http404("no such page")


# --- building blocks -----------------------------------------------------------------------


def data_as_of(today: dt.date | None = None) -> dt.date:
    """The last day with cost data, not after today (the dashboards' "as of")."""
    today = today or dt.date.today()
    last = CostDaily.objects.filter(day__lte=today).aggregate(d=Max("day"))["d"]
    return last or today


def daily_series(*, team_id: int | None, start: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
    qs = CostDaily.objects.filter(day__gte=start, day__lte=end)
    qs = qs.filter(team__isnull=True) if team_id is None else qs.filter(team_id=team_id)
    rows = qs.order_by().values("day").annotate(b=Sum("billed_cost"))
    return {r["day"]: r["b"] or ZERO for r in rows}


def budget_for(*, team_id: int, month: dt.date) -> Budget | None:
    return (
        Budget.objects.filter(team_id=team_id, month__lte=month.replace(day=1))
        .order_by("-month")
        .first()
    )


def budgets_for_month(*, month: dt.date) -> dict[int, Budget]:
    """The budget in force in ``month`` for every team that has one (one query)."""
    out: dict[int, Budget] = {}
    for b in Budget.objects.filter(month__lte=month.replace(day=1)).order_by("team_id", "-month"):
        out.setdefault(b.team_id, b)
    return out


def thresholds_of(budget: Budget | None) -> list[int]:
    values = [int(t) for t in (budget.thresholds if budget else []) or []]
    return sorted(set(values)) or list(DEFAULT_THRESHOLDS)


def seat_costs(*, team_id: int) -> list[dict]:
    """Monthly cost of the team's access seats: active grants of paid entitlements held by
    the team's people (per-seat monthly cost × active grants)."""
    from access.models import Grant

    rows = (
        Grant.objects.filter(
            status=Grant.Status.ACTIVE,
            principal__team_id=team_id,
            entitlement__seat_cost_monthly__gt=0,
        )
        .values(
            "entitlement_id",
            service=F("entitlement__service__slug"),
            entitlement_slug=F("entitlement__slug"),
            seat_cost=F("entitlement__seat_cost_monthly"),
        )
        .annotate(seats=Count("id"))
        .order_by("service", "entitlement_slug")
    )
    out = []
    for r in rows:
        out.append({**r, "monthly": money(r["seat_cost"] * r["seats"])})
    return out


def _month_totals(*, team_id: int, first: dt.date, until: dt.date) -> dict:
    """The team's billed and effective cost, currency and the org's unallocated cost."""
    return CostDaily.objects.filter(
        Q(team_id=team_id) | Q(team__isnull=True), day__gte=first, day__lte=until
    ).aggregate(
        billed=Sum("billed_cost", filter=Q(team_id=team_id)),
        effective=Sum("effective_cost", filter=Q(team_id=team_id)),
        unallocated=Sum("billed_cost", filter=Q(team__isnull=True)),
        currency=Min("billing_currency", filter=Q(team_id=team_id)),
    )


def month_summary(
    *,
    team: Team,
    month: dt.date,
    as_of: dt.date,
    series: dict | None = None,
    totals: dict | None = None,
) -> dict:
    """Billed, effective, forecast, budget and the org's unallocated cost of one month."""
    first, last = month.replace(day=1), month_end(month)
    if first > as_of:
        raise ValidationError("that month has no cost data yet", field="month")
    until = min(last, as_of)
    agg = totals if totals is not None else _month_totals(team_id=team.pk, first=first, until=until)
    currency = agg["currency"] or "USD"  # mixed currencies: the first one is shown
    if series is None:
        series = daily_series(team_id=team.pk, start=first - dt.timedelta(days=35), end=until)
    forecast = forecast_month(series, first, until) if until < last else agg["billed"] or ZERO
    budget = budget_for(team_id=team.pk, month=first)
    return {
        "team": team,
        "month": first,
        "currency": currency,
        "billed_cost": money(agg["billed"]),
        "effective_cost": money(agg["effective"]),
        "forecast": money(forecast),
        "budget": money(budget.amount) if budget else None,
        "budget_obj": budget,
        "unallocated": money(agg["unallocated"]),
        "complete": until >= last,
        "as_of": until,
    }


def team_month_summary(*, viewer, slug: str, month: dt.date) -> dict:
    """The API's summary; scoped like the dashboard."""
    team = team_for_costs(viewer=viewer, slug=slug)
    return month_summary(team=team, month=month, as_of=data_as_of())


# --- the team dashboard --------------------------------------------------------------------


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
    shared = {"amount": ZERO, "prev": ZERO if prev else None}
    out = []
    for key in dims:
        acc: dict[str, dict] = {}
        for r in rows:
            e = acc.setdefault(r[key], {key: r[key], "amount": ZERO})
            e["amount"] += r["amount"] or ZERO
            if prev:
                e["prev"] = e.get("prev", ZERO) + (r["prev"] or ZERO)
        ordered = sorted(acc.values(), key=lambda x, k=key: (-x["amount"], x[k]))
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


def team_dashboard(
    *,
    viewer,
    slug: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    compare: str = "previous",
    today: dt.date | None = None,
) -> dict:
    team = team_for_costs(viewer=viewer, slug=slug)
    as_of = data_as_of(today)
    month = as_of.replace(day=1)
    end = end or as_of
    start = start or end.replace(day=1)
    if start > end:
        raise ValidationError("the start of the range is after its end", field="start")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise ValidationError("a range is at most two years", field="start")
    if compare not in ("previous", "year", "none"):
        compare = "previous"
    prev = compare_range(start, end, compare)

    # one query: every day the page needs (trend, comparison, 12 months, forecast history)
    first_needed = min(start, prev[0] if prev else start, add_months(month, -11))
    last_needed = max(end, as_of)
    cur = (start, end)
    raw = f"{team.pk}|{start}|{end}|{compare}|{as_of}|{rollup_version()}"
    key = f"costs:dash:2:{team.pk}:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"
    ttl = getattr(settings, "COST_DASHBOARD_CACHE_SECONDS", 300)
    cached = cache.get(key) if ttl else None
    if cached is None:  # everything read from the rollups, in four queries
        series, totals = _team_days(
            team_id=team.pk, start=first_needed, end=last_needed, month=month, as_of=as_of
        )
        range_total = sum((series.get(d, ZERO) for d in _days(start, end)), ZERO)
        scope = CostDaily.objects.filter(team_id=team.pk).filter(_window(cur, prev))
        breakdowns = _daily_breakdowns(scope, cur=cur, prev=prev, total=range_total)
        cached = {
            "series": series,
            "totals": totals,
            "breakdowns": breakdowns,
            "resources": _resource_figures(
                team_id=team.pk, cur=cur, prev=prev, total=range_total, shared=breakdowns[3]
            ),
        }
        if ttl:
            cache.set(key, cached, ttl)
    series = cached["series"]
    summary = month_summary(
        team=team, month=month, as_of=as_of, series=series, totals=cached["totals"]
    )
    last_month = previous_month(month)
    per_month: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
    for d, v in series.items():
        per_month[d.replace(day=1)] += v
    last_month_total = per_month[last_month]

    days = _days(start, end)
    # each day to the cent, the days summing to the range's total
    daily = list(zip(days, round_parts([series.get(d, ZERO) for d in days]), strict=True))
    prev_days = [prev[0] + dt.timedelta(days=i) for i in range(len(days))] if prev else []
    compare_daily = list(
        zip(prev_days, round_parts([series.get(d, ZERO) for d in prev_days]), strict=True)
    )
    budgets = {
        b.month: b for b in Budget.objects.filter(team_id=team.pk).order_by("month")
    }  # small: a row per change
    monthly = []
    for i in range(11, -1, -1):
        m = add_months(month, -i)
        total = per_month[m]
        in_force = [b for bm, b in budgets.items() if bm <= m]
        monthly.append(
            {
                "month": m,
                "billed": money(total),
                "budget": money(in_force[-1].amount) if in_force else None,
            }
        )

    range_total = sum((v for _, v in daily), ZERO)
    prev_total = sum((v for _, v in compare_daily), ZERO) if prev else None
    by_service, by_category, by_region, _ = cached["breakdowns"]
    by_resource, shared_row, movers, commitment = cached["resources"]
    seats = seat_costs(team_id=team.pk)
    anomalies = list(
        Anomaly.objects.filter(team_id=team.pk, day__gte=start - dt.timedelta(days=30)).order_by(
            "-day", "-impact"
        )[:10]
    )
    suggestion_stats = Suggestion.objects.filter(
        team_id=team.pk, status=Suggestion.Status.OPEN
    ).aggregate(n=Count("id"), saving=Sum("estimated_monthly_saving"))
    budget = summary["budget"]
    return {
        "team": team,
        "as_of": as_of,
        "month": month,
        "start": start,
        "end": end,
        "compare": compare,
        "prev": prev,
        "summary": summary,
        "last_month": last_month,
        "last_month_total": money(last_month_total),
        "burn_pct": (summary["billed_cost"] / budget * 100) if budget else None,
        "forecast_pct": (summary["forecast"] / budget * 100) if budget else None,
        "range_total": money(range_total),
        "prev_total": money(prev_total) if prev_total is not None else None,
        "daily": daily,
        "compare_daily": compare_daily,
        "monthly": monthly,
        "by_service": by_service,
        "by_category": by_category,
        "by_region": by_region,
        "by_resource": by_resource[:TOP_N],
        # every resource and the shared bucket: the parts of the range's total (CSV export)
        "resources_all": [*by_resource, shared_row],
        "shared_total": shared_row["amount"],
        "shared_prev": shared_row["prev"],
        "movers": movers,
        "commitment": commitment,
        "seats": seats,
        "seats_total": money(sum((s["monthly"] for s in seats), ZERO)),
        "anomalies": anomalies,
        "open_suggestions": suggestion_stats["n"] or 0,
        "open_savings": money(suggestion_stats["saving"]),
        "cumulative": _cumulative(series, month, as_of, summary),
    }


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


def team_drilldown(
    *, viewer, slug: str, dim: str, value: str, start: dt.date, end: dt.date
) -> dict:
    """The resources and SKUs behind one bar (service, category, region or resource)."""
    team = team_for_costs(viewer=viewer, slug=slug)
    fields = {
        "service": "service_name",
        "category": "service_category",
        "region": "region_id",
        "resource": "resource_id",
    }
    if dim not in fields:
        raise ValidationError("dim is service, category, region or resource", field="dim")
    qs = CostResourceDaily.objects.filter(
        team_id=team.pk, day__gte=start, day__lte=end, **{fields[dim]: value}
    )
    rows = list(
        qs.order_by()
        .values(
            "resource_id",
            "resource_name",
            "service_name",
            "sku_id",
            "region_id",
            "pricing_category",
        )
        .annotate(
            amount=Sum("billed_cost"),
            effective=Sum("effective_cost"),
            quantity=Sum("consumed_quantity"),
            lines=Sum("lines"),
            days=Count("day", distinct=True),
        )
        .order_by("-amount", "resource_id")[:500]
    )
    total = money(sum((r["amount"] or ZERO for r in rows), ZERO))
    round_field(rows, "amount")
    round_field(rows, "effective")
    return {
        "team": team,
        "dim": dim,
        "value": value,
        "start": start,
        "end": end,
        "rows": rows,
        "total": total,
    }


# --- org overview and showback -------------------------------------------------------------


def org_overview(*, viewer, month: dt.date | None = None, today: dt.date | None = None) -> dict:
    _require_org(viewer)
    as_of = data_as_of(today)
    month = (month or as_of).replace(day=1)
    last = min(month_end(month), as_of)
    if month > as_of:
        raise ValidationError("that month has no cost data yet", field="month")
    pm = previous_month(month)
    span = (last - month).days
    prev_last = min(pm + dt.timedelta(days=span), month_end(pm))
    rows = (
        CostDaily.objects.filter(
            Q(day__gte=month, day__lte=last) | Q(day__gte=pm, day__lte=prev_last)
        )
        .order_by()
        .values("team_id")
        .annotate(
            amount=Coalesce(Sum("billed_cost", filter=Q(day__gte=month)), ZERO),
            prev=Coalesce(Sum("billed_cost", filter=Q(day__lt=month)), ZERO),
        )
    )
    teams = {t.pk: t for t in Team.objects.all()}
    budgets = budgets_for_month(month=month)
    # A team's figure is its own whole, rounded on its own: the same amount as on its
    # dashboard and in showback. The org's total is the sum of the figures shown.
    ranked, unallocated, exact_unallocated, exact_total = [], ZERO, ZERO, ZERO
    for r in rows:
        amount, prev = money(r["amount"]), money(r["prev"])
        exact_total += r["amount"]
        if r["team_id"] is None:
            unallocated, exact_unallocated = amount, r["amount"]
            continue
        b = budgets.get(r["team_id"])
        ranked.append(
            {
                "team": teams.get(r["team_id"]),
                "amount": amount,
                "prev": prev,
                "delta": amount - prev,
                "change_pct": ((r["amount"] - r["prev"]) / r["prev"] * 100) if r["prev"] else None,
                "budget": money(b.amount) if b else None,
            }
        )
    ranked.sort(key=lambda x: (-x["amount"], x["team"].slug if x["team"] else ""))
    increases = sorted([r for r in ranked if r["delta"] > 0], key=lambda x: -x["delta"])[:10]
    from ..selectors import allocation_coverage

    return {
        "month": month,
        "as_of": last,
        "prev_month": pm,
        "prev_until": prev_last,
        "ranked": ranked,
        "increases": increases,
        "total": sum((r["amount"] for r in ranked), unallocated),
        "unallocated": unallocated,
        "unallocated_pct": (exact_unallocated / exact_total * 100) if exact_total else None,
        "coverage": list(reversed(allocation_coverage(viewer=viewer)))[-24:],
    }


def showback(*, viewer, month: dt.date) -> dict:
    """Monthly showback per team: direct, shared, billed, effective, list cost and seats."""
    _require_org(viewer)
    first, last = month.replace(day=1), month_end(month)
    rows = (
        CostDaily.objects.filter(day__gte=first, day__lte=last)
        .order_by()
        .values("team_id")
        .annotate(
            direct=Coalesce(Sum("billed_cost", filter=Q(allocation=Allocation.DIRECT)), ZERO),
            shared=Coalesce(Sum("billed_cost", filter=Q(allocation=Allocation.SHARED)), ZERO),
            billed=Coalesce(Sum("billed_cost"), ZERO),
            effective=Coalesce(Sum("effective_cost"), ZERO),
            listed=Coalesce(Sum("list_cost"), ZERO),
        )
    )
    from access.models import Grant

    seats = dict(
        Grant.objects.filter(
            status=Grant.Status.ACTIVE,
            entitlement__seat_cost_monthly__gt=0,
            principal__team__isnull=False,
        )
        .order_by()
        .values("principal__team_id")
        .annotate(s=Sum("entitlement__seat_cost_monthly"))
        .values_list("principal__team_id", "s")
    )
    teams = {t.pk: t for t in Team.objects.all()}
    budgets = budgets_for_month(month=first)
    out, unallocated = [], None
    totals = defaultdict(lambda: ZERO)
    # each team's row is its own bill, rounded on its own; the totals are the rows' sums
    for r in rows:
        entry = {
            "team": teams.get(r["team_id"]),
            "direct": money(r["direct"]),
            "shared": money(r["shared"]),
            "billed": money(r["billed"]),
            "effective": money(r["effective"]),
            "list": money(r["listed"]),
            "seats": money(seats.get(r["team_id"], ZERO)) if r["team_id"] else ZERO,
            "budget": money(budgets[r["team_id"]].amount) if r["team_id"] in budgets else None,
        }
        for k in ("direct", "shared", "billed", "effective", "list", "seats"):
            totals[k] += entry[k]
        if r["team_id"] is None:
            unallocated = entry
        else:
            out.append(entry)
    for team_id, s in seats.items():  # teams with seats but no cloud spend
        if team_id not in {r["team"].pk for r in out if r["team"]}:
            entry = {
                "team": teams.get(team_id),
                "direct": ZERO,
                "shared": ZERO,
                "billed": ZERO,
                "effective": ZERO,
                "list": ZERO,
                "seats": money(s),
                "budget": money(budgets[team_id].amount) if team_id in budgets else None,
            }
            totals["seats"] += entry["seats"]
            out.append(entry)
    out.sort(key=lambda x: x["team"].slug)
    return {"month": first, "rows": out, "unallocated": unallocated, "totals": dict(totals)}


# --- lists ---------------------------------------------------------------------------------


def _scope_team(qs: QuerySet, viewer) -> QuerySet:
    ids = cost_team_ids_for(viewer)
    return qs if ids is None else qs.filter(team_id__in=ids)


def anomalies_for_viewer(*, viewer, team_slug: str | None = None, status: str | None = None):
    qs = _scope_team(Anomaly.objects.select_related("team", "acknowledged_by"), viewer)
    if team_slug:
        qs = qs.filter(team=team_for_costs(viewer=viewer, slug=team_slug))
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-day", "-impact")


def anomaly_get_for_viewer(*, viewer, pk: int) -> Anomaly:
    obj = anomalies_for_viewer(viewer=viewer).filter(pk=pk).first()
    if obj is None:
        raise Http404("no such anomaly")
    return obj


def suggestions_for_viewer(
    *, viewer, team_slug: str | None = None, status: str | None = None, kind: str | None = None
) -> QuerySet[Suggestion]:
    qs = Suggestion.objects.select_related("team", "decided_by")
    ids = cost_team_ids_for(viewer)
    if ids is not None:  # the unallocated bucket (team NULL) is for the org-wide roles
        qs = qs.filter(team_id__in=ids)
    if team_slug:
        qs = qs.filter(team=team_for_costs(viewer=viewer, slug=team_slug))
    if status:
        if status not in Suggestion.Status.values:
            raise ValidationError("unknown status", field="status")
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-estimated_monthly_saving", "id")


def suggestion_get_for_viewer(*, viewer, pk: int) -> Suggestion:
    obj = suggestions_for_viewer(viewer=viewer).filter(pk=pk).first()
    if obj is None:
        raise Http404("no such suggestion")
    return obj


def budgets_overview(*, viewer, month: dt.date) -> list[dict]:
    """Every team with its budget in force, month-to-date spend and thresholds (org roles)."""
    _require_org(viewer)
    budgets = budgets_for_month(month=month)
    last = min(month_end(month), data_as_of())
    spend = dict(
        CostDaily.objects.filter(day__gte=month, day__lte=last, team__isnull=False)
        .order_by()
        .values("team_id")
        .annotate(s=Sum("billed_cost"))
        .values_list("team_id", "s")
    )
    out = []
    for team in Team.objects.order_by("slug"):
        b = budgets.get(team.pk)
        s = money(spend.get(team.pk))
        out.append(
            {
                "team": team,
                "budget": b,
                "spend": s,
                "burn_pct": (s / b.amount * 100) if b and b.amount else None,
            }
        )
    return out


def month_days(month: dt.date) -> int:
    return calendar.monthrange(month.year, month.month)[1]
