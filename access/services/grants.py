"""Every write of a Grant goes through this module (and :mod:`.grants_direct` for grants that
come without a request): created from an approved request, extended, provisioned or failed
downstream, retried, and revoked — by hand, at expiry, for a leaver, by a review, as unused
access, or after a follow-up. One ``grant_revoke`` serves every origin (``RevokeOrigin``).

A grant of a service with a connector is provisioned through the outbox
(:mod:`.provisioning`): it stays pending (revoking) until its sync job is done; without a
connector it is active (revoked) at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from audit.services import audit_record
from portal.core.actors import (
    ASSIGNMENT_RULES,
    CLI,
    DIRECTORY_IMPORT,
    GITOPS,
    GRANT_EXPIRY,
    LEAVER,
    ONCALL,
    REVIEWS,
    SCIM,
    UNUSED_ACCESS,
    Actor,
    SystemActor,
    actor_label,
    actor_may,
    refuse_string,
)
from portal.core.errors import ValidationError
from portal.core.state import transition

from .. import registry as actions
from ..events import RequestEvent, request_event
from ..models import AccessRequest, Approval, FollowUpReview, Grant, SyncJob
from ..outcomes import RefusalCode, refusal
from ..state import GRANT_TRANSITIONS
from . import provisioning
from .locks import lock_grant, lock_grants_held_by


class RevokeOrigin(StrEnum):
    """Why a grant is revoked; it decides who may do it and how the sync job is labelled."""

    MANUAL = "manual"  # the holder, the owner team or an admin
    EXPIRY = "expiry"  # its time is up
    LEAVER = "leaver"  # the holder left
    REVIEW = "review"  # an access review decided to remove it
    UNUSED = "unused"  # unused-access removal
    FOLLOW_UP = "follow_up"  # a break-glass or mover follow-up answered "revoke"
    RETIRED = "retired"  # its entitlement was removed from the configuration repository
    ONCALL = "oncall"  # the on-call shift that justified it ended
    ASSIGNMENT = "assignment"  # the assignment rule that granted it no longer matches


_JOB_ORIGIN = {
    RevokeOrigin.MANUAL: SyncJob.Origin.REVOKE,
    RevokeOrigin.EXPIRY: SyncJob.Origin.EXPIRY,
    RevokeOrigin.LEAVER: SyncJob.Origin.LEAVER,
    RevokeOrigin.REVIEW: SyncJob.Origin.REVOKE,
    RevokeOrigin.UNUSED: SyncJob.Origin.REVOKE,
    RevokeOrigin.FOLLOW_UP: SyncJob.Origin.REVOKE,
    RevokeOrigin.RETIRED: SyncJob.Origin.REVOKE,
    RevokeOrigin.ONCALL: SyncJob.Origin.EXPIRY,
    RevokeOrigin.ASSIGNMENT: SyncJob.Origin.REVOKE,
}


def _may_answer_follow_up(user: Any, grant: Grant) -> bool:
    from ..sync.policies import may_answer_follow_up

    open_items = FollowUpReview.objects.filter(grant=grant, status=FollowUpReview.Status.OPEN)
    return any(may_answer_follow_up(user, item) for item in open_items.select_related("grant"))


def _may_revoke(user: Any, grant: Grant) -> bool:
    from ..policies import may_revoke_grant

    return may_revoke_grant(user, grant)


# Per origin: which people may revoke (a check of the person and the grant) and which system
# actors may. Anyone else is refused.
REVOKE_RULES: dict[RevokeOrigin, tuple[Callable[[Any, Grant], bool], tuple[SystemActor, ...]]] = {
    RevokeOrigin.MANUAL: (_may_revoke, ()),
    RevokeOrigin.EXPIRY: (lambda user, grant: False, (GRANT_EXPIRY,)),
    # The person (or identity feed) that made the holder leave; the leaver service checked them.
    RevokeOrigin.LEAVER: (
        lambda user, grant: not grant.principal.is_active,
        (LEAVER, SCIM, DIRECTORY_IMPORT, CLI),
    ),
    RevokeOrigin.REVIEW: (_may_revoke, (REVIEWS,)),
    RevokeOrigin.UNUSED: (lambda user, grant: False, (UNUSED_ACCESS,)),
    RevokeOrigin.FOLLOW_UP: (_may_answer_follow_up, ()),
    RevokeOrigin.RETIRED: (_may_revoke, (GITOPS,)),
    RevokeOrigin.ONCALL: (lambda user, grant: False, (ONCALL,)),
    RevokeOrigin.ASSIGNMENT: (_may_revoke, (ASSIGNMENT_RULES, GITOPS)),
}

# The origin a system actor revokes with when the caller does not name one.
_ORIGIN_OF_SYSTEM = {
    GRANT_EXPIRY: RevokeOrigin.EXPIRY,
    LEAVER: RevokeOrigin.LEAVER,
    REVIEWS: RevokeOrigin.REVIEW,
    UNUSED_ACCESS: RevokeOrigin.UNUSED,
    ONCALL: RevokeOrigin.ONCALL,
    ASSIGNMENT_RULES: RevokeOrigin.ASSIGNMENT,
}


def _transition(
    grant: Grant, action: str, *, actor: Actor, reason: str = "", **fields: Any
) -> None:
    transition(
        grant,
        table=GRANT_TRANSITIONS,
        action=action,
        actor=actor,
        audit_action=actions.GRANT_TRANSITIONS[action],
        reason=reason,
        extra_fields=fields or None,
    )


def _tell_request_active(grant: Grant) -> None:
    """The request behind a grant that became active (chat tells the requester)."""
    if grant.request_id is not None:
        request_event(grant.request, RequestEvent.GRANT_ACTIVE)


# --- Created and provisioned ----------------------------------------------------------
def grant_provision_start(grant: Grant, *, actor: Actor) -> None:
    """A new (pending) grant: write its provisioning job, or activate it when its service has
    no connector. Called in the transaction that created the grant."""
    if grant.entitlement.service.connector:
        provisioning.grant_job_create(grant=grant, actor=actor)
        return
    _transition(grant, "activate", actor=actor, reason="no connector: active at once")
    _tell_request_active(grant)


def grant_from_request(*, request: AccessRequest, actor: Actor, now: datetime) -> Grant:
    """The grant of an approved request (locked by the caller, with the held grant): a new
    pending grant, or the held one extended (an extension, or access that arrived another way
    since submission, e.g. break-glass — one held grant per principal and entitlement)."""
    approvers = list(
        Approval.objects.filter(request=request, decision=Approval.Decision.APPROVE).values_list(
            "approver__email", flat=True
        )
    ) or [actor_label(actor)]
    ends_at = now + timedelta(days=request.duration_days)
    held = Grant.objects.filter(
        principal_id=request.principal_id,
        entitlement_id=request.entitlement_id,
        status__in=Grant.HELD_STATUSES,
    ).first()
    if held is not None and held.status != Grant.Status.ACTIVE:
        raise refusal(
            RefusalCode.ALREADY_HELD,
            f"{request.principal.email} already holds {request.entitlement} (grant #{held.pk} is {held.status})",
        )
    if held is not None:
        # The end moves to now + duration, and never earlier than it was.
        old_end = held.ends_at
        ends_at = max(ends_at, old_end) if old_end else ends_at
        transition(
            held,
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
                "version": held.version + 1,
            },
        )
        return held
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
    grant_provision_start(grant, actor=actor)
    return grant


def grant_sync_done(grant: Grant, *, job: SyncJob, actor: Actor) -> None:
    """The grant's job is done downstream (job and grant locked): pending becomes active,
    revoking becomes revoked. Anything else (a repeat, a reconciliation job) changes nothing."""
    if job.operation == SyncJob.Operation.GRANT and grant.status == Grant.Status.PENDING:
        _transition(grant, "activate", actor=actor, reason=f"provisioned by job #{job.pk}")
        _tell_request_active(grant)
    elif job.operation == SyncJob.Operation.REVOKE and grant.status == Grant.Status.REVOKING:
        _transition(
            grant,
            "complete_revoke",
            actor=actor,
            reason=f"revoked downstream by job #{job.pk}",
            revoked_at=timezone.now(),
        )


def grant_sync_failed(grant: Grant, *, job: SyncJob, actor: Actor, error: str) -> None:
    """The grant's job failed for good: pending becomes failed, revoking revoke-failed."""
    if job.operation == SyncJob.Operation.GRANT and grant.status == Grant.Status.PENDING:
        _transition(grant, "fail", actor=actor, reason=error)
    elif job.operation == SyncJob.Operation.REVOKE and grant.status == Grant.Status.REVOKING:
        _transition(grant, "fail_revoke", actor=actor, reason=error)


