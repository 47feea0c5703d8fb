"""The request-page panel (``access.panels.REQUEST_PANELS``): approval probability and why."""

from __future__ import annotations

from access.panels import Panel

from .policies import may_see_recommendation
from .selectors import live_model, request_score, training_data_status


def recommendation_panel(*, request, viewer) -> Panel | None:
    if not may_see_recommendation(viewer, request):
        return None
    result = request_score(request=request)
    context = {"score": result}
    if result is None:
        context["status"] = training_data_status()
        context["model"] = live_model()
    return Panel(title="Recommendation", template="recommend/partials/_panel.html", context=context)
