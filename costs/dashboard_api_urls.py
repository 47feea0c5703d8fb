"""API routes of cost analytics, mounted at /api/v1/."""

from django.urls import path

from . import dashboard_api as api
from . import metric_api

app_name = "costs-analytics-api"

urlpatterns = [
    path("teams/<slug:slug>/costs/summary", api.TeamCostSummaryApi.as_view(), name="team-summary"),
    path("suggestions/", api.SuggestionListApi.as_view(), name="suggestions"),
    path("metrics/", metric_api.MetricListApi.as_view(), name="metrics"),
    path("metrics/<slug:slug>/values", metric_api.MetricValuesApi.as_view(), name="metric-values"),
]
