from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("", views.token_list, name="list"),
    path("new", views.token_create, name="create"),
    path("service/new", views.service_token_create, name="service-create"),
    path("<int:pk>/revoke", views.token_revoke, name="revoke"),
]
