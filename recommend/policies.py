"""Who may see and do what with approval recommendations (P5)."""

from __future__ import annotations

from access.models import AccessRequest
from access.policies import may_decide_request, sees_all_access
from accounts.policies import is_platform_admin


def may_see_model_status(user) -> bool:
    """Platform admins, security and auditors see the model's figures and history."""
    return sees_all_access(user)


def may_train_model(user) -> bool:
    return is_platform_admin(user)


def may_see_candidates(user) -> bool:
    return is_platform_admin(user)


def may_manage_adoptions(user) -> bool:
    """Only platform admins let a policy auto-approve on the model's say-so."""
    return is_platform_admin(user)


def may_see_recommendation(user, request: AccessRequest) -> bool:
    """An approver of the request's current stage (or security, an auditor, an admin), while
    the request is pending; never the requester or the principal themselves."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if not request.is_open or user.pk in (request.requester_id, request.principal_id):
        return False
    return sees_all_access(user) or may_decide_request(user, request)
