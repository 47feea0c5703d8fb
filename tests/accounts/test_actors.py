"""Who may change people and teams: a person by role, a system actor only where the service
names it (the directory import, an operator's command, the demo seed, the tests), never a
string."""

from __future__ import annotations

import pytest

from accounts.directory import parse_text
from accounts.models import Membership, PlatformRole, User
from accounts.services import (
    directory_import,
    membership_set_role,
    user_mark_leaver,
    user_set_roles,
)
from audit.models import AuditEvent
from portal.core.actors import DIRECTORY_IMPORT, LEAVER, SCIM, UNUSED_ACCESS, SystemActor
from portal.core.errors import NotPermitted

pytestmark = pytest.mark.django_db
CSV = (
    "email,name,team,worker_type,status,start_date\n"
    "new.person@example.com,New Person,payments,employee,active,2024-01-02\n"
)


def roles_of(user: User) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


@pytest.mark.parametrize("actor", ["system:test", "import_directory", "test", ""])
def test_a_string_actor_is_refused_and_nothing_changes(org, requester, actor):
    events = AuditEvent.objects.count()
    with pytest.raises(TypeError):
        user_set_roles(actor=actor, user=requester, roles=["security"])
    with pytest.raises(TypeError):
        membership_set_role(actor=actor, team=org["search"], user=requester, role="lead")
    with pytest.raises(TypeError):
        directory_import(rows=parse_text(CSV), full=False, dry_run=False, actor=actor)
    with pytest.raises(TypeError):
        user_mark_leaver(user=requester, actor=actor)
    requester.refresh_from_db()
    assert roles_of(requester) == []
    assert requester.is_active
    assert not Membership.objects.filter(team=org["search"], user=requester).exists()
    assert not User.objects.filter(email="new.person@example.com").exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("actor", [LEAVER, SCIM, UNUSED_ACCESS, SystemActor("someone-else")])
def test_a_system_actor_not_named_by_the_role_services_is_refused(org, requester, actor):
    events = AuditEvent.objects.count()
    with pytest.raises(NotPermitted):
        user_set_roles(actor=actor, user=requester, roles=["security"])
    with pytest.raises(NotPermitted):
        membership_set_role(actor=actor, team=org["search"], user=requester, role="lead")
    assert roles_of(requester) == []
    assert not Membership.objects.filter(team=org["search"], user=requester).exists()
    assert AuditEvent.objects.count() == events


def test_the_directory_import_sets_team_roles_as_itself(org, requester):
    membership_set_role(actor=DIRECTORY_IMPORT, team=org["search"], user=requester, role="lead")
    assert Membership.objects.get(team=org["search"], user=requester).role == "lead"
    event = AuditEvent.objects.get(action="team.membership_changed")
    assert (event.actor_id, event.actor_label) == (None, "system:directory-import")


def test_a_person_without_the_role_is_refused_and_admins_may_not_change_their_own(requester, admin):
    with pytest.raises(NotPermitted):
        user_set_roles(actor=requester, user=requester, roles=["admin"])
    with pytest.raises(NotPermitted):
        user_set_roles(actor=admin, user=admin, roles=[])
    assert roles_of(requester) == []
    assert roles_of(admin) == [PlatformRole.PLATFORM_ADMIN.value]


def test_a_failed_sign_in_is_audited_as_anonymous(client, requester):
    assert not client.login(username=requester.email, password="wrong password")
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert (event.actor_id, event.actor_label) == (None, "anonymous")
    assert event.after == {"attempted": requester.email}
