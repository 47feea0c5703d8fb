"""Celery entry points of the chat integrations: take ids, call one service, return nothing.
They run on the ``notify`` queue; a failure to reach Slack is recorded on the message row and
retried by the sweeper (beat, every minute), never raised into a decision."""

from __future__ import annotations

import logging

from celery import shared_task

from portal.core.locks import advisory_lock

logger = logging.getLogger(__name__)

#: deliveries of one message in a row when versions keep arriving while it is being sent
MAX_ROUNDS = 3


@shared_task(name="integrations.tasks.slack_event", ignore_result=True, queue="notify")
def slack_event(event_id: int) -> None:
    from .slack.outbox import slack_event_process

    due = slack_event_process(event_id=event_id)
    for message_id in due:
        slack_deliver.delay(message_id)


@shared_task(
    name="integrations.tasks.slack_deliver", ignore_result=True, queue="notify", acks_late=True
)
def slack_deliver(message_id: int) -> None:
    from .slack.outbox import slack_message_deliver

    for _ in range(MAX_ROUNDS):
        if not slack_message_deliver(message_id=message_id):
            return


@shared_task(name="integrations.tasks.slack_ephemeral", ignore_result=True, queue="notify")
def slack_ephemeral(channel: str, user: str, text: str) -> None:
    """Tell one Slack user something only they see (a refusal); best effort."""
    from .slack.interactions import ephemeral_send

    ephemeral_send(channel=channel, user=user, text=text)


@shared_task(name="integrations.tasks.slack_sweep", ignore_result=True, queue="notify")
def slack_sweep() -> None:
    from .slack.outbox import slack_sweep as sweep
    from .slack.signature import seen_prune

    with advisory_lock("integrations.slack_sweep") as acquired:
        if not acquired:
            logger.info("slack sweep already running elsewhere; skipped")
            return
        counts = sweep()
        counts["seen_pruned"] = seen_prune()
        logger.info("slack sweep done", extra={"counts": counts})
