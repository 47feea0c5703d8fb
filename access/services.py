"""Every write in the access app. Each service owns its transaction and writes the audit
event; notifications and downstream effects run after commit."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from portal.core.errors import Conflict, NotPermitted, ValidationError
from portal.core.state import transition

from . import registry as actions
from . import workflow
from .models import (
    AccessRequest,
    Approval,
    ApprovalAssignment,
    ApprovalPolicy,
    Delegation,
    Entitlement,
    Grant,
    PolicyStage,
    Risk,
    Service,
    ToxicPair,
)
from .policies import may_create_service, may_edit_service, may_request_for
from .state import GRANT_TRANSITIONS, REQUEST_TRANSITIONS

SYSTEM_AUTO = "policy:auto-approval"
SYSTEM_SWEEPER = "system:request-sweeper"

# Provisioning (the next issue) registers a function here: (grant=..., actor=...) -> None,
# called inside the transaction that creates or revokes a grant. With none registered,
# grants of services without a connector become active (and revoked) at once.
PROVISIONERS: dict[str, Any] = {}


_muted = threading.local()


@contextmanager
def notifications_muted() -> Iterator[None]:
    """Write without notifying anyone (bulk back-fills such as the demo history)."""
    previous = getattr(_muted, "on", False)
    _muted.on = True
    try:
        yield
    finally:
        _muted.on = previous


def notifications_are_muted() -> bool:
    return getattr(_muted, "on", False)


def _notify(task_name: str, *args) -> None:
    """Enqueue a notification task after commit; a broker outage must not fail the change."""
    if notifications_are_muted():
        return
    from . import tasks

    task = getattr(tasks, task_name)
    transaction.on_commit(lambda: task.delay(*args), robust=True)


# --- Catalog --------------------------------------------------------------------------
SERVICE_FIELDS = (
    "name",
    "owner_team",
    "tier",
    "description",
    "docs_url",
    "connector",
    "connector_config",
)
ENTITLEMENT_FIELDS = (
    "name",
    "description",
    "risk",
    "requestable",
    "default_duration_days",
    "max_duration_days",
    "seat_cost_monthly",
    "policy",
    "allows_break_glass",
)


def _snapshot(obj, fields: Sequence[str]) -> dict:
    out = {}
    for name in fields:
        value = getattr(obj, name)
        if hasattr(value, "pk"):
            value = value.pk
        elif isinstance(value, Decimal):
            value = str(value)
        out[name] = value
    return out


def _save_audited_changes(obj, *, fields: Sequence[str], before: dict, actor, action: str) -> None:
    """Save ``obj`` and audit only the fields that differ from ``before``; nothing when none do."""
    after = _snapshot(obj, fields)
    changed = [k for k in after if after[k] != before[k]]
    if not changed:
        return
    obj.updated_at = timezone.now()
    obj.save()
    audit_record(
        actor=actor,
        action=action,
        target=obj,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
    )


def _validate_entitlement(values: dict) -> None:
    default = values.get("default_duration_days")
    maximum = values.get("max_duration_days")
    if maximum is not None and maximum < 1:
        raise ValidationError("max_duration_days must be at least 1", field="max_duration_days")
    if default is not None and maximum is not None and default > maximum:
        raise ValidationError(
            f"default_duration_days ({default}) exceeds max_duration_days ({maximum})",
            field="default_duration_days",
        )
    if values.get("risk") is not None and values["risk"] not in Risk.values:
        raise ValidationError(f"risk must be one of {', '.join(Risk.values)}", field="risk")
    cost = values.get("seat_cost_monthly")
    if cost is not None and Decimal(cost) < 0:
        raise ValidationError("seat_cost_monthly cannot be negative", field="seat_cost_monthly")


def _validate_connector(connector: str, config) -> None:
    """A service's connector settings are checked on save (no I/O, no secret read)."""
    if not connector:
        return
    from connectors.base import ConfigError
    from connectors.registry import validate_config

    try:
        validate_config(connector, config or {})
    except ConfigError as exc:
        field = "connector" if "unknown connector" in exc.message else "connector_config"
        raise ValidationError(exc.message, field=field) from exc


