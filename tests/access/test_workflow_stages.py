"""Approval policies: stages in order, N of M, denial, auto-approval,
durations, prerequisites, one open request / one held grant, extensions, transitions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from access import services
from access.models import AccessRequest, Approval, ApprovalAssignment, Grant
from access.state import REQUEST_TRANSITIONS
from audit.models import AuditEvent
from portal.core.actors import AUTO_APPROVAL
from portal.core.errors import Conflict, InvalidTransition, NotPermitted, ValidationError
from portal.core.state import next_state, transition
from tests.conftest import make_user

from .factories import (
    grant_directly,
    make_entitlement,
    make_policy,
    make_service,
    make_users_policy,
    snapshot,
)

pytestmark = pytest.mark.django_db


def request_actions(req) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_type="access.accessrequest", target_id=str(req.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def submit(actor, ent, principal=None, days=7, why="needed for the migration"):
    return services.access_request_submit(
        actor=actor,
        principal=principal or actor,
        entitlement=ent,
        justification=why,
        duration_days=days,
    )


# --- Stages in order ------------------------------------------------------------------------
def test_stages_run_in_order_and_only_the_current_stage_decides(
    org, requester, manager, service_owner, security
):
    policy = make_policy("three-stage", [("manager", 1), ("service_owner", 1), ("security", 1)])
    ent = make_entitlement(make_service(org["search"]), risk="high", policy=policy)
    req = submit(requester, ent)
    assert [s["kind"] for s in req.stages] == ["manager", "service_owner", "security"]
    assert set(
        ApprovalAssignment.objects.filter(request=req).values_list("stage", "approver_id")
    ) == {(0, manager.pk)}

    # The owner and security may not jump the queue.
    for early in (service_owner, security):
        before = snapshot(req)
        with pytest.raises(NotPermitted, match=r"stage 1 \(The principal.s manager\)"):
            services.access_request_approve(actor=early, request_id=req.pk)
        assert snapshot(req) == before

    services.access_request_approve(actor=manager, request_id=req.pk, reason="fine")
    req.refresh_from_db()
    assert (req.status, req.current_stage) == ("pending", 1)
    assert set(
        ApprovalAssignment.objects.filter(request=req, stage=1).values_list(
            "approver_id", flat=True
        )
    ) == {service_owner.pk}

    before = snapshot(req)
    with pytest.raises(NotPermitted):
        services.access_request_approve(actor=security, request_id=req.pk)
    assert snapshot(req) == before

    services.access_request_approve(actor=service_owner, request_id=req.pk)
    req.refresh_from_db()
    assert (req.status, req.current_stage) == ("pending", 2)
    services.access_request_approve(actor=security, request_id=req.pk, reason="no SoD issue")
    req.refresh_from_db()
    assert req.status == "approved"
    grant = Grant.objects.get(request=req)
    assert grant.status == "active"
    assert grant.approved_by == [manager.email, service_owner.email, security.email]
    assert request_actions(req) == [
        "request.submitted",
        "request.approval_given",
        "request.advance",
        "request.approval_given",
        "request.advance",
        "request.approval_given",
        "request.approve",
    ]


# --- N of M ------------------------------------------------------------------------------
def test_two_of_three_named_users(org, requester, service_owner):
    u1, u2, u3 = (make_user(f"dba{i}@example.com", team=org["other"]) for i in (1, 2, 3))
    ent = make_entitlement(
        make_service(org["search"]),
        risk="high",
        policy=make_users_policy("dba-two", [u1, u2, u3], required=2),
    )
    req = submit(requester, ent)
    assert set(
        ApprovalAssignment.objects.filter(request=req).values_list("approver_id", flat=True)
    ) == {u1.pk, u2.pk, u3.pk}

    before = snapshot(req)
    with pytest.raises(NotPermitted):
        services.access_request_approve(actor=service_owner, request_id=req.pk)
    assert snapshot(req) == before

    services.access_request_approve(actor=u1, request_id=req.pk)
    req.refresh_from_db()
    assert (req.status, req.current_stage) == ("pending", 0)
    assert not Grant.objects.filter(request=req).exists()

    before = snapshot(req)
    with pytest.raises(Conflict, match="already approved"):
        services.access_request_approve(actor=u1, request_id=req.pk)
    assert snapshot(req) == before

    services.access_request_approve(actor=u3, request_id=req.pk)
    req.refresh_from_db()
    assert req.status == "approved"
    assert Grant.objects.get(request=req).approved_by == [u1.email, u3.email]
    with pytest.raises(Conflict, match="already approved"):
        services.access_request_approve(actor=u2, request_id=req.pk)


def test_a_users_stage_that_cannot_reach_its_quorum_is_refused_at_submit(org, requester):
    u1 = make_user("solo@example.com", team=org["other"])
    ent = make_entitlement(
        make_service(org["search"]),
        policy=make_users_policy("needs-two", [u1, requester], required=2),
    )
    before = snapshot()
    with pytest.raises(ValidationError, match=r"needs 2 approver\(s\) but only 1"):
        submit(requester, ent)
    assert snapshot() == before


# --- Denial at any stage ----------------------------------------------------------------------
@pytest.mark.sqlite
@pytest.mark.parametrize("deny_at", [0, 1])
def test_a_denial_at_any_stage_ends_the_request(org, requester, manager, service_owner, deny_at):
    ent = make_entitlement(
        make_service(org["search"]),
        risk="medium",
        policy=make_policy("two-stage", [("manager", 1), ("service_owner", 1)]),
    )
    req = submit(requester, ent)
    deciders = [manager, service_owner]
    for stage in range(deny_at):
        services.access_request_approve(actor=deciders[stage], request_id=req.pk)
    services.access_request_deny(
        actor=deciders[deny_at], request_id=req.pk, reason="not for this project"
    )
    req.refresh_from_db()
    assert req.status == "denied"
    assert req.current_stage == deny_at
    assert req.decision_reason == "not for this project"
    assert req.decided_at is not None
    assert not Grant.objects.filter(request=req).exists()
    assert (
        Approval.objects.filter(request=req, decision="deny")
        .values_list("approver_id", flat=True)
        .get()
        == deciders[deny_at].pk
    )
    assert request_actions(req)[-1] == "request.deny"
    # Nobody can revive it, at the stage it was denied or any other.
    for person in deciders:
        before = snapshot(req)
        with pytest.raises(Conflict, match="already denied"):
            services.access_request_approve(actor=person, request_id=req.pk)
        assert snapshot(req) == before


def test_a_denial_needs_a_reason(org, requester, manager):
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    req = submit(requester, ent)
    before = snapshot(req)
    with pytest.raises(ValidationError, match="reason"):
        services.access_request_deny(actor=manager, request_id=req.pk, reason="  ")
    assert snapshot(req) == before


# --- Auto-approval ----------------------------------------------------------------------------
@pytest.fixture
def payments_peers(org, manager, requester):
    """The requester's team: the manager plus three peers (four peers in all)."""
    return [
        make_user(f"peer{i}@example.com", team=org["payments"], manager=manager) for i in (1, 2, 3)
    ]


