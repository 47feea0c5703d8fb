"""``/scim/v2/``: SCIM 2.0 endpoints (bearer tokens of SCIM clients only)."""

from django.urls import path, re_path

from . import api

app_name = "scim-api"

urlpatterns = [
    path("ServiceProviderConfig", api.ServiceProviderConfigView.as_view(), name="spc"),
    path("ResourceTypes", api.ResourceTypesView.as_view(), name="resource-types"),
    path("ResourceTypes/<str:key>", api.ResourceTypesView.as_view(), name="resource-type"),
    path("Schemas", api.SchemasView.as_view(), name="schemas"),
    re_path(r"^Schemas/(?P<key>urn:[A-Za-z0-9:._-]+)$", api.SchemasView.as_view(), name="schema"),
    path("Users", api.UsersView.as_view(), name="users"),
    path("Users/<str:pk>", api.UsersView.as_view(), name="user"),
    path("Groups", api.GroupsView.as_view(), name="groups"),
    path("Groups/<str:pk>", api.GroupsView.as_view(), name="group"),
]
