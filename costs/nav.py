"""Navigation entries of the costs app (see portal.core.nav)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from portal.core.nav import NavEntry, register

from .analytics.policies import may_view_org_costs
from .policies import may_view_cost_admin


def my_team_costs_url(user: Any) -> str | None:
    """The viewer's own team's dashboard (a member always sees their team's costs, see
    ``may_view_team_costs``); no entry for someone without a team."""
    team = getattr(user, "team", None)
    if team is None:
        return None
    return reverse("costs-dash:team", args=[team.slug])


register(
    NavEntry(
        group="Costs",
        label="My team",
        url_name="costs-dash:team",
        url=my_team_costs_url,
        order=5,
        element_id="nav-team-costs",
    ),
    NavEntry(
        group="Costs",
        label="Org costs",
        url_name="costs-dash:overview",
        visible=may_view_org_costs,
        order=10,
        element_id="nav-costs",
    ),
    NavEntry(group="Costs", label="Suggestions", url_name="costs-dash:suggestions", order=30),
    NavEntry(group="Costs", label="Anomalies", url_name="costs-dash:anomalies", order=40),
    NavEntry(
        group="Costs",
        label="Budgets",
        url_name="costs-dash:budgets",
        visible=may_view_org_costs,
        order=50,
    ),
    NavEntry(
        group="Costs",
        label="Cost data",
        url_name="costs:index",
        visible=may_view_cost_admin,
        order=60,
        element_id="nav-cost-admin",
    ),
)
