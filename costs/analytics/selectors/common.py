"""Building blocks of the cost pages: parsing, scoping and the month figures.

What the viewer may not see answers 404 (:func:`team_for_costs`, :func:`require_org`).
"""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal

from django.db.models import Count, F, Max, Min, Q, Sum
from django.http import Http404

from accounts.models import Team
from portal.core.errors import ValidationError
from portal.core.money import ZERO, money

from ...models import CostDaily
from ..forecast import forecast_month, month_end
from ..models import (
    Budget,
)
from ..policies import may_view_org_costs, may_view_team_costs

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
    with_unallocated: bool = False,
) -> dict:
    """Billed, effective, forecast and budget of one month; with ``with_unallocated`` (only
    for viewers who see the org's costs: :func:`may_view_org_costs`) also the org's
    unallocated cost of the month, under the key ``unallocated``, which is absent otherwise."""
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
    summary = {
        "team": team,
        "month": first,
        "currency": currency,
        "billed_cost": money(agg["billed"]),
        "effective_cost": money(agg["effective"]),
        "forecast": money(forecast),
        "budget": money(budget.amount) if budget else None,
        "budget_obj": budget,
        "complete": until >= last,
        "as_of": until,
    }
    if with_unallocated:
        summary["unallocated"] = money(agg["unallocated"])
    return summary


def team_month_summary(*, viewer, slug: str, month: dt.date) -> dict:
    """The API's summary; scoped like the dashboard (the org's unallocated cost only for the
    org-wide roles)."""
    team = team_for_costs(viewer=viewer, slug=slug)
    return month_summary(
        team=team,
        month=month,
        as_of=data_as_of(),
        with_unallocated=may_view_org_costs(viewer),
    )


def month_days(month: dt.date) -> int:
    return calendar.monthrange(month.year, month.month)[1]