def service_create(
    *,
    actor: User,
    slug: str,
    name: str,
    owner_team,
    tier: int = 2,
    description: str = "",
    docs_url: str = "",
    connector: str = "",
    connector_config: dict | None = None,
) -> Service:
    if not may_create_service(actor):
        raise NotPermitted("only platform admins add services to the catalog")
    if tier not in (0, 1, 2, 3):
        raise ValidationError("tier must be 0, 1, 2 or 3", field="tier")
    _validate_connector(connector, connector_config)
    with transaction.atomic():
        if Service.objects.filter(slug=slug).exists():
            raise Conflict(f"a service with slug {slug!r} already exists", field="slug")
        service = Service.objects.create(
            slug=slug,
            name=name,
            owner_team=owner_team,
            tier=tier,
            description=description,
            docs_url=docs_url,
            connector=connector,
            connector_config=connector_config or {},
        )
        audit_record(
            actor=actor,
            action=actions.SERVICE_CREATED,
            target=service,
            after={"slug": slug, **_snapshot(service, SERVICE_FIELDS)},
        )
    return service


def service_update(*, actor: User, service: Service, **changes) -> Service:
    unknown = set(changes) - set(SERVICE_FIELDS)
    if unknown:
        raise ValidationError(
            f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
        )
    if "tier" in changes and changes["tier"] not in (0, 1, 2, 3):
        raise ValidationError("tier must be 0, 1, 2 or 3", field="tier")
    with transaction.atomic():
        service = Service.objects.select_for_update().get(pk=service.pk)
        if not may_edit_service(actor, service):
            raise NotPermitted("only the owner team and platform admins edit a service")
        if (
            "owner_team" in changes
            and changes["owner_team"] != service.owner_team
            and not may_create_service(actor)
        ):
            raise NotPermitted(
                "only platform admins move a service to another owner team", field="owner_team"
            )
        before = _snapshot(service, SERVICE_FIELDS)
        for name, value in changes.items():
            setattr(service, name, value)
        if "connector" in changes or "connector_config" in changes:
            _validate_connector(service.connector, service.connector_config)
        _save_audited_changes(
            service,
            fields=SERVICE_FIELDS,
            before=before,
            actor=actor,
            action=actions.SERVICE_UPDATED,
        )
    return service


def entitlement_create(
    *,
    actor: User,
    service: Service,
    slug: str,
    name: str,
    prerequisites: Iterable[Entitlement] = (),
    **values,
) -> Entitlement:
    unknown = set(values) - set(ENTITLEMENT_FIELDS)
    if unknown:
        raise ValidationError(
            f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
        )
    if not may_edit_service(actor, service):
        raise NotPermitted("only the owner team and platform admins add entitlements")
    merged = {"default_duration_days": 30, "max_duration_days": 90, **values}
    _validate_entitlement(merged)
    with transaction.atomic():
        if Entitlement.objects.filter(service=service, slug=slug).exists():
            raise Conflict(f"{service.slug} already has an entitlement {slug!r}", field="slug")
        ent = Entitlement.objects.create(service=service, slug=slug, name=name, **merged)
        prereqs = list(prerequisites)
        if prereqs:
            ent.prerequisites.set(prereqs)
        audit_record(
            actor=actor,
            action=actions.ENTITLEMENT_CREATED,
            target=ent,
            after={
                "service": service.slug,
                "slug": slug,
                **_snapshot(ent, ENTITLEMENT_FIELDS),
                "prerequisites": sorted(p.pk for p in prereqs),
            },
        )
    return ent


def entitlement_update(*, actor: User, entitlement: Entitlement, **changes) -> Entitlement:
    unknown = set(changes) - set(ENTITLEMENT_FIELDS)
    if unknown:
        raise ValidationError(
            f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
        )
    with transaction.atomic():
        ent = (
            Entitlement.objects.select_for_update().select_related("service").get(pk=entitlement.pk)
        )
        if not may_edit_service(actor, ent.service):
            raise NotPermitted("only the owner team and platform admins edit entitlements")
        before = _snapshot(ent, ENTITLEMENT_FIELDS)
        _validate_entitlement(
            {**before, **{k: (v.pk if hasattr(v, "pk") else v) for k, v in changes.items()}}
        )
        for name, value in changes.items():
            setattr(ent, name, value)
        _save_audited_changes(
            ent,
            fields=ENTITLEMENT_FIELDS,
            before=before,
            actor=actor,
            action=actions.ENTITLEMENT_UPDATED,
        )
    return ent


