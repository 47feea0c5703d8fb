"""On-call access: rotas pushed through the API or imported from iCalendar; grants at the
shift's start, revoked at its end plus grace (frozen clock); a policy that approves the person
on call at once; everything audited with the shift."""

from __future__ import annotations

import datetime as dt
import json
from datetime import timedelta

import pytest

from access import services
from access.models import AccessRequest, Grant
from audit.models import AuditEvent
from oncall.models import Schedule, Shift, ShiftGrant
from oncall.services import oncall_sweep, rota_import_ical, schedule_save
from tests.access.factories import make_entitlement, make_policy, make_service
from tests.api.conftest import token_api

UTC = dt.UTC
DAY = dt.datetime(2026, 6, 17, tzinfo=UTC)  # the suite's frozen day (10:00 UTC)


@pytest.fixture
def rota(org, service_owner, requester):
    svc = make_service(org["search"], slug="search-cluster")
    prod = make_entitlement(svc, slug="prod-shell", risk="high")
    schedule = schedule_save(
        actor=service_owner,
        slug="search-primary",
        name="Search primary",
        service=svc,
        entitlements=[prod],
        grace=timedelta(minutes=30),
    )
    return schedule, prod


def _put(api, slug, shifts):
    return api.client.put(
        f"/api/v1/oncall/{slug}",
        json.dumps({"shifts": shifts}),
        content_type="application/json",
        headers=api.headers,
    )


SHIFT = {
    "user": "requester@example.com",
    "starts_at": "2026-06-17T12:00:00Z",
    "ends_at": "2026-06-17T20:00:00Z",
}