def peer_policy():
    return make_policy(
        "low-peers",
        [("manager", 1)],
        auto_approve_max_risk="low",
        auto_approve_peer_ratio=Decimal("0.5"),
    )


@pytest.mark.sqlite
def test_auto_approval_when_enough_peers_hold_it(org, requester, manager, payments_peers):
    ent = make_entitlement(make_service(org["search"]), risk="low", policy=peer_policy())
    for peer in payments_peers[:2]:  # 2 of 4 peers = 50%
        grant_directly(peer, ent)
    req = submit(requester, ent)
    assert req.status == "approved"
    assert (
        req.auto_approval_reason
        == "auto-approved: low risk and held by 50% of the team (2 of 4; policy needs 50%)"
    )
    assert Approval.objects.filter(request=req).count() == 0
    assert ApprovalAssignment.objects.filter(request=req).count() == 0
    grant = Grant.objects.get(request=req)
    assert grant.status == "active"
    assert grant.approved_by == [AUTO_APPROVAL.label]
    assert "held by 50%" in grant.reason
    assert request_actions(req) == ["request.submitted", "request.approve"]
    approve_event = AuditEvent.objects.get(
        target_type="access.accessrequest", target_id=str(req.pk), action="request.approve"
    )
    assert approve_event.actor_label == AUTO_APPROVAL.label
    assert approve_event.reason == req.auto_approval_reason


