"""Navigation entry of the chat integrations (see portal.core.nav)."""

from portal.core.nav import NavEntry, register

register(NavEntry(group="Settings", label="Slack", url_name="integrations:slack-me", order=30))
