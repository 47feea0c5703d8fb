"""Commitment discounts (reservations, savings plans, committed use): utilisation, coverage,
savings and who benefits, from the commitment rollup (``CostCommitmentDaily``).

Definitions (FOCUS columns):

* **Utilisation** of a commitment (``CommitmentDiscountId``): the effective cost of its
  ``Used`` rows over the effective cost of its ``Used`` and ``Unused`` rows (its amortised
  cost). ``None`` when the data carry no amortised cost for it.
* **Eligible** usage: usage (``ChargeCategory`` Usage) priced ``Standard`` or ``Committed``
  of a service that some commitment covered in the month (a service with committed-priced
  usage). **Coverage**: the committed-priced part of eligible usage over all of it,
  measured at the on-demand equivalent (``ListCost``, or ``EffectiveCost`` where a row has
  no list cost), so it does not depend on how the discount is amortised. ``Unused`` rows
  are not usage and count in neither.
* **Savings** of a commitment: on-demand equivalent minus effective cost of its ``Used``
  rows. They are split among teams the way the costs are: a directly attributed row to its
  team, a shared row by its rule's weights (as the rollups split shared costs), an
  unattributed row to nobody (``None``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.http import Http404

from accounts.models import Team
from portal.core.money import ZERO, money, round_parts

from ..attribution import RuleSpec, split_amount
from ..models import AttributionRule
from ..rollups import _weights
from .models import CostCommitmentDaily
from .policies import may_view_org_costs
from .selectors.common import add_months, team_for_costs

TREND_MONTHS = 6
FIELDS = (
    "billing_period_start",
    "team_id",
    "allocation",
    "rule_id",
    "service_name",
    "pricing_category",
    "commitment_discount_id",
    "commitment_discount_name",
    "commitment_discount_category",
    "commitment_discount_type",
    "commitment_discount_status",
)


def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part / whole * 100).quantize(Decimal("0.01")) if whole else None


def _rows(first: dt.date, nxt: dt.date) -> list[dict]:
    """The month's rollup rows with shared rows split to teams (``team_id`` set)."""
    raw = (
        CostCommitmentDaily.objects.filter(day__gte=first, day__lt=nxt)
        .values(*FIELDS)
        .annotate(effective=Sum("effective_cost"), on_demand=Sum("on_demand_cost"))
        .order_by()
    )
    specs: dict[int, RuleSpec] | None = None
    weights: dict[tuple, list] = {}
    out: list[dict] = []
    for r in raw:
        if r["allocation"] != "shared" or r["rule_id"] is None:
            out.append(r)
            continue
        if specs is None:
            specs = {
                rule.pk: RuleSpec.from_model(rule)
                for rule in AttributionRule.objects.prefetch_related("shares")
            }
        key = (r["rule_id"], r["billing_period_start"])
        if key not in weights:
            weights[key] = _weights(specs.get(r["rule_id"]), r["billing_period_start"])
        split = weights[key]
        if not split:
            out.append({**r, "team_id": None})
            continue
        eff = split_amount(r["effective"] or ZERO, split)
        dem = split_amount(r["on_demand"] or ZERO, split)
        for team_id, _ in split:
            out.append(
                {**r, "team_id": team_id, "effective": eff[team_id], "on_demand": dem[team_id]}
            )
    return out


