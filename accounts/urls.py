from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("teams/", views.team_list, name="team-list"),
    path("teams/<slug:slug>/", views.team_detail, name="team-detail"),
]
