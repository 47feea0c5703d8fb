"""The commitments page: utilisation per commitment, coverage per service and team, the
monthly trend and who benefits from each commitment (org-wide roles, or one team)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from portal.core.errors import DomainError

from . import charts
from .analytics import selectors
from .analytics.commitments import commitment_report
from .analytics.policies import may_view_org_costs


@require_GET
@login_required
def commitments(request):
    try:
        month = selectors.parse_month(request.GET.get("month"), default=selectors.data_as_of())
    except DomainError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")
    report = commitment_report(
        viewer=request.user, month=month, team_slug=request.GET.get("team") or None
    )
    return render(
        request,
        "costs/dashboard/commitments.html",
        {
            **report,
            "figures": {"chart-commitments": charts.commitment_trend(report["trend"])},
            "org_view": may_view_org_costs(request.user),
        },
    )
