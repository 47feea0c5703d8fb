"""Who may see and act on team costs. Pages and the API both ask these."""

from __future__ import annotations

from accounts.policies import sees_everything
from accounts.selectors import team_subtree_ids, teams_led_by, user_reports

from ..policies import cost_team_ids_for, may_edit_costs


def may_view_team_costs(user, team) -> bool:
    """Members their team, leads their subtree, managers their reports' teams, finance and
    admins (and the read-only security and auditor roles) every team."""
    if not getattr(user, "is_authenticated", False):
        return False
    if not hasattr(user, "_tollgate_cost_team_ids"):
        user._tollgate_cost_team_ids = cost_team_ids_for(user)
    ids = user._tollgate_cost_team_ids
    return ids is None or team.pk in ids


def may_view_org_costs(user) -> bool:
    """The org overview, showback and the unallocated bucket: the org-wide roles."""
    return sees_everything(user)


def may_set_budget(user) -> bool:
    """Finance (and platform admins) set budgets."""
    return may_edit_costs(user)


def _acting_team_ids(user) -> set[int]:
    cache = getattr(user, "_tollgate_cost_acting_ids", None)
    if cache is None:
        cache = set()
        for team in teams_led_by(user=user):
            cache |= team_subtree_ids(team=team)
        cache |= set(user_reports(user=user).exclude(team=None).values_list("team_id", flat=True))
        user._tollgate_cost_acting_ids = cache
    return cache


def may_act_on_team_costs(user, team) -> bool:
    """Accept/dismiss/resolve suggestions and acknowledge anomalies: the team's leads and
    managers (their subtree), finance and platform admins. ``team`` None = unallocated."""
    if not getattr(user, "is_authenticated", False):
        return False
    if may_edit_costs(user):
        return True
    if team is None:
        return False
    return team.pk in _acting_team_ids(user)
