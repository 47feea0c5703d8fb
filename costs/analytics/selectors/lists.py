"""Lists a viewer sees: anomalies, suggestions and budgets, scoped by the viewer's teams."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet, Sum
from django.http import Http404

from accounts.models import Team
from portal.core.errors import ValidationError
from portal.core.money import money

from ...models import CostDaily
from ...policies import cost_team_ids_for
from ..forecast import month_end
from ..models import (
    Anomaly,
    Suggestion,
)
from .common import (
    _require_org,
    budgets_for_month,
    data_as_of,
    team_for_costs,
)


def _scope_team(qs: QuerySet, viewer) -> QuerySet:
    ids = cost_team_ids_for(viewer)
    return qs if ids is None else qs.filter(team_id__in=ids)


def anomalies_for_viewer(*, viewer, team_slug: str | None = None, status: str | None = None):
    qs = _scope_team(Anomaly.objects.select_related("team", "acknowledged_by"), viewer)
    if team_slug:
        qs = qs.filter(team=team_for_costs(viewer=viewer, slug=team_slug))
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-day", "-impact")


def anomaly_get_for_viewer(*, viewer, pk: int) -> Anomaly:
    obj = anomalies_for_viewer(viewer=viewer).filter(pk=pk).first()
    if obj is None:
        raise Http404("no such anomaly")
    return obj


def suggestions_for_viewer(
    *, viewer, team_slug: str | None = None, status: str | None = None, kind: str | None = None
) -> QuerySet[Suggestion]:
    qs = Suggestion.objects.select_related("team", "decided_by")
    ids = cost_team_ids_for(viewer)
    if ids is not None:  # the unallocated bucket (team NULL) is for the org-wide roles
        qs = qs.filter(team_id__in=ids)
    if team_slug:
        qs = qs.filter(team=team_for_costs(viewer=viewer, slug=team_slug))
    if status:
        if status not in Suggestion.Status.values:
            raise ValidationError("unknown status", field="status")
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-estimated_monthly_saving", "id")


def suggestion_get_for_viewer(*, viewer, pk: int) -> Suggestion:
    obj = suggestions_for_viewer(viewer=viewer).filter(pk=pk).first()
    if obj is None:
        raise Http404("no such suggestion")
    return obj


def budgets_overview(*, viewer, month: dt.date) -> list[dict]:
    """Every team with its budget in force, month-to-date spend and thresholds (org roles)."""
    _require_org(viewer)
    budgets = budgets_for_month(month=month)
    last = min(month_end(month), data_as_of())
    spend = dict(
        CostDaily.objects.filter(day__gte=month, day__lte=last, team__isnull=False)
        .order_by()
        .values("team_id")
        .annotate(s=Sum("billed_cost"))
        .values_list("team_id", "s")
    )
    out = []
    for team in Team.objects.order_by("slug"):
        b = budgets.get(team.pk)
        s = money(spend.get(team.pk))
        out.append(
            {
                "team": team,
                "budget": b,
                "spend": s,
                "burn_pct": (s / b.amount * 100) if b and b.amount else None,
            }
        )
    return out
