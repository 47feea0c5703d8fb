"""The org-wide pages: the overview of every team's month and showback (org roles only)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from accounts.models import Team
from portal.core.errors import ValidationError
from portal.core.money import ZERO, money

from ...models import Allocation, CostDaily
from ..forecast import month_end
from .common import (
    _require_org,
    budgets_for_month,
    data_as_of,
    previous_month,
)


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
    ranked: list[dict[str, Any]] = []
    unallocated, exact_unallocated, exact_total = ZERO, ZERO, ZERO
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
    from ...selectors import allocation_coverage

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
    out: list[dict[str, Any]] = []
    unallocated: dict[str, Any] | None = None
    totals: defaultdict[str, Decimal] = defaultdict(lambda: ZERO)
    # each team's row is its own bill, rounded on its own; the totals are the rows' sums
    for r in rows:
        entry: dict[str, Any] = {
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
