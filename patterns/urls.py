"""HTML routes of access patterns, mounted at ``patterns/``."""

from django.urls import path

from . import views

app_name = "patterns"

urlpatterns = [
    path("", views.index, name="index"),
    path("map/teams/<slug:slug>/", views.team_map, name="team-map"),
    path("map/services/<slug:slug>/", views.service_map, name="service-map"),
    path("runs/", views.run_list, name="run-list"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/progress/", views.run_progress, name="run-progress"),
    path(
        "runs/<int:pk>/proposals/<int:index>/adopt/",
        views.proposal_adopt,
        name="proposal-adopt",
    ),
    path("bundles/", views.bundle_list, name="bundle-list"),
    path("bundles/<int:pk>/", views.bundle_detail, name="bundle-detail"),
    path("bundles/<int:pk>/edit/", views.bundle_edit, name="bundle-edit"),
    path("bundles/<int:pk>/retire/", views.bundle_retire, name="bundle-retire"),
    path("outliers/", views.outliers, name="outliers"),
    path("outliers/grants/<int:grant_id>/revoke/", views.outlier_revoke, name="outlier-revoke"),
]
