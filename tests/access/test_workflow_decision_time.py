"""Decisions stay honest: approving re-checks, under the request's lock, that the principal
is still active, the entitlement still requestable and separation of duties against what the
principal holds and has pending now; and one person approves one stage of a request only.

Each refusal is checked through the service, the API and the inbox's bulk decision, and each
leaves everything as it was: the request pending, no approval, no grant, no sync job, no
audit event."""

from __future__ import annotations

import pytest
from django.test import Client

from access import selectors, services, workflow
from access.models import AccessRequest, Grant, SyncJob
from access.outcomes import REFUSAL_STATUS, RefusalCode
from accounts.models import Membership, User
from portal.core.errors import Conflict, NotPermitted
from tests.access.factories import make_entitlement, make_policy, make_service, snapshot
from tests.access.sync_support import fake_service
from tests.access.sync_support import fresh_fakes as fresh_fakes
from tests.api.conftest import token_api

pytestmark = pytest.mark.django_db


def submit(actor, ent, principal=None):
    return services.access_request_submit(
        actor=actor,
        principal=principal or actor,
        entitlement=ent,
        justification="needed for the quarter close",
        duration_days=7,
    )


def everything(req) -> dict:
    """What a refused approval must leave exactly as it was (sync jobs included)."""
    return {**snapshot(req), "jobs": SyncJob.objects.count()}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def bulk_approve(client, *ids):
    return client.post(
        "/approvals/bulk/", {"ids": [str(i) for i in ids], "decision": "approve", "reason": "ok"}
    )


# --- What changed since submission --------------------------------------------------------
@pytest.fixture
def pair(org, fresh_fakes):
    """Two entitlements of a service with a connector (so an approval would write a job)."""
    service = fake_service(org["search"])
    return make_entitlement(service, slug="pay"), make_entitlement(service, slug="approve-pay")


def _deactivate(user):
    User.objects.filter(pk=user.pk).update(is_active=False, status=User.Status.LEAVER)


def _unrequestable(ent):
    type(ent).objects.filter(pk=ent.pk).update(requestable=False)


CHANGES = {
    "principal-inactive": (lambda requester, ent: _deactivate(requester), "is no longer active"),
    "no-longer-requestable": (lambda requester, ent: _unrequestable(ent), "no longer requestable"),
}


@pytest.mark.parametrize("code", list(CHANGES))
def test_approval_rechecks_the_principal_and_the_entitlement(requester, manager, pair, code):
    change, words = CHANGES[code]
    req = submit(requester, pair[0])
    change(requester, pair[0])
    before = everything(req)
    with pytest.raises(Conflict, match=words) as refused:
        services.access_request_approve(actor=manager, request_id=req.pk, reason="ok")
    assert refused.value.reason_code == code
    assert REFUSAL_STATUS[RefusalCode(code)] == 409
    assert everything(req) == before
    assert AccessRequest.objects.get(pk=req.pk).status == "pending"
    assert not Grant.objects.filter(entitlement=pair[0]).exists()


def test_a_toxic_pair_completed_meanwhile_refuses_the_approval(requester, manager, security, pair):
    pay, approve_pay = pair
    first, second = submit(requester, pay), submit(requester, approve_pay)
    services.access_request_approve(actor=manager, request_id=second.pk, reason="ok")
    assert Grant.objects.get(request=second).entitlement == approve_pay
    # The pair is declared after both were submitted: the principal now holds one side.
    services.toxic_pair_create(actor=security, first=pay, second=approve_pay, reason="four eyes")
    before = everything(first)
    with pytest.raises(Conflict, match="now holds or has requested") as refused:
        services.access_request_approve(actor=manager, request_id=first.pk, reason="ok")
    assert refused.value.reason_code == RefusalCode.SEPARATION_OF_DUTIES_AT_DECISION
    assert everything(first) == before
    assert not Grant.objects.filter(request=first).exists()


