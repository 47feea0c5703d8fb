"""The catalog: services, entitlements, approval policies and separation-of-duties pairs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.policies import is_platform_admin
from audit.services import audit_record
from portal.core.actors import GITOPS, Actor, actor_may
from portal.core.errors import Conflict, NotFound, NotPermitted, ValidationError
from portal.core.managed import refuse_if_managed

from .. import registry as actions
from ..models import (
    RISK_ORDER,
    ApprovalPolicy,
    CatalogChangeProposal,
    Entitlement,
    PolicyStage,
    Risk,
    Service,
    ToxicPair,
)
from ..outcomes import RefusalCode, refusal
from ..policies import is_security, may_change_controls, may_create_service, may_edit_service
from ._common import save_audited_changes, snapshot

# The configuration repository (``gitops``) writes the catalog through these services too.
CATALOG_SYSTEMS = (GITOPS,)

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
    if not actor_may(actor, may_create_service, systems=CATALOG_SYSTEMS):
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
            after={"slug": slug, **snapshot(service, SERVICE_FIELDS)},
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
        if not actor_may(actor, lambda u: may_edit_service(u, service), systems=CATALOG_SYSTEMS):
            raise NotPermitted("only the owner team and platform admins edit a service")
        if (
            "owner_team" in changes
            and changes["owner_team"] != service.owner_team
            and not actor_may(actor, may_create_service, systems=CATALOG_SYSTEMS)
        ):
            raise NotPermitted(
                "only platform admins move a service to another owner team", field="owner_team"
            )
        refuse_if_managed(service, actor=actor)
        before = snapshot(service, SERVICE_FIELDS)
        for name, value in changes.items():
            setattr(service, name, value)
        if "connector" in changes or "connector_config" in changes:
            _validate_connector(service.connector, service.connector_config)
        save_audited_changes(
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
    if not actor_may(actor, lambda u: may_edit_service(u, service), systems=CATALOG_SYSTEMS):
        raise NotPermitted("only the owner team and platform admins add entitlements")
    merged = {"default_duration_days": 30, "max_duration_days": 90, **values}
    _validate_entitlement(merged)
    if merged.get("allows_break_glass") and not actor_may(
        actor, may_change_controls, systems=CATALOG_SYSTEMS
    ):
        raise refusal(
            RefusalCode.NEEDS_CONTROL_REVIEW,
            "break-glass: an owner may not open a way around approvals on their own; create "
            "the entitlement without it and propose turning it on",
            field="allows_break_glass",
        )
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
                **snapshot(ent, ENTITLEMENT_FIELDS),
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
        if not actor_may(
            actor, lambda u: may_edit_service(u, ent.service), systems=CATALOG_SYSTEMS
        ):
            raise NotPermitted("only the owner team and platform admins edit entitlements")
        refuse_if_managed(ent, actor=actor)
        before = snapshot(ent, ENTITLEMENT_FIELDS)
        _validate_entitlement(
            {**before, **{k: (v.pk if hasattr(v, "pk") else v) for k, v in changes.items()}}
        )
        weakened = weakened_controls(ent, changes)
        if weakened and not actor_may(actor, may_change_controls, systems=CATALOG_SYSTEMS):
            names = ", ".join(CatalogChangeProposal.Field(f).label.lower() for f in weakened)
            raise refusal(
                RefusalCode.NEEDS_CONTROL_REVIEW,
                f"{names} of {ent}: an owner may not weaken their own controls; propose the "
                "change for a platform admin or a security member to apply",
                field=next(iter(weakened)),
            )
        for name, value in changes.items():
            setattr(ent, name, value)
        save_audited_changes(
            ent,
            fields=ENTITLEMENT_FIELDS,
            before=before,
            actor=actor,
            action=actions.ENTITLEMENT_UPDATED,
        )
    return ent


# --- Controls an owner may only propose ----------------------------------------------------
def _control_value(field: str, value: Any) -> Any:
    """A control as a proposal stores it: a policy by id, risk and the flag as they are."""
    if field == CatalogChangeProposal.Field.POLICY:
        return value.pk if hasattr(value, "pk") else value
    if field == CatalogChangeProposal.Field.ALLOWS_BREAK_GLASS:
        return bool(value)
    return value


def _current_control(ent: Entitlement, field: str) -> Any:
    if field == CatalogChangeProposal.Field.POLICY:
        return ent.policy_id
    return getattr(ent, field)


def weakened_controls(ent: Entitlement, changes: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The changes that weaken ``ent``'s controls (field -> (old, new)): a lower risk, another
    approval policy, break-glass turned on. Raising risk and other edits are not."""
    out: dict[str, tuple[Any, Any]] = {}
    for field in CatalogChangeProposal.Field.values:
        if field not in changes:
            continue
        old, new = _current_control(ent, field), _control_value(field, changes[field])
        if field == CatalogChangeProposal.Field.RISK:
            weaker = new in RISK_ORDER and RISK_ORDER[new] < RISK_ORDER[old]
        elif field == CatalogChangeProposal.Field.POLICY:
            weaker = new != old
        else:
            weaker = new and not old
        if weaker:
            out[field] = (old, new)
    return out