def grant_sync_retry(grant: Grant, *, job: SyncJob, actor: Actor, reason: str) -> None:
    """A failed job runs again (the retry button, checked by the caller): its grant leaves
    the failed state it put the grant in; refused when the grant moved on meanwhile."""
    failed = Grant.Status.FAILED if job.operation == SyncJob.Operation.GRANT else None
    failed = failed or Grant.Status.REVOKE_FAILED
    if grant.status != failed:
        raise refusal(
            RefusalCode.ALREADY_DECIDED, f"grant #{grant.pk} is {grant.status}: nothing to retry"
        )
    _transition(grant, "retry", actor=actor, reason=reason or f"retry job #{job.pk}")


# --- Revoked --------------------------------------------------------------------------
def grant_revoke(
    grant: Grant | None = None,
    *,
    actor: Actor,
    reason: str,
    origin: RevokeOrigin | None = None,
    grant_id: int | None = None,
) -> Grant:
    """Revoke a held grant (by object or ``grant_id``): it goes to revoking and its revoke job
    is written (open jobs that have not run are cancelled); without a connector it is revoked
    at once. An active grant past its end *expires* instead (origin ``EXPIRY``).

    ``origin`` says why, and decides who may (``REVOKE_RULES``); when it is not given, a
    system actor revokes with its own origin and a person by hand (``MANUAL``). Runs in the
    caller's transaction when there is one (the grant row is locked, if not already).
    """
    refuse_string(actor)
    reason = reason or ""
    if not reason.strip():
        raise ValidationError("say why the access is revoked", field="reason")
    if origin is None:
        origin = RevokeOrigin.MANUAL
        if isinstance(actor, SystemActor):
            origin = _ORIGIN_OF_SYSTEM.get(actor, RevokeOrigin.MANUAL)
    person_check, systems = REVOKE_RULES[RevokeOrigin(origin)]
    pk = grant.pk if grant is not None else grant_id
    if pk is None:
        raise TypeError("grant_revoke needs a grant or a grant_id")
    with transaction.atomic():
        locked = lock_grant(pk)
        if not actor_may(actor, lambda user: person_check(user, locked), systems=systems):
            raise refusal(
                RefusalCode.NOT_PERMITTED,
                "only the holder, the owner team or an admin revokes a grant"
                if origin == RevokeOrigin.MANUAL
                else f"{actor} may not revoke grant #{locked.pk} ({origin})",
            )
        action = (
            "expire"
            if origin == RevokeOrigin.EXPIRY and locked.status == Grant.Status.ACTIVE
            else "revoke"
        )
        _transition(
            locked,
            action,
            actor=actor,
            reason=reason,
            revoke_reason=reason[:300],
            version=locked.version + 1,
        )
        if locked.entitlement.service.connector:
            provisioning.revoke_job_create(grant=locked, actor=actor, origin=_JOB_ORIGIN[origin])
        else:
            _transition(
                locked,
                "complete_revoke",
                actor=actor,
                reason="no connector: revoked at once",
                revoked_at=timezone.now(),
            )
    if grant is not None and grant is not locked:  # the caller's copy follows the row
        for name in ("status", "version", "revoke_reason", "revoked_at", "updated_at"):
            setattr(grant, name, getattr(locked, name))
    return locked


