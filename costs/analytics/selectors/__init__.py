"""Reads behind the team dashboard, org overview, showback, budgets, anomalies, suggestions.

Every page reads the rollups (``CostDaily``, ``CostResourceDaily``), never raw lines, with a
fixed number of queries per page. Each function that a viewer triggers takes the viewer and
scopes by :mod:`costs.analytics.policies`; what the viewer may not see answers 404.

The package's modules: :mod:`.common` (parsing, scoping, month figures), :mod:`.breakdowns`
(the dashboard's grouped figures), :mod:`.dashboard` (the team dashboard and drill-down),
:mod:`.org` (org overview and showback) and :mod:`.lists` (anomalies, suggestions, budgets).
"""

from .breakdowns import commitment_stats, compare_range, rollup_version
from .common import (
    DEFAULT_THRESHOLDS,
    MAX_RANGE_DAYS,
    SHARED_ROW,
    TOP_N,
    add_months,
    budget_for,
    budgets_for_month,
    daily_series,
    data_as_of,
    month_days,
    month_summary,
    parse_day,
    parse_month,
    previous_month,
    seat_costs,
    shift_year,
    team_for_costs,
    team_month_summary,
    thresholds_of,
)
from .dashboard import TeamDashboard, team_dashboard, team_drilldown
from .lists import (
    anomalies_for_viewer,
    anomaly_get_for_viewer,
    budgets_overview,
    suggestion_get_for_viewer,
    suggestions_for_viewer,
)
from .org import org_overview, showback

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MAX_RANGE_DAYS",
    "SHARED_ROW",
    "TOP_N",
    "add_months",
    "anomalies_for_viewer",
    "anomaly_get_for_viewer",
    "budget_for",
    "budgets_for_month",
    "budgets_overview",
    "commitment_stats",
    "compare_range",
    "daily_series",
    "data_as_of",
    "month_days",
    "month_summary",
    "org_overview",
    "parse_day",
    "parse_month",
    "previous_month",
    "rollup_version",
    "seat_costs",
    "shift_year",
    "showback",
    "suggestion_get_for_viewer",
    "suggestions_for_viewer",
    "TeamDashboard",
    "team_dashboard",
    "team_drilldown",
    "team_for_costs",
    "team_month_summary",
    "thresholds_of",
]