def policy_create(
    *,
    actor,
    slug: str,
    name: str,
    stages: list[dict],
    description: str = "",
    auto_approve_max_risk: str = "",
    auto_approve_peer_ratio: Decimal | None = None,
    sod_action: str = ApprovalPolicy.SodAction.REFUSE,
    remind_after: timedelta | None = None,
    escalate_after: timedelta | None = None,
    expire_after: timedelta | None = None,
    auto_approve_users: Iterable[User] = (),
) -> ApprovalPolicy:
    """``stages``: [{"kind": "manager"|"service_owner"|"security"|"group"|"users", "required": N,
    "name": "...", "group": Group, "users": [User]}] in order."""
    from accounts.policies import is_platform_admin

    if not isinstance(actor, str) and not is_platform_admin(actor):
        raise NotPermitted("only platform admins define approval policies")
    if not stages and not auto_approve_max_risk:
        raise ValidationError("a policy needs at least one stage", field="stages")
    for i, stage in enumerate(stages, start=1):
        if stage.get("kind") not in PolicyStage.ApproverKind.values:
            raise ValidationError(
                f"stage {i}: kind must be one of {', '.join(PolicyStage.ApproverKind.values)}",
                field="stages",
            )
        if int(stage.get("required", 1)) < 1:
            raise ValidationError(f"stage {i}: required must be at least 1", field="stages")
        if stage["kind"] == "group" and not stage.get("group"):
            raise ValidationError(f"stage {i}: a group stage names its group", field="stages")
        if stage["kind"] == "users" and not stage.get("users"):
            raise ValidationError(f"stage {i}: a users stage names its users", field="stages")
    with transaction.atomic():
        if ApprovalPolicy.objects.filter(slug=slug).exists():
            raise Conflict(f"a policy {slug!r} already exists", field="slug")
        policy = ApprovalPolicy.objects.create(
            slug=slug,
            name=name,
            description=description,
            auto_approve_max_risk=auto_approve_max_risk,
            auto_approve_peer_ratio=auto_approve_peer_ratio,
            sod_action=sod_action,
            **{
                k: v
                for k, v in {
                    "remind_after": remind_after,
                    "escalate_after": escalate_after,
                    "expire_after": expire_after,
                }.items()
                if v is not None
            },
        )
        allow = list(auto_approve_users)
        if allow:
            policy.auto_approve_users.set(allow)
        for order, stage in enumerate(stages):
            row = PolicyStage.objects.create(
                policy=policy,
                order=order,
                name=stage.get("name", ""),
                approver_kind=stage["kind"],
                required=int(stage.get("required", 1)),
                group=stage.get("group"),
            )
            if stage.get("users"):
                row.users.set(stage["users"])
        audit_record(
            actor=actor,
            action=actions.POLICY_CREATED,
            target=policy,
            after={
                "slug": slug,
                "stages": [
                    {"kind": s["kind"], "required": int(s.get("required", 1))} for s in stages
                ],
                "auto_approve_max_risk": auto_approve_max_risk,
                "auto_approve_peer_ratio": str(auto_approve_peer_ratio)
                if auto_approve_peer_ratio is not None
                else None,
                "sod_action": sod_action,
            },
        )
    return policy


def toxic_pair_create(*, actor, first: Entitlement, second: Entitlement, reason: str) -> ToxicPair:
    from accounts.policies import is_platform_admin

    from .policies import is_security

    if not isinstance(actor, str) and not (is_platform_admin(actor) or is_security(actor)):
        raise NotPermitted("only security and platform admins declare separation-of-duties pairs")
    if first.pk == second.pk:
        raise ValidationError("a toxic pair needs two different entitlements", field="second")
    if not reason.strip():
        raise ValidationError("say why the pair is toxic", field="reason")
    a, b = sorted([first, second], key=lambda e: e.pk)
    with transaction.atomic():
        pair, created = ToxicPair.objects.get_or_create(
            first=a, second=b, defaults={"reason": reason}
        )
        if created:
            audit_record(
                actor=actor,
                action=actions.TOXIC_PAIR_CREATED,
                target=pair,
                after={"first": str(a), "second": str(b), "reason": reason},
            )
    return pair


