"""HTML routes of cost analytics (mounted at the site root)."""

from django.urls import path

from . import alert_views, commitment_views
from . import dashboard_views as views
from .chargeback import views as chargeback_views

app_name = "costs-dash"

urlpatterns = [
    path("teams/<slug:slug>/costs/", views.team_dashboard, name="team"),
    path("teams/<slug:slug>/costs/drill/", views.team_drill, name="team-drill"),
    path("costs/overview/", views.org_overview, name="overview"),
    path("costs/showback/", views.showback, name="showback"),
    path("costs/export/focus/", chargeback_views.focus_export, name="focus-export"),
    path("costs/commitments/", commitment_views.commitments, name="commitments"),
    path("costs/budgets/", views.budgets, name="budgets"),
    path("costs/anomalies/", views.anomaly_list, name="anomalies"),
    path("costs/anomalies/<int:pk>/acknowledge/", views.anomaly_acknowledge, name="anomaly-ack"),
    path(
        "costs/anomalies/<int:pk>/<str:action>/", alert_views.anomaly_decide, name="anomaly-decide"
    ),
    path(
        "costs/anomalies/subscriptions/",
        alert_views.subscriptions,
        name="anomaly-subscriptions",
    ),
    path("costs/suggestions/", views.suggestion_list, name="suggestions"),
    path(
        "costs/suggestions/<int:pk>/<str:action>/",
        views.suggestion_action,
        name="suggestion-action",
    ),
]
