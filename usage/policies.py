"""Who may do what with unused access. Views and services both ask these.

* see a removal: the holder, their managers (any level), the owner team of the service;
  security, auditors and platform admins see all (``sees_all_usage``).
* opt out: the holder, their managers, the owner team (not admins: the people who know).
* restore: the holder, their managers, the owner team, platform admins.
* manage mapping rules and aliases, run imports: platform admins.
"""

from __future__ import annotations

from access.policies import is_in_management_chain, owns_service, sees_all_access
from accounts.policies import is_platform_admin

from .models import UnusedRemoval


def sees_all_usage(user) -> bool:
    return sees_all_access(user)


def may_manage_usage(user) -> bool:
    return is_platform_admin(user)


def _close_to(user, removal: UnusedRemoval) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return (
        user.pk == removal.principal_id
        or is_in_management_chain(user, removal.principal)
        or owns_service(user, removal.service)
    )


def may_view_removal(user, removal: UnusedRemoval) -> bool:
    return sees_all_usage(user) or _close_to(user, removal)


def may_opt_out(user, removal: UnusedRemoval) -> bool:
    return _close_to(user, removal)


def may_restore(user, removal: UnusedRemoval) -> bool:
    return _close_to(user, removal) or (
        getattr(user, "is_active", False) and is_platform_admin(user)
    )


def annotate_actions(user, removals) -> None:
    """Set ``may_opt_out`` / ``may_restore`` on each removal of a list with a fixed number of
    queries (the same answers as :func:`may_opt_out` and :func:`may_restore`)."""
    from accounts.selectors import user_reports

    removals = list(removals)
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        for r in removals:
            r.may_opt_out = r.may_restore = False
        return
    team_ids = set(user.memberships.values_list("team_id", flat=True))
    if user.team_id:
        team_ids.add(user.team_id)
    report_ids = set(user_reports(user=user).values_list("pk", flat=True))
    admin = is_platform_admin(user)
    for r in removals:
        close = (
            r.principal_id == user.pk
            or r.principal_id in report_ids
            or r.service.owner_team_id in team_ids
        )
        r.may_opt_out = close and r.status in ("detected", "scheduled")
        r.may_restore = (close or admin) and r.status == "removed"
