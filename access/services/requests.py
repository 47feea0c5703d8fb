"""Access requests: submit, approve (stage by stage), deny, cancel. An approved request becomes
a grant through :func:`access.services.grants.grant_from_request`; what happens to requests
while they wait (leavers, expiry, reminders, escalation) is in :mod:`.request_timers`."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from portal.core.actors import (
    AUTO_APPROVAL,
    Actor,
    actor_label,
    is_system,
)
from portal.core.errors import NotPermitted, ValidationError
from portal.core.memo import lookup_scope
from portal.core.state import transition

from .. import registry as actions
from .. import workflow
from ..events import RequestEvent, request_event
from ..models import (
    AccessRequest,
    Approval,
    ApprovalAssignment,
    ApprovalPolicy,
    BundleRequest,
    Entitlement,
)
from ..outcomes import RefusalCode, refusal, refusal_code
from ..policies import may_request_for
from ..state import REQUEST_TRANSITIONS
from ._common import notify
from .grants import grant_from_request
from .locks import lock_held_grants, lock_person, lock_request


def _person(actor: Actor) -> User:
    """Decisions on requests are people's: a string raises TypeError, a system actor is refused."""
    if is_system(actor):
        raise refusal(RefusalCode.NOT_PERMITTED, f"{actor} does not decide access requests")
    return actor  # type: ignore[return-value]


def _enter_stage(
    request: AccessRequest, index: int, eligible: dict[int, int | None] | None = None
) -> None:
    request.current_stage = index
    request.stage_started_at = timezone.now()
    request.reminded_at = None
    request.escalated_at = None
    if eligible is None:
        eligible = workflow.eligible_approvers(request=request, stage_index=index)
    direct = [uid for uid, via in eligible.items() if via is None]
    ApprovalAssignment.objects.bulk_create(
        [ApprovalAssignment(request=request, stage=index, approver_id=uid) for uid in direct],
        ignore_conflicts=True,
    )


def access_request_submit(
    *,
    actor: Actor,
    principal: User,
    entitlement: Entitlement,
    justification: str,
    duration_days: int | None = None,
    policy: ApprovalPolicy | None = None,
    bundle_request: BundleRequest | None = None,
) -> AccessRequest:
    """Submit one request. Refusals raise before anything is written. A bundle request's
    members pass the bundle's ``policy`` (one approval path) and the ``bundle_request``."""
    justification = (justification or "").strip()
    if not justification:
        raise ValidationError("say why the access is needed", field="justification")
    if duration_days is None:
        duration_days = entitlement.default_duration_days
    if not isinstance(duration_days, int) or duration_days < 1:
        raise ValidationError(
            "duration_days must be a whole number of days, at least 1", field="duration_days"
        )
    if duration_days > entitlement.max_duration_days:
        raise ValidationError(
            f"duration_days {duration_days} exceeds the maximum of {entitlement.max_duration_days} days for {entitlement}",
            field="duration_days",
        )
    actor = _person(actor)
    if not may_request_for(actor, principal):
        raise refusal(
            RefusalCode.NOT_PERMITTED,
            f"you may request access only for yourself or your reports, not for {principal.email}",
            field="principal",
        )
    if not entitlement.requestable:
        raise refusal(
            RefusalCode.NOT_ELIGIBLE, f"{entitlement} is not requestable", field="entitlement"
        )
    if not principal.is_active:
        raise refusal(
            RefusalCode.NOT_ELIGIBLE, f"{principal.email} is not active", field="principal"
        )
    try:
        with transaction.atomic():
            # Serialise submissions per principal, so SoD and "one open request" checks see each other.
            lock_person(principal.pk)
            preview = workflow.preview(
                requester=actor,
                principal=principal,
                entitlement=entitlement,
                duration_days=duration_days,
                policy=policy,
            )
            # The first refusal of the state of things (an open request, a held grant) wins;
            # otherwise every refusal is named, under the code of the first.
            codes = [refusal_code(r) for r in preview.refusals]
            for r, code in zip(preview.refusals, codes, strict=True):
                if code in (RefusalCode.DUPLICATE_OPEN_REQUEST, RefusalCode.ALREADY_HELD):
                    raise refusal(code, str(r), field="entitlement")
            if preview.refusals:
                raise refusal(codes[0], "; ".join(preview.refusals), field="entitlement")
            lock_held_grants(principal_id=principal.pk, entitlement_id=entitlement.pk)
            request = AccessRequest.objects.create(
                requester=actor,
                principal=principal,
                entitlement=entitlement,
                justification=justification,
                duration_days=duration_days,
                stages=preview.stages,
                kind=AccessRequest.Kind.EXTENSION
                if preview.extension_of
                else AccessRequest.Kind.NEW,
                extends_grant=preview.extension_of,
                routed_to_security=any(s["source"] == "sod" for s in preview.stages),
                bundle_request=bundle_request,
            )
            audit_record(
                actor=actor,
                action=actions.REQUEST_SUBMITTED,
                target=request,
                after={
                    "principal": principal.email,
                    "entitlement": str(entitlement),
                    "duration_days": duration_days,
                    "kind": request.kind,
                    "stages": [s["name"] for s in request.stages],
                },
                reason=justification,
            )
            if preview.auto_approval:
                request.auto_approval_reason = preview.auto_approval
                _finish_approved(request, actor=AUTO_APPROVAL, reason=preview.auto_approval)
                return request
            # The preview already refused a stage nobody can approve; it read who may approve
            # each stage of this very request (nothing about it changed since: no approval yet).
            first_stage = preview.eligible[0] if preview.eligible else {}
            _enter_stage(request, 0, eligible=first_stage)
            request.save()
            if _pass_system_stages(request):
                return request
            notify("notify_approvers", request.pk, "new")
            request_event(request, RequestEvent.WAITING)
    except IntegrityError as exc:
        # The partial unique constraint caught a concurrent duplicate (double submit).
        raise refusal(
            RefusalCode.DUPLICATE_OPEN_REQUEST,
            f"{principal.email} already has an open request for {entitlement}",
            field="entitlement",
        ) from exc
    return request


