"""Block Kit JSON for Tollgate's Slack messages and modals: pure functions of plain values.

Buttons carry ``action_id`` ``tollgate_approve`` / ``tollgate_deny`` and the request id as
``value``; the modals carry the request id in ``private_metadata``.
"""

from __future__ import annotations

import json
from typing import Any

from .cards import Card

APPROVE = "tollgate_approve"
DENY = "tollgate_deny"
OPEN = "tollgate_open"
REASON_MODAL = "tollgate_reason"
REQUEST_MODAL = "tollgate_request"
REASON_BLOCK, REASON_INPUT = "reason", "reason_input"
ENTITLEMENT_BLOCK, ENTITLEMENT_INPUT = "entitlement", "entitlement_input"
DURATION_BLOCK, DURATION_INPUT = "duration", "duration_input"
WHY_BLOCK, WHY_INPUT = "why", "why_input"

MAX_TEXT = 2900  # a section's text is at most 3000 characters


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:150], "emoji": True}


def _escape(text: str) -> str:
    """mrkdwn control characters, so a justification cannot forge a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_TEXT]}}


def _outcome_line(card: Card) -> str:
    if card.status == "approved":
        who = ", ".join(card.approvers) or "policy"
        return f":white_check_mark: *Approved* by {_escape(who)}"
    if card.status == "denied":
        who = ", ".join(card.deciders) or "an approver"
        reason = f": {_escape(card.decision_reason)}" if card.decision_reason else ""
        return f":no_entry: *Denied* by {_escape(who)}{reason}"
    return f":heavy_minus_sign: *{card.status_label}*"


def approval_message(card: Card) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of an approver's DM or a channel post."""
    asker = f" (asked by {_escape(card.requester)})" if card.requester else ""
    text = f"Request #{card.request_id}: {card.principal} requests {card.entitlement}"
    head = (
        f"*{_escape(card.principal)}*{asker} requests *{_escape(card.entitlement)}* "
        f"on {_escape(card.service)}"
    )
    facts = [
        f"*Why:* {_escape(card.justification)}",
        f"*For:* {card.duration_days} days   *Risk:* {card.risk}   "
        f"*Stage:* {card.stage_number} of {card.stage_count}"
        + (f" ({_escape(card.stage_name)})" if card.stage_name else ""),
        "*Peers who hold it:* " + (_escape(", ".join(card.peers)) if card.peers else "none"),
    ]
    if card.score is not None:
        facts.append(f"*Recommendation:* {round(card.score * 100)}% likely to be approved")
    if card.approvers and card.status == "pending":
        facts.append("*Approved so far by:* " + _escape(", ".join(card.approvers)))
    blocks: list[dict[str, Any]] = [_section(head), _section("\n".join(facts))]
    if card.status != "pending":
        blocks.append(_section(_outcome_line(card)))
    elif card.note:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": card.note}]})
    elements: list[dict[str, Any]] = []
    if card.buttons:
        elements += [
            {
                "type": "button",
                "action_id": APPROVE,
                "value": str(card.request_id),
                "style": "primary",
                "text": _plain("Approve"),
            },
            {
                "type": "button",
                "action_id": DENY,
                "value": str(card.request_id),
                "style": "danger",
                "text": _plain("Deny"),
            },
        ]
    elements.append(
        {"type": "button", "action_id": OPEN, "url": card.link, "text": _plain("Open in Tollgate")}
    )
    blocks.append(
        {"type": "actions", "block_id": f"request-{card.request_id}", "elements": elements}
    )
    if card.status != "pending":
        text += f" ({card.status_label.lower()})"
    return text, blocks


def outcome_message(card: Card) -> tuple[str, list[dict[str, Any]]]:
    """The requester's DM of the outcome."""
    text = f"Your request #{card.request_id} for {card.entitlement} is {card.status_label.lower()}."
    body = (
        f"Your request for *{_escape(card.entitlement)}* ({_escape(card.principal)}) is "
        f"*{card.status_label.lower()}*.\n{_outcome_line(card)}\n<{card.link}|Open in Tollgate>"
    )
    return text, [_section(body)]


def active_message(card: Card, *, ends: str) -> tuple[str, list[dict[str, Any]]]:
    """The requester's DM once the grant is provisioned and active."""
    until = f" until {ends}" if ends else ""
    text = f"Your access to {card.entitlement} is active{until}."
    body = (
        f":unlock: Access to *{_escape(card.entitlement)}* for {_escape(card.principal)} is "
        f"*active*{until}.\n<{card.link}|Open in Tollgate>"
    )
    return text, [_section(body)]


def reason_modal(*, request_id: int, decision: str, entitlement: str, required: bool) -> dict:
    verb = "Deny" if decision == "deny" else "Approve"
    return {
        "type": "modal",
        "callback_id": REASON_MODAL,
        "private_metadata": json.dumps({"request_id": request_id, "decision": decision}),
        "title": _plain(f"{verb} request #{request_id}"[:24]),
        "submit": _plain(verb),
        "close": _plain("Cancel"),
        "blocks": [
            _section(f"{verb} *{_escape(entitlement)}*"),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "optional": not required,
                "label": _plain("Reason"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": 2000,
                },
            },
        ],
    }


def request_modal(*, options: list[tuple[int, str]], query: str) -> dict:
    """The ``/access`` modal: an entitlement among the catalog's matches, a duration, a reason."""
    return {
        "type": "modal",
        "callback_id": REQUEST_MODAL,
        "private_metadata": json.dumps({"query": query[:100]}),
        "title": _plain("Request access"),
        "submit": _plain("Request"),
        "close": _plain("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": ENTITLEMENT_BLOCK,
                "label": _plain("Entitlement"),
                "element": {
                    "type": "static_select",
                    "action_id": ENTITLEMENT_INPUT,
                    "options": [
                        {"text": _plain(label[:75]), "value": str(pk)} for pk, label in options
                    ],
                },
            },
            {
                "type": "input",
                "block_id": DURATION_BLOCK,
                "optional": True,
                "label": _plain("Days (empty = the entitlement's default)"),
                "element": {
                    "type": "number_input",
                    "action_id": DURATION_INPUT,
                    "is_decimal_allowed": False,
                    "min_value": "1",
                },
            },
            {
                "type": "input",
                "block_id": WHY_BLOCK,
                "label": _plain("Why do you need it?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": WHY_INPUT,
                    "multiline": True,
                    "max_length": 2000,
                },
            },
        ],
    }
