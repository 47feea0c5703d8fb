"""Who may do what with access patterns. Views and services both ask these.

* Access map of a team: its members, its leads (and leads of a team above it), managers of
  its people; of a service: its owner team. Admins, security and auditors see every map.
* Mining runs: admins and security start them; whoever may see the scope's map sees them.
* Standard bundles: only platform admins adopt, edit or retire them; whoever may see the
  team's map sees them.
* Outliers: managers see their reports', owners their services', admins/security/auditors
  everyone's (the same rows as ``access.selectors.grants_for_viewer``).
"""

from __future__ import annotations

from access.policies import is_security, sees_all_access
from accounts.models import Membership
from accounts.policies import is_platform_admin
from accounts.selectors import team_subtree_ids, teams_led_by, user_reports


def _active(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def sees_all_patterns(user) -> bool:
    """Platform admins, security and auditors see every team's and service's map."""
    return _active(user) and sees_all_access(user)


def member_team_ids(user) -> set[int]:
    ids = set(Membership.objects.filter(user=user).values_list("team_id", flat=True))
    if user.team_id:
        ids.add(user.team_id)
    return ids


def map_team_ids(user) -> set[int] | None:
    """Teams whose access map ``user`` may open; ``None`` means every team."""
    if not _active(user):
        return set()
    if sees_all_patterns(user):
        return None
    ids = member_team_ids(user)
    for team in teams_led_by(user=user):
        ids |= team_subtree_ids(team=team)
    ids |= set(user_reports(user=user).exclude(team=None).values_list("team_id", flat=True))
    return ids


def may_view_team_map(user, team) -> bool:
    ids = map_team_ids(user)
    return ids is None or team.pk in ids


def map_service_owner_team_ids(user) -> set[int] | None:
    """Owner teams whose services' maps ``user`` may open; ``None`` means every service."""
    if not _active(user):
        return set()
    if sees_all_patterns(user):
        return None
    return member_team_ids(user)


def may_view_service_map(user, service) -> bool:
    ids = map_service_owner_team_ids(user)
    return ids is None or service.owner_team_id in ids


def may_start_mining(user) -> bool:
    return _active(user) and (is_platform_admin(user) or is_security(user))


def may_manage_bundles(user) -> bool:
    """Adopt a proposal as a team's standard bundle, edit or retire it: platform admins."""
    return _active(user) and is_platform_admin(user)


def may_view_run(user, run) -> bool:
    if run.team_id is not None:
        return may_view_team_map(user, run.team)
    return may_view_service_map(user, run.service)