def test_no_auto_approval_below_the_peer_ratio(org, requester, manager, payments_peers):
    ent = make_entitlement(make_service(org["search"]), risk="low", policy=peer_policy())
    grant_directly(payments_peers[0], ent)  # 1 of 4 = 25%
    req = submit(requester, ent)
    assert (req.status, req.auto_approval_reason) == ("pending", "")
    assert not Grant.objects.filter(principal=requester).exists()
    assert list(
        ApprovalAssignment.objects.filter(request=req).values_list("approver_id", flat=True)
    ) == [manager.pk]


def test_no_auto_approval_above_the_maximum_risk(org, requester, manager, payments_peers):
    ent = make_entitlement(make_service(org["search"]), risk="medium", policy=peer_policy())
    for person in [*payments_peers, manager]:  # 100% of peers hold it
        grant_directly(person, ent)
    req = submit(requester, ent)
    assert (req.status, req.auto_approval_reason) == ("pending", "")
    assert not Grant.objects.filter(principal=requester).exists()


def test_auto_approval_by_allow_list(org, requester, manager, payments_peers):
    policy = make_policy("allow", [("manager", 1)])
    policy.auto_approve_users.set([requester])
    ent = make_entitlement(make_service(org["search"]), risk="high", policy=policy)
    req = submit(requester, ent)
    assert req.status == "approved"
    assert (
        req.auto_approval_reason
        == "auto-approved: requester@example.com is on the allow list of policy allow"
    )
    assert Grant.objects.get(request=req).status == "active"
    other = submit(payments_peers[0], ent)
    assert (other.status, other.auto_approval_reason) == ("pending", "")


# --- Durations -------------------------------------------------------------------------------
@pytest.mark.sqlite
def test_duration_above_the_maximum_is_refused_naming_the_maximum(org, requester):
    ent = make_entitlement(
        make_service(org["search"]), max_days=14, policy=make_policy("mgr", [("manager", 1)])
    )
    before = snapshot()
    with pytest.raises(ValidationError, match="exceeds the maximum of 14 days") as exc:
        submit(requester, ent, days=15)
    assert exc.value.field == "duration_days"
    assert snapshot() == before
    with pytest.raises(ValidationError, match="at least 1"):
        submit(requester, ent, days=0)
    assert snapshot() == before
    req = submit(requester, ent, days=14)
    assert req.duration_days == 14


def test_the_grant_lasts_the_requested_duration(org, requester, manager):
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    req = submit(requester, ent, days=10)
    services.access_request_approve(actor=manager, request_id=req.pk)
    grant = Grant.objects.get(request=req)
    assert grant.ends_at - grant.starts_at == timedelta(days=10)


# --- Prerequisites ---------------------------------------------------------------------------
def test_prerequisites_must_be_held(org, requester, manager):
    service = make_service(org["search"])
    policy = make_policy("mgr", [("manager", 1)])
    vpn = make_entitlement(service, slug="vpn", policy=policy)
    prod = make_entitlement(service, slug="prod-read", policy=policy)
    prod.prerequisites.set([vpn])
    before = snapshot()
    with pytest.raises(ValidationError, match="missing prerequisite access: billing-db/vpn") as exc:
        submit(requester, prod)
    assert exc.value.field == "entitlement"
    assert snapshot() == before
    # A pending request for the prerequisite is not enough either.
    vpn_req = submit(requester, vpn)
    with pytest.raises(ValidationError, match="missing prerequisite"):
        submit(requester, prod)
    services.access_request_approve(actor=manager, request_id=vpn_req.pk)
    assert submit(requester, prod).status == "pending"


