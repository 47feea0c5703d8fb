"""The life cycle of an unused-access removal: detected, scheduled (holder and owners notified),
removed through ``access.services.grant_revoke`` (the outbox), cancelled when used again,
opted out of, restored. ``unused_daily`` is the daily run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from access import services as access_services
from access.models import Grant
from accounts.models import User
from audit.services import audit_record
from portal.core.actors import actor_may
from portal.core.errors import Conflict, NotPermitted, ValidationError
from portal.core.queue import enqueue_on_commit
from portal.core.state import transition

from .. import registry as actions
from .. import tasks
from ..models import OPEN_REMOVAL_STATUSES, UnusedRemoval
from ..policies import may_opt_out, may_restore
from ..rules import UnusedRule, fresh_service_ids, unused_grants
from ..state import REMOVAL_TRANSITIONS
from .mapping import SYSTEM, _chunks

S = UnusedRemoval.Status


def _notify(removal_ids: list[int], notice: str) -> None:
    if removal_ids:
        enqueue_on_commit(tasks.notify_removals, list(removal_ids), notice, kind="notify")


def _move(removal: UnusedRemoval, action: str, *, actor, reason: str = "", **fields) -> None:
    fields["updated_at"] = timezone.now()
    transition(
        removal,
        table=REMOVAL_TRANSITIONS,
        action=action,
        actor=actor,
        audit_action=actions.REMOVAL_TRANSITIONS[action],
        reason=reason,
        extra_fields=fields,
        after_extra={k: v for k, v in fields.items() if k != "updated_at" and not hasattr(v, "pk")},
    )


def removals_cancel_used_again(*, now: datetime | None = None) -> int:
    """Cancel detected/scheduled removals whose grant was used within the window, or is no
    longer active (revoked or expired another way)."""
    now = now or timezone.now()
    cutoff = UnusedRule.from_settings().cutoff(now)
    ids = list(
        UnusedRemoval.objects.filter(status__in=(S.DETECTED, S.SCHEDULED))
        .filter(Q(grant__last_used_at__gt=cutoff) | ~Q(grant__status=Grant.Status.ACTIVE))
        .values_list("pk", flat=True)
    )
    cancelled = 0
    for pk in ids:
        with transaction.atomic():
            removal = (
                UnusedRemoval.objects.select_for_update(of=("self",))
                .select_related("grant")
                .get(pk=pk)
            )
            if removal.status not in (S.DETECTED, S.SCHEDULED):
                continue
            grant = removal.grant
            if grant.status != Grant.Status.ACTIVE:
                why = f"grant is {grant.status}"
            elif grant.last_used_at and grant.last_used_at > cutoff:
                why = f"used again on {grant.last_used_at:%Y-%m-%d %H:%M}"
            else:
                continue
            _move(removal, "cancel", actor=SYSTEM, reason=why, closed_reason=why[:300])
            cancelled += 1
    return cancelled


def opt_outs_expire(*, now: datetime | None = None) -> int:
    """Opt-outs past their bound end; the next detection evaluates the grant again."""
    now = now or timezone.now()
    ids = list(
        UnusedRemoval.objects.filter(status=S.OPTED_OUT, opt_out_until__lte=now).values_list(
            "pk", flat=True
        )
    )
    ended = 0
    for pk in ids:
        with transaction.atomic():
            removal = UnusedRemoval.objects.select_for_update().get(pk=pk)
            # an opted-out removal always has its end
            if removal.status != S.OPTED_OUT or removal.opt_out_until > now:  # type: ignore[operator]
                continue
            _move(
                removal,
                "end_opt_out",
                actor=SYSTEM,
                reason="opt-out reached its end: the grant is evaluated again",
                closed_reason="opt-out ended",
            )
            ended += 1
    return ended


def unused_detect(*, now: datetime | None = None, rule: UnusedRule | None = None) -> int:
    """Create a removal (detected, then scheduled with the notice period) for every unused
    grant without an open removal. Holders and owners are notified after commit."""
    now = now or timezone.now()
    rule = rule or UnusedRule.from_settings()
    notice = timedelta(days=settings.TOLLGATE_UNUSED_NOTICE_DAYS)
    open_grants = UnusedRemoval.objects.filter(status__in=OPEN_REMOVAL_STATUSES).values("grant_id")
    candidates = list(
        unused_grants(now=now, rule=rule)
        .exclude(pk__in=open_grants)
        .exclude(ends_at__lte=now + notice)  # ends before removal anyway
        .order_by("pk")
        .values_list("pk", "principal_id", "entitlement__service_id", "last_used_at")
    )
    created = 0
    for chunk in _chunks(candidates):
        with transaction.atomic():
            rows = _create_removals(chunk, now=now, rule=rule)
            for removal in rows:
                audit_record(
                    actor=SYSTEM,
                    action=actions.REMOVAL_DETECTED,
                    target=removal,
                    after={
                        "status": S.DETECTED,
                        "grant": removal.grant_id,
                        "last_used_at": removal.last_used_at,
                        "window_days": removal.window_days,
                    },
                )
                _move(
                    removal,
                    "schedule",
                    actor=SYSTEM,
                    reason=f"not used for {rule.window_days} days",
                    scheduled_at=now,
                    remove_after=now + notice,
                )
            _notify([r.pk for r in rows], "scheduled")
            created += len(rows)
    return created


def _create_removals(chunk, *, now: datetime, rule: UnusedRule) -> list[UnusedRemoval]:
    objs = [
        UnusedRemoval(
            grant_id=grant_id,
            principal_id=principal_id,
            service_id=service_id,
            status=S.DETECTED,
            window_days=rule.window_days,
            last_used_at=last_used,
            detected_at=now,
            updated_at=now,
        )
        for grant_id, principal_id, service_id, last_used in chunk
    ]
    try:
        with transaction.atomic():
            return UnusedRemoval.objects.bulk_create(objs)
    except IntegrityError:  # a removal appeared meanwhile: one by one, skipping those
        out = []
        for obj in objs:
            try:
                with transaction.atomic():
                    obj.save(force_insert=True)
                out.append(obj)
            except IntegrityError:
                obj.pk = None
        return out


def removals_remove_due(*, now: datetime | None = None) -> dict[str, int]:
    """Revoke grants whose notice period is over, re-checking the rule first: used again or
    no longer active ⇒ cancelled; usage data no longer fresh ⇒ held until it is."""
    now = now or timezone.now()
    rule = UnusedRule.from_settings()
    counts = {"removed": 0, "cancelled": 0, "held": 0}
    ids = list(
        UnusedRemoval.objects.filter(status=S.SCHEDULED, remove_after__lte=now)
        .order_by("remove_after", "pk")
        .values_list("pk", flat=True)
    )
    fresh = fresh_service_ids(now=now, rule=rule)
    removed_ids = []
    for pk in ids:
        with transaction.atomic():
            removal = (
                UnusedRemoval.objects.select_for_update(of=("self",))
                .select_related("grant")
                .get(pk=pk)
            )
            # a scheduled removal always has its date
            if removal.status != S.SCHEDULED or removal.remove_after > now:  # type: ignore[operator]
                continue
            grant = removal.grant
            if grant.status != Grant.Status.ACTIVE:
                why = f"grant is {grant.status}"
            elif grant.last_used_at and grant.last_used_at > rule.cutoff(now):
                why = f"used again on {grant.last_used_at:%Y-%m-%d %H:%M}"
            else:
                why = ""
            if why:
                _move(removal, "cancel", actor=SYSTEM, reason=why, closed_reason=why[:300])
                counts["cancelled"] += 1
                continue
            if removal.service_id not in fresh:
                counts["held"] += 1
                continue
            reason = (
                f"unused access: not used for {removal.window_days} days "
                f"(removal #{removal.pk}; restorable for {settings.TOLLGATE_UNUSED_RESTORE_DAYS} days)"
            )
            access_services.grant_revoke(
                actor=SYSTEM,
                grant_id=grant.pk,
                reason=reason,
                origin=access_services.RevokeOrigin.UNUSED,
            )
            _move(removal, "remove", actor=SYSTEM, reason=reason, removed_at=now)
            removed_ids.append(removal.pk)
            counts["removed"] += 1
    for chunk in _chunks(removed_ids):
        with transaction.atomic():
            _notify(chunk, "removed")
    return counts


def unused_daily(*, now: datetime | None = None) -> dict[str, int]:
    """The daily run (the beat task holds an advisory lock around it)."""
    now = now or timezone.now()
    counts = {
        "cancelled_used_again": removals_cancel_used_again(now=now),
        "opt_outs_ended": opt_outs_expire(now=now),
        "detected": unused_detect(now=now),
    }
    counts.update(removals_remove_due(now=now))
    return counts


def removal_opt_out(
    *, actor: User, removal_id: int, reason: str, days: int, now: datetime | None = None
) -> UnusedRemoval:
    """Keep the access for ``days`` (at most TOLLGATE_UNUSED_OPT_OUT_MAX_DAYS): the holder,
    their manager or the owner team may; the grant is evaluated again afterwards."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ValidationError("say why the access is still needed", field="reason")
    limit = settings.TOLLGATE_UNUSED_OPT_OUT_MAX_DAYS
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= limit:
        raise ValidationError(f"an opt-out lasts 1 to {limit} days", field="days")
    with transaction.atomic():
        removal = (
            UnusedRemoval.objects.select_for_update(of=("self",))
            .select_related("principal", "service")
            .filter(pk=removal_id)
            .first()
        )
        if removal is None:
            raise ValidationError(f"no removal #{removal_id}", field="removal")
        if not actor_may(actor, lambda user: may_opt_out(user, removal)):
            raise NotPermitted("only the holder, their manager or the owner team opts out")
        _move(
            removal,
            "opt_out",
            actor=actor,
            reason=reason,
            opted_out_by=actor,
            opt_out_reason=reason[:500],
            opt_out_until=now + timedelta(days=days),
        )
    return removal


