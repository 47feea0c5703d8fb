"""The Slack outbox: every copy of a request's message, kept in step with the request.

1. ``on_request_event`` (an ``access.events`` hook, in the transaction of the change) inserts a
   ``SlackEvent`` row and enqueues its processing on commit. An insert only: it takes no lock
   a decision could wait on, and a decision never waits on Slack.
2. ``slack_event_process`` turns the event into ``SlackMessage`` rows: an approver's DM per
   person the new stage waits on, a channel post per matching route, the requester's DMs of
   the outcome and of the access being active; every existing copy gets ``wanted`` + 1.
3. ``slack_message_deliver`` renders the request as it is now and posts the message, or
   updates it in place (``chat.update`` on the stored channel and ``ts``). Failures to reach
   Slack back off (exponential, jitter, bounded) and are retried by the sweeper; a message
   that still fails is marked failed and audited. Nothing here touches the decision.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django.utils.dateformat import format as date_format

from access.events import RequestEvent
from access.models import AccessRequest, ApprovalAssignment, Grant
from access.models.catalog import RISK_ORDER
from access.workflow import active_delegations
from accounts.models import User
from audit.services import audit_record
from portal.core.actors import SLACK

from .. import registry as actions
from ..models import SlackEvent, SlackMessage, SlackRoute
from . import blocks, cards, client
from .identities import slack_user_id_for

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)  # a delivery in flight; a dead worker's claim lapses after it
SWEEP_BATCH = 500
Kind = SlackMessage.Kind
Status = SlackMessage.Status

DECIDED = {RequestEvent.APPROVED, RequestEvent.DENIED, RequestEvent.EXPIRED}


def _enqueue(task_name: str, ids: list[int]) -> None:
    from .. import tasks

    task = getattr(tasks, task_name)
    for pk in ids:
        try:
            task.delay(pk)
        except Exception:  # the broker is down: the sweeper sends it later
            logger.warning("could not enqueue %s(%s)", task_name, pk, exc_info=True)


# --- 1. the hook ----------------------------------------------------------------------
def on_request_event(*, request: AccessRequest, event: RequestEvent) -> None:
    """``access.events`` hook: write the outbox row; nothing when Slack is not configured."""
    if not client.configured():
        return
    row = SlackEvent.objects.create(request_id=request.pk, event=str(event))
    transaction.on_commit(lambda: _enqueue("slack_event", [row.pk]), robust=True)


# --- 2. events into message rows --------------------------------------------------------
def _routes_for(request: AccessRequest) -> list[str]:
    order: dict[str, int] = {str(k): v for k, v in RISK_ORDER.items()}
    risk = order.get(request.entitlement.risk, 0)
    channels = []
    for route in SlackRoute.objects.all():
        if route.service_id and route.service_id != request.entitlement.service_id:
            continue
        if route.team_id and route.team_id != request.principal.team_id:
            continue
        if route.min_risk and order.get(route.min_risk, 0) > risk:
            continue
        channels.append(route.channel_id)
    return sorted(set(channels))


def _waiting_on(request: AccessRequest) -> list[int]:
    """Who the current stage waits on, as the e-mail says: its assigned approvers and today's
    delegates of theirs, but not the requester or the principal."""
    ids = set(
        ApprovalAssignment.objects.filter(request=request, stage=request.current_stage).values_list(
            "approver_id", flat=True
        )
    )
    ids |= set(
        active_delegations().filter(delegator_id__in=ids).values_list("delegate_id", flat=True)
    )
    ids -= {request.requester_id, request.principal_id}
    return sorted(User.objects.filter(pk__in=ids, is_active=True).values_list("pk", flat=True))


def _bump(qs) -> None:
    """A new version of the message is wanted; a row in flight or backing off keeps its time."""
    now = timezone.now()
    qs.update(
        wanted=F("wanted") + 1,
        attempts=Case(When(status=Status.PENDING, then=F("attempts")), default=Value(0)),
        next_attempt_at=Case(
            When(status=Status.PENDING, then=F("next_attempt_at")), default=Value(now)
        ),
        status=Status.PENDING,
        updated_at=now,
    )


def _ensure(request: AccessRequest, kind: str, *, recipient_id=None, channel: str = "") -> None:
    if recipient_id is not None:
        row, created = SlackMessage.objects.get_or_create(
            request=request, kind=kind, recipient_id=recipient_id
        )
    else:
        row, created = SlackMessage.objects.get_or_create(
            request=request, kind=kind, recipient=None, channel=channel
        )
    if not created:
        _bump(SlackMessage.objects.filter(pk=row.pk))


def slack_event_process(*, event_id: int) -> list[int]:
    """Plan the messages of one event (idempotent: a processed event is skipped). Returns the
    ids of the messages to deliver."""
    with transaction.atomic():
        event = (
            SlackEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, processed_at=None)
            .first()
        )
        if event is None:
            return []
        request = AccessRequest.objects.select_related(
            "principal", "requester", "entitlement__service"
        ).get(pk=event.request_id)
        kind = event.event
        if kind != RequestEvent.GRANT_ACTIVE:  # the approval message says nothing of grants
            _bump(
                SlackMessage.objects.filter(request=request, kind__in=[Kind.APPROVER, Kind.CHANNEL])
            )
        if kind == RequestEvent.WAITING and request.status == AccessRequest.Status.PENDING:
            for approver_id in _waiting_on(request):
                _ensure(request, Kind.APPROVER, recipient_id=approver_id)
            for channel in _routes_for(request):
                _ensure(request, Kind.CHANNEL, channel=channel)
        people = sorted({request.requester_id, request.principal_id})
        if kind in DECIDED:
            for person in people:
                _ensure(request, Kind.OUTCOME, recipient_id=person)
        if kind == RequestEvent.GRANT_ACTIVE:
            for person in people:
                _ensure(request, Kind.ACTIVE, recipient_id=person)
        event.processed_at = timezone.now()
        event.save(update_fields=["processed_at"])
        due = list(
            SlackMessage.objects.filter(request=request, status=Status.PENDING).values_list(
                "pk", flat=True
            )
        )
    return due


# --- 3. delivery ------------------------------------------------------------------------
def _claim(message_id: int) -> int | None:
    """Lease the row (compare-and-set on its due time): two deliveries of one message never
    overlap, so a first post is never made twice. Returns the version being delivered."""
    now = timezone.now()
    claimed = SlackMessage.objects.filter(
        pk=message_id, status=Status.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + LEASE)
    if not claimed:
        return None
    return SlackMessage.objects.values_list("wanted", flat=True).get(pk=message_id)


def render(message: SlackMessage) -> tuple[str, list[dict[str, Any]]]:
    request = AccessRequest.objects.select_related(
        "principal", "requester", "entitlement__service", "entitlement__policy"
    ).get(pk=message.request_id)
    if message.kind == Kind.APPROVER:
        return blocks.approval_message(cards.card_for(request=request, reader=message.recipient))
    if message.kind == Kind.CHANNEL:
        return blocks.approval_message(cards.card_for(request=request, reader=None))
    card = cards.card_for(request=request, reader=None)
    if message.kind == Kind.OUTCOME:
        return blocks.outcome_message(card)
    grant = Grant.objects.filter(request=request).order_by("-pk").first()
    ends = date_format(grant.ends_at, "j M Y") if grant and grant.ends_at else ""
    return blocks.active_message(card, ends=ends)


def _finish(message_id: int, version: int, **fields: Any) -> bool:
    """Record a delivered version; True when a newer one is already wanted."""
    with transaction.atomic():
        row = SlackMessage.objects.select_for_update().get(pk=message_id)
        row.sent = max(row.sent, version)
        more = row.wanted > row.sent
        for name, value in fields.items():
            setattr(row, name, value)
        row.status = Status.PENDING if more else fields.get("status", Status.DONE)
        row.attempts = 0
        row.last_error = ""
        row.next_attempt_at = timezone.now()
        row.updated_at = timezone.now()
        row.save()
    return more


def backoff(attempts: int) -> timedelta:
    """30 s, 1, 2, 4 … minutes (at most an hour), plus up to 10 s of jitter."""
    seconds = min(3600, 30 * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=seconds + random.uniform(0, 10))  # noqa: S311 - jitter


def _failed(message_id: int, exc: Exception) -> None:
    transient = client.is_transient(exc)
    error = client.error_text(exc)
    with transaction.atomic():
        row = SlackMessage.objects.select_for_update().get(pk=message_id)
        row.attempts += 1
        row.last_error = error
        row.updated_at = timezone.now()
        if transient and row.attempts < MAX_ATTEMPTS:
            row.next_attempt_at = timezone.now() + backoff(row.attempts)
            row.save()
            logger.info("slack message %s: %s; retry %s", message_id, error, row.attempts)
            return
        row.status = Status.FAILED
        row.save()
        audit_record(
            actor=SLACK,
            action=actions.SLACK_MESSAGE_FAILED,
            target=row,
            after={"request": row.request_id, "kind": row.kind, "attempts": row.attempts},
            reason=error,
        )
    logger.error("slack message %s failed for good: %s", message_id, error)


def slack_message_deliver(*, message_id: int) -> bool:
    """Post or update one message (no transaction open during the call to Slack). Returns True
    when a newer version is wanted and the caller should deliver again."""
    if not client.configured():
        return False
    version = _claim(message_id)
    if version is None:
        return False
    message = SlackMessage.objects.select_related("recipient").get(pk=message_id)
    try:
        text, payload = render(message)
        web = client.web_client()
        if message.ts:
            web.chat_update(channel=message.channel, ts=message.ts, text=text, blocks=payload)
            return _finish(message_id, version)
        channel = message.channel
        if message.recipient is not None:
            channel = slack_user_id_for(message.recipient) or ""
            if not channel:
                return _finish(message_id, version, status=Status.SKIPPED)
        answer = web.chat_postMessage(channel=channel, text=text, blocks=payload)
        return _finish(message_id, version, channel=answer["channel"], ts=answer["ts"])
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row
        _failed(message_id, exc)
        return False


# --- the sweeper ------------------------------------------------------------------------
def slack_sweep(*, now=None) -> dict[str, int]:
    """Events whose processing was lost, and messages due (retries, lost deliveries)."""
    now = now or timezone.now()
    events = list(
        SlackEvent.objects.filter(processed_at=None, created_at__lte=now - timedelta(seconds=30))
        .order_by("pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    due = list(
        SlackMessage.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    _enqueue("slack_event", events)
    _enqueue("slack_deliver", due)
    return {"events": len(events), "messages": len(due)}
