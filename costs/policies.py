"""Who may do what with costs. Views and the API both ask these."""

from __future__ import annotations

from accounts.models import PlatformRole
from accounts.policies import sees_everything
from accounts.selectors import team_visible_ids, user_has_role


def may_edit_costs(user) -> bool:
    """Platform admins and finance manage sources, imports and attribution rules."""
    return user_has_role(user=user, role=PlatformRole.PLATFORM_ADMIN) or user_has_role(
        user=user, role=PlatformRole.FINANCE
    )


def may_view_cost_admin(user) -> bool:
    """Sources, runs, rules, the unallocated explorer and coverage: the org-wide views."""
    return sees_everything(user)


def cost_team_ids_for(user) -> set[int] | None:
    """Teams whose cost lines ``user`` may see; ``None`` means every team and unallocated."""
    if not getattr(user, "is_authenticated", False):
        return set()
    return team_visible_ids(viewer=user)
