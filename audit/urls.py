from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("", views.search, name="search"),
    path("export/", views.export, name="export"),
    path("history/<str:target_type>/<str:target_id>/", views.history, name="history"),
]
