import pytest

from access import services
from access.models import AccessRequest, Grant
from audit.models import AuditEvent

from .factories import make_entitlement, make_policy, make_service


@pytest.mark.sqlite
@pytest.mark.django_db
def test_request_manager_then_owner_approval_creates_one_active_grant(
    org, requester, manager, service_owner
):
    service = make_service(org["search"])
    ent = make_entitlement(
        service,
        risk="medium",
        policy=make_policy("two-stage", [("manager", 1), ("service_owner", 1)]),
    )
    req = services.access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=ent,
        justification="on-call",
        duration_days=7,
    )
    assert req.status == AccessRequest.Status.PENDING
    assert req.stages[0]["kind"] == "manager"
    services.access_request_approve(actor=manager, request_id=req.pk, reason="ok")
    req.refresh_from_db()
    assert (req.status, req.current_stage) == ("pending", 1)
    services.access_request_approve(actor=service_owner, request_id=req.pk, reason="ok")
    req.refresh_from_db()
    assert req.status == AccessRequest.Status.APPROVED
    grant = Grant.objects.get(request=req)
    assert grant.status == Grant.Status.ACTIVE
    assert grant.approved_by == [manager.email, service_owner.email]
    actions = list(
        AuditEvent.objects.filter(
            target_type="access.accessrequest", target_id=str(req.pk)
        ).values_list("action", flat=True)
    )
    assert actions == [
        "request.submitted",
        "request.approval_given",
        "request.advance",
        "request.approval_given",
        "request.approve",
    ]