def delegation_create(
    *, actor: User, delegate: User, starts_on: date, ends_on: date, reason: str = ""
) -> Delegation:
    if delegate.pk == actor.pk:
        raise ValidationError("you cannot delegate to yourself", field="delegate")
    if not delegate.is_active:
        raise ValidationError(f"{delegate.email} is not active", field="delegate")
    if ends_on < starts_on:
        raise ValidationError("the delegation ends before it starts", field="ends_on")
    if ends_on < timezone.localdate():
        raise ValidationError("the delegation is entirely in the past", field="ends_on")
    with transaction.atomic():
        delegation = Delegation.objects.create(
            delegator=actor, delegate=delegate, starts_on=starts_on, ends_on=ends_on, reason=reason
        )
        audit_record(
            actor=actor,
            action=actions.DELEGATION_CREATED,
            target=delegation,
            after={"delegate": delegate.email, "starts_on": starts_on, "ends_on": ends_on},
            reason=reason,
        )
    return delegation


def delegation_end(*, actor: User, delegation_id: int) -> Delegation:
    with transaction.atomic():
        delegation = (
            Delegation.objects.select_for_update().filter(pk=delegation_id, delegator=actor).first()
        )
        if delegation is None:
            from portal.core.errors import NotFound

            raise NotFound("no such delegation of yours")
        today = timezone.localdate()
        if delegation.ends_on < today:
            raise Conflict("this delegation has already ended")
        before = {"starts_on": delegation.starts_on, "ends_on": delegation.ends_on}
        delegation.ends_on = today - timedelta(days=1)
        delegation.starts_on = min(delegation.starts_on, delegation.ends_on)
        delegation.save(update_fields=["starts_on", "ends_on"])
        audit_record(
            actor=actor,
            action=actions.DELEGATION_ENDED,
            target=delegation,
            before=before,
            after={"starts_on": delegation.starts_on, "ends_on": delegation.ends_on},
        )
    return delegation


