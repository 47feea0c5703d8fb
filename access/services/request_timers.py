"""Requests while they wait: a leaver's open requests locked and cancelled, and the sweeper's
expire, remind and escalate (``pending_requests_sweep``). Split from :mod:`.requests`, whose
stage machine they do not touch."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from portal.core.actors import (
    LEAVER,
    REQUEST_SWEEPER,
    Actor,
    actor_label,
)
from portal.core.state import transition

from .. import registry as actions
from .. import workflow
from ..events import RequestEvent, request_event
from ..models import (
    AccessRequest,
    ApprovalAssignment,
    ApprovalPolicy,
)
from ..state import REQUEST_TRANSITIONS
from ._common import notify
from .locks import lock_open_requests_of, lock_request


def requests_lock_for_leavers(*, users) -> int:
    """Leaver prepare hook: lock the leavers' open requests (made by them or for them) before
    the leaver's transaction writes its first audit event (``LOCK_ORDER``: requests, then
    grants)."""
    return len(lock_open_requests_of(users))


def requests_cancel_for_leaver(*, user, actor: Actor | None) -> int:
    """Leaver hook: every open request the leaver made, or is the principal of, is cancelled
    in the leaver's transaction, by the ``LEAVER`` system actor (one audit event each; who
    made them leave is recorded with it)."""
    cancelled = 0
    left_by = actor_label(actor if actor is not None else LEAVER)
    with transaction.atomic():
        for request in lock_open_requests_of([user]):
            role = "principal" if request.principal_id == user.pk else "requester"
            transition(
                request,
                table=REQUEST_TRANSITIONS,
                action="cancel",
                actor=LEAVER,
                audit_action=actions.REQUEST_CANCELLED,
                reason=f"leaver: the {role}, {user.email}, left",
                after_extra={"left_by": left_by},
                extra_fields={"decided_at": timezone.now()},
            )
            request_event(request, RequestEvent.CANCELLED)
            cancelled += 1
    return cancelled


def access_request_expire(*, request_id: int, now=None) -> AccessRequest | None:
    now = now or timezone.now()
    with transaction.atomic():
        request = lock_request(request_id)
        if request.status != AccessRequest.Status.PENDING:
            return None
        transition(
            request,
            table=REQUEST_TRANSITIONS,
            action="expire",
            actor=REQUEST_SWEEPER,
            audit_action=actions.REQUEST_EXPIRED,
            reason="no decision within the policy's expiry time",
            extra_fields={"decided_at": now},
        )
        notify("notify_requester", request.pk)
        request_event(request, RequestEvent.EXPIRED)
    return request


def access_request_remind(*, request_id: int, now=None) -> bool:
    with transaction.atomic():
        request = lock_request(request_id)
        if request.status != AccessRequest.Status.PENDING or request.reminded_at is not None:
            return False
        request.reminded_at = now or timezone.now()
        request.save(update_fields=["reminded_at"])
        audit_record(
            actor=REQUEST_SWEEPER,
            action=actions.REQUEST_REMINDED,
            target=request,
            after={"stage": request.current_stage + 1},
        )
        notify("notify_approvers", request.pk, "reminder")
    return True


def access_request_escalate(*, request_id: int, now=None) -> list[str]:
    """Add the current approvers' managers as approvers of the current stage."""
    with transaction.atomic():
        request = lock_request(request_id)
        if request.status != AccessRequest.Status.PENDING or request.escalated_at is not None:
            return []
        approver_ids = set(
            ApprovalAssignment.objects.filter(
                request=request, stage=request.current_stage
            ).values_list("approver_id", flat=True)
        )
        managers = (
            User.objects.filter(
                pk__in=User.objects.filter(pk__in=approver_ids)
                .exclude(manager=None)
                .values("manager_id"),
                is_active=True,
            )
            .exclude(pk__in=approver_ids)
            .exclude(pk__in=workflow.excluded_approvers(request))
        )
        added = list(managers)
        ApprovalAssignment.objects.bulk_create(
            [
                ApprovalAssignment(
                    request=request, stage=request.current_stage, approver=m, escalated=True
                )
                for m in added
            ],
            ignore_conflicts=True,
        )
        request.escalated_at = now or timezone.now()
        request.save(update_fields=["escalated_at"])
        emails = sorted(m.email for m in added)
        audit_record(
            actor=REQUEST_SWEEPER,
            action=actions.REQUEST_ESCALATED,
            target=request,
            after={"stage": request.current_stage + 1, "added_approvers": emails},
        )
        notify("notify_approvers", request.pk, "escalation")
        if added:
            request_event(request, RequestEvent.WAITING)
    return emails


def pending_requests_sweep(*, now=None) -> dict[str, int]:
    """Remind, escalate and expire pending requests by their policy's times (beat task)."""
    now = now or timezone.now()
    counts = {"reminded": 0, "escalated": 0, "expired": 0}
    pending = (
        AccessRequest.objects.filter(status=AccessRequest.Status.PENDING)
        .select_related("entitlement__policy")
        .only(
            "id",
            "created_at",
            "stage_started_at",
            "reminded_at",
            "escalated_at",
            "entitlement__policy",
        )
    )
    default = workflow.ApprovalPolicy.objects.filter(slug=workflow.DEFAULT_POLICY_SLUG).first()
    fallback = ApprovalPolicy()
    for request in pending.iterator(chunk_size=500):
        policy = request.entitlement.policy or default or fallback
        if now - request.created_at >= policy.expire_after:
            if access_request_expire(request_id=request.pk, now=now):
                counts["expired"] += 1
            continue
        waited = now - request.stage_started_at
        if waited >= policy.escalate_after and request.escalated_at is None:
            access_request_escalate(request_id=request.pk, now=now)
            counts["escalated"] += 1
        # A stage that was already escalated needs no reminder of its own any more.
        elif (
            waited >= policy.remind_after
            and request.reminded_at is None
            and request.escalated_at is None
            and access_request_remind(request_id=request.pk, now=now)
        ):
            counts["reminded"] += 1
    return counts
