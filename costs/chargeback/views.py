"""The export download from the pages (team dashboard, showback): same scoping as the API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from portal.core.errors import DomainError

from ..analytics.selectors import data_as_of, parse_month
from .api import export_response


@require_GET
@login_required
def focus_export(request):
    try:
        month = parse_month(request.GET.get("month"), default=data_as_of())
        return export_response(
            viewer=request.user,
            month=month,
            team_slug=request.GET.get("team") or None,
            fmt=request.GET.get("output") or "csv",
        )
    except DomainError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")