def _lock_entitlement(entitlement_id: int) -> Entitlement:
    ent = (
        Entitlement.objects.select_for_update(of=("self",))
        .select_related("service")
        .filter(pk=entitlement_id)
        .first()
    )
    if ent is None:
        raise NotFound("no such entitlement")
    return ent


def entitlement_update_or_propose(
    *, actor: User, entitlement: Entitlement, reason: str = "", **changes
) -> list[CatalogChangeProposal]:
    """The edit form's save: what the actor may change is saved; what would weaken the
    controls, when the actor is an owner (not a platform admin or security), becomes a
    proposal. Returns the proposals (none when everything was saved)."""
    with transaction.atomic():
        ent = _lock_entitlement(entitlement.pk)
        if not actor_may(
            actor, lambda u: may_edit_service(u, ent.service), systems=CATALOG_SYSTEMS
        ):
            raise NotPermitted("only the owner team and platform admins edit entitlements")
        refuse_if_managed(ent, actor=actor)
        weakened = (
            {}
            if actor_may(actor, may_change_controls, systems=CATALOG_SYSTEMS)
            else weakened_controls(ent, changes)
        )
        direct = {k: v for k, v in changes.items() if k not in weakened}
        entitlement_update(actor=actor, entitlement=ent, **direct)
        return [
            catalog_change_propose(
                actor=actor, entitlement=ent, field=field, new_value=changes[field], reason=reason
            )
            for field in weakened
        ]


def catalog_change_propose(
    *, actor: User, entitlement: Entitlement, field: str, new_value: Any, reason: str = ""
) -> CatalogChangeProposal:
    """An owner proposes a change that weakens an entitlement's controls; it waits for a
    platform admin or a security member. Proposing the same pending change again returns it."""
    if field not in CatalogChangeProposal.Field.values:
        raise ValidationError(
            f"field must be one of {', '.join(CatalogChangeProposal.Field.values)}", field="field"
        )
    value = _control_value(field, new_value)
    if field == CatalogChangeProposal.Field.RISK and value not in Risk.values:
        raise ValidationError(f"risk must be one of {', '.join(Risk.values)}", field="risk")
    if (
        field == CatalogChangeProposal.Field.POLICY
        and value is not None
        and not ApprovalPolicy.objects.filter(pk=value).exists()
    ):
        raise ValidationError(f"no approval policy #{value}", field="policy")
    with transaction.atomic():
        ent = _lock_entitlement(entitlement.pk)
        if not actor_may(actor, lambda u: may_edit_service(u, ent.service)):
            raise NotPermitted("only the owner team and platform admins propose catalog changes")
        if not weakened_controls(ent, {field: value}):
            raise ValidationError(
                f"changing {field} of {ent} to {value!r} does not weaken its controls: save it "
                "directly",
                field=field,
            )
        pending = CatalogChangeProposal.objects.filter(
            entitlement=ent, field=field, status=CatalogChangeProposal.Status.PENDING
        ).first()
        if pending is not None:
            if pending.new_value == value:
                return pending
            raise refusal(
                RefusalCode.PROPOSAL_PENDING,
                f"a change of {field} of {ent} is already waiting (proposal #{pending.pk}): "
                "it is applied or rejected first",
                field=field,
            )
        old = _current_control(ent, field)
        proposal = CatalogChangeProposal.objects.create(
            entitlement=ent,
            field=field,
            old_value=old,
            new_value=value,
            reason=(reason or "").strip(),
            proposed_by=actor,
        )
        audit_record(
            actor=actor,
            action=actions.CATALOG_CHANGE_PROPOSED,
            target=proposal,
            before={field: old},
            after={"entitlement": str(ent), field: value},
            reason=proposal.reason,
        )
    return proposal