# --- Requests -------------------------------------------------------------------------
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
    actor: User,
    principal: User,
    entitlement: Entitlement,
    justification: str,
    duration_days: int | None = None,
) -> AccessRequest:
    """Submit one request. Refusals raise before anything is written."""
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
    if not may_request_for(actor, principal):
        raise NotPermitted(
            f"you may request access only for yourself or your reports, not for {principal.email}",
            field="principal",
        )
    if not entitlement.requestable:
        raise ValidationError(f"{entitlement} is not requestable", field="entitlement")
    if not principal.is_active:
        raise ValidationError(f"{principal.email} is not active", field="principal")
    try:
        with transaction.atomic():
            # Serialise submissions per principal, so SoD and "one open request" checks see each other.
            # FOR NO KEY UPDATE: it serialises submissions but not the inserts that only
            # reference the user (grants, approvals), which would otherwise deadlock with
            # a concurrent approval that already holds the audit chain head.
            User.objects.select_for_update(no_key=True).filter(pk=principal.pk).first()
            preview = workflow.preview(
                requester=actor,
                principal=principal,
                entitlement=entitlement,
                duration_days=duration_days,
            )
            open_request = [
                r
                for r in preview.refusals
                if "already has an open request" in r or "already holds" in r
            ]
            if open_request:
                raise Conflict(open_request[0], field="entitlement")
            if preview.refusals:
                field = "entitlement"
                raise ValidationError("; ".join(preview.refusals), field=field)
            _lock_held_grants(principal_id=principal.pk, entitlement_id=entitlement.pk)
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
                routed_to_security=any(s.get("source") == "sod" for s in preview.stages),
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
                _finish_approved(request, actor=SYSTEM_AUTO, reason=preview.auto_approval)
                return request
            first_stage: dict[int, int | None] = {}
            for index in range(len(request.stages)):
                eligible = workflow.eligible_approvers(request=request, stage_index=index)
                first_stage = eligible if index == 0 else first_stage
                problem = workflow.stage_requirement_problem(
                    request=request, stage_index=index, eligible=eligible
                )
                if problem:
                    raise ValidationError(
                        f"this request cannot be approved as policy stands: {problem}",
                        field="entitlement",
                    )
            _enter_stage(request, 0, eligible=first_stage)
            request.save()
            _notify("notify_approvers", request.pk, "new")
    except IntegrityError as exc:
        # The partial unique constraint caught a concurrent duplicate (double submit).
        raise Conflict(
            f"{principal.email} already has an open request for {entitlement}", field="entitlement"
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
    with transaction.atomic():
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


def _lock_request(request_id: int) -> AccessRequest:
    # Lock the request row only (not the joined users, entitlement and service).
    return (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("principal", "requester", "entitlement", "entitlement__service")
        .get(pk=request_id)
    )


def _lock_held_grants(*, principal_id: int, entitlement_id: int) -> list[Grant]:
    """Lock the held grant of (principal, entitlement) before the first audit write.

    Every audited change holds the audit chain head until commit, so any row lock taken
    after an audit write can deadlock with a transaction that holds that row and is
    about to audit (e.g. grant_revoke). Take the grant lock first.
    """
    return list(
        Grant.objects.select_for_update()
        .filter(
            principal_id=principal_id, entitlement_id=entitlement_id, status__in=Grant.HELD_STATUSES
        )
        .order_by("pk")
    )


def access_request_approve(*, actor: User, request_id: int, reason: str = "") -> AccessRequest:
    with transaction.atomic():
        request = _lock_request(request_id)
        if request.status != AccessRequest.Status.PENDING:
            raise Conflict(f"request #{request.pk} is already {request.status}")
        if actor.pk in workflow.excluded_approvers(request):
            raise NotPermitted(
                "nobody approves their own request or one they made for someone else"
            )
        eligible = workflow.eligible_approvers(request=request)
        if actor.pk not in eligible:
            raise NotPermitted(
                f"you are not an approver of stage {request.current_stage + 1} ({request.stage['name']}) of request #{request.pk}"
            )
        on_behalf_of = eligible[actor.pk]
        given = list(
            Approval.objects.filter(request=request, stage=request.current_stage).values_list(
                "approver_id", "on_behalf_of_id"
            )
        )
        slots = {behalf or approver for approver, behalf in given}
        if any(approver == actor.pk for approver, _ in given):
            raise Conflict("you have already approved this stage")
        if on_behalf_of is not None and on_behalf_of in slots:
            raise Conflict("the person you stand in for has already approved this stage")
        # N of M counts people: a delegate's approval fills their delegator's place.
        count = len(slots | {on_behalf_of or actor.pk})
        required = request.stage["required"]
        if count >= required and request.current_stage + 1 == len(request.stages):
            _lock_held_grants(
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
            _notify("notify_approvers", request.pk, "new")
            return request
        _finish_approved(request, actor=actor, reason=reason)
    return request


def _finish_approved(request: AccessRequest, *, actor, reason: str) -> Grant:
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
    approvers = list(
        Approval.objects.filter(request=request, decision=Approval.Decision.APPROVE).values_list(
            "approver__email", flat=True
        )
    ) or [str(actor)]
    ends_at = now + timedelta(days=request.duration_days)
    held = Grant.objects.filter(
        principal_id=request.principal_id,
        entitlement_id=request.entitlement_id,
        status__in=Grant.HELD_STATUSES,
    ).first()
    if held is not None and held.status != Grant.Status.ACTIVE:
        raise Conflict(
            f"{request.principal.email} already holds {request.entitlement} (grant #{held.pk} is {held.status})"
        )
    if held is not None:
        # An extension (or access that arrived another way since submission, e.g. break-glass):
        # one held grant per (principal, entitlement), so the approval moves its end.
        # The end moves to now + duration, and never earlier than it was.
        grant = held
        old_end = grant.ends_at
        ends_at = max(ends_at, old_end) if old_end else ends_at
        transition(
            grant,
            table=GRANT_TRANSITIONS,
            action="extend",
            actor=actor,
            audit_action=actions.GRANT_TRANSITIONS["extend"],
            before_extra={"ends_at": old_end},
            after_extra={"ends_at": ends_at},
            extra_fields={
                "ends_at": ends_at,
                "request": request,
                "approved_by": approvers,
                "version": grant.version + 1,
            },
        )
        _notify("notify_requester", request.pk)
        return grant
    grant = Grant.objects.create(
        principal=request.principal,
        entitlement=request.entitlement,
        request=request,
        status=Grant.Status.PENDING,
        starts_at=now,
        ends_at=ends_at,
        reason=f"request #{request.pk}"
        + (f" ({request.auto_approval_reason})" if request.auto_approval_reason else ""),
        approved_by=approvers,
    )
    audit_record(
        actor=actor,
        action=actions.GRANT_CREATED,
        target=grant,
        after={
            "principal": request.principal.email,
            "entitlement": str(request.entitlement),
            "ends_at": ends_at,
            "request": request.pk,
        },
    )
    _provision(grant, actor=actor)
    _notify("notify_requester", request.pk)
    return grant


def _provision(grant: Grant, *, actor) -> None:
    connector = grant.entitlement.service.connector
    provisioner = PROVISIONERS.get("grant")
    if connector and provisioner is not None:
        provisioner(grant=grant, actor=actor)
        return
    transition(
        grant,
        table=GRANT_TRANSITIONS,
        action="activate",
        actor=actor,
        audit_action=actions.GRANT_TRANSITIONS["activate"],
        reason="no connector: active at once"
        if not connector
        else "connector pending: provisioning not configured",
    )


def access_request_deny(*, actor: User, request_id: int, reason: str) -> AccessRequest:
    if not (reason or "").strip():
        raise ValidationError("a denial needs a reason", field="reason")
    with transaction.atomic():
        request = _lock_request(request_id)
        if request.status != AccessRequest.Status.PENDING:
            raise Conflict(f"request #{request.pk} is already {request.status}")
        if actor.pk in workflow.excluded_approvers(request):
            raise NotPermitted("cancel your own request instead of denying it")
        eligible = workflow.eligible_approvers(request=request)
        if actor.pk not in eligible:
            raise NotPermitted(
                f"you are not an approver of stage {request.current_stage + 1} of request #{request.pk}"
            )
        if Approval.objects.filter(
            request=request, stage=request.current_stage, approver=actor
        ).exists():
            raise Conflict("you have already approved this stage")
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
        _notify("notify_requester", request.pk)
    return request


def access_request_cancel(*, actor: User, request_id: int, reason: str = "") -> AccessRequest:
    with transaction.atomic():
        request = _lock_request(request_id)
        if actor.pk not in (request.requester_id, request.principal_id):
            raise NotPermitted("only the requester or the principal cancels a request")
        if request.status != AccessRequest.Status.PENDING:
            raise Conflict(f"request #{request.pk} is already {request.status}")
        transition(
            request,
            table=REQUEST_TRANSITIONS,
            action="cancel",
            actor=actor,
            audit_action=actions.REQUEST_CANCELLED,
            reason=reason,
            extra_fields={"decided_at": timezone.now()},
        )
    return request


def access_request_expire(*, request_id: int, now=None) -> AccessRequest | None:
    now = now or timezone.now()
    with transaction.atomic():
        request = _lock_request(request_id)
        if request.status != AccessRequest.Status.PENDING:
            return None
        transition(
            request,
            table=REQUEST_TRANSITIONS,
            action="expire",
            actor=SYSTEM_SWEEPER,
            audit_action=actions.REQUEST_EXPIRED,
            reason="no decision within the policy's expiry time",
            extra_fields={"decided_at": now},
        )
        _notify("notify_requester", request.pk)
    return request


def access_request_remind(*, request_id: int, now=None) -> bool:
    with transaction.atomic():
        request = _lock_request(request_id)
        if request.status != AccessRequest.Status.PENDING or request.reminded_at is not None:
            return False
        request.reminded_at = now or timezone.now()
        request.save(update_fields=["reminded_at"])
        audit_record(
            actor=SYSTEM_SWEEPER,
            action=actions.REQUEST_REMINDED,
            target=request,
            after={"stage": request.current_stage + 1},
        )
        _notify("notify_approvers", request.pk, "reminder")
    return True


def access_request_escalate(*, request_id: int, now=None) -> list[str]:
    """Add the current approvers' managers as approvers of the current stage."""
    with transaction.atomic():
        request = _lock_request(request_id)
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
            actor=SYSTEM_SWEEPER,
            action=actions.REQUEST_ESCALATED,
            target=request,
            after={"stage": request.current_stage + 1, "added_approvers": emails},
        )
        _notify("notify_approvers", request.pk, "escalation")
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


# --- Grants ---------------------------------------------------------------------------
def grant_revoke(*, actor, grant_id: int, reason: str) -> Grant:
    from .policies import may_revoke_grant

    if not (reason or "").strip():
        raise ValidationError("say why the access is revoked", field="reason")
    with transaction.atomic():
        grant = (
            Grant.objects.select_for_update(of=("self",))
            .select_related("entitlement__service", "principal")
            .get(pk=grant_id)
        )
        if not isinstance(actor, str) and not may_revoke_grant(actor, grant):
            raise NotPermitted("only the holder, the owner team or an admin revokes a grant")
        transition(
            grant,
            table=GRANT_TRANSITIONS,
            action="revoke",
            actor=actor,
            audit_action=actions.GRANT_TRANSITIONS["revoke"],
            reason=reason,
            extra_fields={"revoke_reason": reason[:300], "version": grant.version + 1},
        )
        revoker = PROVISIONERS.get("revoke")
        if grant.entitlement.service.connector and revoker is not None:
            revoker(grant=grant, actor=actor)
        else:
            transition(
                grant,
                table=GRANT_TRANSITIONS,
                action="complete_revoke",
                actor=actor,
                audit_action=actions.GRANT_TRANSITIONS["complete_revoke"],
                reason="no connector: revoked at once",
                extra_fields={"revoked_at": timezone.now()},
            )
    return grant


def grant_birthright(
    *, actor, principal: User, entitlement: Entitlement, bundle_ref: str, reason: str
) -> Grant:
    """A grant from a team's standard bundle (birthright access for a joiner), with no
    request: created pending and provisioned through the outbox as approved requests are
    (a service without a connector is active at once). Time-bound like any grant: it lasts
    the entitlement's maximum duration and is extended by a request.

    Refused (nothing written) when the principal is inactive, the entitlement is not
    requestable, a prerequisite is not held (pending or active), it would complete a
    separation-of-duties pair, or the principal already holds it.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("say why the bundle grants it", field="reason")
    if not (bundle_ref or "").strip():
        raise ValidationError("name the bundle", field="bundle_ref")
    if not principal.is_active:
        raise NotPermitted(f"{principal.email} is not active")
    if not entitlement.requestable:
        raise NotPermitted(f"{entitlement} is not requestable", field="entitlement")
    with transaction.atomic():
        User.objects.select_for_update(no_key=True).filter(pk=principal.pk).first()
        held = _lock_held_grants(principal_id=principal.pk, entitlement_id=entitlement.pk)
        if held:
            raise Conflict(f"{principal.email} already holds {entitlement} (grant #{held[0].pk})")
        required = list(entitlement.prerequisites.all())
        if required:
            have = set(
                Grant.objects.filter(
                    principal=principal,
                    entitlement__in=required,
                    status__in=(Grant.Status.PENDING, Grant.Status.ACTIVE),
                ).values_list("entitlement_id", flat=True)
            )
            missing = [str(e) for e in required if e.pk not in have]
            if missing:
                raise ValidationError(
                    "missing prerequisite access: " + ", ".join(missing), field="entitlement"
                )
        conflicts = workflow.toxic_conflicts(principal=principal, entitlement=entitlement)
        if conflicts:
            pair, other = conflicts[0]
            raise NotPermitted(
                f"separation of duties: {principal.email} holds {other} ({pair.reason})",
                field="entitlement",
            )
        now = timezone.now()
        ends_at = now + timedelta(days=entitlement.max_duration_days)
        grant = Grant.objects.create(
            principal=principal,
            entitlement=entitlement,
            status=Grant.Status.PENDING,
            starts_at=now,
            ends_at=ends_at,
            reason=f"birthright ({bundle_ref}): {reason}"[:300],
            approved_by=[bundle_ref],
        )
        audit_record(
            actor=actor,
            action=actions.GRANT_BIRTHRIGHT,
            target=grant,
            after={
                "principal": principal.email,
                "entitlement": str(entitlement),
                "ends_at": ends_at,
                "bundle": bundle_ref,
            },
            reason=reason,
        )
        _provision(grant, actor=actor)
    return grant


# --- Last use and restore (P4, usage app) -----------------------------------------------
def grants_record_use(*, uses: dict[int, Any], source: str, batch_size: int = 1000) -> int:
    """Move ``Grant.last_used_at`` forward to the given times; never backwards.

    ``uses`` maps grant id -> aware datetime of the latest use seen by ``source``. Times in
    the future are clamped to now. One UPDATE per batch compares in the database
    (``GREATEST``, guarded by ``last_used_at < new``), so concurrent collectors cannot move a
    grant back (no check-then-act). Returns how many grants moved. Not audited per grant:
    last use is telemetry, not a state change; the caller audits the import or collection run.
    """
    from django.db import connection
    from django.db.models import Case, DateTimeField, F, Q, Value, When
    from django.db.models.functions import Coalesce, Greatest

    now = timezone.now()
    items = []
    for grant_id, used_at in uses.items():
        if used_at is None:
            continue
        if timezone.is_naive(used_at):
            raise ValidationError(f"last use of grant #{grant_id} from {source} has no time zone")
        items.append((int(grant_id), min(used_at, now)))
    items.sort()
    moved = 0
    if connection.vendor == "postgresql":
        # One UPDATE ... FROM unnest(ids, times) per batch: linear, not a CASE per row.
        table = connection.ops.quote_name(Grant._meta.db_table)
        sql = (
            f"UPDATE {table} AS g"  # noqa: S608 - the table name comes from the model
            " SET last_used_at = GREATEST(COALESCE(g.last_used_at, v.ts), v.ts)"
            " FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, ts)"
            " WHERE g.id = v.id AND (g.last_used_at IS NULL OR g.last_used_at < v.ts)"
        )
        step = batch_size * 10
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [[pk for pk, _ in chunk], [ts for _, ts in chunk]])
                moved += cursor.rowcount
        return moved
    step = min(batch_size, 200)  # SQLite: a CASE per batch (the embedded default is small)
    for start in range(0, len(items), step):
        chunk = items[start : start + step]
        new = Case(*[When(pk=pk, then=Value(ts)) for pk, ts in chunk], output_field=DateTimeField())
        with transaction.atomic():
            moved += (
                Grant.objects.filter(pk__in=[pk for pk, _ in chunk])
                .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=new))
                .update(last_used_at=Greatest(Coalesce(F("last_used_at"), new), new))
            )
    return moved


def grant_restore(*, actor, revoked_grant_id: int, reason: str) -> Grant:
    """Give back access that was taken away (unused-access removal): a new grant for the same
    principal and entitlement, ending no later than the original did, provisioned through the
    outbox. The holder, their managers, the owner team or an admin (or a system actor) may."""
    from .policies import is_in_management_chain, may_revoke_grant

    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("say why the access is restored", field="reason")
    now = timezone.now()
    with transaction.atomic():
        old = (
            Grant.objects.select_related("entitlement__service", "principal")
            .filter(pk=revoked_grant_id)
            .first()
        )
        if old is None:
            raise ValidationError(f"no grant #{revoked_grant_id}", field="grant")
        if not isinstance(actor, str) and not (
            may_revoke_grant(actor, old) or is_in_management_chain(actor, old.principal)
        ):
            raise NotPermitted(
                "only the holder, their manager, the owner team or an admin restores access"
            )
        if old.status != Grant.Status.REVOKED:
            raise Conflict(f"grant #{old.pk} is {old.status}, not revoked: nothing to restore")
        principal = User.objects.select_for_update(no_key=True).get(pk=old.principal_id)
        if not principal.is_active or getattr(principal, "status", "active") != "active":
            raise Conflict(f"{principal.email} is not an active person: access is not restored")
        if old.ends_at is not None and old.ends_at <= now:
            raise ValidationError(
                f"grant #{old.pk} would have ended at {old.ends_at:%Y-%m-%d %H:%M}: request the "
                "access again",
                field="grant",
            )
        held = Grant.objects.filter(
            principal_id=old.principal_id,
            entitlement_id=old.entitlement_id,
            status__in=Grant.HELD_STATUSES,
        ).first()
        if held is not None:
            raise Conflict(f"{principal.email} already holds {old.entitlement} (grant #{held.pk})")
        conflicts = workflow.toxic_conflicts(principal=principal, entitlement=old.entitlement)
        if conflicts:
            pair, other = conflicts[0]
            raise NotPermitted(
                f"separation of duties: {principal.email} holds {other} ({pair.reason})"
            )
        try:
            with transaction.atomic():
                grant = Grant.objects.create(
                    principal=principal,
                    entitlement=old.entitlement,
                    request=old.request,
                    status=Grant.Status.PENDING,
                    starts_at=now,
                    ends_at=old.ends_at,
                    reason=f"restored from grant #{old.pk}: {reason}"[:300],
                    approved_by=old.approved_by,
                    last_used_at=old.last_used_at,
                )
        except IntegrityError as exc:
            raise Conflict(f"{principal.email} already holds {old.entitlement}") from exc
        audit_record(
            actor=actor,
            action=actions.GRANT_CREATED,
            target=grant,
            after={
                "principal": principal.email,
                "entitlement": str(old.entitlement),
                "ends_at": old.ends_at,
                "restored_from": old.pk,
            },
            reason=reason,
        )
        _provision(grant, actor=actor)
    return grant
