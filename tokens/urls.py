from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("", views.token_list, name="list"),
    path("new", views.token_create, name="create"),
    path("<int:pk>/revoke", views.token_revoke, name="revoke"),
]
