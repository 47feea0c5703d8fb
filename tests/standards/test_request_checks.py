"""Each check kind at request time, through access.services.access_request_submit and the preview."""

from __future__ import annotations

import pytest

from access import workflow
from access.models import AccessRequest, Grant
from access.services import access_request_submit
from accounts.models import Membership
from portal.core.errors import ValidationError
from tests.access.factories import grant_directly, make_entitlement, make_policy, make_service
from tests.conftest import make_user

from .support import apply, standard

pytestmark = pytest.mark.django_db


@pytest.fixture
def vault(org):
    """A tier-0 service owned by search, with a critical admin entitlement (max 90 days)."""
    service = make_service(org["search"], slug="vault", tier=0)
    return {
        "service": service,
        "admin": make_entitlement(service, "admin", risk="critical", max_days=90),
        "write": make_entitlement(service, "write", risk="medium", max_days=90),
        "read": make_entitlement(service, "read", risk="low", max_days=90),
    }


def submit(requester, entitlement, days):
    return access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=entitlement,
        justification="on call",
        duration_days=days,
    )


def preview(requester, entitlement, days=None):
    return workflow.preview(
        requester=requester, principal=requester, entitlement=entitlement, duration_days=days
    )


def test_requires_stage_adds_the_stage_and_vetoes_auto_approval(
    admin, requester, service_owner, security, vault
):
    policy = make_policy("fast", [("manager", 1)])
    policy.auto_approve_users.add(requester)
    vault["admin"].policy = policy
    vault["admin"].save()
    # Without the standard the allow list auto-approves.
    assert preview(requester, vault["admin"], 7).auto_approval
    apply(
        admin,
        standard(
            "tier0-admin-security",
            "requires_stage",
            scope="{tier: [0], risk: [critical]}",
            stage="security",
        ),
    )
    request = submit(requester, vault["admin"], 7)
    assert request.status == AccessRequest.Status.PENDING
    assert [s["kind"] for s in request.stages] == ["manager", "security"]
    assert request.stages[1]["source"] == "standard:tier0-admin-security"
    assert not Grant.objects.filter(principal=requester).exists()
    # Out of scope (low risk): unchanged.
    assert [s["kind"] for s in preview(requester, vault["read"], 7).stages] == ["manager"]


def test_requires_stage_keeps_an_existing_stage_of_that_kind(admin, requester, security, vault):
    vault["admin"].policy = make_policy("sec", [("security", 1)])
    vault["admin"].save()
    apply(admin, standard("sec", "requires_stage", stage="security"))
    assert [s["kind"] for s in preview(requester, vault["admin"], 7).stages] == ["security"]


def test_max_duration_refuses_naming_the_limit(admin, requester, service_owner, vault):
    apply(
        admin,
        standard("short-admin", "max_duration_days", scope="{risk: [critical]}", days=7),
    )
    with pytest.raises(
        ValidationError, match=r"standard short-admin .*at most 7 days .*30 requested"
    ):
        submit(requester, vault["admin"], 30)
    assert AccessRequest.objects.count() == 0
    assert submit(requester, vault["admin"], 7).status == AccessRequest.Status.PENDING
    # A medium-risk entitlement is out of scope.
    assert submit(requester, vault["write"], 30).pk


def test_no_standing_access_refuses_contractors_only(admin, org, manager, service_owner, vault):
    contractor = make_user(
        "contractor@example.com", team=org["payments"], manager=manager, worker_type="contractor"
    )
    employee = make_user("employee@example.com", team=org["payments"], manager=manager)
    apply(
        admin,
        standard(
            "contractors",
            "no_standing_access",
            scope="{tier: [0], worker_type: contractor}",
            max_days=14,
        ),
    )
    with pytest.raises(ValidationError, match="at most 14 days"):
        submit(contractor, vault["write"], 30)
    assert not AccessRequest.objects.filter(principal=contractor).exists()
    assert submit(contractor, vault["write"], 14).pk
    assert submit(employee, vault["write"], 30).pk


def test_no_standing_access_without_max_days_never_refuses_a_request(
    admin, requester, service_owner, vault
):
    apply(admin, standard("standing", "no_standing_access"))
    result = preview(requester, vault["write"], 90)
    assert result.refusals == []


def test_end_date_rule_does_not_refuse_requests_they_always_end(
    admin, requester, manager, service_owner, vault
):
    apply(admin, standard("end-date", "end_date_required_above_risk", risk="medium"))
    request = submit(requester, vault["admin"], 30)
    assert preview(requester, vault["read"], 30).refusals == []
    assert request.status == AccessRequest.Status.PENDING


def test_min_service_owners_warns(admin, org, requester, service_owner, vault):
    apply(admin, standard("two-owners", "min_service_owners", min=2))
    result = preview(requester, vault["read"], 7)
    assert result.refusals == []
    assert result.warnings == [
        "standard two-owners (Two Owners): vault has 0 owner(s), the standard asks for 2"
    ]
    Membership.objects.filter(user=service_owner).update(role=Membership.Role.LEAD)
    make_user("lead2@example.com", team=org["search"], lead=True)
    assert preview(requester, vault["read"], 7).warnings == []
    assert submit(requester, vault["read"], 7).pk


def test_entitlement_owner_and_cost_warns(admin, org, requester, service_owner, vault):
    apply(admin, standard("cost", "entitlement_has_owner_and_cost"))
    assert preview(requester, vault["read"], 7).warnings == [
        "standard cost (Cost): vault/read has no owner and no seat cost"
    ]
    Membership.objects.filter(user=service_owner).update(role=Membership.Role.LEAD)
    vault["read"].seat_cost_monthly = 12
    vault["read"].save()
    assert preview(requester, vault["read"], 7).warnings == []


def test_sod_pairs_refuse_the_second_half(admin, requester, manager, service_owner, vault):
    apply(
        admin,
        standard("maker-checker", "sod_pairs", pairs="[[vault/admin, vault/write]]"),
    )
    grant_directly(requester, vault["write"])
    before = AccessRequest.objects.count()
    with pytest.raises(
        ValidationError, match=r"holds vault/write, which may not be held together with vault/admin"
    ):
        submit(requester, vault["admin"], 7)
    assert AccessRequest.objects.count() == before
    # A pending request for the partner counts too.
    other = make_user("o2@example.com", team=requester.team, manager=manager)
    submit(other, vault["admin"], 7)
    assert any("maker-checker" in r for r in preview(other, vault["write"], 7).refusals)


def test_removed_standard_no_longer_applies(admin, requester, service_owner, vault):
    apply(admin, standard("short", "max_duration_days", days=7))
    assert preview(requester, vault["read"], 30).refusals
    apply(admin, standard("two-owners", "min_service_owners", min=1))
    assert preview(requester, vault["read"], 30).refusals == []
