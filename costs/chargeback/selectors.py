"""Reads of allocated costs, scoped like the summary they reconcile with.

A team's allocated month is for whoever may see that team's costs
(:func:`costs.analytics.policies.may_view_team_costs`); the org's (every team and the
unallocated rows) only for the org-wide roles. What the viewer may not see answers 404.
"""

from __future__ import annotations

import datetime as dt

from django.http import Http404

from ..analytics.policies import may_view_org_costs
from ..analytics.selectors import team_for_costs
from ..policies import cost_team_ids_for
from .allocation import AllocatedPage, Scope


def allocation_scope_for_viewer(
    *, viewer, month: dt.date, team_slug: str | None, org_if_allowed: bool = True
) -> Scope:
    """The scope ``viewer`` asked for: one team (404 if not visible), or without a team the
    org for the org-wide roles and the viewer's own teams for everyone else (or 404 when
    ``org_if_allowed`` is off and the viewer is not org-wide: the export needs a team)."""
    month = month.replace(day=1)
    if team_slug:
        team = team_for_costs(viewer=viewer, slug=team_slug)
        return Scope(month=month, team_ids=(team.pk,))
    if may_view_org_costs(viewer):
        return Scope(month=month)
    if not org_if_allowed:
        raise Http404("no such export")
    visible = cost_team_ids_for(viewer)
    if visible is None:
        return Scope(month=month)
    return Scope(month=month, team_ids=tuple(sorted(visible)))


def allocated_lines_for_viewer(*, viewer, month: dt.date, team_slug: str | None = None):
    """A countable, sliceable list of allocated rows for the API's paginator."""
    return AllocatedPage(
        allocation_scope_for_viewer(viewer=viewer, month=month, team_slug=team_slug)
    )