def access_request_submit_many(
    *,
    actor: User,
    principal: User,
    entitlements: Sequence[Entitlement],
    justification: str,
    duration_days: int | None = None,
) -> list[AccessRequest]:
    """Several entitlements in one form make one request each, all or none."""
    if not entitlements:
        raise ValidationError("pick at least one entitlement", field="entitlements")
    if len({e.pk for e in entitlements}) != len(entitlements):
        raise ValidationError("an entitlement is listed twice", field="entitlements")
    with transaction.atomic(), lookup_scope():  # the catalog reads, once for all of them
        return [
            access_request_submit(
                actor=actor,
                principal=principal,
                entitlement=e,
                justification=justification,
                duration_days=duration_days,
            )
            for e in entitlements
        ]


def access_request_approve(*, actor: Actor, request_id: int, reason: str = "") -> AccessRequest:
    actor = _person(actor)
    with transaction.atomic():
        request = lock_request(request_id)
        if request.status != AccessRequest.Status.PENDING:
            raise refusal(
                RefusalCode.ALREADY_DECIDED, f"request #{request.pk} is already {request.status}"
            )
        if actor.pk in workflow.excluded_approvers(request):
            raise refusal(
                RefusalCode.OWN_REQUEST,
                "nobody approves their own request or one they made for someone else",
            )
        earlier = _refuse_second_stage(request, actor)
        eligible = workflow.eligible_approvers(request=request, other_stages=earlier)
        if actor.pk not in eligible:
            raise refusal(
                RefusalCode.NOT_AN_APPROVER,
                f"you are not an approver of stage {request.current_stage + 1} ({request.stages[request.current_stage]['name']}) of request #{request.pk}",
            )
        on_behalf_of = eligible[actor.pk]
        given = list(
            Approval.objects.filter(request=request, stage=request.current_stage).values_list(
                "approver_id", "on_behalf_of_id"
            )
        )
        slots = {behalf or approver for approver, behalf in given}
        if any(approver == actor.pk for approver, _ in given):
            raise refusal(RefusalCode.ALREADY_APPROVED, "you have already approved this stage")
        if on_behalf_of is not None and on_behalf_of in slots:
            raise refusal(
                RefusalCode.ALREADY_APPROVED,
                "the person you stand in for has already approved this stage",
            )
        _refuse_what_changed(request)
        # N of M counts people: a delegate's approval fills their delegator's place.
        count = len(slots | {on_behalf_of or actor.pk})
        required = request.stages[request.current_stage]["required"]
        if count >= required and request.current_stage + 1 == len(request.stages):
            lock_held_grants(
                principal_id=request.principal_id, entitlement_id=request.entitlement_id
            )
        Approval.objects.create(
            request=request,
            stage=request.current_stage,
            approver=actor,
            on_behalf_of_id=on_behalf_of,
            decision=Approval.Decision.APPROVE,
            reason=reason,
        )
        audit_record(
            actor=actor,
            action=actions.REQUEST_APPROVAL_GIVEN,
            target=request,
            after={
                "stage": request.current_stage + 1,
                "approvals": count,
                "required": required,
                "on_behalf_of": eligible[actor.pk],
            },
            reason=reason,
        )
        if count < required:
            request_event(request, RequestEvent.APPROVAL_GIVEN)
            return request
        if request.current_stage + 1 < len(request.stages):
            next_index = request.current_stage + 1
            transition(
                request,
                table=REQUEST_TRANSITIONS,
                action="advance",
                actor=actor,
                audit_action=actions.REQUEST_ADVANCED,
                after_extra={"stage": next_index + 1},
            )
            _enter_stage(request, next_index)
            request.save()
            if _pass_system_stages(request):
                return request
            notify("notify_approvers", request.pk, "new")
            request_event(request, RequestEvent.WAITING)
            return request
        _finish_approved(request, actor=actor, reason=reason)
    return request


