from django.urls import path

from . import api

app_name = "oncall-api"

urlpatterns = [
    path("oncall/<slug:schedule>", api.RotaView.as_view(), name="rota"),
]
