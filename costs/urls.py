from django.urls import path

from . import views

app_name = "costs"

urlpatterns = [
    path("", views.index, name="index"),
    path("coverage/", views.coverage, name="coverage"),
    path("sources/", views.sources, name="sources"),
    path("imports/<int:pk>/", views.import_detail, name="import-detail"),
    path("imports/<int:pk>/progress/", views.import_progress, name="import-progress"),
    path("rules/", views.rule_list, name="rule-list"),
    path("rules/new/", views.rule_create, name="rule-create"),
    path("rules/<int:pk>/", views.rule_edit, name="rule-edit"),
    path("rules/preview/", views.rule_preview, name="rule-preview"),
    path("rules/reattribute/", views.reattribute, name="reattribute"),
    path("unallocated/", views.unallocated, name="unallocated"),
]
