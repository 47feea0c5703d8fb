"""Navigation entries of the costs app (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

from .analytics.policies import may_view_org_costs
from .policies import may_view_cost_admin

register(
    NavEntry(
        group="Costs",
        label="Org costs",
        url_name="costs-dash:overview",
        visible=may_view_org_costs,
        order=10,
        element_id="nav-costs",
    ),
    NavEntry(
        group="Costs",
        label="Cost data",
        url_name="costs:index",
        visible=may_view_cost_admin,
        order=20,
        element_id="nav-cost-admin",
    ),
)
