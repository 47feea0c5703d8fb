"""The rest of the catalog's life cycle: policies changed and removed, separation-of-duties
pairs changed and removed, prerequisites set, entitlements and services removed.

An entitlement (or a service) that history refers to — a request, a grant, a sync job — is
never deleted: it is *retired* (not requestable, out of the configuration, kept for its
history), and the grants still held on a retired entitlement are revoked through the one
``grant_revoke``. The configuration repository (``gitops``) is the main caller; platform
admins may call them too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.utils import timezone

from accounts.models import User
from accounts.policies import is_platform_admin, is_security
from audit.services import audit_record
from portal.core.actors import Actor, actor_may
from portal.core.errors import Conflict, NotPermitted, ValidationError
from portal.core.managed import refuse_if_managed

from .. import registry as actions
from ..models import ApprovalPolicy, Entitlement, Grant, PolicyStage, Service, ToxicPair
from .catalog import CATALOG_SYSTEMS, policy_stages_write
from .grants import RevokeOrigin, grant_revoke

HELD = (Grant.Status.PENDING, Grant.Status.ACTIVE, Grant.Status.FAILED)

POLICY_FIELDS = (
    "name",
    "description",
    "auto_approve_max_risk",
    "auto_approve_peer_ratio",
    "sod_action",
    "auto_approve_on_call",
    "remind_after",
    "escalate_after",
    "expire_after",
)


def _admin(actor: Actor, what: str) -> None:
    if not actor_may(actor, is_platform_admin, systems=CATALOG_SYSTEMS):
        raise NotPermitted(f"only platform admins {what}")


def is_deletable(obj: Any) -> bool:
    """Whether deleting ``obj`` would pass every PROTECT/RESTRICT reference (read-only)."""
    try:
        Collector(using=DEFAULT_DB_ALIAS).collect([obj])
    except (ProtectedError, RestrictedError):
        return False
    return True


def _stage_snapshot(policy: ApprovalPolicy) -> list[dict]:
    return [
        {
            "order": s.order,
            "name": s.name,
            "kind": s.approver_kind,
            "required": s.required,
            "group": s.group.name if s.group is not None else None,
            "users": sorted(u.email for u in s.users.all()),
            "auto_approve_on_call": s.auto_approve_on_call,
        }
        for s in policy.stages.order_by("order").select_related("group")
    ]


def _policy_snapshot(policy: ApprovalPolicy) -> dict:
    out: dict[str, Any] = {}
    for name in POLICY_FIELDS:
        value = getattr(policy, name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, timedelta):
            value = value.total_seconds()
        out[name] = value
    out["auto_approve_users"] = sorted(u.email for u in policy.auto_approve_users.all())
    out["stages"] = _stage_snapshot(policy)
    return out


def _check_stages(stages: list[dict]) -> None:
    for i, stage in enumerate(stages, start=1):
        if stage.get("kind") not in PolicyStage.ApproverKind.values:
            raise ValidationError(
                f"stage {i}: kind must be one of {', '.join(PolicyStage.ApproverKind.values)}",
                field="stages",
            )
        if int(stage.get("required", 1)) < 1:
            raise ValidationError(f"stage {i}: required must be at least 1", field="stages")
        if stage["kind"] == "group" and not isinstance(stage.get("group"), Group):
            raise ValidationError(f"stage {i}: a group stage names its group", field="stages")
        if stage["kind"] == "users" and not stage.get("users"):
            raise ValidationError(f"stage {i}: a users stage names its users", field="stages")


def policy_update(
    *,
    actor: Actor,
    policy: ApprovalPolicy,
    stages: list[dict] | None = None,
    auto_approve_users: Iterable[User] | None = None,
    **changes: Any,
) -> ApprovalPolicy:
    """Change a policy's fields, its allow list and (replacing them) its stages. Requests in
    flight keep the stages they were submitted with (they are snapshotted)."""
    _admin(actor, "change approval policies")
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}")
    if stages is not None:
        _check_stages(stages)
    with transaction.atomic():
        policy = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
        refuse_if_managed(policy, actor=actor)
        before = _policy_snapshot(policy)
        for name, value in changes.items():
            setattr(policy, name, value)
        policy.updated_at = timezone.now()
        policy.save()
        if auto_approve_users is not None:
            policy.auto_approve_users.set(list(auto_approve_users))
        if stages is not None:
            policy.stages.all().delete()
            policy_stages_write(policy, stages)
        after = _policy_snapshot(policy)
        changed = [k for k in after if after[k] != before[k]]
        if changed:
            audit_record(
                actor=actor,
                action=actions.POLICY_UPDATED,
                target=policy,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
    return policy


def policy_delete(*, actor: Actor, policy: ApprovalPolicy) -> None:
    """Remove a policy no entitlement uses (requests keep their snapshotted stages)."""
    _admin(actor, "remove approval policies")
    with transaction.atomic():
        policy = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
        users = list(Entitlement.objects.filter(policy=policy).values_list("pk", flat=True))
        if users:
            raise Conflict(f"policy {policy.slug!r} is still used by {len(users)} entitlement(s)")
        before = {"slug": policy.slug, **_policy_snapshot(policy)}
        audit_record(actor=actor, action=actions.POLICY_DELETED, target=policy, before=before)
        policy.stages.all().delete()
        policy.delete()


def _may_manage_pairs(actor: Actor) -> bool:
    return actor_may(
        actor, lambda u: is_platform_admin(u) or is_security(u), systems=CATALOG_SYSTEMS
    )


def toxic_pair_update(*, actor: Actor, pair: ToxicPair, reason: str) -> ToxicPair:
    if not _may_manage_pairs(actor):
        raise NotPermitted("only security and platform admins change separation-of-duties pairs")
    if not (reason or "").strip():
        raise ValidationError("say why the pair is toxic", field="reason")
    with transaction.atomic():
        pair = ToxicPair.objects.select_for_update().get(pk=pair.pk)
        if pair.reason != reason:
            audit_record(
                actor=actor,
                action=actions.TOXIC_PAIR_UPDATED,
                target=pair,
                before={"reason": pair.reason},
                after={"reason": reason},
            )
            pair.reason = reason
            pair.save(update_fields=["reason"])
    return pair


def toxic_pair_delete(*, actor: Actor, pair: ToxicPair, reason: str = "") -> None:
    if not _may_manage_pairs(actor):
        raise NotPermitted("only security and platform admins remove separation-of-duties pairs")
    with transaction.atomic():
        pair = (
            ToxicPair.objects.select_for_update().select_related("first", "second").get(pk=pair.pk)
        )
        audit_record(
            actor=actor,
            action=actions.TOXIC_PAIR_DELETED,
            target=pair,
            before={"first": str(pair.first), "second": str(pair.second), "reason": pair.reason},
            reason=reason,
        )
        pair.delete()


def entitlement_set_prerequisites(
    *, actor: Actor, entitlement: Entitlement, prerequisites: Iterable[Entitlement]
) -> Entitlement:
    """Replace what must be held before ``entitlement`` may be requested."""
    from ..policies import may_edit_service

    wanted = list(prerequisites)
    if any(p.pk == entitlement.pk for p in wanted):
        raise ValidationError(f"{entitlement} cannot require itself", field="prerequisites")
    with transaction.atomic():
        ent = (
            Entitlement.objects.select_for_update().select_related("service").get(pk=entitlement.pk)
        )
        if not actor_may(
            actor, lambda u: may_edit_service(u, ent.service), systems=CATALOG_SYSTEMS
        ):
            raise NotPermitted("only the owner team and platform admins edit entitlements")
        refuse_if_managed(ent, actor=actor)
        before = sorted(str(p) for p in ent.prerequisites.select_related("service"))
        after = sorted(str(p) for p in wanted)
        if before != after:
            ent.prerequisites.set(wanted)
            audit_record(
                actor=actor,
                action=actions.ENTITLEMENT_UPDATED,
                target=ent,
                before={"prerequisites": before},
                after={"prerequisites": after},
            )
    return ent


def held_grants(entitlement: Entitlement) -> list[Grant]:
    return list(
        Grant.objects.filter(entitlement=entitlement, status__in=HELD)
        .select_related("principal")
        .order_by("pk")
    )


def entitlement_remove(*, actor: Actor, entitlement: Entitlement, reason: str) -> str:
    """Remove an entitlement from the catalog: deleted when nothing refers to it, else retired
    (not requestable, no policy, its held grants revoked). Returns "deleted" or "retired"."""
    _admin(actor, "remove entitlements")
    with transaction.atomic():
        ent = (
            Entitlement.objects.select_for_update().select_related("service").get(pk=entitlement.pk)
        )
        if is_deletable(ent):
            audit_record(
                actor=actor,
                action=actions.ENTITLEMENT_DELETED,
                target=ent,
                before={"entitlement": str(ent), "risk": ent.risk},
                reason=reason,
            )
            ent.delete()
            return "deleted"
        if ent.retired_at is not None:
            return "retired"
        revoked = []
        for grant in held_grants(ent):
            grant_revoke(grant, actor=actor, reason=reason, origin=RevokeOrigin.RETIRED)
            revoked.append(grant.pk)
        before = {"requestable": ent.requestable, "policy": ent.policy_id, "retired": False}
        ent.requestable = False
        ent.policy = None
        ent.allows_break_glass = False
        ent.retired_at = timezone.now()
        ent.updated_at = ent.retired_at
        ent.save()
        audit_record(
            actor=actor,
            action=actions.ENTITLEMENT_RETIRED,
            target=ent,
            before=before,
            after={"requestable": False, "retired": True, "grants_revoked": revoked},
            reason=reason,
        )
        return "retired"


def entitlement_unretire(*, actor: Actor, entitlement: Entitlement) -> Entitlement:
    """Bring a retired entitlement back (it is listed in the configuration again)."""
    _admin(actor, "restore entitlements")
    with transaction.atomic():
        ent = Entitlement.objects.select_for_update().get(pk=entitlement.pk)
        if ent.retired_at is None:
            return ent
        ent.retired_at = None
        ent.updated_at = timezone.now()
        ent.save(update_fields=["retired_at", "updated_at"])
        audit_record(
            actor=actor,
            action=actions.ENTITLEMENT_UPDATED,
            target=ent,
            before={"retired": True},
            after={"retired": False},
        )
    return ent


def service_remove(*, actor: Actor, service: Service, reason: str) -> str:
    """Remove a service whose entitlements are gone or retired: deleted when nothing refers to
    it, else retired. Returns "deleted" or "retired"."""
    _admin(actor, "remove services")
    with transaction.atomic():
        svc = Service.objects.select_for_update().get(pk=service.pk)
        live = svc.entitlements.filter(retired_at__isnull=True).count()
        if live:
            raise Conflict(f"{svc.slug} still has {live} entitlement(s): remove them first")
        if is_deletable(svc):
            audit_record(
                actor=actor,
                action=actions.SERVICE_DELETED,
                target=svc,
                before={"slug": svc.slug, "name": svc.name},
                reason=reason,
            )
            svc.delete()
            return "deleted"
        if svc.retired_at is None:
            svc.retired_at = timezone.now()
            svc.updated_at = svc.retired_at
            svc.save(update_fields=["retired_at", "updated_at"])
            audit_record(
                actor=actor,
                action=actions.SERVICE_RETIRED,
                target=svc,
                before={"retired": False},
                after={"retired": True},
                reason=reason,
            )
        return "retired"


def service_unretire(*, actor: Actor, service: Service) -> Service:
    _admin(actor, "restore services")
    with transaction.atomic():
        svc = Service.objects.select_for_update().get(pk=service.pk)
        if svc.retired_at is not None:
            svc.retired_at = None
            svc.updated_at = timezone.now()
            svc.save(update_fields=["retired_at", "updated_at"])
            audit_record(
                actor=actor,
                action=actions.SERVICE_UPDATED,
                target=svc,
                before={"retired": True},
                after={"retired": False},
            )
    return svc


def entitlement_set_connector_config(
    *, actor: Actor, entitlement: Entitlement, connector_config: dict
) -> Entitlement:
    """Replace an entitlement's (non-secret) connector settings."""
    from connectors.base import ConfigError
    from connectors.registry import check_config_secrets

    from ..policies import may_edit_service

    try:
        check_config_secrets(connector_config)
    except ConfigError as exc:
        raise ValidationError(exc.message, field="connector_config") from exc
    with transaction.atomic():
        ent = (
            Entitlement.objects.select_for_update().select_related("service").get(pk=entitlement.pk)
        )
        if not actor_may(
            actor, lambda u: may_edit_service(u, ent.service), systems=CATALOG_SYSTEMS
        ):
            raise NotPermitted("only the owner team and platform admins edit entitlements")
        refuse_if_managed(ent, actor=actor)
        before = ent.connector_config or {}
        if before != connector_config:
            ent.connector_config = connector_config
            ent.updated_at = timezone.now()
            ent.save(update_fields=["connector_config", "updated_at"])
            audit_record(
                actor=actor,
                action=actions.ENTITLEMENT_UPDATED,
                target=ent,
                before={"connector_config": before},
                after={"connector_config": connector_config},
            )
    return ent