def month_figures(*, month: dt.date, team_id: int | None = None) -> dict[str, Any]:
    """Utilisation, coverage and savings of ``month`` (the org's, or one team's share)."""
    first = month.replace(day=1)
    nxt = add_months(first, 1)
    rows = _rows(first, nxt)
    eligible_services = {r["service_name"] for r in rows if r["pricing_category"] == "Committed"}
    commitments: dict[str, dict] = {}
    benefit: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: [ZERO, ZERO]))
    by_service: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    by_team: dict[int | None, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for r in rows:
        eff, dem = r["effective"] or ZERO, r["on_demand"] or ZERO
        cid, status = r["commitment_discount_id"], r["commitment_discount_status"]
        if cid:
            c = commitments.setdefault(
                cid,
                {
                    "id": cid,
                    "name": r["commitment_discount_name"],
                    "category": r["commitment_discount_category"],
                    "type": r["commitment_discount_type"],
                    "used": ZERO,
                    "unused": ZERO,
                    "savings": ZERO,
                },
            )
            if status == "Used":
                c["used"] += eff
                c["savings"] += dem - eff
                benefit[cid][r["team_id"]][0] += eff
                benefit[cid][r["team_id"]][1] += dem - eff
            elif status == "Unused":
                c["unused"] += eff
        if status == "Unused" or r["service_name"] not in eligible_services:
            continue
        if r["pricing_category"] not in ("Standard", "Committed"):
            continue
        committed = dem if r["pricing_category"] == "Committed" else ZERO
        by_team[r["team_id"]][0] += committed
        by_team[r["team_id"]][1] += dem
        if team_id is None or r["team_id"] == team_id:
            by_service[r["service_name"]][0] += committed
            by_service[r["service_name"]][1] += dem
    slugs = dict(Team.objects.values_list("id", "slug"))
    listed = []
    for cid, c in sorted(commitments.items(), key=lambda kv: (-kv[1]["unused"], kv[0])):
        teams = benefit.get(cid, {})
        if team_id is not None and team_id not in teams:
            continue
        order = sorted(teams, key=lambda t: (t is None, slugs.get(t, "")))
        savings = round_parts([teams[t][1] for t in order])
        used = round_parts([teams[t][0] for t in order])
        total_savings = c["savings"]
        listed.append(
            {
                **c,
                "utilisation_pct": _pct(c["used"], c["used"] + c["unused"]),
                "used": money(c["used"]),
                "unused": money(c["unused"]),
                "savings": money(total_savings),
                "teams": [
                    {
                        "team": slugs.get(t) if t is not None else None,
                        "used": u,
                        "savings": s,
                        "share_pct": _pct(teams[t][1], total_savings),
                    }
                    for t, u, s in zip(order, used, savings, strict=True)
                ],
            }
        )
    shown = [commitments[c["id"]] for c in listed]  # a team: the commitments it benefits from
    used_total = sum((c["used"] for c in shown), ZERO)
    unused_total = sum((c["unused"] for c in shown), ZERO)
    if team_id is None:
        committed_total = sum((v[0] for v in by_service.values()), ZERO)
        eligible_total = sum((v[1] for v in by_service.values()), ZERO)
    else:
        committed_total, eligible_total = by_team.get(team_id, [ZERO, ZERO])
    return {
        "month": first,
        "commitments": listed,
        "coverage_by_service": [
            {
                "service": s,
                "committed": money(v[0]),
                "eligible": money(v[1]),
                "coverage_pct": _pct(v[0], v[1]),
            }
            for s, v in sorted(by_service.items(), key=lambda kv: (-kv[1][1], kv[0]))
        ],
        "coverage_by_team": [
            {
                "team": slugs.get(t) if t is not None else None,
                "committed": money(v[0]),
                "eligible": money(v[1]),
                "coverage_pct": _pct(v[0], v[1]),
            }
            for t, v in sorted(
                by_team.items(), key=lambda kv: (kv[0] is None, slugs.get(kv[0] or 0, ""))
            )
            if team_id is None or t == team_id
        ],
        "used": money(used_total),
        "unused": money(unused_total),
        "utilisation_pct": _pct(used_total, used_total + unused_total),
        "committed": money(committed_total),
        "eligible": money(eligible_total),
        "coverage_pct": _pct(committed_total, eligible_total),
    }


def commitment_report(*, viewer, month: dt.date, team_slug: str | None = None) -> dict:
    """The month's figures and the trend of the months before it; a team's (who may see its
    costs) or the org's (org-wide roles only; anyone else gets 404)."""
    team = None
    if team_slug:
        team = team_for_costs(viewer=viewer, slug=team_slug)
    elif not may_view_org_costs(viewer):
        raise Http404("no such page")
    team_id = team.pk if team else None
    current = month_figures(month=month, team_id=team_id)
    trend = []
    for back in range(TREND_MONTHS - 1, -1, -1):
        m = add_months(month.replace(day=1), -back)
        figures = current if back == 0 else month_figures(month=m, team_id=team_id)
        trend.append(
            {
                "month": m,
                "utilisation_pct": figures["utilisation_pct"],
                "coverage_pct": figures["coverage_pct"],
                "unused": figures["unused"],
                "committed": figures["committed"],
                "eligible": figures["eligible"],
            }
        )
    return {**current, "team": team, "trend": trend}
