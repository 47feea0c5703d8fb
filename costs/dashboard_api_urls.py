"""API routes of cost analytics, mounted at /api/v1/."""

from django.urls import path

from . import dashboard_api as api

app_name = "costs-analytics-api"

urlpatterns = [
    path("teams/<slug:slug>/costs/summary", api.TeamCostSummaryApi.as_view(), name="team-summary"),
    path("suggestions/", api.SuggestionListApi.as_view(), name="suggestions"),
]
