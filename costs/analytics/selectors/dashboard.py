"""The team dashboard and its drill-down, scoped to the teams whose costs the viewer may see."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Sum

from accounts.models import Team
from portal.core.errors import ValidationError
from portal.core.money import ZERO, money, round_field, round_parts

from ...models import CostDaily
from ..models import (
    Anomaly,
    Budget,
    CostResourceDaily,
    Suggestion,
)
from ..policies import may_view_org_costs
from .breakdowns import (
    _cumulative,
    _daily_breakdowns,
    _days,
    _resource_figures,
    _team_days,
    _window,
    compare_range,
    rollup_version,
)
from .common import (
    MAX_RANGE_DAYS,
    TOP_N,
    add_months,
    data_as_of,
    month_summary,
    previous_month,
    seat_costs,
    team_for_costs,
)


@dataclass(frozen=True, slots=True)
class TeamDashboard:
    """Everything the team cost page shows, as one typed value (rows inside stay dicts).

    Money is rounded to the cent; every breakdown's parts add up to ``range_total``
    (``portal.core.money.round_parts``). ``summary`` carries the org's unallocated cost
    only for viewers who may see org-wide costs.
    """

    team: Team
    as_of: dt.date
    month: dt.date
    start: dt.date
    end: dt.date
    compare: str  # previous | year | none
    prev: tuple[dt.date, dt.date] | None  # the comparison range
    summary: dict[str, Any]
    last_month: dt.date
    last_month_total: Decimal
    burn_pct: Decimal | None
    forecast_pct: Decimal | None
    range_total: Decimal
    prev_total: Decimal | None
    daily: list[tuple[dt.date, Decimal]]
    compare_daily: list[tuple[dt.date, Decimal]]
    monthly: list[dict[str, Any]]  # month, billed, budget
    by_service: list[dict[str, Any]]  # key, amount, prev, delta, share
    by_category: list[dict[str, Any]]
    by_region: list[dict[str, Any]]
    by_resource: list[dict[str, Any]]  # the top rows
    resources_all: list[dict[str, Any]]  # every resource and the shared-cost row (CSV)
    shared_total: Decimal
    shared_prev: Decimal | None
    movers: list[dict[str, Any]]
    commitment: Any
    seats: list[dict[str, Any]]
    seats_total: Decimal
    anomalies: list[Anomaly]
    open_suggestions: int
    open_savings: Decimal
    cumulative: dict[str, Any]

    def table(self, name: str) -> list[dict[str, Any]]:
        """A breakdown by its field name (``by_service``, ``resources_all``, ``movers`` …)."""
        rows = getattr(self, name)
        if not isinstance(rows, list):
            raise KeyError(name)
        return rows

    def as_context(self) -> dict[str, Any]:
        """The fields as a template context (shallow: rows are not copied)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


def team_dashboard(
    *,
    viewer,
    slug: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    compare: str = "previous",
    today: dt.date | None = None,
) -> TeamDashboard:
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
        team=team,
        month=month,
        as_of=as_of,
        series=series,
        totals=cached["totals"],
        with_unallocated=may_view_org_costs(viewer),
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
    return TeamDashboard(
        team=team,
        as_of=as_of,
        month=month,
        start=start,
        end=end,
        compare=compare,
        prev=prev,
        summary=summary,
        last_month=last_month,
        last_month_total=money(last_month_total),
        burn_pct=(summary["billed_cost"] / budget * 100) if budget else None,
        forecast_pct=(summary["forecast"] / budget * 100) if budget else None,
        range_total=money(range_total),
        prev_total=money(prev_total) if prev_total is not None else None,
        daily=daily,
        compare_daily=compare_daily,
        monthly=monthly,
        by_service=by_service,
        by_category=by_category,
        by_region=by_region,
        by_resource=by_resource[:TOP_N],
        # every resource and the shared bucket: the parts of the range's total (CSV export)
        resources_all=[*by_resource, shared_row],
        shared_total=shared_row["amount"],
        shared_prev=shared_row["prev"],
        movers=movers,
        commitment=commitment,
        seats=seats,
        seats_total=money(sum((s["monthly"] for s in seats), ZERO)),
        anomalies=anomalies,
        open_suggestions=suggestion_stats["n"] or 0,
        open_savings=money(suggestion_stats["saving"]),
        cumulative=_cumulative(series, month, as_of, summary),
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
    rows: list[dict[str, Any]] = list(
        qs.order_by()  # type: ignore[arg-type]  # values() rows are plain dicts
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
