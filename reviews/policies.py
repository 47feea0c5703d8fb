"""Who may do what with access reviews. Views and services both ask these."""

from __future__ import annotations

from access.policies import is_security, sees_all_access
from accounts.policies import is_platform_admin

from .models import Campaign, ReviewItem


def may_manage_campaigns(user) -> bool:
    """Security and platform admins create, start and export campaigns."""
    return is_platform_admin(user) or is_security(user)


def sees_all_campaigns(user) -> bool:
    return sees_all_access(user)


def _in_team(user, team_id: int | None) -> bool:
    if team_id is None:
        return False
    return user.team_id == team_id or user.memberships.filter(team_id=team_id).exists()


def may_decide_item(user, item: ReviewItem) -> bool:
    """The assigned reviewer, a member of the assigned team, the escalation target, or
    security for items that fell to security; never the holder of the access."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.pk == item.principal_id:
        return False
    if item.campaign.status != Campaign.Status.ACTIVE:
        return False
    return (
        user.pk in (item.reviewer_id, item.escalated_to_id)
        or _in_team(user, item.reviewer_team_id)
        or (item.to_security and is_security(user))
    )


def may_view_campaign(user, campaign: Campaign) -> bool:
    from .selectors import campaigns_for_viewer

    return campaigns_for_viewer(viewer=user).filter(pk=campaign.pk).exists()
