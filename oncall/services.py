"""Every write of on-call access: schedules, rotas (pushed or imported), and the sweep that
grants at a shift's start and revokes at its end plus grace.

Grants go through ``access.services`` (``grant_birthright`` with origin ``oncall`` and the
shift's end plus grace as their end; ``grant_revoke`` with origin ``ONCALL``), so they are
provisioned through the outbox and audited; each names the shift that justified it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from access.models import AccessRequest, Entitlement, Grant, Service
from access.policies import may_edit_service
from access.services import (
    RevokeOrigin,
    access_request_pass_system_stages,
    grant_birthright,
    grant_revoke,
)
from accounts.models import User
from audit.services import audit_record
from portal.core.actors import ONCALL, Actor, actor_may
from portal.core.errors import DomainError, NotPermitted, ValidationError

from . import registry as actions
from .models import Schedule, Shift, ShiftGrant

MAX_SHIFTS = 2000
ONCALL_REASON = re.compile(r"^on call: shift #(\d+) ")


@dataclass(frozen=True)
class ShiftIn:
    user: str  # e-mail
    starts_at: dt.datetime
    ends_at: dt.datetime
    external_id: str = ""


def may_manage_schedule(user: Any, service: Service) -> bool:
    return may_edit_service(user, service)


def schedule_save(
    *,
    actor: Actor,
    slug: str,
    name: str,
    service: Service,
    entitlements: Sequence[Entitlement] = (),
    grace: timedelta = timedelta(minutes=30),
) -> Schedule:
    if not actor_may(actor, lambda u: may_manage_schedule(u, service)):
        raise NotPermitted("only the service's owner team and platform admins define its rota")
    outside = [str(e) for e in entitlements if e.service_id != service.pk]
    if outside:
        raise ValidationError(
            "entitlements of another service: " + ", ".join(outside), field="entitlements"
        )
    with transaction.atomic():
        schedule, created = Schedule.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "service": service,
                "grace": grace,
                "updated_at": timezone.now(),
            },
        )
        schedule.entitlements.set(list(entitlements))
        audit_record(
            actor=actor,
            action=actions.SCHEDULE_SAVED,
            target=schedule,
            after={
                "slug": slug,
                "service": service.slug,
                "entitlements": sorted(str(e) for e in entitlements),
                "grace_minutes": int(grace.total_seconds() // 60),
                "created": created,
            },
        )
    return schedule


def rota_replace(
    *,
    actor: Actor,
    schedule: Schedule,
    shifts: list[ShiftIn],
    source: str = Shift.Source.API,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Replace the schedule's current and future shifts with ``shifts`` (past ones stay).
    A shift that is unchanged (same person, start and end) is kept; one that is gone is
    cancelled (its grants are revoked by the next sweep). Refused whole, naming the shift,
    when a person is unknown or a shift is not ordered."""
    if not actor_may(actor, lambda u: may_manage_schedule(u, schedule.service)):
        raise NotPermitted("only the service's owner team and platform admins push its rota")
    now = now or timezone.now()
    if len(shifts) > MAX_SHIFTS:
        raise ValidationError(f"at most {MAX_SHIFTS} shifts at once", field="shifts")
    emails = {s.user.lower() for s in shifts}
    match = Q()
    for email in emails:
        match |= Q(email__iexact=email)
    users = {u.email.lower(): u for u in User.objects.filter(match)} if emails else {}
    for i, given in enumerate(shifts):
        if given.user.lower() not in users or not users[given.user.lower()].is_active:
            raise ValidationError(f"shift {i + 1}: no active person {given.user!r}", field="shifts")
        if given.starts_at.tzinfo is None or given.ends_at.tzinfo is None:
            raise ValidationError(f"shift {i + 1}: times need a time zone", field="shifts")
        if given.starts_at >= given.ends_at:
            raise ValidationError(f"shift {i + 1}: it ends before it starts", field="shifts")
    wanted = {
        (users[s.user.lower()].pk, s.starts_at, s.ends_at): s for s in shifts if s.ends_at > now
    }
    with transaction.atomic():
        live = list(
            Shift.objects.select_for_update()
            .filter(schedule=schedule, cancelled_at__isnull=True, ends_at__gt=now)
            .order_by("pk")
        )
        kept = 0
        cancelled = 0
        for shift in live:
            key = (shift.user_id, shift.starts_at, shift.ends_at)
            if key in wanted:
                wanted.pop(key)
                kept += 1
            else:
                shift.cancelled_at = now
                shift.save(update_fields=["cancelled_at"])
                cancelled += 1
        Shift.objects.bulk_create(
            [
                Shift(
                    schedule=schedule,
                    user_id=user_id,
                    starts_at=starts,
                    ends_at=ends,
                    source=source,
                    external_id=s.external_id[:300],
                )
                for (user_id, starts, ends), s in sorted(wanted.items(), key=lambda kv: kv[0][1])
            ]
        )
        counts = {"created": len(wanted), "kept": kept, "cancelled": cancelled}
        audit_record(
            actor=actor,
            action=actions.ROTA_PUSHED,
            target=schedule,
            after={"source": source, **counts},
        )
    return counts


