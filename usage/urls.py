from django.urls import path

from . import views

app_name = "usage"

urlpatterns = [
    path("", views.removal_list, name="list"),
    path("removals/<int:pk>/", views.removal_detail, name="detail"),
    path("removals/<int:pk>/opt-out/", views.removal_opt_out, name="opt-out"),
    path("removals/<int:pk>/restore/", views.removal_restore, name="restore"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="rule-delete"),
]
