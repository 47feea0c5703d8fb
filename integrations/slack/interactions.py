"""Slack's callbacks, once verified: button clicks and modal submissions (interactions) and the
``/access`` slash command. Each returns ``(HTTP status, JSON body)`` for the view to send.

Within Slack's three seconds: the decision (a database transaction) and opening a modal
(``views.open`` needs the click's ``trigger_id`` at once); everything else — messages, and the
ephemeral refusals of button clicks — goes to tasks.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import DatabaseError

from access import selectors as access_selectors
from access.models import ApprovalPolicy
from portal.core.errors import DomainError

from . import blocks, client
from .cards import request_link
from .decisions import (
    chat_decision_check,
    linked_person,
    request_for_chat,
    slack_decide,
    slack_request_submit,
)

logger = logging.getLogger(__name__)

Reply = tuple[int, dict[str, Any]]
MAX_OPTIONS = 100  # a static_select holds at most 100 options
MODAL_TIMEOUT = 2.0  # views.open must land within Slack's three seconds


class BadPayload(ValueError):
    pass


# --- helpers ----------------------------------------------------------------------------
def ephemeral_send(*, channel: str, user: str, text: str) -> None:
    """Best effort: a message only ``user`` sees (in ``channel``, else their DM with the bot)."""
    if not client.configured():
        return
    web = client.web_client()
    try:
        if channel:
            web.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            web.chat_postMessage(channel=user, text=text)
    except Exception:  # noqa: BLE001 - a refusal that cannot be shown changes nothing
        logger.warning("could not tell Slack user %s: %s", user, text, exc_info=True)


def _tell(channel: str, user: str, text: str) -> None:
    from .. import tasks

    try:
        tasks.slack_ephemeral.delay(channel, user, text)
    except Exception:  # noqa: BLE001 - the broker is down; the HTTP answer still says it
        logger.warning("could not enqueue an ephemeral message for %s", user, exc_info=True)


def _refused(exc: DomainError) -> dict[str, Any]:
    return {"ok": False, "reason": exc.reason_code or exc.code, "error": exc.message}


def _open_modal(trigger_id: str, view: dict) -> None:
    client.web_client(timeout=MODAL_TIMEOUT).views_open(trigger_id=trigger_id, view=view)


def _dict(value: Any) -> dict[str, Any]:
    """A JSON object of the payload, or BadPayload (Slack always sends objects here)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadPayload(f"expected an object, got {type(value).__name__}")
    return value


def _user_and_team(payload: dict[str, Any]) -> tuple[str, str]:
    slack_user_id = _dict(payload.get("user")).get("id")
    if not isinstance(slack_user_id, str) or not slack_user_id:
        raise BadPayload("the payload names no Slack user")
    return slack_user_id, str(_dict(payload.get("team")).get("id", ""))


def _request_id(value: Any) -> int:
    text = str(value or "")
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise BadPayload(f"{text[:40]!r} is not a request id")
    return int(text)


# --- interactions -----------------------------------------------------------------------
def handle_interaction(payload: dict[str, Any]) -> Reply:
    kind = payload.get("type")
    if kind == "block_actions":
        return _block_actions(payload)
    if kind == "view_submission":
        view = _dict(payload.get("view"))
        if view.get("callback_id") == blocks.REASON_MODAL:
            return _reason_submitted(payload, view)
        if view.get("callback_id") == blocks.REQUEST_MODAL:
            return _request_submitted(payload, view)
    return 200, {}  # anything else (a link click, a modal closed) needs no answer


def _block_actions(payload: dict[str, Any]) -> Reply:
    actions = payload.get("actions") or []
    if not isinstance(actions, list):
        raise BadPayload("actions is not a list")
    wanted = (blocks.APPROVE, blocks.DENY)
    action = next((a for a in map(_dict, actions) if a.get("action_id") in wanted), None)
    if action is None:
        return 200, {}  # "Open in Tollgate" and other link buttons
    slack_user_id, team_id = _user_and_team(payload)
    request_id = _request_id(action.get("value"))
    decision = "approve" if action["action_id"] == blocks.APPROVE else "deny"
    channel = str(_dict(payload.get("channel")).get("id") or "")
    try:
        person = linked_person(slack_user_id)
        request = request_for_chat(request_id)
        setting = chat_decision_check(person=person, request=request, decision=decision)
        if decision == "deny" or setting == ApprovalPolicy.ChatApproval.WITH_REASON:
            _open_modal(
                str(payload.get("trigger_id") or ""),
                blocks.reason_modal(
                    request_id=request_id,
                    decision=decision,
                    entitlement=str(request.entitlement),
                    required=True,
                ),
            )
            return 200, {"ok": True, "modal": decision}
        request = slack_decide(
            slack_user_id=slack_user_id,
            team_id=team_id,
            request_id=request_id,
            decision=decision,
        )
    except DomainError as exc:
        _tell(channel, slack_user_id, f"Request #{request_id}: {exc.message}")
        return exc.http_status, _refused(exc)
    except Exception as exc:  # noqa: BLE001 - views.open failed: nothing was decided
        if isinstance(exc, DatabaseError):
            raise
        logger.warning("views.open failed for request %s", request_id, exc_info=True)
        _tell(channel, slack_user_id, f"Could not open the form: {client.error_text(exc)}")
        return 502, {"ok": False, "reason": "slack-unavailable"}
    return 200, {"ok": True, "status": request.status}


