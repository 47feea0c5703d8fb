"""Reminders, escalation and expiry of pending requests, with a frozen
clock: ``pending_requests_sweep(now=...)`` is told the time instead of reading it."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.core import mail

from access import services, tasks, workflow
from access.models import AccessRequest, ApprovalAssignment
from audit.models import AuditEvent
from portal.core.actors import REQUEST_SWEEPER
from portal.core.errors import Conflict
from portal.core.locks import _key
from tests.conftest import make_user

from .factories import make_entitlement, make_policy, make_service, snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def director(org, manager):
    director = make_user("director@example.com", team=org["platform"])
    manager.manager = director
    manager.save(update_fields=["manager"])
    return director


@pytest.fixture
def timed_request(org, requester, manager, director):
    policy = make_policy(
        "timed",
        [("manager", 1)],
        remind_after=timedelta(hours=1),
        escalate_after=timedelta(hours=4),
        expire_after=timedelta(hours=24),
    )
    ent = make_entitlement(make_service(org["search"]), policy=policy)
    return services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=3
    )


def sweep(at):
    return services.pending_requests_sweep(now=at)


def events(req, action):
    return list(
        AuditEvent.objects.filter(
            target_type="access.accessrequest", target_id=str(req.pk), action=action
        )
    )


@pytest.mark.sqlite
def test_nothing_happens_before_the_reminder_time(timed_request):
    before = snapshot(timed_request)
    assert sweep(timed_request.created_at + timedelta(minutes=59)) == {
        "reminded": 0,
        "escalated": 0,
        "expired": 0,
    }
    assert snapshot(timed_request) == before


def test_remind_once_after_the_reminder_time(
    tricky_now, timed_request, manager, django_capture_on_commit_callbacks
):
    t = timed_request.created_at + timedelta(hours=1, seconds=1)
    assert sweep(t) == {"reminded": 1, "escalated": 0, "expired": 0}
    timed_request.refresh_from_db()
    assert timed_request.reminded_at == t
    assert timed_request.status == "pending"
    [event] = events(timed_request, "request.reminded")
    assert event.actor_label == REQUEST_SWEEPER.label
    # A second sweep does not remind again.
    before = snapshot(timed_request)
    assert sweep(t + timedelta(minutes=30)) == {"reminded": 0, "escalated": 0, "expired": 0}
    assert snapshot(timed_request) == before


def test_escalate_to_the_approvers_manager(tricky_now, timed_request, manager, director):
    assert director.pk not in workflow.eligible_approvers(request=timed_request)
    t = timed_request.stage_started_at + timedelta(hours=4)
    assert sweep(t) == {"reminded": 0, "escalated": 1, "expired": 0}
    timed_request.refresh_from_db()
    assert timed_request.escalated_at == t
    assignment = ApprovalAssignment.objects.get(request=timed_request, approver=director)
    assert (assignment.stage, assignment.escalated) == (0, True)
    [event] = events(timed_request, "request.escalated")
    assert event.after == {"stage": 1, "added_approvers": [director.email]}
    # Both the manager and the skip-level may now decide; the director does.
    assert set(workflow.eligible_approvers(request=timed_request)) == {manager.pk, director.pk}
    assert sweep(t + timedelta(hours=1)) == {"reminded": 0, "escalated": 0, "expired": 0}
    services.access_request_approve(
        actor=director, request_id=timed_request.pk, reason="manager away"
    )
    timed_request.refresh_from_db()
    assert timed_request.status == "approved"


def test_expire_after_the_expiry_time(tricky_now, timed_request, manager):
    t = timed_request.created_at + timedelta(hours=24)
    assert sweep(t) == {"reminded": 0, "escalated": 0, "expired": 1}
    timed_request.refresh_from_db()
    assert (timed_request.status, timed_request.decided_at) == ("expired", t)
    [event] = events(timed_request, "request.expire")
    assert (event.actor_label, event.before, event.after) == (
        REQUEST_SWEEPER.label,
        {"status": "pending"},
        {"status": "expired"},
    )
    before = snapshot(timed_request)
    with pytest.raises(Conflict, match="already expired"):
        services.access_request_approve(actor=manager, request_id=timed_request.pk)
    assert sweep(t + timedelta(days=1)) == {"reminded": 0, "escalated": 0, "expired": 0}
    assert snapshot(timed_request) == before


def test_a_new_stage_restarts_the_reminder_clock(org, requester, manager, service_owner, director):
    policy = make_policy(
        "two-timed",
        [("manager", 1), ("service_owner", 1)],
        remind_after=timedelta(hours=1),
        escalate_after=timedelta(hours=4),
        expire_after=timedelta(days=3),
    )
    ent = make_entitlement(make_service(org["search"]), policy=policy)
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=3
    )
    assert sweep(req.created_at + timedelta(hours=2))["reminded"] == 1
    services.access_request_approve(actor=manager, request_id=req.pk)
    req.refresh_from_db()
    assert (req.current_stage, req.reminded_at) == (1, None)
    assert sweep(req.stage_started_at + timedelta(minutes=30))["reminded"] == 0
    assert sweep(req.stage_started_at + timedelta(hours=1))["reminded"] == 1


def test_the_default_policy_times_apply_to_entitlements_without_a_policy(org, requester, manager):
    make_policy("default", [("manager", 1)], expire_after=timedelta(days=2))
    ent = make_entitlement(make_service(org["search"]))
    req = services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=3
    )
    assert req.stages[0]["source"] == "policy:default"
    assert sweep(req.created_at + timedelta(days=2))["expired"] == 1
    assert AccessRequest.objects.get(pk=req.pk).status == "expired"


def test_the_beat_task_runs_the_sweep_and_notifies_after_commit(
    timed_request, manager, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from django.utils import timezone

    settings.CHAT_WEBHOOK_URL = ""
    later = timed_request.created_at + timedelta(hours=1, minutes=5)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep_pending_requests.delay()
    timed_request.refresh_from_db()
    assert timed_request.reminded_at == later
    [message] = mail.outbox
    assert message.to == [manager.email]
    assert (
        message.subject
        == f"[Tollgate] Request #{timed_request.pk} still waits on your approval: billing-db/read"
    )


def test_the_beat_task_skips_while_another_run_holds_the_lock(timed_request):
    """Two beats never overlap: a run that cannot take the advisory lock does nothing."""
    db = settings.DATABASES["default"]
    from django.db import connection

    assert connection.vendor == "postgresql"
    other = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=connection.settings_dict["NAME"],
        autocommit=True,
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [_key("access.sweep_pending_requests")])
        AccessRequest.objects.filter(pk=timed_request.pk).update(
            created_at=timed_request.created_at - timedelta(days=2)
        )
        before = snapshot(timed_request)
        tasks.sweep_pending_requests.delay()
        assert snapshot(timed_request) == before
        other.execute("SELECT pg_advisory_unlock(%s)", [_key("access.sweep_pending_requests")])
        tasks.sweep_pending_requests.delay()
        assert AccessRequest.objects.get(pk=timed_request.pk).status == "expired"
    finally:
        other.close()