def access_request_pass_system_stages(*, request_id: int) -> bool:
    """Pass the waiting stage(s) the system passes now, for a request that reached them before
    (the principal went on call after their request entered an on-call stage): the on-call
    sweep calls it for each pending request of the person on shift. True when a stage passed.
    The request is locked and re-read; a decided request, or a stage that does not pass, is
    left as it is."""
    with transaction.atomic():
        request = lock_request(request_id)
        if request.status != AccessRequest.Status.PENDING:
            return False
        stage = request.current_stage
        if _pass_system_stages(request):
            return True
        if request.current_stage == stage:
            return False
        notify("notify_approvers", request.pk, "new")
        request_event(request, RequestEvent.WAITING)
        return True


def _pass_system_stages(request: AccessRequest) -> bool:
    """Pass, one after the other from the current one, the stages the system passes (a stage
    flagged ``auto_approve_on_call`` when the principal is on call for the service: see
    ``access.workflow.STAGE_PASSES``). Each is a system approval, audited with what justified
    it, through the same advance/approve transitions as people's approvals. True when that
    approved the request."""
    while True:
        index = request.current_stage
        passed = workflow.stage_pass(request, index)
        if passed is None:
            return False
        audit_record(
            actor=passed.actor,
            action=actions.REQUEST_APPROVAL_GIVEN,
            target=request,
            after={"stage": index + 1, "system": actor_label(passed.actor), **passed.detail},
            reason=passed.reason,
        )
        if index + 1 == len(request.stages):
            lock_held_grants(
                principal_id=request.principal_id, entitlement_id=request.entitlement_id
            )
            _finish_approved(request, actor=passed.actor, reason=passed.reason)
            return True
        transition(
            request,
            table=REQUEST_TRANSITIONS,
            action="advance",
            actor=passed.actor,
            audit_action=actions.REQUEST_ADVANCED,
            after_extra={"stage": index + 2},
        )
        _enter_stage(request, index + 1)
        request.save()


def _refuse_second_stage(request: AccessRequest, actor: User) -> set[int]:
    """One person approves one stage of a request (themselves or through a delegate).
    Returns who approved the other stages (the eligibility check excludes them too)."""
    earlier = workflow.other_stage_approvers(request, stage_index=request.current_stage)
    if actor.pk in earlier:
        raise refusal(
            RefusalCode.APPROVED_ANOTHER_STAGE,
            f"you already approved another stage of request #{request.pk} (or someone did in "
            f"your place): stage {request.current_stage + 1} waits for someone else",
        )
    return earlier