@pytest.mark.django_db
def test_rota_pushed_through_the_api(rota, service_owner, other_team_user):
    schedule, _ = rota
    response = _put(token_api(service_owner), "search-primary", [SHIFT])
    assert response.status_code == 200, response.content
    assert response.json() == {
        "schedule": "search-primary",
        "created": 1,
        "kept": 0,
        "cancelled": 0,
    }
    again = _put(token_api(service_owner), "search-primary", [SHIFT])
    assert again.json()["kept"] == 1 and Shift.objects.count() == 1

    # someone else's schedule does not exist for them; nothing changes
    other = token_api(other_team_user)
    events = AuditEvent.objects.count()
    refused = _put(other, "search-primary", [])
    assert refused.status_code == 404
    assert refused["Content-Type"] == "application/problem+json"
    assert Shift.objects.filter(cancelled_at__isnull=True).count() == 1
    assert AuditEvent.objects.count() == events

    bad = _put(token_api(service_owner), "search-primary", [{**SHIFT, "user": "nobody@x.org"}])
    assert bad.status_code == 400 and "shift 1: no active person" in bad.json()["detail"]
    assert Shift.objects.filter(cancelled_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_grant_at_shift_start_revoked_at_shift_end_plus_grace(
    rota, service_owner, requester, clock
):
    schedule, prod = rota
    _put(token_api(service_owner), "search-primary", [SHIFT])
    shift = Shift.objects.get()
    clock.move_to(DAY.replace(hour=11, minute=59))
    assert oncall_sweep()["granted"] == 0
    assert not Grant.objects.exists()

    clock.move_to(DAY.replace(hour=12))
    assert oncall_sweep()["granted"] == 1
    grant = Grant.objects.get(principal=requester, entitlement=prod)
    assert grant.status == "active"
    assert grant.ends_at == DAY.replace(hour=20, minute=30)
    event = AuditEvent.objects.get(action="grant.birthright", target_id=str(grant.pk))
    assert event.actor_label == "system:oncall"
    assert event.after["bundle"] == shift.label
    assert event.after["origin"] == "oncall"
    assert oncall_sweep()["granted"] == 0  # idempotent

    clock.move_to(DAY.replace(hour=20, minute=29))
    assert oncall_sweep()["revoked"] == 0
    clock.move_to(DAY.replace(hour=20, minute=30))
    assert oncall_sweep()["revoked"] == 1
    grant.refresh_from_db()
    assert grant.status == "revoked"
    revoke = AuditEvent.objects.filter(target_id=str(grant.pk), action="grant.revoke").get()
    assert revoke.actor_label == "system:oncall"
    assert revoke.reason == f"the on-call shift ended: {shift.label}"
    assert ShiftGrant.objects.get().ended_at is not None


@pytest.mark.django_db
def test_a_cancelled_shift_revokes_at_once(rota, service_owner, requester, clock):
    _put(token_api(service_owner), "search-primary", [SHIFT])
    clock.move_to(DAY.replace(hour=13))
    oncall_sweep()
    _put(token_api(service_owner), "search-primary", [])
    assert oncall_sweep()["revoked"] == 1
    assert Grant.objects.get().status == "revoked"


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//tollgate tests//EN
BEGIN:VEVENT
UID:shift-1@rota
DTSTART:20260617T120000Z
DTEND:20260617T200000Z
SUMMARY:Search primary
ATTENDEE;CN=Requester:mailto:requester@example.com
END:VEVENT
BEGIN:VEVENT
UID:shift-2@rota
DTSTART:20260617T200000Z
DTEND:20260618T040000Z
SUMMARY:Search primary: manager@example.com
END:VEVENT
END:VCALENDAR
"""


@pytest.mark.django_db
def test_rota_imported_from_icalendar(rota, service_owner, requester, manager):
    schedule, _ = rota
    counts = rota_import_ical(actor=service_owner, schedule=schedule, text=ICS)
    assert counts == {"created": 2, "kept": 0, "cancelled": 0}
    shifts = list(Shift.objects.order_by("starts_at"))
    assert [(s.user.email, s.source, s.external_id) for s in shifts] == [
        ("requester@example.com", "ical", "shift-1@rota"),
        ("manager@example.com", "ical", "shift-2@rota"),
    ]
    assert shifts[1].ends_at == dt.datetime(2026, 6, 18, 4, tzinfo=UTC)
    from portal.core.errors import ValidationError

    with pytest.raises(ValidationError, match="recurring"):
        rota_import_ical(
            actor=service_owner,
            schedule=schedule,
            text=ICS.replace("SUMMARY:Search primary\n", "SUMMARY:x\nRRULE:FREQ=DAILY\n"),
        )
    assert Shift.objects.count() == 2


@pytest.mark.django_db
def test_policy_approves_the_person_on_call_and_the_grant_ends_with_the_shift(
    rota, service_owner, requester, manager, clock
):
    schedule, _ = rota
    policy = make_policy("oncall", [("manager", 1)], auto_approve_on_call=True)
    logs = make_entitlement(schedule.service, slug="prod-logs", risk="high", policy=policy)
    _put(token_api(service_owner), "search-primary", [SHIFT])
    shift = Shift.objects.get()

    # not on shift yet: the request waits for the manager
    early = services.access_request_submit(
        actor=requester, principal=requester, entitlement=logs, justification="incident"
    )
    assert early.status == "pending"
    services.access_request_cancel(actor=requester, request_id=early.pk)

    clock.move_to(DAY.replace(hour=12, minute=5))
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=logs, justification="incident"
    )
    assert req.status == AccessRequest.Status.APPROVED
    assert req.auto_approval_reason.startswith(f"on call: shift #{shift.pk} of search-primary")
    oncall_sweep()
    grant = Grant.objects.get(entitlement=logs)
    assert ShiftGrant.objects.filter(grant=grant, shift=shift).exists()
    clock.move_to(DAY.replace(hour=20, minute=30))
    oncall_sweep()
    grant.refresh_from_db()
    assert grant.status == "revoked"


@pytest.mark.django_db
def test_only_owners_and_admins_define_a_schedule(org, other_team_user):
    from portal.core.errors import NotPermitted

    svc = make_service(org["search"], slug="s")
    with pytest.raises(NotPermitted):
        schedule_save(actor=other_team_user, slug="x", name="X", service=svc)
    assert not Schedule.objects.exists()


def _stage_policy(slug, flags):
    """Stages in order: (kind, on-call flag)."""
    from access.models import ApprovalPolicy, PolicyStage

    policy = ApprovalPolicy.objects.create(slug=slug, name=slug.title())
    for order, (kind, on_call) in enumerate(flags):
        PolicyStage.objects.create(
            policy=policy, order=order, approver_kind=kind, auto_approve_on_call=on_call
        )
    return policy


@pytest.mark.django_db
def test_a_stage_passes_the_person_on_call_and_the_others_still_need_approvers(
    rota, service_owner, requester, manager, clock
):
    schedule, _ = rota
    first = _stage_policy("oncall-first", [("service_owner", True), ("manager", False)])
    last = _stage_policy("oncall-last", [("manager", False), ("service_owner", True)])
    logs = make_entitlement(schedule.service, slug="prod-logs", risk="high", policy=first)
    shell = make_entitlement(schedule.service, slug="prod-db", risk="high", policy=last)
    _put(token_api(service_owner), "search-primary", [SHIFT])
    shift = Shift.objects.get()

    # off shift (before it starts): the flagged stage waits for the service owners
    early = services.access_request_submit(
        actor=requester, principal=requester, entitlement=logs, justification="incident"
    )
    assert (early.status, early.current_stage) == ("pending", 0)
    assert not AuditEvent.objects.filter(
        action="request.approval_given", target_id=str(early.pk)
    ).exists()
    services.access_request_cancel(actor=requester, request_id=early.pk)

    clock.move_to(DAY.replace(hour=12, minute=5))
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=logs, justification="incident"
    )
    # the on-call stage passed by the system, naming the shift; the manager's stage waits
    assert (req.status, req.current_stage) == ("pending", 1)
    assert req.auto_approval_reason == ""
    given = AuditEvent.objects.get(action="request.approval_given", target_id=str(req.pk))
    assert given.actor_label == "system:oncall"
    assert given.after["stage"] == 1 and given.after["on_call_shift"] == shift.pk
    assert given.reason.startswith(f"on call: shift #{shift.pk} of search-primary")
    advanced = AuditEvent.objects.get(action="request.advance", target_id=str(req.pk))
    assert advanced.actor_label == "system:oncall"
    with pytest.raises(Exception, match="not an approver"):
        services.access_request_approve(actor=service_owner, request_id=req.pk)
    services.access_request_approve(actor=manager, request_id=req.pk)
    req.refresh_from_db()
    assert req.status == "approved"

    # flagged last: the manager approves, and entering the on-call stage approves it
    second = services.access_request_submit(
        actor=requester, principal=requester, entitlement=shell, justification="incident"
    )
    assert (second.status, second.current_stage) == ("pending", 0)
    services.access_request_approve(actor=manager, request_id=second.pk)
    second.refresh_from_db()
    assert second.status == "approved"
    approved = AuditEvent.objects.get(action="request.approve", target_id=str(second.pk))
    assert approved.actor_label == "system:oncall"
    assert Grant.objects.filter(entitlement=shell, principal=requester).exists()

    # after the shift: the flagged stage waits again
    clock.move_to(DAY.replace(hour=21))
    metrics = make_entitlement(schedule.service, slug="metrics", risk="high", policy=first)
    late = services.access_request_submit(
        actor=requester, principal=requester, entitlement=metrics, justification="after"
    )
    assert (late.status, late.current_stage) == ("pending", 0)


@pytest.mark.django_db
def test_a_request_waiting_at_the_on_call_stage_passes_when_the_shift_begins(
    rota, service_owner, requester, manager, clock
):
    schedule, _ = rota
    first = _stage_policy("oncall-wait", [("service_owner", True), ("manager", False)])
    logs = make_entitlement(schedule.service, slug="prod-logs", risk="high", policy=first)
    _put(token_api(service_owner), "search-primary", [SHIFT])
    shift = Shift.objects.get()
    # submitted before the shift: the on-call stage waits for the service owners
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=logs, justification="handover"
    )
    assert (req.status, req.current_stage) == ("pending", 0)
    assert oncall_sweep()["stages_passed"] == 0  # not on shift yet: nothing passes

    clock.move_to(DAY.replace(hour=12, minute=1))
    assert oncall_sweep()["stages_passed"] == 1
    req.refresh_from_db()
    assert (req.status, req.current_stage) == ("pending", 1)  # the manager's stage still waits
    given = AuditEvent.objects.get(action="request.approval_given", target_id=str(req.pk))
    assert given.actor_label == "system:oncall"
    assert given.after["on_call_shift"] == shift.pk
    # the next sweep finds nothing more to pass (the manager's stage is not an on-call stage)
    assert oncall_sweep()["stages_passed"] == 0
    services.access_request_approve(actor=manager, request_id=req.pk)
    req.refresh_from_db()
    assert req.status == "approved"
