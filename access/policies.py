"""Who may do what in the access app. HTML views and the API both ask these.

Each "may" function is paired with a selector in selectors.py that answers
"which X may U see", so lists and single objects are scoped the same way.
"""

from __future__ import annotations

from accounts.models import PlatformRole, User
from accounts.policies import holds_powerful_role, is_platform_admin, is_security
from accounts.selectors import user_has_role, user_manager_chain

from .models import AccessRequest, Grant, Service


def sees_all_access(user) -> bool:
    """Security, auditors and platform admins see every request and grant."""
    return (
        is_platform_admin(user)
        or is_security(user)
        or user_has_role(user=user, role=PlatformRole.AUDITOR)
    )


def owns_service(user, service: Service) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return (
        user.team_id == service.owner_team_id
        or user.memberships.filter(team_id=service.owner_team_id).exists()
    )


def may_create_service(user) -> bool:
    return is_platform_admin(user)


def may_edit_service(user, service: Service) -> bool:
    return is_platform_admin(user) or owns_service(user, service)


def may_change_controls(user) -> bool:
    """Lowering an entitlement's risk, changing its approval policy or turning break-glass on:
    a platform admin or a security member; an owner may only propose it."""
    return holds_powerful_role(user)


def may_see_holders(user, service: Service) -> bool:
    return sees_all_access(user) or owns_service(user, service)


def may_request_for(requester: User, principal: User) -> bool:
    """For yourself, or (as a manager) for someone who reports to you."""
    if not requester.is_active:
        return False
    if requester.pk == principal.pk:
        return True
    return any(m.pk == requester.pk for m in user_manager_chain(user=principal))


def is_in_management_chain(viewer: User, principal: User) -> bool:
    return any(m.pk == viewer.pk for m in user_manager_chain(user=principal))


def may_view_request(viewer: User, request: AccessRequest) -> bool:
    from .selectors import access_requests_for_viewer

    return access_requests_for_viewer(viewer=viewer).filter(pk=request.pk).exists()


def may_cancel_request(viewer: User, request: AccessRequest) -> bool:
    return viewer.pk in (request.requester_id, request.principal_id)


def may_decide_request(viewer: User, request: AccessRequest) -> bool:
    from .workflow import eligible_approvers

    return viewer.pk in eligible_approvers(request=request)


def may_revoke_grant(viewer: User, grant: Grant) -> bool:
    """The holder gives it up; the owner team or an admin takes it away."""
    return (
        viewer.pk == grant.principal_id
        or is_platform_admin(viewer)
        or owns_service(viewer, grant.entitlement.service)
    )


def may_manage_delegations(viewer: User) -> bool:
    return viewer.is_active
