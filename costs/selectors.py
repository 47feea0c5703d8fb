"""Reads of cost data, scoped by what the viewer may see."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.models import Team
from accounts.selectors import team_get_for_viewer
from portal.core.money import money

from .attribution import Attributor, LineAttrs, RuleSpec
from .models import Allocation, AttributionRule, BillingSource, CostDaily, CostLine, ImportRun
from .policies import cost_team_ids_for, may_view_cost_admin


def _require_admin_view(viewer) -> None:
    if not may_view_cost_admin(viewer):
        raise Http404("no such page")


def month_bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    first = month.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return (
        dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC),
        dt.datetime(nxt.year, nxt.month, 1, tzinfo=dt.UTC),
    )


# --- sources and runs ----------------------------------------------------------------------


def sources_for_viewer(*, viewer) -> QuerySet[BillingSource]:
    _require_admin_view(viewer)
    return BillingSource.objects.annotate(run_count=Count("runs")).order_by("name")


def import_runs_for_viewer(*, viewer) -> QuerySet[ImportRun]:
    if not may_view_cost_admin(viewer):
        return ImportRun.objects.none()
    return ImportRun.objects.select_related("source", "created_by").order_by("-created_at", "-id")


def import_run_get_for_viewer(*, viewer, pk: int) -> ImportRun:
    return get_object_or_404(import_runs_for_viewer(viewer=viewer), pk=pk)


# --- lines ---------------------------------------------------------------------------------


def cost_lines_for_viewer(*, viewer, month: dt.date, team_slug: str | None = None):
    """Lines charged in ``month``; another team's (or an unknown team) answers 404."""
    start, end = month_bounds(month)
    qs = CostLine.objects.filter(charge_period_start__gte=start, charge_period_start__lt=end)
    visible = cost_team_ids_for(viewer)
    if team_slug:
        team = team_get_for_viewer(viewer=viewer, slug=team_slug)
        if visible is not None and team.pk not in visible:
            raise Http404("no such team")
        qs = qs.filter(team=team)
    elif visible is not None:
        qs = qs.filter(team_id__in=visible)
    return qs.select_related("team", "rule").order_by("charge_period_start", "id")


# --- rules ---------------------------------------------------------------------------------


def rules_for_viewer(*, viewer) -> QuerySet[AttributionRule]:
    _require_admin_view(viewer)
    return AttributionRule.objects.select_related("team").prefetch_related("shares__team")


def rule_get_for_viewer(*, viewer, pk: int) -> AttributionRule:
    return get_object_or_404(rules_for_viewer(viewer=viewer), pk=pk)


@dataclass
class Move:
    source: str
    target: str
    amount: Decimal
    lines: int


def _label(allocation: str, team_id, rule_id, teams: dict, rules: dict) -> str:
    if allocation == Allocation.DIRECT and team_id is not None:
        return teams.get(team_id, f"team #{team_id}")
    if allocation == Allocation.SHARED:
        return f"shared by rule “{rules.get(rule_id, rule_id)}”"
    return "unallocated"