# --- One open request, one held grant, extensions ------------------------------------------------
@pytest.mark.sqlite
def test_one_open_request_per_principal_and_entitlement(org, requester, manager):
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    first = submit(requester, ent)
    before = snapshot(first)
    with pytest.raises(Conflict, match="already has an open request") as exc:
        submit(requester, ent)
    assert exc.value.field == "entitlement"
    # The manager asking for the same thing on the report's behalf is the same (principal, entitlement).
    with pytest.raises(Conflict, match="already has an open request"):
        submit(manager, ent, principal=requester)
    assert snapshot(first) == before
    services.access_request_cancel(actor=requester, request_id=first.pk, reason="typo")
    assert submit(requester, ent).status == "pending"


def test_a_held_grant_turns_a_new_request_into_an_extension_that_moves_ends_at(
    org, requester, manager
):
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    grant = grant_directly(requester, ent, days=5)
    old_end = grant.ends_at
    req = submit(requester, ent, days=30)
    assert (req.kind, req.extends_grant_id) == ("extension", grant.pk)
    services.access_request_approve(actor=manager, request_id=req.pk, reason="project extended")
    grant.refresh_from_db()
    assert Grant.objects.filter(principal=requester, entitlement=ent).count() == 1
    assert grant.status == "active"
    assert grant.ends_at > old_end + timedelta(days=24)
    assert abs(grant.ends_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    assert (grant.version, grant.request_id, grant.approved_by) == (2, req.pk, [manager.email])
    event = AuditEvent.objects.get(
        target_type="access.grant", target_id=str(grant.pk), action="grant.extend"
    )
    assert event.before["status"] == event.after["status"] == "active"
    assert event.before["ends_at"] != event.after["ends_at"]


def test_an_extension_never_shortens_a_grant(org, requester, manager):
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    grant = grant_directly(requester, ent, days=60)
    old_end = grant.ends_at
    req = submit(requester, ent, days=7)
    services.access_request_approve(actor=manager, request_id=req.pk)
    grant.refresh_from_db()
    assert grant.ends_at == old_end
    assert grant.version == 2


@pytest.mark.parametrize("status", ["pending", "failed"])
def test_a_grant_still_being_provisioned_refuses_a_new_request(org, requester, status):
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    grant_directly(requester, ent, status=status)
    before = snapshot()
    with pytest.raises(Conflict, match="already holds"):
        submit(requester, ent)
    assert snapshot() == before


def test_a_grant_that_appears_while_pending_is_extended_not_duplicated(org, requester, manager):
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    req = submit(requester, ent, days=20)
    assert req.kind == "new"
    other = grant_directly(requester, ent, days=2)  # e.g. break-glass access meanwhile
    services.access_request_approve(actor=manager, request_id=req.pk)
    assert list(
        Grant.objects.filter(principal=requester, entitlement=ent).values_list("pk", flat=True)
    ) == [other.pk]
    other.refresh_from_db()
    assert other.ends_at > timezone.now() + timedelta(days=19)


def test_submit_many_is_all_or_nothing(org, requester, manager):
    service = make_service(org["search"])
    policy = make_policy("mgr", [("manager", 1)])
    a, b = (
        make_entitlement(service, slug="a", policy=policy),
        make_entitlement(service, slug="b", policy=policy, max_days=5),
    )
    before = snapshot()
    with pytest.raises(ValidationError, match="maximum of 5 days"):
        services.access_request_submit_many(
            actor=requester,
            principal=requester,
            entitlements=[a, b],
            justification="x",
            duration_days=7,
        )
    assert snapshot() == before
    reqs = services.access_request_submit_many(
        actor=requester,
        principal=requester,
        entitlements=[a, b],
        justification="x",
        duration_days=5,
    )
    assert [r.entitlement_id for r in reqs] == [a.pk, b.pk]
    assert all(r.status == "pending" for r in reqs)


# --- Out-of-order transitions ------------------------------------------------------------------
def test_out_of_order_transitions_are_refused_and_change_nothing(org, requester, manager):
    policy = make_policy("mgr", [("manager", 1)])
    service = make_service(org["search"])
    cancelled = submit(requester, make_entitlement(service, slug="c", policy=policy))
    services.access_request_cancel(actor=requester, request_id=cancelled.pk)
    denied = submit(requester, make_entitlement(service, slug="d", policy=policy))
    services.access_request_deny(actor=manager, request_id=denied.pk, reason="no")
    approved = submit(requester, make_entitlement(service, slug="a", policy=policy))
    services.access_request_approve(actor=manager, request_id=approved.pk)

    attempts = [
        (
            cancelled,
            lambda r: services.access_request_approve(actor=manager, request_id=r.pk),
            "already cancelled",
        ),
        (
            cancelled,
            lambda r: services.access_request_deny(actor=manager, request_id=r.pk, reason="x"),
            "already cancelled",
        ),
        (
            denied,
            lambda r: services.access_request_cancel(actor=requester, request_id=r.pk),
            "already denied",
        ),
        (
            denied,
            lambda r: services.access_request_approve(actor=manager, request_id=r.pk),
            "already denied",
        ),
        (
            approved,
            lambda r: services.access_request_deny(actor=manager, request_id=r.pk, reason="x"),
            "already approved",
        ),
        (
            approved,
            lambda r: services.access_request_cancel(actor=requester, request_id=r.pk),
            "already approved",
        ),
    ]
    for req, attempt, message in attempts:
        before = snapshot(req)
        with pytest.raises(Conflict, match=message):
            attempt(req)
        assert snapshot(req) == before
    before = snapshot(approved)
    assert services.access_request_expire(request_id=approved.pk) is None
    assert services.access_request_remind(request_id=approved.pk) is False
    assert services.access_request_escalate(request_id=approved.pk) == []
    assert snapshot(approved) == before


def test_the_transition_table_refuses_every_pair_it_does_not_list(org, requester, manager):
    finals = ["approved", "denied", "cancelled", "expired"]
    for state in finals:
        for action in ("approve", "deny", "cancel", "expire", "advance"):
            with pytest.raises(InvalidTransition, match=f"{state} is final"):
                next_state(REQUEST_TRANSITIONS, state, action)
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    req = submit(requester, ent)
    services.access_request_cancel(actor=requester, request_id=req.pk)
    req.refresh_from_db()
    before = snapshot(req)
    with pytest.raises(
        InvalidTransition, match="cannot approve a access request that is cancelled"
    ):
        transition(
            req,
            table=REQUEST_TRANSITIONS,
            action="approve",
            actor=manager,
            audit_action="request.approve",
        )
    assert snapshot(req) == before
    assert AccessRequest.objects.get(pk=req.pk).status == "cancelled"


def test_only_the_requester_or_principal_cancels(
    org, requester, manager, service_owner, other_team_user
):
    ent = make_entitlement(
        make_service(org["search"]), policy=make_policy("owner", [("service_owner", 1)])
    )
    req = submit(manager, ent, principal=requester)
    before = snapshot(req)
    with pytest.raises(NotPermitted):
        services.access_request_cancel(actor=other_team_user, request_id=req.pk)
    assert snapshot(req) == before
    services.access_request_cancel(actor=requester, request_id=req.pk, reason="do not need it")
    req.refresh_from_db()
    assert req.status == "cancelled"
    assert request_actions(req) == ["request.submitted", "request.cancel"]
