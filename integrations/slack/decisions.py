"""Decisions and requests made from Slack go through the same access services as the web page
and the API (eligibility, no self-approval, one person one stage, separation of duties and the
re-checks at decision time, 409 on a decided request). What Slack adds is refused here first:
an unlinked Slack user, a policy decided on the web only, a person whose powers need a second
factor. Each decision writes one more audit event naming the channel and the Slack user."""

from __future__ import annotations

from django.db import transaction

from access import services as access_services
from access.models import AccessRequest, ApprovalPolicy, Entitlement
from accounts.models import User
from audit.services import audit_record
from portal.core.errors import NotFound, NotPermitted, ValidationError

from .. import registry as actions
from .cards import chat_approval_of, chat_refusal
from .identities import person_for_slack_user

NOT_LINKED = "slack-user-not-linked"
CHAT_OFF = "chat-approval-off"


def linked_person(slack_user_id: str) -> User:
    person = person_for_slack_user(slack_user_id)
    if person is None:
        raise NotPermitted(
            "your Slack account is not linked to an active Tollgate person: nothing was done. "
            "Ask an operator to run `manage.py slack_link` for you.",
            reason_code=NOT_LINKED,
        )
    return person


def request_for_chat(request_id: int) -> AccessRequest:
    request = (
        AccessRequest.objects.select_related("entitlement__policy", "entitlement__service")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound(f"no request #{request_id}")
    return request


def chat_decision_check(*, person: User, request: AccessRequest, decision: str) -> str:
    """Refuse what chat may not do for this policy or person; return the policy's setting."""
    setting = chat_approval_of(request)
    if setting == ApprovalPolicy.ChatApproval.OFF:
        raise NotPermitted(
            f"request #{request.pk} is decided on the web page only: {request_link_text(request)}",
            reason_code=CHAT_OFF,
        )
    why_not = chat_refusal(person)
    if why_not:
        raise NotPermitted(f"{why_not}: {request_link_text(request)}", reason_code=CHAT_OFF)
    return setting


def request_link_text(request: AccessRequest) -> str:
    from .cards import request_link

    return request_link(request.pk)


def slack_decide(
    *, slack_user_id: str, team_id: str, request_id: int, decision: str, reason: str = ""
) -> AccessRequest:
    """Approve or deny ``request_id`` as the person linked to ``slack_user_id``."""
    if decision not in ("approve", "deny"):
        raise ValidationError(f"unknown decision {decision!r}", field="decision")
    person = linked_person(slack_user_id)
    request = request_for_chat(request_id)
    setting = chat_decision_check(person=person, request=request, decision=decision)
    reason = (reason or "").strip()
    if decision == "approve" and setting == ApprovalPolicy.ChatApproval.WITH_REASON and not reason:
        raise ValidationError("this policy asks for a reason with every approval", field="reason")
    with transaction.atomic(durable=True):
        if decision == "approve":
            request = access_services.access_request_approve(
                actor=person, request_id=request_id, reason=reason
            )
        else:
            request = access_services.access_request_deny(
                actor=person, request_id=request_id, reason=reason
            )
        audit_record(
            actor=person,
            action=actions.SLACK_DECISION,
            target=request,
            after={
                "channel": "slack",
                "slack_user_id": slack_user_id,
                "slack_team_id": team_id,
                "decision": decision,
                "status": request.status,
            },
            reason=reason,
        )
    return request


def slack_request_submit(
    *, slack_user_id: str, entitlement_id: int, duration_days: int | None, justification: str
) -> AccessRequest:
    """Submit a request for oneself from the ``/access`` modal (same refusals as the web)."""
    person = linked_person(slack_user_id)
    entitlement = (
        Entitlement.objects.select_related("service", "policy").filter(pk=entitlement_id).first()
    )
    if entitlement is None:
        raise ValidationError("pick an entitlement", field="entitlement")
    return access_services.access_request_submit(
        actor=person,
        principal=person,
        entitlement=entitlement,
        justification=justification,
        duration_days=duration_days,
    )
