"""Grants that come without a request: birthright (a team's standard bundle), restored
access (after unused-access removal) and break-glass (emergency self-service). Each is created
pending and provisioned like a requested grant (:func:`.grants.grant_provision_start`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from portal.core.actors import Actor, actor_may, actor_user, refuse_string
from portal.core.errors import NotFound, NotPermitted, ValidationError

from .. import registry as actions
from .. import workflow
from ..models import Entitlement, FollowUpReview, Grant
from ..outcomes import RefusalCode, refusal
from ._common import notify_queued
from .grants import grant_provision_start
from .locks import lock_held_grants, lock_person


def _refuse_toxic(principal: Any, entitlement: Entitlement, *, you: bool = False) -> None:
    conflicts = workflow.toxic_conflicts(principal=principal, entitlement=entitlement)
    if conflicts:
        pair, other = conflicts[0]
        who = "you hold" if you else f"{principal.email} holds"
        raise refusal(
            RefusalCode.SEPARATION_OF_DUTIES,
            f"separation of duties: {who} {other} ({pair.reason})",
            field="entitlement",
        )


def _refuse_missing_prerequisites(principal: Any, entitlement: Entitlement) -> None:
    """A prerequisite counts when held, pending or active."""
    required = list(entitlement.prerequisites.all())
    if not required:
        return
    have = set(
        Grant.objects.filter(
            principal=principal,
            entitlement__in=required,
            status__in=(Grant.Status.PENDING, Grant.Status.ACTIVE),
        ).values_list("entitlement_id", flat=True)
    )
    missing = [str(e) for e in required if e.pk not in have]
    if missing:
        raise refusal(
            RefusalCode.MISSING_PREREQUISITE,
            "missing prerequisite access: " + ", ".join(missing),
            field="entitlement",
        )


def grant_birthright(
    *,
    actor: Actor,
    principal: User,
    entitlement: Entitlement,
    bundle_ref: str,
    reason: str,
    ends_at: datetime | None = None,
    origin: str = "birthright",
) -> Grant:
    """A grant from a team's standard bundle (birthright access for a joiner), with no
    request: created pending and provisioned through the outbox as approved requests are
    (a service without a connector is active at once). Time-bound like any grant: it lasts
    the entitlement's maximum duration and is extended by a request.

    Refused (nothing written) when the principal is inactive, the entitlement is not
    requestable, a prerequisite is not held (pending or active), it would complete a
    separation-of-duties pair, or the principal already holds it. The joiner hook calls it
    (people are not checked here: the bundle was adopted by someone who may). Assignment
    rules (``origin="assignment"``) and on-call shifts (``origin="oncall"``, ``ends_at`` the
    shift's end plus grace) grant through it too.
    """
    refuse_string(actor)
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
        lock_person(principal.pk)
        held = lock_held_grants(principal_id=principal.pk, entitlement_id=entitlement.pk)
        if held:
            raise refusal(
                RefusalCode.ALREADY_HELD,
                f"{principal.email} already holds {entitlement} (grant #{held[0].pk})",
            )
        _refuse_missing_prerequisites(principal, entitlement)
        _refuse_toxic(principal, entitlement)
        now = timezone.now()
        if ends_at is None:
            ends_at = now + timedelta(days=entitlement.max_duration_days)
        grant = Grant.objects.create(
            principal=principal,
            entitlement=entitlement,
            status=Grant.Status.PENDING,
            starts_at=now,
            ends_at=ends_at,
            reason=f"{origin} ({bundle_ref}): {reason}"[:300],
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
                **({"origin": origin} if origin != "birthright" else {}),
            },
            reason=reason,
        )
        grant_provision_start(grant, actor=actor)
    return grant


def grant_restore(*, actor: Actor, revoked_grant_id: int, reason: str) -> Grant:
    """Give back access that was taken away (unused-access removal): a new grant for the same
    principal and entitlement, ending no later than the original did, provisioned through the
    outbox. The holder, their managers, the owner team or an admin may."""
    from ..policies import is_in_management_chain, may_revoke_grant

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
        if not actor_may(
            actor,
            lambda user: may_revoke_grant(user, old) or is_in_management_chain(user, old.principal),
        ):
            raise refusal(
                RefusalCode.NOT_PERMITTED,
                "only the holder, their manager, the owner team or an admin restores access",
            )
        if old.status != Grant.Status.REVOKED:
            raise refusal(
                RefusalCode.NOT_REVOKED,
                f"grant #{old.pk} is {old.status}, not revoked: nothing to restore",
            )
        principal = lock_person(old.principal_id)
        if not principal.is_active or getattr(principal, "status", "active") != "active":
            raise refusal(
                RefusalCode.PRINCIPAL_INACTIVE,
                f"{principal.email} is not an active person: access is not restored",
            )
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
            raise refusal(
                RefusalCode.ALREADY_HELD,
                f"{principal.email} already holds {old.entitlement} (grant #{held.pk})",
            )
        _refuse_toxic(principal, old.entitlement)
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
            raise refusal(
                RefusalCode.ALREADY_HELD, f"{principal.email} already holds {old.entitlement}"
            ) from exc
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
        grant_provision_start(grant, actor=actor)
    return grant


def grant_break_glass(*, actor: Actor, entitlement_id: int, reason: str, hours: int) -> Grant:
    """Emergency self-service access: short, alerted, and reviewed afterwards. A person only
    (it is their own access); a system actor is refused."""
    person = actor_user(actor)
    if person is None:
        raise refusal(RefusalCode.NOT_PERMITTED, f"{actor} cannot take break-glass access")
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise ValidationError("say what the emergency is (at least 10 characters)", field="reason")
    max_hours = settings.TOLLGATE_BREAK_GLASS_MAX_HOURS
    if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= max_hours:
        raise ValidationError(f"break-glass lasts 1 to {max_hours} hours", field="hours")
    if not getattr(person, "is_active", False):
        raise NotPermitted("inactive accounts cannot take access")
    entitlement = Entitlement.objects.select_related("service").filter(pk=entitlement_id).first()
    if entitlement is None:
        raise NotFound("no such entitlement")
    now = timezone.now()
    with transaction.atomic():
        # Everything that decides is read under the person's and the grant's locks, so a
        # concurrent request, grant or catalog change cannot slip between check and write.
        lock_person(person.pk)
        held = lock_held_grants(principal_id=person.pk, entitlement_id=entitlement.pk)
        entitlement = Entitlement.objects.select_related("service").get(pk=entitlement.pk)
        if not entitlement.allows_break_glass:
            raise NotPermitted(
                f"{entitlement} does not allow break-glass access", field="entitlement"
            )
        if not entitlement.requestable:
            raise refusal(
                RefusalCode.NOT_ELIGIBLE,
                f"{entitlement} is not requestable: no break-glass access either",
                field="entitlement",
            )
        if held:
            raise refusal(
                RefusalCode.ALREADY_HELD, f"you already hold {entitlement} (grant #{held[0].pk})"
            )
        _refuse_missing_prerequisites(person, entitlement)
        _refuse_toxic(person, entitlement, you=True)
        grant = Grant.objects.create(
            principal=person,
            entitlement=entitlement,
            status=Grant.Status.PENDING,
            starts_at=now,
            ends_at=now + timedelta(hours=hours),
            reason=f"break-glass: {reason}"[:300],
            approved_by=["break-glass (self-service)"],
            break_glass=True,
        )
        audit_record(
            actor=actor,
            action=actions.GRANT_BREAK_GLASS,
            target=grant,
            after={
                "principal": person.email,
                "entitlement": str(entitlement),
                "hours": hours,
                "ends_at": grant.ends_at,
            },
            reason=reason,
        )
        grant_provision_start(grant, actor=actor)
        item = FollowUpReview.objects.create(
            kind=FollowUpReview.Kind.BREAK_GLASS,
            grant=grant,
            reason=reason,
            due_at=now + timedelta(days=settings.TOLLGATE_FOLLOW_UP_DAYS),
        )
        audit_record(
            actor=actor,
            action=actions.FOLLOW_UP_CREATED,
            target=item,
            after={"kind": item.kind, "grant": grant.pk, "reviewer": "security"},
        )
        notify_queued("notify_break_glass", grant.pk)
    return grant