def test_a_pending_other_side_of_a_toxic_pair_refuses_the_approval(
    requester, manager, security, pair
):
    pay, approve_pay = pair
    first, second = submit(requester, pay), submit(requester, approve_pay)
    services.toxic_pair_create(actor=security, first=pay, second=approve_pay, reason="four eyes")
    for req in (first, second):
        before = everything(req)
        with pytest.raises(Conflict) as refused:
            services.access_request_approve(actor=manager, request_id=req.pk, reason="ok")
        assert refused.value.reason_code == RefusalCode.SEPARATION_OF_DUTIES_AT_DECISION
        assert everything(req) == before
    # Once the other request is gone, the approval goes through.
    services.access_request_cancel(actor=requester, request_id=second.pk)
    services.access_request_approve(actor=manager, request_id=first.pk, reason="ok")
    assert AccessRequest.objects.get(pk=first.pk).status == "approved"


def test_a_request_routed_to_security_leaves_separation_of_duties_to_security(
    org, requester, manager, security, fresh_fakes
):
    service = fake_service(org["search"])
    policy = make_policy("route", [("manager", 1)], sod_action="security")
    pay = make_entitlement(service, slug="pay", policy=policy)
    approve_pay = make_entitlement(service, slug="approve-pay", policy=policy)
    services.toxic_pair_create(actor=security, first=pay, second=approve_pay, reason="four eyes")
    held = submit(requester, approve_pay)
    services.access_request_approve(actor=manager, request_id=held.pk, reason="ok")
    req = submit(requester, pay)
    assert req.routed_to_security
    services.access_request_approve(actor=manager, request_id=req.pk, reason="ok")
    services.access_request_approve(actor=security, request_id=req.pk, reason="accepted risk")
    assert AccessRequest.objects.get(pk=req.pk).status == "approved"


def test_the_api_answers_409_with_the_reason_and_changes_nothing(
    requester, manager, security, pair
):
    pay, approve_pay = pair
    inactive_req = submit(requester, pay)
    api = token_api(manager)
    _unrequestable(pay)
    before = everything(inactive_req)
    response = api.post(f"/api/v1/requests/{inactive_req.pk}/approve", {"reason": "ok"})
    assert response.status_code == 409
    assert response.json()["reason"] == "no-longer-requestable"
    assert "no longer requestable" in response.json()["detail"]
    assert everything(inactive_req) == before

    type(pay).objects.filter(pk=pay.pk).update(requestable=True)
    other = submit(requester, approve_pay)
    services.toxic_pair_create(actor=security, first=pay, second=approve_pay, reason="four eyes")
    before = everything(other)
    response = api.post(f"/api/v1/requests/{other.pk}/approve", {"reason": "ok"})
    assert response.status_code == 409
    assert response.json()["reason"] == "separation-of-duties-at-decision"
    assert everything(other) == before

    _deactivate(requester)
    before = everything(other)
    response = api.post(f"/api/v1/requests/{other.pk}/approve", {"reason": "ok"})
    assert response.status_code == 409
    assert response.json()["reason"] == "principal-inactive"
    assert everything(other) == before


@pytest.mark.parametrize("code", ["principal-inactive", "no-longer-requestable", "sod"])
def test_bulk_approval_from_the_inbox_reports_the_refusal_and_changes_nothing(
    requester, manager, security, pair, code
):
    pay, approve_pay = pair
    req = submit(requester, pay)
    if code == "sod":
        submit(requester, approve_pay)
        services.toxic_pair_create(
            actor=security, first=pay, second=approve_pay, reason="four eyes"
        )
        words = "now holds or has requested"
    else:
        CHANGES[code][0](requester, pay)
        words = CHANGES[code][1]
    client = signed_in(manager)
    before = everything(req)
    response = bulk_approve(client, req.pk)
    assert response.status_code == 302
    texts = [str(m) for m in response.wsgi_request._messages]
    assert len(texts) == 1
    assert texts[0].startswith(f"Not approved #{req.pk}: ")
    assert words in texts[0]
    assert everything(req) == before


