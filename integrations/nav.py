"""Navigation entry of the chat integrations (see portal.core.nav): the person's Slack link,
shown when Slack is configured."""

from typing import Any

from portal.core.nav import NavEntry, register, signed_in

from .slack.client import configured


def _visible(user: Any) -> bool:
    return signed_in(user) and configured()


register(
    NavEntry(
        group="Settings",
        label="Slack",
        url_name="integrations:slack-me",
        order=30,
        visible=_visible,
    )
)