def _decide_proposal(*, actor: Actor, proposal_id: int, verb: str) -> tuple[Any, Entitlement]:
    """Lock the proposal's entitlement, then the proposal; refuse what may not be decided."""
    if not actor_may(actor, may_change_controls):
        raise refusal(
            RefusalCode.NOT_PERMITTED,
            f"only platform admins and security members {verb} proposed catalog changes",
        )
    entitlement_id = (
        CatalogChangeProposal.objects.filter(pk=proposal_id)
        .values_list("entitlement_id", flat=True)
        .first()
    )
    if entitlement_id is None:
        raise NotFound("no such proposal")
    ent = _lock_entitlement(entitlement_id)
    proposal = CatalogChangeProposal.objects.select_for_update().get(pk=proposal_id)
    if proposal.status != CatalogChangeProposal.Status.PENDING:
        raise refusal(
            RefusalCode.ALREADY_DECIDED, f"proposal #{proposal.pk} is already {proposal.status}"
        )
    return proposal, ent


def catalog_change_apply(*, actor: Actor, proposal_id: int, note: str = "") -> Any:
    """A platform admin or security member, not the proposer, applies a proposed change;
    refused when the control changed since it was proposed."""
    with transaction.atomic():
        proposal, ent = _decide_proposal(actor=actor, proposal_id=proposal_id, verb="apply")
        if proposal.proposed_by_id == actor.pk:  # type: ignore[union-attr]
            raise refusal(
                RefusalCode.OWN_PROPOSAL,
                "nobody applies their own proposal: another platform admin or security member does",
            )
        field = proposal.field
        if _current_control(ent, field) != proposal.old_value:
            raise refusal(
                RefusalCode.PROPOSAL_STALE,
                f"{field} of {ent} changed since proposal #{proposal.pk} was made: reject it and "
                "propose again",
            )
        before = snapshot(ent, ENTITLEMENT_FIELDS)
        setattr(ent, "policy_id" if field == "policy" else field, proposal.new_value)
        save_audited_changes(
            ent,
            fields=ENTITLEMENT_FIELDS,
            before=before,
            actor=actor,
            action=actions.ENTITLEMENT_UPDATED,
        )
        _close_proposal(proposal, actor=actor, note=note, status="applied")
    return proposal


def catalog_change_reject(*, actor: Actor, proposal_id: int, note: str) -> Any:
    note = (note or "").strip()
    if not note:
        raise ValidationError("say why the change is rejected", field="note")
    with transaction.atomic():
        proposal, _ = _decide_proposal(actor=actor, proposal_id=proposal_id, verb="reject")
        _close_proposal(proposal, actor=actor, note=note, status="rejected")
    return proposal


