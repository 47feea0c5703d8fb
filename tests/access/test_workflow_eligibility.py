"""Who may decide: no self-approval, no approval of a request one made on
someone's behalf, eligibility re-checked at decision time, separation of duties, delegation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from access import services, workflow
from access.models import Approval, ApprovalAssignment, Delegation, Grant
from accounts.models import Membership
from portal.core.errors import Conflict, NotPermitted, ValidationError
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


def submit(actor, ent, principal=None, days=7):
    return services.access_request_submit(
        actor=actor,
        principal=principal or actor,
        entitlement=ent,
        justification="work",
        duration_days=days,
    )


# --- Self-approval and on-behalf ---------------------------------------------------------------
@pytest.mark.sqlite
def test_nobody_approves_their_own_request(org, requester, manager):
    # The service belongs to the requester's own team, so they are in the owner stage.
    ent = make_entitlement(
        make_service(org["payments"]), policy=make_policy("owner", [("service_owner", 1)])
    )
    req = submit(requester, ent)
    assert requester.pk not in workflow.eligible_approvers(request=req)
    assert not ApprovalAssignment.objects.filter(request=req, approver=requester).exists()
    for attempt in (
        lambda: services.access_request_approve(actor=requester, request_id=req.pk),
        lambda: services.access_request_deny(actor=requester, request_id=req.pk, reason="x"),
    ):
        before = snapshot(req)
        with pytest.raises(NotPermitted):
            attempt()
        assert snapshot(req) == before
    services.access_request_approve(actor=manager, request_id=req.pk)
    req.refresh_from_db()
    assert req.status == "approved"


def test_a_manager_requesting_for_a_report_cannot_approve_it(org, requester, manager):
    director = make_user("director@example.com", team=org["platform"])
    manager.manager = director
    manager.save(update_fields=["manager"])
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    req = submit(manager, ent, principal=requester)
    assert (req.requester_id, req.principal_id) == (manager.pk, requester.pk)
    # The manager stage goes to the next manager up, never to the one who asked.
    assert set(workflow.eligible_approvers(request=req)) == {director.pk}
    for person in (manager, requester):
        before = snapshot(req)
        with pytest.raises(NotPermitted):
            services.access_request_approve(actor=person, request_id=req.pk)
        assert snapshot(req) == before
    services.access_request_approve(actor=director, request_id=req.pk)
    req.refresh_from_db()
    assert req.status == "approved"
    assert Grant.objects.get(request=req).principal_id == requester.pk


def test_an_on_behalf_request_nobody_else_can_approve_is_refused_at_submit(org, requester, manager):
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    before = snapshot()
    with pytest.raises(ValidationError, match=r"needs 1 approver\(s\) but only 0"):
        submit(manager, ent, principal=requester)
    assert snapshot() == before


def test_on_behalf_excludes_the_requester_from_an_owner_stage_too(org, requester, manager):
    colleague = make_user("colleague@example.com", team=org["payments"], manager=manager)
    ent = make_entitlement(
        make_service(org["payments"]), policy=make_policy("owner", [("service_owner", 1)])
    )
    req = submit(manager, ent, principal=requester)
    assert set(workflow.eligible_approvers(request=req)) == {colleague.pk}
    before = snapshot(req)
    with pytest.raises(NotPermitted):
        services.access_request_approve(actor=manager, request_id=req.pk)
    assert snapshot(req) == before


def test_only_managers_request_on_behalf_and_only_for_their_reports(
    org, requester, manager, other_team_user
):
    ent = make_entitlement(make_service(org["search"]), policy=make_policy("mgr", [("manager", 1)]))
    before = snapshot()
    with pytest.raises(NotPermitted) as exc:
        submit(other_team_user, ent, principal=requester)
    assert exc.value.field == "principal"
    with pytest.raises(NotPermitted):
        submit(requester, ent, principal=manager)
    assert snapshot() == before


# --- Eligibility at decision time ------------------------------------------------------------
def test_an_approver_removed_from_the_owner_team_after_assignment_is_refused(
    org, requester, service_owner
):
    ent = make_entitlement(
        make_service(org["search"]), policy=make_policy("owner", [("service_owner", 1)])
    )
    req = submit(requester, ent)
    assert ApprovalAssignment.objects.filter(request=req, approver=service_owner).exists()
    # They move to another team after the request was assigned to them.
    Membership.objects.filter(user=service_owner, team=org["search"]).delete()
    service_owner.team = org["other"]
    service_owner.save(update_fields=["team"])
    before = snapshot(req)
    with pytest.raises(NotPermitted, match="not an approver"):
        services.access_request_approve(actor=service_owner, request_id=req.pk)
    with pytest.raises(NotPermitted, match="not an approver"):
        services.access_request_deny(actor=service_owner, request_id=req.pk, reason="x")
    assert snapshot(req) == before


def test_a_deactivated_approver_is_refused(org, requester, manager):
    ent = make_entitlement(
        make_service(org["search"]), policy=make_users_policy("named", [manager], required=1)
    )
    req = submit(requester, ent)
    manager.is_active = False
    manager.save(update_fields=["is_active"])
    before = snapshot(req)
    with pytest.raises(NotPermitted):
        services.access_request_approve(actor=manager, request_id=req.pk)
    assert snapshot(req) == before


# --- Separation of duties --------------------------------------------------------------------
@pytest.fixture
def toxic(org, security):
    service = make_service(org["search"], slug="ledger")
    policy = make_policy("mgr", [("manager", 1)])
    create = make_entitlement(service, slug="create-payment", policy=policy)
    approve = make_entitlement(service, slug="approve-payment", policy=policy)
    services.toxic_pair_create(actor=security, first=create, second=approve, reason="maker-checker")
    return create, approve


@pytest.mark.sqlite
def test_sod_refuses_a_toxic_combination_at_request_time(requester, toxic):
    create, approve = toxic
    grant_directly(requester, create)
    before = snapshot()
    with pytest.raises(
        ValidationError,
        match="separation of duties: ledger/approve-payment with ledger/create-payment: maker-checker",
    ):
        submit(requester, approve)
    assert snapshot() == before


def test_sod_counts_a_pending_request_for_the_other_half(requester, toxic):
    create, approve = toxic
    submit(requester, create)
    before = snapshot()
    with pytest.raises(ValidationError, match="separation of duties"):
        submit(requester, approve)
    assert snapshot() == before


def test_sod_routes_to_security_when_the_policy_says_so(org, requester, manager, security, toxic):
    create, _ = toxic
    policy = make_policy("route", [("manager", 1)], sod_action="security")
    policy.auto_approve_users.set(
        [requester]
    )  # allow-listed, yet a toxic pair is never auto-approved
    ent = make_entitlement(create.service, slug="approve-refund", policy=policy)
    services.toxic_pair_create(
        actor=security, first=create, second=ent, reason="refund maker-checker"
    )
    grant_directly(requester, create)
    req = submit(requester, ent)
    assert req.status == "pending"
    assert req.routed_to_security is True
    assert req.auto_approval_reason == ""
    assert [(s["kind"], s["source"]) for s in req.stages] == [
        ("manager", "policy:route"),
        ("security", "sod"),
    ]
    services.access_request_approve(actor=manager, request_id=req.pk)
    req.refresh_from_db()
    assert req.current_stage == 1
    assert set(workflow.eligible_approvers(request=req)) == {security.pk}
    services.access_request_approve(
        actor=security, request_id=req.pk, reason="compensating control in place"
    )
    req.refresh_from_db()
    assert req.status == "approved"


def test_only_security_or_admins_declare_toxic_pairs(org, requester, toxic):
    create, approve = toxic
    other = make_entitlement(create.service, slug="other")
    before = snapshot()
    with pytest.raises(NotPermitted):
        services.toxic_pair_create(actor=requester, first=create, second=other, reason="x")
    assert snapshot() == before


# --- Delegation --------------------------------------------------------------------------------
@pytest.fixture
def owner_request(org, requester, service_owner):
    ent = make_entitlement(
        make_service(org["search"]), policy=make_policy("owner", [("service_owner", 1)])
    )
    return submit(requester, ent)


@pytest.mark.sqlite
def test_a_delegate_approves_within_the_date_range(service_owner, other_team_user, owner_request):
    today = timezone.localdate()
    services.delegation_create(
        actor=service_owner,
        delegate=other_team_user,
        starts_on=today,
        ends_on=today + timedelta(days=3),
        reason="holiday",
    )
    assert (
        workflow.eligible_approvers(request=owner_request)[other_team_user.pk] == service_owner.pk
    )
    services.access_request_approve(
        actor=other_team_user, request_id=owner_request.pk, reason="for Olive"
    )
    approval = Approval.objects.get(request=owner_request)
    assert (approval.approver_id, approval.on_behalf_of_id) == (
        other_team_user.pk,
        service_owner.pk,
    )
    owner_request.refresh_from_db()
    assert owner_request.status == "approved"


def test_a_delegation_that_has_not_started_gives_no_right(
    service_owner, other_team_user, owner_request
):
    tomorrow = timezone.localdate() + timedelta(days=1)
    services.delegation_create(
        actor=service_owner,
        delegate=other_team_user,
        starts_on=tomorrow,
        ends_on=tomorrow + timedelta(days=3),
    )
    before = snapshot(owner_request)
    with pytest.raises(NotPermitted):
        services.access_request_approve(actor=other_team_user, request_id=owner_request.pk)
    assert snapshot(owner_request) == before


def test_an_ended_delegation_gives_no_right(service_owner, other_team_user, owner_request):
    today = timezone.localdate()
    delegation = services.delegation_create(
        actor=service_owner,
        delegate=other_team_user,
        starts_on=today,
        ends_on=today + timedelta(days=3),
    )
    assert other_team_user.pk in workflow.eligible_approvers(request=owner_request)
    services.delegation_end(actor=service_owner, delegation_id=delegation.pk)
    assert Delegation.objects.get(pk=delegation.pk).ends_on == today - timedelta(days=1)
    before = snapshot(owner_request)
    with pytest.raises(NotPermitted):
        services.access_request_approve(actor=other_team_user, request_id=owner_request.pk)
    assert snapshot(owner_request) == before


def test_a_delegate_never_approves_their_own_request(org, requester, service_owner, owner_request):
    today = timezone.localdate()
    services.delegation_create(
        actor=service_owner, delegate=requester, starts_on=today, ends_on=today + timedelta(days=3)
    )
    assert requester.pk not in workflow.eligible_approvers(request=owner_request)
    before = snapshot(owner_request)
    with pytest.raises(NotPermitted):
        services.access_request_approve(actor=requester, request_id=owner_request.pk)
    assert snapshot(owner_request) == before


def test_a_delegate_and_their_delegator_count_once_toward_n_of_m(org, requester):
    u1, u2, u3 = (make_user(f"dba{i}@example.com", team=org["other"]) for i in (1, 2, 3))
    stand_in = make_user("standin@example.com", team=org["other"])
    ent = make_entitlement(
        make_service(org["search"]), policy=make_users_policy("two", [u1, u2, u3], required=2)
    )
    req = submit(requester, ent)
    today = timezone.localdate()
    services.delegation_create(actor=u1, delegate=stand_in, starts_on=today, ends_on=today)
    services.access_request_approve(actor=u1, request_id=req.pk)
    before = snapshot(req)
    with pytest.raises(Conflict, match="already approved"):
        services.access_request_approve(actor=stand_in, request_id=req.pk)
    assert snapshot(req) == before
    services.access_request_approve(actor=u2, request_id=req.pk)
    req.refresh_from_db()
    assert req.status == "approved"


def test_delegation_validation(service_owner, other_team_user):
    today = timezone.localdate()
    before = snapshot()
    with pytest.raises(ValidationError, match="yourself"):
        services.delegation_create(
            actor=service_owner, delegate=service_owner, starts_on=today, ends_on=today
        )
    with pytest.raises(ValidationError, match="ends before it starts"):
        services.delegation_create(
            actor=service_owner,
            delegate=other_team_user,
            starts_on=today,
            ends_on=today - timedelta(days=1),
        )
    with pytest.raises(ValidationError, match="in the past"):
        services.delegation_create(
            actor=service_owner,
            delegate=other_team_user,
            starts_on=today - timedelta(days=5),
            ends_on=today - timedelta(days=1),
        )
    assert snapshot() == before
    assert Delegation.objects.count() == 0
