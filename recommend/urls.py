from django.urls import path

from . import views

app_name = "recommend"

urlpatterns = [
    path("", views.model_status, name="status"),
    path("train/", views.model_train, name="train"),
    path("candidates/", views.candidates, name="candidates"),
]
