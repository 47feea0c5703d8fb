"""Reads about people and teams. Hierarchies are walked level by level (one query per level)."""

from __future__ import annotations

from django.db.models import QuerySet

from portal.core.roles import user_in_group

from .models import Membership, PlatformRole, Team, User


def user_team(*, user: User) -> Team | None:
    return user.team


def user_has_role(*, user, role: str) -> bool:
    return user_in_group(user, role)


def user_roles(*, user) -> list[str]:
    return [r.value for r in PlatformRole if user_has_role(user=user, role=r.value)]


def user_reports(*, user: User, transitive: bool = True) -> QuerySet[User]:
    """Everyone who reports to ``user`` (directly, or transitively with ``transitive``)."""
    ids: set[int] = set()
    frontier = [user.pk]
    while frontier:
        level = list(
            User.objects.filter(manager_id__in=frontier)
            .exclude(pk__in=ids)
            .values_list("pk", flat=True)
        )
        level = [pk for pk in level if pk != user.pk]
        ids.update(level)
        frontier = level if transitive else []
    return User.objects.filter(pk__in=ids)


def user_manager_chain(*, user: User, limit: int = 50) -> list[User]:
    chain: list[User] = []
    seen = {user.pk}
    current = user.manager
    while current is not None and current.pk not in seen and len(chain) < limit:
        chain.append(current)
        seen.add(current.pk)
        current = current.manager
    return chain


def team_subtree_ids(*, team: Team) -> set[int]:
    ids = {team.pk}
    frontier = [team.pk]
    while frontier:
        level = list(
            Team.objects.filter(parent_id__in=frontier)
            .exclude(pk__in=ids)
            .values_list("pk", flat=True)
        )
        ids.update(level)
        frontier = level
    return ids


def team_subtree(*, team: Team) -> QuerySet[Team]:
    return Team.objects.filter(pk__in=team_subtree_ids(team=team))


def team_members(*, team: Team) -> QuerySet[User]:
    return (
        User.objects.filter(team=team, is_active=True)
        .select_related("manager")
        .order_by("name", "email")
    )


def team_leads(*, team: Team) -> QuerySet[User]:
    return User.objects.filter(memberships__team=team, memberships__role=Membership.Role.LEAD)


def teams_led_by(*, user: User) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user, memberships__role=Membership.Role.LEAD)


def team_visible_ids(*, viewer) -> set[int] | None:
    """Teams whose pages the viewer may open. ``None`` means all of them."""
    from .policies import sees_everything

    if sees_everything(viewer):
        return None
    ids: set[int] = set()
    if viewer.team_id:
        ids.add(viewer.team_id)
    for team in teams_led_by(user=viewer):
        ids |= team_subtree_ids(team=team)
    report_teams = set(
        user_reports(user=viewer).exclude(team=None).values_list("team_id", flat=True)
    )
    ids |= report_teams
    return ids


def teams_for_viewer(*, viewer) -> QuerySet[Team]:
    ids = team_visible_ids(viewer=viewer)
    qs = Team.objects.select_related("parent")
    return qs if ids is None else qs.filter(pk__in=ids)


def team_get_for_viewer(*, viewer, slug: str) -> Team:
    """The team, or Http404 when it does not exist or the viewer may not see it."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(teams_for_viewer(viewer=viewer), slug=slug)
