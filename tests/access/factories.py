"""Small builders for catalog objects used by the access tests (made with the factory_boy
factories of ``tests/factories.py``)."""

from __future__ import annotations

from access.models import ApprovalPolicy, Entitlement, PolicyStage, Service
from tests.factories import EntitlementFactory, GrantFactory, ServiceFactory


def make_service(
    owner_team, slug: str = "billing-db", tier: int = 2, connector: str = ""
) -> Service:
    return ServiceFactory(slug=slug, owner_team=owner_team, tier=tier, connector=connector)


def make_entitlement(
    service, slug: str = "read", risk: str = "low", max_days: int = 90, policy=None, **extra
) -> Entitlement:
    return EntitlementFactory(
        service=service, slug=slug, risk=risk, max_duration_days=max_days, policy=policy, **extra
    )


def make_policy(slug: str, stages: list[tuple[str, int]], **extra) -> ApprovalPolicy:
    policy = ApprovalPolicy.objects.create(slug=slug, name=slug.title(), **extra)
    for order, (kind, required) in enumerate(stages):
        PolicyStage.objects.create(
            policy=policy, order=order, approver_kind=kind, required=required
        )
    return policy


def make_users_policy(slug: str, users, required: int, **extra) -> ApprovalPolicy:
    """One stage naming ``users`` of whom ``required`` must approve (N of M)."""
    policy = ApprovalPolicy.objects.create(slug=slug, name=slug.title(), **extra)
    stage = PolicyStage.objects.create(
        policy=policy, order=0, approver_kind=PolicyStage.ApproverKind.USERS, required=required
    )
    stage.users.set(users)
    return policy


def grant_directly(principal, entitlement, *, status: str = "active", days: int = 30):
    """A held grant without the workflow (test set-up only: peers who already hold access)."""
    return GrantFactory(principal=principal, entitlement=entitlement, status=status, days=days)


def snapshot(request=None) -> dict:
    """Counts and state a refused action must leave exactly as they were."""
    from access.models import AccessRequest, Approval, ApprovalAssignment, Grant
    from audit.models import AuditEvent

    out = {
        "audit": AuditEvent.objects.count(),
        "approvals": Approval.objects.count(),
        "grants": list(Grant.objects.order_by("pk").values_list("pk", "status", "ends_at")),
        "requests": AccessRequest.objects.count(),
        "assignments": ApprovalAssignment.objects.count(),
    }
    if request is not None:
        r = AccessRequest.objects.get(pk=request.pk)
        out["request"] = (r.status, r.current_stage, r.decided_at, r.updated_at)
    return out
