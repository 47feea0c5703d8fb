from django.urls import path

from . import views

app_name = "standards"

urlpatterns = [
    path("", views.standard_list, name="list"),
    path("edit/", views.standard_edit, name="edit"),
    path("export.yaml", views.standard_export, name="export"),
    path("versions/<int:number>/", views.version_detail, name="version"),
    path("scan/", views.scan_now, name="scan"),
    path("violations/", views.violation_list, name="violations"),
    path("violations/<int:pk>/", views.violation_detail, name="violation"),
    path("compliance/", views.compliance, name="compliance"),
    path("compliance/teams/<slug:slug>/", views.compliance_team, name="compliance-team"),
]