def removal_restore(
    *, actor: User, removal_id: int, reason: str, now: datetime | None = None
) -> UnusedRemoval:
    """Re-create removed access (a new grant, same end date bound, through the outbox)."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("say why the access is restored", field="reason")
    with transaction.atomic():
        removal = (
            UnusedRemoval.objects.select_for_update(of=("self",))
            .select_related("principal", "service", "grant")
            .filter(pk=removal_id)
            .first()
        )
        if removal is None:
            raise ValidationError(f"no removal #{removal_id}", field="removal")
        if not actor_may(actor, lambda user: may_restore(user, removal)):
            raise NotPermitted(
                "only the holder, their manager, the owner team or an admin restores access"
            )
        if removal.status != S.REMOVED:
            raise Conflict(f"removal #{removal.pk} is {removal.status}: nothing to restore")
        days = settings.TOLLGATE_UNUSED_RESTORE_DAYS
        if removal.removed_at and removal.removed_at + timedelta(days=days) < now:
            raise ValidationError(
                f"access removed more than {days} days ago is requested again, not restored",
                field="removal",
            )
        grant = access_services.grant_restore(
            actor=actor, revoked_grant_id=removal.grant_id, reason=reason
        )
        _move(
            removal,
            "restore",
            actor=actor,
            reason=reason,
            restored_grant=grant,
            restored_by=actor,
            restored_at=now,
            restore_reason=reason[:500],
        )
    return removal


def removals_group_by(rows: Iterable[UnusedRemoval], key) -> dict:
    out: dict = defaultdict(list)
    for row in rows:
        out[key(row)].append(row)
    return out