def test_the_inbox_leaves_out_requests_of_people_who_are_no_longer_active(requester, manager, pair):
    req = submit(requester, pair[0])
    assert list(selectors.approval_inbox(viewer=manager)) == [req]
    _deactivate(requester)
    assert list(selectors.approval_inbox(viewer=manager)) == []


# --- One person, one stage ----------------------------------------------------------------
@pytest.fixture
def two_stages(org, manager):
    """Manager, then the owner team (search), of which the manager is also a member."""
    Membership.objects.create(team=org["search"], user=manager, role=Membership.Role.MEMBER)
    policy = make_policy("two", [("manager", 1), ("service_owner", 1)])
    return make_entitlement(make_service(org["search"]), risk="medium", policy=policy)


def test_the_same_person_cannot_approve_two_stages(requester, manager, service_owner, two_stages):
    req = submit(requester, two_stages)
    assert req in selectors.approval_inbox(viewer=manager)
    services.access_request_approve(actor=manager, request_id=req.pk, reason="fine")
    req.refresh_from_db()
    assert (req.status, req.current_stage) == ("pending", 1)
    # The second stage does not wait on the manager, and the inbox does not offer it.
    assert manager.pk not in workflow.eligible_approvers(request=req)
    assert req not in selectors.approval_inbox(viewer=manager)
    assert req in selectors.approval_inbox(viewer=service_owner)
    api = token_api(manager)
    before = snapshot(req)
    with pytest.raises(NotPermitted, match="already approved another stage") as refused:
        services.access_request_approve(actor=manager, request_id=req.pk, reason="me again")
    assert refused.value.reason_code == RefusalCode.APPROVED_ANOTHER_STAGE
    assert REFUSAL_STATUS[RefusalCode.APPROVED_ANOTHER_STAGE] == 403
    assert snapshot(req) == before
    response = api.post(f"/api/v1/requests/{req.pk}/approve", {"reason": "x"})
    assert response.status_code == 403
    assert response.json()["reason"] == "approved-another-stage"
    assert snapshot(req) == before
    # The stage waits for someone else.
    services.access_request_approve(actor=service_owner, request_id=req.pk, reason="ok")
    assert AccessRequest.objects.get(pk=req.pk).status == "approved"


def test_a_stage_with_only_the_first_approver_left_waits(org, requester, manager, two_stages):
    req = submit(requester, two_stages)  # the manager is the owner team's only member
    services.access_request_approve(actor=manager, request_id=req.pk, reason="fine")
    before = snapshot(req)
    with pytest.raises(NotPermitted):
        services.access_request_approve(actor=manager, request_id=req.pk, reason="again")
    assert snapshot(req) == before
    assert AccessRequest.objects.get(pk=req.pk).status == "pending"
    assert list(selectors.approval_inbox(viewer=manager)) == []


def test_a_delegate_who_approved_one_stage_cannot_approve_the_next(
    org, requester, manager, service_owner, two_stages
):
    from datetime import timedelta

    from django.utils import timezone

    from access.models import Delegation

    Membership.objects.filter(user=manager, team=org["search"]).delete()
    today = timezone.localdate()
    Delegation.objects.create(
        delegator=manager, delegate=service_owner, starts_on=today, ends_on=today + timedelta(1)
    )
    req = submit(requester, two_stages)
    services.access_request_approve(actor=service_owner, request_id=req.pk, reason="for M")
    req.refresh_from_db()
    assert req.current_stage == 1
    assert req not in selectors.approval_inbox(viewer=service_owner)
    before = snapshot(req)
    with pytest.raises(NotPermitted) as refused:
        services.access_request_approve(actor=service_owner, request_id=req.pk, reason="again")
    assert refused.value.reason_code == RefusalCode.APPROVED_ANOTHER_STAGE
    assert snapshot(req) == before