def _value(view: dict[str, Any], block: str, action: str) -> Any:
    values = _dict(_dict(view.get("state")).get("values"))
    entry = _dict(_dict(values.get(block)).get(action))
    if "selected_option" in entry:
        return _dict(entry.get("selected_option")).get("value")
    return entry.get("value")


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError as exc:
        raise BadPayload("unreadable private_metadata") from exc
    if not isinstance(data, dict):
        raise BadPayload("unreadable private_metadata")
    return data


def _reason_submitted(payload: dict[str, Any], view: dict[str, Any]) -> Reply:
    slack_user_id, team_id = _user_and_team(payload)
    meta = _metadata(view)
    request_id = _request_id(meta.get("request_id"))
    decision = meta.get("decision")
    reason = str(_value(view, blocks.REASON_BLOCK, blocks.REASON_INPUT) or "")
    try:
        slack_decide(
            slack_user_id=slack_user_id,
            team_id=team_id,
            request_id=request_id,
            decision=str(decision),
            reason=reason,
        )
    except DomainError as exc:
        # A modal shows errors under its field; the status stays 200 (Slack's rule for views).
        return 200, {"response_action": "errors", "errors": {blocks.REASON_BLOCK: exc.message}}
    return 200, {}


def _request_submitted(payload: dict[str, Any], view: dict[str, Any]) -> Reply:
    slack_user_id, _team = _user_and_team(payload)
    entitlement = _value(view, blocks.ENTITLEMENT_BLOCK, blocks.ENTITLEMENT_INPUT)
    days = _value(view, blocks.DURATION_BLOCK, blocks.DURATION_INPUT)
    why = str(_value(view, blocks.WHY_BLOCK, blocks.WHY_INPUT) or "")
    field_blocks = {
        "entitlement": blocks.ENTITLEMENT_BLOCK,
        "duration_days": blocks.DURATION_BLOCK,
        "justification": blocks.WHY_BLOCK,
        "principal": blocks.ENTITLEMENT_BLOCK,
    }
    try:
        try:
            entitlement_id = _request_id(entitlement)
        except BadPayload:
            entitlement_id = 0
        duration = None
        if days not in (None, ""):
            text = str(days)
            duration = int(text) if text.isascii() and text.isdigit() and len(text) < 6 else -1
        request = slack_request_submit(
            slack_user_id=slack_user_id,
            entitlement_id=entitlement_id,
            duration_days=duration,
            justification=why,
        )
    except DomainError as exc:
        block = field_blocks.get(exc.field or "", blocks.ENTITLEMENT_BLOCK)
        return 200, {"response_action": "errors", "errors": {block: exc.message}}
    done = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Request sent"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"Request #{request.pk} for *{request.entitlement}* is "
                    f"{request.get_status_display().lower()}. <{request_link(request.pk)}|Open in Tollgate>",
                },
            }
        ],
    }
    return 200, {"response_action": "update", "view": done}


# --- the /access command ----------------------------------------------------------------
USAGE = (
    "`/access WORDS` searches the catalog and opens a request form; "
    "`/access pending` lists what waits on your approval."
)


def _ephemeral(text: str) -> Reply:
    return 200, {"response_type": "ephemeral", "text": text}


def handle_command(form: dict[str, str]) -> Reply:
    """``/access`` (slash commands always answer 200: the text says what happened)."""
    slack_user_id = form.get("user_id", "")
    text = " ".join((form.get("text") or "").split())
    try:
        person = linked_person(slack_user_id)
    except DomainError as exc:
        return _ephemeral(exc.message)
    if not text or text.lower() == "help":
        return _ephemeral(USAGE)
    if text.lower() == "pending":
        waiting = list(access_selectors.approval_inbox(viewer=person)[:20])
        if not waiting:
            return _ephemeral("Nothing waits on your approval.")
        lines = [
            f"• <{request_link(r.pk)}|#{r.pk}> {r.principal.email} requests {r.entitlement} "
            f"({r.entitlement.get_risk_display()} risk, {r.duration_days} days)"
            for r in waiting
        ]
        return _ephemeral("Waiting on you:\n" + "\n".join(lines))
    matches = list(
        access_selectors.entitlements_list(viewer=person, q=text[:100], requestable_only=True)[
            :MAX_OPTIONS
        ]
    )
    if not matches:
        return _ephemeral(f"Nothing requestable matches “{text[:100]}”.")
    options = [(e.pk, f"{e.service.name}: {e.name}") for e in matches]
    try:
        _open_modal(form.get("trigger_id", ""), blocks.request_modal(options=options, query=text))
    except Exception as exc:  # noqa: BLE001 - Slack did not take the modal
        logger.warning("views.open failed for /access", exc_info=True)
        return _ephemeral(f"Could not open the request form: {client.error_text(exc)}")
    return 200, {}