def _refuse_what_changed(request: AccessRequest) -> None:
    """Re-check, under the request's lock, what may have changed since submission: the
    principal still active, the entitlement still requestable, and separation of duties
    against what the principal holds and has pending now. A request routed to security for
    separation of duties leaves that judgement to its security stage."""
    principal, entitlement = request.principal, request.entitlement
    if not principal.is_active or principal.status != User.Status.ACTIVE:
        raise refusal(
            RefusalCode.PRINCIPAL_INACTIVE,
            f"{principal.email} is no longer active: request #{request.pk} cannot be approved",
        )
    if not entitlement.requestable:
        raise refusal(
            RefusalCode.NO_LONGER_REQUESTABLE,
            f"{entitlement} is no longer requestable: request #{request.pk} cannot be approved",
        )
    if request.routed_to_security:
        return
    conflicts = workflow.toxic_conflicts(principal=principal, entitlement=entitlement)
    if conflicts:
        text = "; ".join(f"{other} ({pair.reason})" for pair, other in conflicts)
        raise refusal(
            RefusalCode.SEPARATION_OF_DUTIES_AT_DECISION,
            f"separation of duties: {principal.email} now holds or has requested {text}; "
            f"{entitlement} cannot be approved with it",
        )


def _finish_approved(request: AccessRequest, *, actor: Actor, reason: str) -> None:
    now = timezone.now()
    request.decided_at = now
    request.decision_reason = reason
    transition(
        request,
        table=REQUEST_TRANSITIONS,
        action="approve",
        actor=actor,
        audit_action=actions.REQUEST_APPROVED,
        reason=reason,
        extra_fields={
            "decided_at": now,
            "decision_reason": reason,
            "auto_approval_reason": request.auto_approval_reason,
        },
    )
    # The event first: the grant may be active at once (no connector) and say so after it.
    request_event(request, RequestEvent.APPROVED)
    grant_from_request(request=request, actor=actor, now=now)
    notify("notify_requester", request.pk)


def access_request_deny(*, actor: Actor, request_id: int, reason: str) -> AccessRequest:
    actor = _person(actor)
    if not (reason or "").strip():
        raise ValidationError("a denial needs a reason", field="reason")
    with transaction.atomic():
        request = lock_request(request_id)
        if request.status != AccessRequest.Status.PENDING:
            raise refusal(
                RefusalCode.ALREADY_DECIDED, f"request #{request.pk} is already {request.status}"
            )
        if actor.pk in workflow.excluded_approvers(request):
            raise refusal(RefusalCode.OWN_REQUEST, "cancel your own request instead of denying it")
        eligible = workflow.eligible_approvers(request=request)
        if actor.pk not in eligible:
            raise refusal(
                RefusalCode.NOT_AN_APPROVER,
                f"you are not an approver of stage {request.current_stage + 1} of request #{request.pk}",
            )
        if Approval.objects.filter(
            request=request, stage=request.current_stage, approver=actor
        ).exists():
            raise refusal(RefusalCode.ALREADY_APPROVED, "you have already approved this stage")
        Approval.objects.create(
            request=request,
            stage=request.current_stage,
            approver=actor,
            on_behalf_of_id=eligible[actor.pk],
            decision=Approval.Decision.DENY,
            reason=reason,
        )
        now = timezone.now()
        transition(
            request,
            table=REQUEST_TRANSITIONS,
            action="deny",
            actor=actor,
            audit_action=actions.REQUEST_DENIED,
            reason=reason,
            extra_fields={"decided_at": now, "decision_reason": reason},
        )
        notify("notify_requester", request.pk)
        request_event(request, RequestEvent.DENIED)
    return request


def access_request_cancel(*, actor: Actor, request_id: int, reason: str = "") -> AccessRequest:
    actor = _person(actor)
    with transaction.atomic():
        request = lock_request(request_id)
        if actor.pk not in (request.requester_id, request.principal_id):
            raise NotPermitted("only the requester or the principal cancels a request")
        if request.status != AccessRequest.Status.PENDING:
            raise refusal(
                RefusalCode.ALREADY_DECIDED, f"request #{request.pk} is already {request.status}"
            )
        transition(
            request,
            table=REQUEST_TRANSITIONS,
            action="cancel",
            actor=actor,
            audit_action=actions.REQUEST_CANCELLED,
            reason=reason,
            extra_fields={"decided_at": timezone.now()},
        )
        request_event(request, RequestEvent.CANCELLED)
    return request
