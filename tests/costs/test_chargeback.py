"""Chargeback that reconciles: a team's allocated lines add up to its summary, to the cent.

Checked on the demo's months (every team, every month), on random shared-cost rules and
splits (property-based: even, fixed and proportional rules, credits, sub-cent amounts), and
through the API, which is scoped like the summary (another team's lead gets 404).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
from decimal import Decimal
from itertools import count

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from accounts.models import Team
from costs import services
from costs.analytics import selectors
from costs.chargeback.allocation import Scope, _allocate_python, allocated_rows
from costs.models import CostDaily, CostLine
from portal.core.actors import COSTS
from portal.core.money import money

from .analytics_data import line, load_rows, tag_rules

pytestmark = pytest.mark.django_db


def _summary(team: Team, month: dt.date) -> dict:
    return selectors.month_summary(team=team, month=month, as_of=selectors.data_as_of())


def _rollup_exact(team_id, month: dt.date) -> Decimal:
    nxt = (month + dt.timedelta(days=32)).replace(day=1)
    qs = CostDaily.objects.filter(day__gte=month, day__lt=nxt)
    qs = qs.filter(team__isnull=True) if team_id is None else qs.filter(team_id=team_id)
    return qs.aggregate(s=Sum("billed_cost"))["s"] or Decimal(0)


def _months() -> list[dt.date]:
    return sorted({d.replace(day=1) for d in CostDaily.objects.values_list("day", flat=True)})


def assert_reconciles(teams, months) -> None:
    """For every team and month: allocated cents = summary; exact amounts = the rollup;
    the Python arithmetic (SQLite's) agrees with the SQL; the org adds up to every line."""
    for month in months:
        org_rows = list(allocated_rows(Scope(month=month)))
        nxt = (month + dt.timedelta(days=32)).replace(day=1)
        all_lines = CostLine.objects.filter(
            charge_period_start__date__gte=month, charge_period_start__date__lt=nxt
        ).aggregate(s=Sum("billed_cost"))["s"] or Decimal(0)
        assert sum((r["allocated_billed_exact"] for r in org_rows), Decimal(0)) == all_lines
        for team in teams:
            rows = list(allocated_rows(Scope(month=month, team_ids=(team.pk,))))
            summary = _summary(team, month)
            cents = sum((r["allocated_billed"] for r in rows), Decimal(0))
            assert cents == summary["billed_cost"], (team.slug, month)
            assert (
                sum((r["allocated_effective"] for r in rows), Decimal(0))
                == (summary["effective_cost"])
            ), (team.slug, month)
            exact = sum((r["allocated_billed_exact"] for r in rows), Decimal(0))
            assert exact == _rollup_exact(team.pk, month), (team.slug, month)
            assert all(r["alloc_team_id"] == team.pk for r in rows)
            # every rounded line is within a cent of its exact amount
            assert all(
                abs(r["allocated_billed"] - r["allocated_billed_exact"]) < Decimal("0.01")
                for r in rows
            )
            # the team's rows in the org scope are the same rows
            mine = [r for r in org_rows if r["alloc_team_id"] == team.pk]
            assert sorted((r["id"], r["allocated_billed"]) for r in mine) == sorted(
                (r["id"], r["allocated_billed"]) for r in rows
            )
            py = _allocate_python(Scope(month=month, team_ids=(team.pk,)))
            assert sum((r["allocated_billed"] for r in py), Decimal(0)) == summary["billed_cost"]
            assert sum((r["allocated_billed_exact"] for r in py), Decimal(0)) == exact
        unallocated = [r for r in org_rows if r["alloc_team_id"] is None]
        assert sum((r["allocated_billed"] for r in unallocated), Decimal(0)) == money(
            _rollup_exact(None, month)
        )


def test_demo_every_team_and_month_reconciles(org):
    from demo.steps.costs import seed_costs

    seed_costs(stdout=io.StringIO(), rng=random.Random(11), months=3, resources_per_team=3)
    teams = list(Team.objects.order_by("slug"))
    months = _months()
    assert len(months) == 3
    shared = CostLine.objects.filter(allocation="shared").count()
    assert shared > 0
    assert_reconciles(teams, months)
    # the shared lines reach the teams: a team's allocated rows include shared ones
    payments = Team.objects.get(slug="payments")
    rows = list(allocated_rows(Scope(month=months[1], team_ids=(payments.pk,))))
    assert {r["allocation"] for r in rows} == {"direct", "shared"}
    direct = sum(
        (r["allocated_billed_exact"] for r in rows if r["allocation"] == "direct"), Decimal(0)
    )
    assert direct < _rollup_exact(payments.pk, months[1])


TEAMS = ("payments", "search", "other")
amount = st.decimals(min_value=-5, max_value=250, places=5, allow_nan=False)
line_st = st.tuples(
    st.integers(min_value=0, max_value=50),  # days back
    st.sampled_from((*TEAMS, None, "shared-0", "shared-1", "shared-2")),
    amount,
    st.sampled_from(("Compute", "Storage")),
    st.sampled_from(("us-east-1", "eu-west-1")),
    st.integers(min_value=1, max_value=4),
)
rule_st = st.tuples(
    st.sampled_from(("even", "fixed", "proportional")),
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=3),
)


@pytest.fixture
def example_numbers():
    return count()


@settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    lines=st.lists(line_st, min_size=1, max_size=40),
    rules=st.lists(rule_st, min_size=3, max_size=3),
)
def test_allocated_lines_sum_to_the_summary_for_random_rules(
    lines, rules, tmp_path, org, example_numbers
):
    n = next(example_numbers)
    if n == 0:
        tag_rules(*(org[slug] for slug in TEAMS))
    for i, (method, ws) in enumerate(rules):
        shares = [(slug, str(w)) for slug, w in zip(TEAMS, ws, strict=False)]
        services.rule_save(
            actor=COSTS,
            rule=None,
            data={
                "name": f"split-{n}-{i}",
                "tag_key": "shared",
                "tag_value": f"s{n}-{i}",
                "method": method,
                "proportional_category": "Compute" if method == "proportional" else "",
            },
            shares=shares,
        )
    today = dt.date.today()
    rows = []
    for back, who, cost, category, region, resource in lines:
        row = line(
            today - dt.timedelta(days=back),
            who if who in TEAMS else None,
            cost,
            category=category,
            region=region,
            resource=f"r-{resource}",
        )
        if who and who.startswith("shared-"):
            row["Tags"] = json.dumps({"shared": f"s{n}-{who[-1]}"})
        rows.append(row)
    load_rows(tmp_path, rows, source=f"prop-{n}")
    assert_reconciles([org[s] for s in TEAMS], _months())
