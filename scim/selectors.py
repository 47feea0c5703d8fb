"""Reads of the SCIM endpoints: people and teams with what SCIM adds, one query per page."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Prefetch, QuerySet
from django.db.models.functions import Coalesce

from accounts.models import Membership, Team, User

from .models import HeldChange, ScimClient, ScimGroup, ScimUser


def users() -> QuerySet[User]:
    return User.objects.select_related("team", "manager", "scim").annotate(
        scim_created=Coalesce("scim__created", "date_joined"),
        scim_last_modified=Coalesce("scim__last_modified", "date_joined"),
    )


def groups() -> QuerySet[Team]:
    return Team.objects.select_related("parent", "scim").annotate(
        scim_created=Coalesce("scim__created", "created_at"),
        scim_last_modified=Coalesce("scim__last_modified", "created_at"),
    )


def user_as_created(user: User, row: ScimUser, groups: list[tuple[int, str]]) -> User:
    """A person the directory service and this app have just created, as :func:`users` and
    :func:`attach_user_rows` would read them back: their team and manager are the rows the
    service set, their SCIM row is ``row`` (new, so the timestamps are its own), ``groups``
    their memberships (team id, name) by name. Saves reading back what was just written."""
    user.scim_created = row.created  # type: ignore[attr-defined]
    user.scim_last_modified = row.last_modified  # type: ignore[attr-defined]
    user._scim_row = row  # type: ignore[attr-defined]
    user._scim_groups = list(groups)  # type: ignore[attr-defined]
    return user


def attach_user_rows(people: list[User], *, with_groups: bool = True) -> list[User]:
    """Set each person's SCIM row and (optionally) team memberships, in one query more."""
    for person in people:
        try:
            person._scim_row = person.scim  # type: ignore[attr-defined]
        except ScimUser.DoesNotExist:
            person._scim_row = None  # type: ignore[attr-defined]
    if with_groups and people:
        by_user: dict[int, list[tuple[int, str]]] = defaultdict(list)
        rows = Membership.objects.filter(user_id__in=[p.pk for p in people]).values_list(
            "user_id", "team_id", "team__name"
        )
        for uid, tid, name in rows.order_by("team__name"):
            by_user[uid].append((tid, name))
        for person in people:
            person._scim_groups = by_user.get(person.pk, [])  # type: ignore[attr-defined]
    return people


def attach_group_rows(teams: list[Team]) -> dict[int, list[tuple[int, str, str]]]:
    """Each team's SCIM row; returns its members (user id, name, e-mail) by team id."""
    for team in teams:
        try:
            team._scim_row = team.scim  # type: ignore[attr-defined]
        except ScimGroup.DoesNotExist:
            team._scim_row = None  # type: ignore[attr-defined]
    members: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    if teams:
        rows = Membership.objects.filter(team_id__in=[t.pk for t in teams]).values_list(
            "team_id", "user_id", "user__name", "user__email"
        )
        for tid, uid, name, email in rows.order_by("user_id"):
            members[tid].append((uid, name, email))
    return members


def client_for_hash(digest: str) -> ScimClient | None:
    return ScimClient.objects.filter(key_hash=digest).first()


def clients(*, viewer) -> QuerySet[ScimClient]:
    from .policies import may_manage_scim

    if not may_manage_scim(viewer):
        return ScimClient.objects.none()
    return ScimClient.objects.all()


def held_changes(*, viewer, pending_only: bool = True) -> QuerySet[HeldChange]:
    from .policies import may_manage_scim

    if not may_manage_scim(viewer):
        return HeldChange.objects.none()
    qs = HeldChange.objects.select_related("client", "user", "decided_by")
    return qs.filter(status=HeldChange.Status.PENDING) if pending_only else qs[:50]


__all__ = ["Prefetch"]