def on_call_now(*, service: Service, user: User, now: dt.datetime | None = None) -> Shift | None:
    now = now or timezone.now()
    return (
        Shift.objects.filter(
            schedule__service=service,
            user=user,
            cancelled_at__isnull=True,
            starts_at__lte=now,
            ends_at__gt=now,
        )
        .select_related("schedule")
        .order_by("-ends_at")
        .first()
    )


def _held(user_id: int, entitlement_id: int) -> bool:
    return Grant.objects.filter(
        principal_id=user_id, entitlement_id=entitlement_id, status__in=Grant.HELD_STATUSES
    ).exists()


def oncall_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Grant the schedule's entitlements to whoever is on shift now; pass the on-call stage of
    requests that waited at it before their principal's shift began; link grants approved
    because their holder was on call; revoke shift grants whose shift ended (plus grace) or
    was cancelled."""
    now = now or timezone.now()
    counts = {"granted": 0, "linked": 0, "revoked": 0, "skipped": 0, "stages_passed": 0}
    active = (
        Shift.objects.filter(cancelled_at__isnull=True, starts_at__lte=now, ends_at__gt=now)
        .select_related("schedule", "user")
        .order_by("pk")
    )
    for shift in active:
        granted = set(shift.grants.values_list("grant__entitlement_id", flat=True))
        for ent in shift.schedule.entitlements.select_related("service").order_by("pk"):
            if ent.pk in granted or _held(shift.user_id, ent.pk):
                continue
            try:
                with transaction.atomic():
                    grant = grant_birthright(
                        actor=ONCALL,
                        principal=shift.user,
                        entitlement=ent,
                        bundle_ref=shift.label,
                        reason=f"on call for {shift.schedule.service.slug}",
                        ends_at=shift.ends_at + shift.schedule.grace,
                        origin="oncall",
                    )
                    ShiftGrant.objects.create(shift=shift, grant=grant)
                counts["granted"] += 1
            except DomainError:
                counts["skipped"] += 1
    # requests that reached an on-call stage before their principal's shift began
    for shift in active:
        waiting = AccessRequest.objects.filter(
            status=AccessRequest.Status.PENDING,
            principal_id=shift.user_id,
            entitlement__service_id=shift.schedule.service_id,
        ).order_by("pk")
        for request in waiting:
            stages = request.stages or []
            index = request.current_stage
            at_on_call_stage = 0 <= index < len(stages) and stages[index].get("on_call")
            if at_on_call_stage and access_request_pass_system_stages(request_id=request.pk):
                counts["stages_passed"] += 1
    # grants approved because the person was on call (the request check's reason names it)
    for grant in (
        Grant.objects.filter(
            status__in=Grant.HELD_STATUSES,
            request__auto_approval_reason__startswith="on call: shift #",
        )
        .exclude(pk__in=ShiftGrant.objects.values("grant_id"))
        .select_related("request")
    ):
        reason = grant.request.auto_approval_reason if grant.request is not None else ""
        match = ONCALL_REASON.match(reason or "")
        linked = Shift.objects.filter(pk=int(match.group(1))).first() if match else None
        if linked is not None:
            ShiftGrant.objects.get_or_create(grant=grant, defaults={"shift": linked})
            counts["linked"] += 1
    ending = ShiftGrant.objects.filter(ended_at__isnull=True).select_related(
        "shift__schedule", "grant"
    )
    for row in ending:
        shift = row.shift
        over = shift.cancelled_at is not None or shift.ends_at + shift.schedule.grace <= now
        if not over:
            continue
        with transaction.atomic():
            if row.grant.status in Grant.HELD_STATUSES:
                why = "cancelled" if shift.cancelled_at else "ended"
                grant_revoke(
                    row.grant,
                    actor=ONCALL,
                    reason=f"the on-call shift {why}: {shift.label}",
                    origin=RevokeOrigin.ONCALL,
                )
                counts["revoked"] += 1
            row.ended_at = now
            row.save(update_fields=["ended_at"])
    return counts


def oncall_request_check(*, preview, requester, principal, entitlement, duration_days) -> None:
    """``access.workflow.REQUEST_CHECKS``: a policy with ``auto_approve_on_call`` offers
    auto-approval to the person on call for the entitlement's service now."""
    if preview.refusals or preview.no_auto_approval:
        return
    from access.workflow import policy_for

    policy = policy_for(entitlement)
    if policy is None or not policy.auto_approve_on_call:
        return
    shift = on_call_now(service=entitlement.service, user=principal)
    if shift is None:
        return
    preview.auto_approval_offers.insert(
        0,
        f"on call: shift #{shift.pk} of {shift.schedule.slug} until "
        f"{shift.ends_at:%Y-%m-%dT%H:%MZ} (the grant ends with it, plus "
        f"{int(shift.schedule.grace.total_seconds() // 60)} min grace)",
    )


