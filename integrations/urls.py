from django.urls import path

from .slack import views

app_name = "integrations"

urlpatterns = [
    # Machine endpoints: authenticated by Slack's signature (no session, no CSRF).
    path("slack/interactions", views.slack_interactions, name="slack-interactions"),
    path("slack/commands", views.slack_commands, name="slack-commands"),
    # The person's Slack link (signed in).
    path("slack/me/", views.my_link, name="slack-me"),
    path("slack/people/<int:user_id>/", views.person_link, name="slack-person"),
    path("slack/people/<int:user_id>/unlink", views.person_unlink, name="slack-unlink"),
]
