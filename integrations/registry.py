"""Audit action names of the chat integrations."""

from audit.registry import register

SLACK_LINKED = register("slack.linked", "A person's Slack user id was linked")
SLACK_UNLINKED = register("slack.unlinked", "A person's Slack link was removed")
SLACK_DECISION = register(
    "slack.decision", "A request was decided from Slack (channel and Slack user id)"
)
SLACK_ROUTE_CREATED = register("slack.route_created", "A Slack channel route was added")
SLACK_ROUTE_DELETED = register("slack.route_deleted", "A Slack channel route was removed")
SLACK_MESSAGE_FAILED = register(
    "slack.message_failed", "A Slack message could not be delivered after its retries"
)