def grant_expire(*, grant_id: int, now: datetime | None = None) -> bool:
    """Revoke one grant past its end (active: ``expire``; pending/failed: ``revoke``)."""
    now = now or timezone.now()
    with transaction.atomic():
        grant = lock_grant(grant_id)
        if grant.status not in Grant.HELD_STATUSES or not grant.ends_at or grant.ends_at > now:
            return False
        grant_revoke(
            grant,
            actor=GRANT_EXPIRY,
            origin=RevokeOrigin.EXPIRY,
            reason=f"expired at {grant.ends_at:%Y-%m-%d %H:%M} UTC",
        )
    return True


def grants_lock_for_leavers(*, users: Iterable[Any]) -> int:
    """Leaver prepare hook: lock the leavers' held grants (by id) and their open jobs before
    the leaver's transaction writes its first audit event (``LOCK_ORDER``)."""
    return len(lock_grants_held_by(users))


def grants_revoke_for_leaver(*, user: Any, actor: Actor | None) -> int:
    """Leaver hook: every held grant goes to revoking, through the outbox, inside the leaver's
    transaction, by whoever made them leave (``LEAVER`` when nobody is named)."""
    revoked = 0
    with transaction.atomic():
        for grant in lock_grants_held_by([user]):
            grant_revoke(
                grant,
                actor=actor if actor is not None else LEAVER,
                origin=RevokeOrigin.LEAVER,
                reason="leaver: left the company",
            )
            revoked += 1
    return revoked


# --- Last use (usage app) -------------------------------------------------------------
def grants_record_use(*, uses: dict[int, Any], source: str, batch_size: int = 1000) -> int:
    """Move ``Grant.last_used_at`` forward to the given times; never backwards.

    ``uses`` maps grant id -> aware datetime of the latest use seen by ``source``. Times in
    the future are clamped to now. One UPDATE per batch compares in the database
    (``GREATEST``, guarded by ``last_used_at < new``), so concurrent collectors cannot move a
    grant back (no check-then-act). Returns how many grants moved. Not audited per grant:
    last use is telemetry, not a state change; the caller audits the import or collection run.
    """
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
