"""Who may do what with provisioning jobs, manual tasks, drift and follow-up reviews."""

from __future__ import annotations

from accounts.policies import is_platform_admin

from ..policies import is_security, may_edit_service, may_see_holders, sees_all_access


def may_retry_jobs(user) -> bool:
    """The platform team (platform admins) retries failed jobs."""
    return bool(getattr(user, "is_authenticated", False)) and is_platform_admin(user)


def may_see_failed_jobs(user) -> bool:
    return may_retry_jobs(user) or sees_all_access(user)


def user_group_names(user) -> set[str]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    return set(user.groups.values_list("name", flat=True))


def may_answer_manual_task(user, task) -> bool:
    """Members of the task's group (and platform admins) carry out manual tasks."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return is_platform_admin(user) or task.group in user_group_names(user)


def may_see_drift(user, service) -> bool:
    return may_see_holders(user, service)


def may_see_org_drift(user) -> bool:
    return sees_all_access(user)


def may_reconcile(user, service) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and may_edit_service(user, service)


def may_answer_follow_up(user, item) -> bool:
    """Break-glass follow-ups: security. Mover reviews: the named reviewer (new manager),
    or security. Never the holder of the grant under review."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.pk == item.grant.principal_id:
        return False
    if item.reviewer_id is not None and item.reviewer_id == user.pk:
        return True
    return is_security(user)
