"""Grant life cycle beyond the request: expiry sweeps and reminders, the leaver hooks,
movers' reviews and follow-up answers.

Every grant change here goes through :mod:`.grants` (``grant_expire``, ``grant_revoke``), so a
leaver's or an expired grant is removed downstream the same way and with the same guarantees
as a revocation by hand.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from audit.services import audit_record
from portal.core.actors import GRANT_EXPIRY, MOVER_REVIEW, Actor, actor_may, actor_user
from portal.core.errors import Conflict, NotFound, ValidationError
from portal.core.locks import hook_register

from .. import registry as actions
from ..models import FollowUpReview, Grant, GrantReminder
from ._common import notify_queued, send_now
from .grants import (
    RevokeOrigin,
    grant_expire,
    grant_revoke,
    grants_lock_for_leavers,
    grants_revoke_for_leaver,
)
from .locks import lock_follow_up, lock_grant, lock_open_jobs

logger = logging.getLogger(__name__)


# --- Expiry ---------------------------------------------------------------------------
def grant_remind_expiry(*, grant_id: int, days: int, now: datetime | None = None) -> bool:
    with transaction.atomic():
        grant = lock_grant(grant_id)
        if grant.status != Grant.Status.ACTIVE or grant.ends_at is None:
            return False
        try:
            with transaction.atomic():
                GrantReminder.objects.create(
                    grant=grant,
                    days_before=days,
                    ends_at=grant.ends_at,
                    sent_at=now or timezone.now(),
                )
        except IntegrityError:
            return False  # already reminded for this end date
        audit_record(
            actor=GRANT_EXPIRY,
            action=actions.GRANT_EXPIRY_REMINDED,
            target=grant,
            after={"days_before": days, "ends_at": grant.ends_at},
        )
        notify_queued("notify_grant_expiry", grant.pk, days)
    return True


def grants_expiry_sweep(*, now: datetime | None = None, limit: int = 5000) -> dict[str, int]:
    """Beat task body: revoke what ended; remind holders 7 days and 1 day before the end."""
    now = now or timezone.now()
    counts = {"expired": 0, "reminded": 0}
    ended = Grant.objects.filter(status__in=Grant.HELD_STATUSES, ends_at__lte=now).order_by(
        "ends_at"
    )
    for grant_id in list(ended.values_list("pk", flat=True)[:limit]):
        if grant_expire(grant_id=grant_id, now=now):
            counts["expired"] += 1
    windows = sorted(settings.TOLLGATE_EXPIRY_REMINDER_DAYS, reverse=True)  # (7, 1)
    for index, days in enumerate(windows):
        # Each grant gets the reminder of the window its end falls in (7 days out, then 1).
        lower = windows[index + 1] if index + 1 < len(windows) else 0
        already = GrantReminder.objects.filter(
            grant_id=OuterRef("pk"), days_before=days, ends_at=OuterRef("ends_at")
        )
        due = (
            Grant.objects.filter(
                status=Grant.Status.ACTIVE,
                ends_at__gt=now + timedelta(days=lower),
                ends_at__lte=now + timedelta(days=days),
            )
            .filter(~Exists(already))
            .order_by("ends_at")
            .values_list("pk", flat=True)
        )
        for grant_id in list(due[:limit]):
            if grant_remind_expiry(grant_id=grant_id, days=days, now=now):
                counts["reminded"] += 1
    return counts


# --- Leavers --------------------------------------------------------------------------
def leaver_hooks_register() -> None:
    """A leaver's open requests, then their grants (and the grants' jobs), are locked when the
    leaver's transaction starts and cancelled (revoked) in it; the hooks run in ``LOCK_ORDER``
    of the rows they lock."""
    from accounts.services import LEAVER_HOOKS, LEAVER_PREPARE_HOOKS

    from .request_timers import requests_cancel_for_leaver, requests_lock_for_leavers

    hook_register(LEAVER_PREPARE_HOOKS, requests_lock_for_leavers, order="access.AccessRequest")
    hook_register(LEAVER_HOOKS, requests_cancel_for_leaver, order="access.AccessRequest")
    hook_register(LEAVER_PREPARE_HOOKS, grants_lock_for_leavers, order="access.Grant")
    hook_register(LEAVER_HOOKS, grants_revoke_for_leaver, order="access.Grant")


# --- Movers ---------------------------------------------------------------------------
def grants_tied_to_old_team(*, move) -> list[Grant]:
    """Held grants from before the move that the new team does not hold: the access came
    with the old team. (What the new team's other members hold is the new normal.)"""
    held = Grant.objects.filter(
        principal_id=move.user_id,
        status__in=Grant.HELD_STATUSES,
        created_at__lte=move.occurred_at,
    ).select_related("entitlement")
    new_team_normal = set()
    if move.to_team_id is not None:
        new_team_normal = set(
            Grant.objects.filter(
                status__in=Grant.HELD_STATUSES,
                principal__team_id=move.to_team_id,
                principal__is_active=True,
            )
            .exclude(principal_id=move.user_id)
            .values_list("entitlement_id", flat=True)
        )
    return [g for g in held.order_by("pk") if g.entitlement_id not in new_team_normal]


def mover_flag(*, move_id: int, now: datetime | None = None) -> int:
    """Open a review item per grant tied to the old team, for the new manager."""
    from accounts.models import TeamMove

    from ..workflow import lead_of

    now = now or timezone.now()
    with transaction.atomic():
        move = TeamMove.objects.select_related("user", "to_team", "from_team").get(pk=move_id)
        user = move.user
        reviewer = user.manager
        if reviewer is None and move.to_team_id:
            reviewer = lead_of(move.to_team_id)
        if reviewer is not None and (reviewer.pk == user.pk or not reviewer.is_active):
            reviewer = None  # security answers instead
        created = 0
        for grant in grants_tied_to_old_team(move=move):
            item, made = FollowUpReview.objects.get_or_create(
                kind=FollowUpReview.Kind.MOVER,
                team_move=move,
                grant=grant,
                defaults={
                    "reviewer": reviewer,
                    "due_at": now + timedelta(days=settings.TOLLGATE_FOLLOW_UP_DAYS * 3),
                    "reason": f"{user.email} moved from "
                    f"{move.from_team.name if move.from_team else '—'} to "
                    f"{move.to_team.name if move.to_team else '—'}: keep {grant.entitlement}?",
                },
            )
            if made:
                created += 1
                audit_record(
                    actor=MOVER_REVIEW,
                    action=actions.FOLLOW_UP_CREATED,
                    target=item,
                    after={
                        "kind": item.kind,
                        "grant": grant.pk,
                        "reviewer": reviewer.email if reviewer else "security",
                        "move": move.pk,
                    },
                )
                notify_queued("notify_follow_up", item.pk)
    return created


def movers_sweep(*, now: datetime | None = None, window_days: int = 30) -> int:
    """Flag grants of recent moves that have no review items yet (idempotent)."""
    from accounts.models import TeamMove

    now = now or timezone.now()
    moves = (
        TeamMove.objects.filter(occurred_at__gte=now - timedelta(days=window_days))
        .exclude(pk__in=FollowUpReview.objects.filter(kind="mover").values("team_move_id"))
        .values_list("pk", flat=True)
    )
    return sum(mover_flag(move_id=pk, now=now) for pk in list(moves))


# --- Follow-up answers ----------------------------------------------------------------
def follow_up_answer(
    *, actor: Actor, item_id: int, decision: str, note: str = ""
) -> FollowUpReview:
    """``keep`` confirms the access (or that break-glass use was justified); ``revoke``
    takes it away now (if still held)."""
    from ..sync.policies import may_answer_follow_up

    if decision not in ("keep", "revoke"):
        raise ValidationError("answer keep or revoke", field="decision")
    note = (note or "").strip()
    if not note:
        raise ValidationError("add a note for the record", field="note")
    grant_id = FollowUpReview.objects.filter(pk=item_id).values_list("grant_id", flat=True).first()
    if grant_id is None:
        raise NotFound("no such review item")
    with transaction.atomic():
        grant = lock_grant(grant_id)
        lock_open_jobs(grant_ids=[grant.pk])  # a revoke cancels them: locked before the item
        item = lock_follow_up(item_id)
        item.grant = grant
        if not actor_may(actor, lambda user: may_answer_follow_up(user, item)):
            raise NotFound("no such review item")
        if item.status != FollowUpReview.Status.OPEN:
            raise Conflict(f"this item is already {item.get_status_display().lower()}")
        if decision == "revoke" and grant.status in Grant.HELD_STATUSES:
            grant_revoke(
                grant,
                actor=actor,
                origin=RevokeOrigin.FOLLOW_UP,
                reason=f"{item.get_kind_display()}: {note}",
            )
        item.status = (
            FollowUpReview.Status.KEPT if decision == "keep" else FollowUpReview.Status.REVOKED
        )
        item.answered_by = actor_user(actor)
        item.answered_at = timezone.now()
        item.note = note
        item.save(update_fields=["status", "answered_by", "answered_at", "note"])
        audit_record(
            actor=actor,
            action=actions.FOLLOW_UP_ANSWERED,
            target=item,
            before={"status": FollowUpReview.Status.OPEN},
            after={"status": item.status, "grant": grant.pk, "grant_status": grant.status},
            reason=note,
        )
    return item


def follow_ups_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Remind reviewers of overdue items (daily) and groups of open manual tasks."""
    from ..models import ManualTask

    now = now or timezone.now()
    counts = {"follow_ups": 0, "manual_tasks": 0, "mover_items": movers_sweep(now=now)}
    overdue = FollowUpReview.objects.filter(
        status=FollowUpReview.Status.OPEN, due_at__lte=now
    ).filter(Q(reminded_at__isnull=True) | Q(reminded_at__lte=now - timedelta(days=1)))
    for item_id in list(overdue.values_list("pk", flat=True)):
        FollowUpReview.objects.filter(pk=item_id).update(reminded_at=now)
        send_now("notify_follow_up", item_id)
        counts["follow_ups"] += 1
    for task in ManualTask.objects.filter(status=ManualTask.Status.OPEN):
        last = task.reminded_at or task.created_at
        if last <= now - timedelta(hours=task.remind_after_hours):
            ManualTask.objects.filter(pk=task.pk).update(reminded_at=now)
            send_now("notify_manual_task", task.pk)
            counts["manual_tasks"] += 1
    return counts
