"""The catalog: services, entitlements, approval policies and separation-of-duties pairs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal

from django.db import transaction

from accounts.models import User
from accounts.policies import is_platform_admin
from audit.services import audit_record
from portal.core.actors import Actor, actor_may
from portal.core.errors import Conflict, NotPermitted, ValidationError

from .. import registry as actions
from ..models import ApprovalPolicy, Entitlement, PolicyStage, Risk, Service, ToxicPair
from ..policies import is_security, may_create_service, may_edit_service
from ._common import save_audited_changes, snapshot

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
    if not actor_may(actor, may_create_service):
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
        if not actor_may(actor, lambda u: may_edit_service(u, service)):
            raise NotPermitted("only the owner team and platform admins edit a service")
        if (
            "owner_team" in changes
            and changes["owner_team"] != service.owner_team
            and not may_create_service(actor)
        ):
            raise NotPermitted(
                "only platform admins move a service to another owner team", field="owner_team"
            )
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
    if not actor_may(actor, lambda u: may_edit_service(u, service)):
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
        if not actor_may(actor, lambda u: may_edit_service(u, ent.service)):
            raise NotPermitted("only the owner team and platform admins edit entitlements")
        before = snapshot(ent, ENTITLEMENT_FIELDS)
        _validate_entitlement(
            {**before, **{k: (v.pk if hasattr(v, "pk") else v) for k, v in changes.items()}}
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
) -> ApprovalPolicy:
    """``stages``: [{"kind": "manager"|"service_owner"|"security"|"group"|"users", "required": N,
    "name": "...", "group": Group, "users": [User]}] in order."""
    if not actor_may(actor, is_platform_admin):  # people only: no system actor defines policy
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


def toxic_pair_create(
    *, actor: Actor, first: Entitlement, second: Entitlement, reason: str
) -> ToxicPair:
    if not actor_may(actor, lambda u: is_platform_admin(u) or is_security(u)):
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