def _close_proposal(proposal: Any, *, actor: Actor, note: str, status: str) -> None:
    proposal.status = status
    proposal.decided_by = actor
    proposal.decided_at = timezone.now()
    proposal.decision_note = (note or "").strip()
    proposal.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit_record(
        actor=actor,
        action=actions.CATALOG_CHANGE_APPLIED
        if status == "applied"
        else actions.CATALOG_CHANGE_REJECTED,
        target=proposal,
        before={"status": "pending"},
        after={"status": status, proposal.field: proposal.new_value},
        reason=proposal.decision_note,
    )


def policy_create(
    *,
    actor: Actor,
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
    chat_approval: str = ApprovalPolicy.ChatApproval.ON,
    auto_approve_on_call: bool = False,
) -> ApprovalPolicy:
    """``stages``: [{"kind": "manager"|"service_owner"|"security"|"group"|"users", "required": N,
    "name": "...", "group": Group, "users": [User]}] in order."""
    # People, and the configuration repository (reviewed in a pull request): no other system
    # actor defines policy.
    if not actor_may(actor, is_platform_admin, systems=CATALOG_SYSTEMS):
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
    _check_chat_approval(chat_approval)
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
            chat_approval=chat_approval,
            auto_approve_on_call=auto_approve_on_call,
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
        policy_stages_write(policy, stages)
        audit_record(
            actor=actor,
            action=actions.POLICY_CREATED,
            target=policy,
            after={
                "slug": slug,
                "stages": [
                    {
                        "kind": s["kind"],
                        "required": int(s.get("required", 1)),
                        "auto_approve_on_call": bool(s.get("auto_approve_on_call", False)),
                    }
                    for s in stages
                ],
                "auto_approve_max_risk": auto_approve_max_risk,
                "auto_approve_peer_ratio": str(auto_approve_peer_ratio)
                if auto_approve_peer_ratio is not None
                else None,
                "sod_action": sod_action,
                "chat_approval": chat_approval,
            },
        )
    return policy


def _check_chat_approval(value: str) -> None:
    if value not in ApprovalPolicy.ChatApproval.values:
        raise ValidationError(
            f"chat_approval must be one of {', '.join(ApprovalPolicy.ChatApproval.values)}",
            field="chat_approval",
        )


def policy_chat_approval_set(*, actor: Actor, policy: ApprovalPolicy, value: str) -> None:
    """Allow or forbid deciding this policy's stages from chat (``on``, ``reason``: approvals
    need a reason too, ``off``: the web page only). Tightening or loosening a control is a
    platform admin's or security member's change, audited."""
    if not actor_may(actor, lambda u: is_platform_admin(u) or is_security(u)):
        raise NotPermitted("only platform admins and security decide where a policy is decided")
    _check_chat_approval(value)
    with transaction.atomic():
        policy = ApprovalPolicy.objects.get(pk=policy.pk)
        before = policy.chat_approval
        if before == value:
            return
        policy.chat_approval = value
        policy.updated_at = timezone.now()
        policy.save(update_fields=["chat_approval", "updated_at"])
        audit_record(
            actor=actor,
            action=actions.POLICY_UPDATED,
            target=policy,
            before={"chat_approval": before},
            after={"chat_approval": value},
        )


def toxic_pair_create(
    *, actor: Actor, first: Entitlement, second: Entitlement, reason: str
) -> ToxicPair:
    if not actor_may(
        actor, lambda u: is_platform_admin(u) or is_security(u), systems=CATALOG_SYSTEMS
    ):
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


def policy_stages_write(policy: ApprovalPolicy, stages: Sequence[dict]) -> None:
    """Write a policy's stages in order (checked by the caller; inside its transaction). Used
    by :func:`policy_create` and by ``policy_update``, which deletes the old ones first."""
    for order, stage in enumerate(stages):
        row = PolicyStage.objects.create(
            policy=policy,
            order=order,
            name=stage.get("name", ""),
            approver_kind=stage["kind"],
            required=int(stage.get("required", 1)),
            group=stage.get("group"),
            auto_approve_on_call=bool(stage.get("auto_approve_on_call", False)),
        )
        if stage.get("users"):
            row.users.set(stage["users"])
