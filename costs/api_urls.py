from django.urls import path

from . import api

app_name = "costs-api"

urlpatterns = [
    path("imports/", api.ImportRunListApi.as_view(), name="imports"),
    path("lines/", api.CostLineListApi.as_view(), name="lines"),
]
