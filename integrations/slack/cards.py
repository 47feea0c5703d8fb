"""What a Slack message says about a request, read from the database as it is now (selectors
for the outbox's renderer): the same facts whoever decided, so every copy tells the truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.urls import reverse

from access import selectors as access_selectors
from access import workflow
from access.models import AccessRequest, Approval, ApprovalPolicy
from access.panels import request_panels
from accounts.middleware import holds_powers


def request_link(request_id: int) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse(
        "access:request-detail", args=[request_id]
    )


def chat_approval_of(request: AccessRequest) -> str:
    """The policy's chat setting (``on``, ``reason``, ``off``), read live: tightening it takes
    the buttons off messages already sent at their next update."""
    policy = workflow.policy_for(request.entitlement)
    return policy.chat_approval if policy is not None else ApprovalPolicy.ChatApproval.ON


def chat_refusal(person: Any) -> str:
    """Why this person may not decide from chat at all, or ''. With REQUIRE_MFA_FOR_ADMINS a
    person holding administrative powers changes nothing without a second factor in that
    session, and Slack has no such session: they decide on the web page."""
    if settings.REQUIRE_MFA_FOR_ADMINS and holds_powers(person):
        return (
            "you hold administrative powers: decide on the web page, where your second factor "
            "is asked"
        )
    return ""


@dataclass
class Card:
    request_id: int
    link: str
    status: str  # AccessRequest.Status
    status_label: str
    principal: str
    requester: str  # "" when the principal asked themselves
    entitlement: str
    service: str
    risk: str
    duration_days: int
    justification: str
    stage_number: int
    stage_count: int
    stage_name: str
    peers: list[str] = field(default_factory=list)
    score: float | None = None
    approvers: list[str] = field(default_factory=list)
    deciders: list[str] = field(default_factory=list)
    decision_reason: str = ""
    buttons: bool = False
    note: str = ""  # why there are no buttons for this reader (decided, web only, ...)


def _score_for(request: AccessRequest, viewer: Any) -> float | None:
    """The recommendation score, when a panel shows one to this viewer (the recommend app
    plugs into the request page; access and this app do not import it)."""
    if viewer is None:
        return None
    for panel in request_panels(request=request, viewer=viewer):
        score = panel.context.get("score")
        probability = getattr(score, "probability", None)
        if probability is not None:
            return float(probability)
    return None


def card_for(*, request: AccessRequest, reader: Any | None) -> Card:
    """The card of ``request`` for ``reader`` (an approver's DM) or for a channel (None)."""
    stages = request.stages or []
    index = min(request.current_stage, max(len(stages) - 1, 0))
    stage = stages[index] if stages else {"name": "", "required": 1}
    approvals = list(
        Approval.objects.filter(request=request).select_related("approver").order_by("pk")
    )
    card = Card(
        request_id=request.pk,
        link=request_link(request.pk),
        status=request.status,
        status_label=request.get_status_display(),
        principal=f"{request.principal.name or request.principal.email} ({request.principal.email})",
        requester=""
        if request.requester_id == request.principal_id
        else request.requester.name or request.requester.email,
        entitlement=str(request.entitlement),
        service=request.entitlement.service.name,
        risk=request.entitlement.get_risk_display(),
        duration_days=request.duration_days,
        justification=request.justification,
        stage_number=index + 1,
        stage_count=len(stages),
        stage_name=str(stage.get("name", "")),
        peers=[
            p.name or p.email
            for p in access_selectors.peers_holding(
                principal=request.principal, entitlement=request.entitlement, limit=5
            )
        ],
        approvers=[
            a.approver.name or a.approver.email
            for a in approvals
            if a.decision == Approval.Decision.APPROVE
        ],
        deciders=[
            a.approver.name or a.approver.email
            for a in approvals
            if a.decision == Approval.Decision.DENY
        ],
        decision_reason=request.decision_reason,
    )
    if request.status != AccessRequest.Status.PENDING:
        card.note = f"Request {card.status_label.lower()}: nothing left to decide here."
        return card
    card.score = _score_for(request, reader)
    if chat_approval_of(request) == ApprovalPolicy.ChatApproval.OFF:
        card.note = "This policy is decided on the web page only."
        return card
    if reader is None:
        card.buttons = True
        return card
    if chat_refusal(reader):
        card.note = "You hold administrative powers: decide on the web page."
        return card
    eligible = workflow.eligible_approvers(request=request)
    done = any(a.approver_id == reader.pk for a in approvals)
    if done:
        card.note = "You have approved; the request waits for others."
    elif reader.pk not in eligible:
        card.note = f"Stage {card.stage_number} waits on others."
    else:
        card.buttons = True
    return card
