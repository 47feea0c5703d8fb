"""The Django admin is a reading tool: no write through it bypasses the services.

People, teams and team moves come from the HR directory and are read-only; platform roles and
team roles are saved through ``user_set_roles`` / ``membership_set_role`` (audited, role rules);
every other registered model is read-only. A new admin registration has to be listed below.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership, PlatformRole, TeamMove, User
from audit import registry as actions
from audit.models import AuditEvent
from standards.models import PolicyVersion, ScanRun, Standard, Violation
from tests.conftest import make_user

#: Models whose admin adds, changes and deletes nothing.
READ_ONLY = {
    "account.emailaddress",
    "accounts.team",
    "accounts.teammove",
    "audit.auditevent",
    "auth.group",
    "costs.attributionrule",
    "costs.billingsource",
    "costs.importrun",
    "costs.reattributionrun",
    "mfa.authenticator",
    "patterns.bundleapplication",
    "patterns.miningrun",
    "patterns.standardbundle",
    "reviews.campaign",
    "reviews.reviewitem",
    "socialaccount.socialaccount",
    "socialaccount.socialapp",
    "socialaccount.socialtoken",
    "standards.policyversion",
    "standards.scanrun",
    "standards.standard",
    "standards.violation",
    "tokens.apitoken",
    "usage.principalalias",
    "usage.unusedremoval",
    "usage.usagecoverage",
    "usage.usageimport",
    "usage.usagemappingrule",
    "usage.usagesource",
}
#: Models whose admin writes only through a service: (may add, may change); never delete.
THROUGH_SERVICES = {
    "accounts.user": (False, True),  # platform roles -> user_set_roles
    "accounts.membership": (True, True),  # team role -> membership_set_role
}
ACCOUNTS_TABLES = ("accounts_user", "accounts_membership", "accounts_team", "auth_group")


def _label(model) -> str:
    return model._meta.label_lower


@pytest.fixture
def root(org):
    return make_user("root@example.com", team=org["platform"], is_staff=True, is_superuser=True)


@pytest.fixture
def root_client(client, root):
    client.force_login(root)
    return client


def _writes_to_accounts(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and any(f'"{table}' in q["sql"] for table in ACCOUNTS_TABLES)
    ]


def _state(user: User) -> dict:
    user.refresh_from_db()
    return {
        "email": user.email,
        "name": user.name,
        "status": user.status,
        "team": user.team_id,
        "manager": user.manager_id,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "is_active": user.is_active,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "memberships": sorted(user.memberships.values_list("team__slug", "role")),
    }


# --- every registration decided --------------------------------------------------------------


def test_every_admin_registration_is_classified():
    registered = {_label(model) for model in admin.site._registry}

    assert registered == READ_ONLY | set(THROUGH_SERVICES)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "label", sorted(READ_ONLY | set(THROUGH_SERVICES)), ids=lambda label: label
)
def test_admin_permissions_of_each_model(label, root):
    model_admin = next(ma for m, ma in admin.site._registry.items() if _label(m) == label)
    request = RequestFactory().get("/admin/")
    request.user = root
    may_add, may_change = THROUGH_SERVICES.get(label, (False, False))

    assert model_admin.has_add_permission(request) is may_add
    assert model_admin.has_change_permission(request) is may_change
    assert model_admin.has_delete_permission(request) is False
    assert model_admin.has_view_permission(request) is True
    assert "delete_selected" not in model_admin.get_actions(request)


# --- people -----------------------------------------------------------------------------------


def _user_post(user: User, **overrides) -> dict:
    data = {"roles": sorted(user.groups.values_list("name", flat=True))}
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_a_superuser_cannot_change_directory_fields_groups_or_powers_in_the_admin(
    root_client, requester, org, manager
):
    admins = Group.objects.get_or_create(name=PlatformRole.PLATFORM_ADMIN)[0]
    before = _state(requester)
    audit_before = AuditEvent.objects.count()

    with CaptureQueriesContext(connection) as queries:
        response = root_client.post(
            f"/admin/accounts/user/{requester.pk}/change/",
            _user_post(
                requester,
                email="evil@example.com",
                name="Renamed",
                status=User.Status.LEAVER,
                team=org["other"].pk,
                manager="",
                groups=[admins.pk],
                is_staff="on",
                is_superuser="on",
                is_active="",
            ),
        )

    assert response.status_code == 302  # "saved": nothing but the roles field is a field
    assert _state(requester) == before
    assert _writes_to_accounts(queries.captured_queries) == []
    assert AuditEvent.objects.count() == audit_before


@pytest.mark.django_db
def test_roles_changed_in_the_admin_go_through_the_service_and_are_audited(
    root_client, root, requester
):
    response = root_client.post(
        f"/admin/accounts/user/{requester.pk}/change/",
        _user_post(requester, roles=[PlatformRole.SECURITY, PlatformRole.AUDITOR]),
    )

    assert response.status_code == 302
    assert _state(requester)["groups"] == ["auditor", "security"]
    events = list(AuditEvent.objects.filter(action=actions.USER_ROLES_CHANGED))
    assert len(events) == 1
    assert events[0].actor_label == root.email
    assert events[0].target_id == str(requester.pk)
    assert events[0].before == {"roles": []}
    assert events[0].after == {"roles": ["auditor", "security"]}


@pytest.mark.django_db
def test_nobody_changes_their_own_roles_in_the_admin(root_client, root):
    before = _state(root)

    response = root_client.post(
        f"/admin/accounts/user/{root.pk}/change/",
        _user_post(root, roles=[PlatformRole.PLATFORM_ADMIN]),
    )

    assert response.status_code == 200
    assert "Nobody changes their own platform roles." in response.content.decode()
    assert _state(root) == before
    assert not AuditEvent.objects.filter(action=actions.USER_ROLES_CHANGED).exists()


@pytest.mark.django_db
def test_a_staff_member_who_is_not_a_platform_admin_cannot_change_roles(client, org, requester):
    staff = make_user("staff@example.com", team=org["platform"], is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts", codename__in=["view_user", "change_user"]
        )
    )
    client.force_login(staff)
    before = _state(requester)

    response = client.post(
        f"/admin/accounts/user/{requester.pk}/change/",
        _user_post(requester, roles=[PlatformRole.PLATFORM_ADMIN]),
    )

    assert response.status_code == 200
    assert "Only platform admins change roles." in response.content.decode()
    assert _state(requester) == before
    assert not AuditEvent.objects.filter(action=actions.USER_ROLES_CHANGED).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts/user/add/",
        "/admin/accounts/user/{user}/delete/",
        "/admin/accounts/team/add/",
        "/admin/accounts/team/{team}/delete/",
        "/admin/accounts/membership/{membership}/delete/",
        "/admin/accounts/teammove/add/",
        "/admin/auth/group/add/",
        "/admin/auth/group/{group}/delete/",
    ],
)
def test_people_teams_and_groups_cannot_be_added_or_deleted_in_the_admin(
    root_client, requester, org, url
):
    group = Group.objects.get_or_create(name=PlatformRole.SECURITY)[0]
    membership = Membership.objects.get(user=requester)
    url = url.format(
        user=requester.pk, team=org["payments"].pk, membership=membership.pk, group=group.pk
    )
    before = _state(requester)
    audit_before = AuditEvent.objects.count()

    assert root_client.get(url).status_code == 403
    assert root_client.post(url, {"post": "yes"}).status_code == 403
    assert _state(requester) == before
    assert Group.objects.filter(pk=group.pk, name=PlatformRole.SECURITY).exists()
    assert AuditEvent.objects.count() == audit_before


@pytest.mark.django_db
def test_teams_moves_and_groups_are_read_only_in_the_admin(root_client, requester, org):
    group = Group.objects.get_or_create(name=PlatformRole.SECURITY)[0]
    move = TeamMove.objects.create(user=requester, from_team=org["search"], to_team=org["payments"])
    team = org["payments"]

    assert root_client.get(f"/admin/accounts/team/{team.pk}/change/").status_code == 200
    refused = [
        root_client.post(
            f"/admin/accounts/team/{team.pk}/change/",
            {"slug": "renamed", "name": "Renamed", "parent": ""},
        ),
        root_client.post(f"/admin/accounts/teammove/{move.pk}/change/", {"reviewed": "on"}),
        root_client.post(
            f"/admin/auth/group/{group.pk}/change/", {"name": PlatformRole.PLATFORM_ADMIN}
        ),
    ]

    assert [r.status_code for r in refused] == [403, 403, 403]
    team.refresh_from_db()
    move.refresh_from_db()
    assert (team.slug, team.name, team.parent_id) == ("payments", "Payments", org["platform"].pk)
    assert move.reviewed is False
    assert Group.objects.get(pk=group.pk).name == PlatformRole.SECURITY


@pytest.mark.django_db
def test_a_team_role_changed_in_the_admin_goes_through_the_service(
    root_client, root, requester, org
):
    membership = Membership.objects.get(user=requester)

    response = root_client.post(
        f"/admin/accounts/membership/{membership.pk}/change/",
        {"role": Membership.Role.LEAD, "team": org["other"].pk, "user": root.pk},
    )

    assert response.status_code == 302
    membership.refresh_from_db()
    assert (membership.team_id, membership.user_id, membership.role) == (
        org["payments"].pk,
        requester.pk,
        Membership.Role.LEAD,
    )
    events = list(AuditEvent.objects.filter(action=actions.MEMBERSHIP_CHANGED))
    assert len(events) == 1
    assert events[0].actor_label == root.email
    assert events[0].after == {"team": "payments", "user": requester.email, "role": "lead"}


@pytest.mark.django_db
def test_a_membership_added_in_the_admin_goes_through_the_service(
    root_client, root, requester, org
):
    response = root_client.post(
        "/admin/accounts/membership/add/",
        {"team": org["search"].pk, "user": requester.pk, "role": Membership.Role.LEAD},
    )

    assert response.status_code == 302
    membership = Membership.objects.get(user=requester, team=org["search"])
    assert membership.role == Membership.Role.LEAD
    event = AuditEvent.objects.get(action=actions.MEMBERSHIP_CHANGED)
    assert event.actor_label == root.email
    assert event.target_id == str(membership.pk)
    assert event.before is None


# --- standards: violations and scan runs --------------------------------------------------------


@pytest.fixture
def violation(requester):
    version = PolicyVersion.objects.create(number=1, yaml_text="", sha256="0" * 64)
    standard = Standard.objects.create(
        key="no-admin",
        title="No admin",
        severity="high",
        owner="platform",
        kind="x",
        version=version,
    )
    return Violation.objects.create(
        standard=standard,
        subject_type=Violation.SubjectType.USER,
        subject_id=requester.pk,
        subject_key=str(requester.pk),
        subject_label=requester.email,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["violation", "scanrun"])
def test_violations_and_scan_runs_cannot_be_added_changed_or_deleted(root_client, violation, model):
    scan = ScanRun.objects.create(status=ScanRun.Status.DONE, violating=1)
    obj = violation if model == "violation" else scan
    base = f"/admin/standards/{model}/"

    assert root_client.get(base).status_code == 200
    assert root_client.get(f"{base}{obj.pk}/change/").status_code == 200  # a read-only view
    assert root_client.get(f"{base}add/").status_code == 403
    assert root_client.post(f"{base}add/", {"status": "done"}).status_code == 403
    assert (
        root_client.post(
            f"{base}{obj.pk}/change/", {"subject_label": "x", "status": "failed"}
        ).status_code
        == 403
    )
    assert root_client.post(f"{base}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    violation.refresh_from_db()
    scan.refresh_from_db()
    assert violation.subject_label == "requester@example.com"
    assert scan.status == ScanRun.Status.DONE
