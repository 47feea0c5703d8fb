from django.urls import path

from . import views

app_name = "reviews"

urlpatterns = [
    path("", views.my_reviews, name="mine"),
    path("decide/", views.review_decide, name="decide"),
    path("campaigns/", views.campaign_list, name="campaign-list"),
    path("campaigns/new/", views.campaign_create, name="campaign-create"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign-detail"),
    path("campaigns/<int:pk>/start/", views.campaign_start, name="campaign-start"),
    path("templates/", views.template_list, name="template-list"),
    path("templates/<slug:slug>/start/", views.template_start, name="template-start"),
    path(
        "campaigns/<int:pk>/report.csv",
        views.campaign_export,
        {"kind": "csv"},
        name="campaign-report",
    ),
    path(
        "campaigns/<int:pk>/report.manifest.json",
        views.campaign_export,
        {"kind": "manifest"},
        name="campaign-manifest",
    ),
]
