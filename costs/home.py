"""The costs app's items on the home page (see portal.core.home): the viewer's team's cost
this month against its budget, with its trend, and the top open savings suggestions."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.http import Http404
from django.urls import reverse

from portal.core.home import HomeItem, HomeProvider, register
from portal.core.money import CENT, ZERO

from .analytics.models import Suggestion
from .analytics.selectors import (
    add_months,
    daily_series,
    data_as_of,
    month_summary,
    suggestions_for_viewer,
    team_for_costs,
)

TREND_MONTHS = 6


def _amount(value: Decimal | None, currency: str = "USD") -> str:
    if value is None:
        return "none"
    return f"{currency} {Decimal(value).quantize(CENT, ROUND_HALF_UP):,.2f}"


def team_costs(user: Any) -> list[HomeItem]:
    team = getattr(user, "team", None)
    if team is None:
        return []
    try:
        team = team_for_costs(viewer=user, slug=team.slug)
    except Http404:
        return []
    as_of = data_as_of()
    month = as_of.replace(day=1)
    first = add_months(month, -(TREND_MONTHS - 1))
    series = daily_series(team_id=team.pk, start=add_months(first, -1), end=as_of)
    if not series:
        return []
    summary = month_summary(team=team, month=month, as_of=as_of)
    cur = summary["currency"]
    per_month: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
    for day, value in series.items():
        per_month[day.replace(day=1)] += value
    # the same days of last month, so a month half gone compares like with like
    last_month = add_months(month, -1)
    same_days = sum(
        (v for d, v in series.items() if d.replace(day=1) == last_month and d.day <= as_of.day),
        ZERO,
    )
    billed = summary["billed_cost"]
    if same_days:
        change = (billed - same_days) / same_days * 100
        trend = (
            f"{'up' if change >= 0 else 'down'} {abs(change):.0f}% on the same days of last month"
        )
    else:
        trend = "no cost on the same days of last month"
    budget = summary["budget"]
    if budget:
        share = billed / budget * 100
        badge = f"{share:.0f}% of budget"
        detail = (
            f"{_amount(billed, cur)} of a {_amount(budget, cur)} budget so far; "
            f"forecast {_amount(summary['forecast'], cur)}; {trend}"
        )
    else:
        badge = "no budget set"
        detail = (
            f"{_amount(billed, cur)} so far; forecast {_amount(summary['forecast'], cur)}; {trend}"
        )
    table: list[tuple[str, ...]] = [("Month", f"Cost ({cur})")]
    m = first
    while m <= month:
        label = f"{m:%b %Y}" + (" (so far)" if m == month else "")
        table.append((label, f"{per_month[m].quantize(CENT, ROUND_HALF_UP):,.2f}"))
        m = add_months(m, 1)
    url = reverse("costs-dash:team", args=[team.slug])
    return [
        HomeItem(
            kind="Costs",
            title=f"{team.name}: {_amount(billed, cur)} in {month:%B %Y}",
            url=url,
            detail=detail,
            badge=badge,
            action_label="Open the dashboard",
            action_url=url,
            table=tuple(table),
        )
    ]


def top_suggestions(user: Any) -> list[HomeItem]:
    qs = suggestions_for_viewer(viewer=user, status=Suggestion.Status.OPEN)
    url = reverse("costs-dash:suggestions")
    return [
        HomeItem(
            kind="Saving",
            title=s.title,
            url=f"{url}?team={s.team.slug}" if s.team else url,
            detail=f"{s.get_kind_display()} · {s.team.name if s.team else 'unallocated'}",
            badge=f"saves {_amount(s.estimated_monthly_saving)} a month",
        )
        for s in qs[:5]
    ]


register(
    HomeProvider(key="costs.team", section="costs", items=team_costs, order=10),
    HomeProvider(
        key="costs.suggestions",
        section="suggestions",
        items=top_suggestions,
        order=10,
        more=lambda user: (reverse("costs-dash:suggestions"), "All suggestions"),
    ),
)