def oncall_stage_pass(*, request, stage_index: int):
    """``access.workflow.STAGE_PASSES``: a stage flagged ``auto_approve_on_call`` passes at
    once when the request's principal is on call for the entitlement's service now; the
    approval is the ONCALL system actor's and names the shift that justified it."""
    from access.workflow import StagePass

    stage = request.stages[stage_index]
    if not stage.get("on_call"):
        return None
    shift = on_call_now(service=request.entitlement.service, user=request.principal)
    if shift is None:
        return None
    return StagePass(
        actor=ONCALL,
        reason=f"on call: shift #{shift.pk} of {shift.schedule.slug} until "
        f"{shift.ends_at:%Y-%m-%dT%H:%MZ}",
        detail={
            "on_call_shift": shift.pk,
            "schedule": shift.schedule.slug,
            "shift_ends_at": shift.ends_at.isoformat(),
        },
    )


def parse_ical(text: str) -> list[ShiftIn]:
    """Shifts from an iCalendar file: each VEVENT is a shift, its person the first
    ``mailto:`` ATTENDEE (else an e-mail in SUMMARY). Recurring events are refused."""
    import icalendar

    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise ValidationError(f"not an iCalendar file: {exc}", field="file") from exc
    shifts = []
    for i, event in enumerate(calendar.walk("VEVENT"), start=1):
        uid = str(event.get("UID", f"event {i}"))
        if event.get("RRULE"):
            raise ValidationError(
                f"{uid}: recurring events are not supported; export the occurrences", field="file"
            )
        attendees = event.get("ATTENDEE")
        attendees = attendees if isinstance(attendees, list) else [attendees] if attendees else []
        email = next((str(a)[7:] for a in attendees if str(a).lower().startswith("mailto:")), None)
        if email is None:
            found = re.search(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", str(event.get("SUMMARY", "")))
            email = found.group(0) if found else None
        if email is None:
            raise ValidationError(
                f"{uid}: no person (ATTENDEE mailto: or an e-mail in SUMMARY)", field="file"
            )
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        if not isinstance(start, dt.datetime) or not isinstance(end, dt.datetime):
            raise ValidationError(f"{uid}: a shift has times, not only dates", field="file")
        if start.tzinfo is None or end.tzinfo is None:
            raise ValidationError(f"{uid}: times need a time zone (UTC or TZID)", field="file")
        shifts.append(ShiftIn(email, start, end, uid))
    return shifts


def rota_import_ical(*, actor: Actor, schedule: Schedule, text: str, now=None) -> dict[str, int]:
    return rota_replace(
        actor=actor, schedule=schedule, shifts=parse_ical(text), source=Shift.Source.ICAL, now=now
    )
