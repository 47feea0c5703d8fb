"""The Slack Web API through slack-sdk's ``WebClient``; Slack is on only when configured."""

from __future__ import annotations

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

#: Web API errors worth another try later (Slack's side or the network); anything else
#: (channel_not_found, not_authed, invalid_blocks, ...) will not get better by waiting.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def configured() -> bool:
    """Slack is on when both the bot token and the signing secret are set."""
    return bool(settings.SLACK_BOT_TOKEN and settings.SLACK_SIGNING_SECRET)


def web_client(*, timeout: float | None = None) -> WebClient:
    return WebClient(
        token=settings.SLACK_BOT_TOKEN,
        base_url=settings.SLACK_API_BASE_URL,
        timeout=int(timeout if timeout is not None else settings.SLACK_TIMEOUT) or 1,
    )


def is_transient(exc: Exception) -> bool:
    """A network failure, an HTTP 429/5xx or a transient Web API error."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200)
        error = (exc.response.get("error") if exc.response is not None else "") or ""
        return status == 429 or status >= 500 or error in TRANSIENT_ERRORS
    return isinstance(exc, OSError | SlackClientError | TimeoutError)


def error_text(exc: Exception) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return f"slack answered {exc.response.get('error') or exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}"[:500]