def rule_change_preview(
    *, viewer, proposed: list[RuleSpec], periods: list[dt.date] | None = None, limit: int = 20
) -> dict:
    """What would move if ``proposed`` (the full ordered rule list) replaced today's rules.

    Works on distinct attribute sets, not lines, so it is cheap even on large periods.
    """
    _require_admin_view(viewer)
    if not periods:
        periods = list(  # by default, the last three billing periods
            CostDaily.objects.order_by("-billing_period_start")
            .values_list("billing_period_start", flat=True)
            .distinct()[:3]
        )
    if not periods:
        return {"periods": [], "moves": [], "total_amount": Decimal(0), "total_lines": 0}
    base = CostLine.objects.filter(billing_period_start__in=periods).order_by()
    current = base.values("attr_key", "allocation", "team_id", "rule_id").annotate(
        amount=Sum("billed_cost"), n=Count("id")
    )
    attrs = {}
    for key, ba, sa, rid, svc, region, tags in base.values_list(
        "attr_key",
        "billing_account_id",
        "sub_account_id",
        "resource_id",
        "service_name",
        "region_id",
        "tags",
    ).distinct():
        attrs.setdefault(key, LineAttrs(ba, sa, rid, svc, region, tags or {}))
    attributor = Attributor(proposed)
    teams = dict(Team.objects.values_list("id", "name"))
    rule_names = dict(AttributionRule.objects.values_list("id", "name"))
    rule_names.update({r.id: r.name for r in proposed if r.id is not None})
    rule_names[None] = next((r.name for r in proposed if r.id is None), "new rule")
    moves: dict[tuple[str, str], list] = defaultdict(lambda: [Decimal(0), 0])
    for row in current:
        outcome = attributor.attribute(attrs[row["attr_key"]])
        before = _label(row["allocation"], row["team_id"], row["rule_id"], teams, rule_names)
        after = _label(outcome.allocation, outcome.team_id, outcome.rule_id, teams, rule_names)
        if before == after:
            continue
        moves[(before, after)][0] += row["amount"] or Decimal(0)
        moves[(before, after)][1] += row["n"]
    ordered = sorted(
        (Move(a, b, v[0], v[1]) for (a, b), v in moves.items()),
        key=lambda m: (-abs(m.amount), m.source, m.target),
    )
    return {
        "periods": periods,
        "moves": ordered[:limit],
        "more": max(0, len(ordered) - limit),
        "total_amount": sum((m.amount for m in ordered), Decimal(0)),
        "total_lines": sum(m.lines for m in ordered),
    }


# --- coverage and unallocated --------------------------------------------------------------


def allocation_coverage(*, viewer) -> list[dict]:
    """Per billing period: total, attributed, shared, unallocated and coverage share."""
    _require_admin_view(viewer)
    rows = (
        CostDaily.objects.values("billing_period_start")
        .annotate(
            total=Sum("billed_cost"),
            attributed=Sum("billed_cost", filter=Q(team__isnull=False)),
            shared=Sum("billed_cost", filter=Q(allocation=Allocation.SHARED)),
            unallocated=Sum("billed_cost", filter=Q(team__isnull=True)),
            lines=Sum("lines"),
        )
        .order_by("-billing_period_start")
    )
    out = []
    for r in rows:
        total = r["total"] or Decimal(0)
        attributed = r["attributed"] or Decimal(0)
        # the unallocated bucket is rounded on its own (as on every page that shows it);
        # attributed is the rest of the rounded total, so the two parts sum to it
        unallocated = money(r["unallocated"])
        out.append(
            {
                "period": r["billing_period_start"],
                "total": money(total),
                "attributed": money(total) - unallocated,
                "shared": money(r["shared"]),
                "unallocated": unallocated,
                "lines": r["lines"] or 0,
                "coverage": (attributed / total * 100) if total else None,
            }
        )
    return out


def billing_periods(*, viewer) -> list[dt.date]:
    _require_admin_view(viewer)
    return list(
        CostDaily.objects.order_by("-billing_period_start")
        .values_list("billing_period_start", flat=True)
        .distinct()
    )


def unallocated_summary(*, viewer, period: dt.date, limit: int = 20) -> dict:
    """The largest unallocated resources and accounts of a billing period."""
    _require_admin_view(viewer)
    lines = CostLine.objects.filter(
        billing_period_start=period, team__isnull=True, allocation=Allocation.UNALLOCATED
    ).order_by()
    resources = (
        lines.values("resource_id", "sub_account_id", "service_name", "region_id")
        .annotate(amount=Sum("billed_cost"), n=Count("id"))
        .order_by("-amount")[:limit]
    )
    accounts = (
        lines.values("sub_account_id", "sub_account_name", "billing_account_id")
        .annotate(amount=Sum("billed_cost"), n=Count("id"))
        .order_by("-amount")[:limit]
    )
    services = (
        lines.values("service_name")
        .annotate(amount=Sum("billed_cost"), n=Count("id"))
        .order_by("-amount")[:limit]
    )
    total = CostDaily.objects.filter(billing_period_start=period, team__isnull=True).aggregate(
        s=Sum("billed_cost")
    )["s"] or Decimal(0)
    return {
        "period": period,
        "total": total,
        "resources": list(resources),
        "accounts": list(accounts),
        "services": list(services),
    }
