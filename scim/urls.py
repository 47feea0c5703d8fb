from django.urls import path

from . import views

app_name = "scim"

urlpatterns = [
    path("", views.client_list, name="clients"),
    path("clients/new", views.client_create, name="client-create"),
    path("clients/<int:pk>/rotate", views.client_rotate, name="client-rotate"),
    path("clients/<int:pk>/revoke", views.client_revoke, name="client-revoke"),
    path("held/<int:pk>/confirm", views.held_confirm, name="held-confirm"),
    path("held/<int:pk>/discard", views.held_discard, name="held-discard"),
]
