"""SCIM Users: joiners, movers and leavers through the directory service, as the client."""

from __future__ import annotations

import pytest

from accounts.models import Membership, TeamMove, User
from audit.models import AuditEvent
from scim.constants import CONTENT_TYPE, ENTERPRISE, ERROR, USER
from scim.models import ScimUser

from .conftest import patch_body, user_body

pytestmark = pytest.mark.django_db


def test_create_is_a_joiner_with_the_directory_events_and_the_client_as_actor(scim, org):
    response = scim(
        "POST",
        "Users",
        user_body(
            "Ann@Corp.test",
            name="Ann Able",
            department="Payments",
            externalId="00u1",
            employeeNumber="E-7",
            costCenter="CC-1",
        ),
    )

    assert response.status_code == 201, response.doc
    assert response["Content-Type"] == CONTENT_TYPE
    user = User.objects.get(email="ann@corp.test")
    assert (user.name, user.team, user.status, user.is_active) == (
        "Ann Able",
        org["payments"],
        "active",
        True,
    )
    assert Membership.objects.filter(user=user, team=org["payments"], role="member").exists()
    doc = response.doc
    assert doc["id"] == str(user.pk)
    assert doc["userName"] == "ann@corp.test"
    assert doc["externalId"] == "00u1"
    assert (
        doc[ENTERPRISE]
        == {
            "department": "payments".title(),
            "employeeNumber": "E-7",
            "costCenter": "CC-1",
        }
        or doc[ENTERPRISE]["department"] == org["payments"].name
    )
    assert doc["meta"]["location"].endswith(f"/scim/v2/Users/{user.pk}")
    assert response["Location"] == doc["meta"]["location"]
    assert response["ETag"] == doc["meta"]["version"]
    actions = list(
        AuditEvent.objects.filter(actor_label="system:scim.okta")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["user.created", "directory.imported"]
    created = AuditEvent.objects.get(action="user.created")
    assert created.after["team"] == "payments"
    assert created.after["membership"] == "payments"


def test_create_of_an_existing_person_is_409_and_changes_nothing(scim, requester):
    before = AuditEvent.objects.count()
    response = scim("POST", "Users", user_body(requester.email, name="Someone Else"))
    assert response.status_code == 409
    assert response.doc == {
        "schemas": [ERROR],
        "status": "409",
        "scimType": "uniqueness",
        "detail": f"userName {requester.email} exists already",
    }
    requester.refresh_from_db()
    assert requester.name != "Someone Else"
    assert AuditEvent.objects.count() == before


def test_get_one_and_404_with_a_scim_error_body(scim, requester, manager):
    response = scim("GET", f"Users/{requester.pk}")
    assert response.status_code == 200
    assert response.doc["schemas"] == [USER, ENTERPRISE]
    assert response.doc["userName"] == requester.email
    assert response.doc[ENTERPRISE]["manager"]["value"] == str(manager.pk)
    assert response.doc["groups"][0]["value"] == str(requester.team_id)
    missing = scim("GET", "Users/999999")
    assert missing.status_code == 404
    assert missing.doc["schemas"] == [ERROR] and missing.doc["status"] == "404"
    assert scim("GET", "Users/not-a-number").status_code == 404


def test_put_changing_department_is_a_mover_and_manager_a_change(scim, org, requester, admin):
    url = f"Users/{requester.pk}"
    body = user_body(requester.email, name=requester.name, department="search", manager=admin.pk)
    response = scim("PUT", url, body)

    assert response.status_code == 200, response.doc
    requester.refresh_from_db()
    assert (requester.team, requester.manager) == (org["search"], admin)
    move = TeamMove.objects.get(user=requester)
    assert (move.from_team, move.to_team) == (org["payments"], org["search"])
    assert not Membership.objects.filter(user=requester, team=org["payments"]).exists()
    assert Membership.objects.filter(user=requester, team=org["search"]).exists()
    moved = AuditEvent.objects.get(action="user.moved")
    assert moved.actor_label == "system:scim.okta"
    assert (moved.before, moved.after["team"]) == ({"team": "payments"}, "search")
    updated = AuditEvent.objects.get(action="user.updated")
    assert updated.after["manager"] == admin.email
    # The same PUT again changes nothing and writes nothing.
    count = AuditEvent.objects.count()
    assert scim("PUT", url, body).status_code == 200
    assert AuditEvent.objects.count() == count


def test_username_cannot_change_and_owned_attributes_are_refused(scim, requester):
    url = f"Users/{requester.pk}"
    before = AuditEvent.objects.count()
    renamed = scim("PUT", url, user_body("new@example.com"))
    assert renamed.status_code == 400 and renamed.doc["scimType"] == "mutability"
    for key, value in (
        ("roles", [{"value": "platform-admin"}]),
        ("entitlements", [{"value": "x"}]),
    ):
        response = scim("PUT", url, user_body(requester.email, **{key: value}))
        assert response.status_code == 400
        assert response.doc["scimType"] == "mutability"
        assert key in response.doc["detail"]
    patched = scim(
        "PATCH", url, patch_body({"op": "add", "path": "roles", "value": [{"value": "security"}]})
    )
    assert patched.status_code == 400 and patched.doc["scimType"] == "mutability"
    groups = scim("PATCH", url, patch_body({"op": "add", "path": "groups", "value": []}))
    assert groups.status_code == 400 and groups.doc["scimType"] == "mutability"
    assert AuditEvent.objects.count() == before
    assert not requester.groups.exists()


def test_bad_input_is_a_400_with_scim_type_and_nothing_changes(scim, requester):
    before = (User.objects.count(), AuditEvent.objects.count())
    cases = [
        (user_body("not-an-email"), "invalidValue"),
        ({"userName": "x@example.com"}, "invalidSyntax"),  # no schemas
        (user_body("x@example.com", userType="robot"), "invalidValue"),
        (user_body("x@example.com", active="maybe"), "invalidValue"),
        (user_body("x@example.com", manager=999999), "invalidValue"),
    ]
    for body, scim_type in cases:
        response = scim("POST", "Users", body)
        assert response.status_code == 400, (body, response.doc)
        assert response.doc["scimType"] == scim_type, (body, response.doc)
        assert response.doc["status"] == "400"
    raw = scim.client.post(
        "/scim/v2/Users",
        data="{",
        content_type=CONTENT_TYPE,
        HTTP_AUTHORIZATION=f"Bearer {scim.token}",
    )
    assert raw.status_code == 400
    wrong_type = scim.client.post(
        "/scim/v2/Users",
        data="{}",
        content_type="text/plain",
        HTTP_AUTHORIZATION=f"Bearer {scim.token}",
    )
    assert wrong_type.status_code == 415
    assert (User.objects.count(), AuditEvent.objects.count()) == before


def test_etag_if_match_mismatch_is_412_and_match_applies(scim, requester):
    url = f"Users/{requester.pk}"
    etag = scim("GET", url)["ETag"]
    stale = scim(
        "PATCH",
        url,
        patch_body({"op": "replace", "path": "displayName", "value": "A"}),
        **{"If-Match": 'W/"stale"'},
    )
    assert stale.status_code == 412
    assert stale.doc == {
        "schemas": [ERROR],
        "status": "412",
        "detail": "the resource changed: If-Match does not match its version",
    }
    requester.refresh_from_db()
    assert requester.name != "A"
    ok = scim(
        "PATCH",
        url,
        patch_body({"op": "replace", "path": "displayName", "value": "A"}),
        **{"If-Match": etag},
    )
    assert ok.status_code == 200, ok.doc
    assert ok["ETag"] != etag
    # The old version no longer matches.
    assert scim("PUT", url, user_body(requester.email), **{"If-Match": etag}).status_code == 412
    assert scim("DELETE", url, **{"If-Match": etag}).status_code == 412


def test_patch_paths_without_path_with_uri_and_sub_attributes(scim, org, requester, admin):
    url = f"Users/{requester.pk}"
    response = scim(
        "PATCH",
        url,
        patch_body(
            {"op": "replace", "value": {"name.givenName": "Rae", "displayName": "Rae Quest"}},
            {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": str(admin.pk)},
            {"op": "add", "path": f"{ENTERPRISE}:department", "value": "search"},
            {"op": "replace", "path": "externalId", "value": "ext-1"},
            {"op": "replace", "path": 'emails[type eq "work"].primary', "value": True},
        ),
    )
    assert response.status_code == 200, response.doc
    requester.refresh_from_db()
    assert (requester.name, requester.manager, requester.team) == (
        "Rae Quest",
        admin,
        org["search"],
    )
    assert ScimUser.objects.get(user=requester).external_id == "ext-1"
    cleared = scim("PATCH", url, patch_body({"op": "remove", "path": f"{ENTERPRISE}:manager"}))
    assert cleared.status_code == 200
    requester.refresh_from_db()
    assert requester.manager is None
    no_target = scim(
        "PATCH",
        url,
        patch_body(
            {"op": "replace", "path": 'emails[type eq "home"].value', "value": "x@example.com"}
        ),
    )
    assert no_target.status_code == 400 and no_target.doc["scimType"] == "noTarget"
    bad_op = scim("PATCH", url, patch_body({"op": "move", "path": "displayName", "value": "x"}))
    assert bad_op.status_code == 400 and bad_op.doc["scimType"] == "invalidValue"
    bad_path = scim("PATCH", url, patch_body({"op": "replace", "path": "a[b", "value": "x"}))
    assert bad_path.status_code == 400 and bad_path.doc["scimType"] == "invalidPath"
    no_schema = scim("PATCH", url, {"Operations": [{"op": "remove", "path": "title"}]})
    assert no_schema.status_code == 400 and no_schema.doc["scimType"] == "invalidSyntax"


def test_the_same_change_through_scim_and_import_writes_the_same_events(scim, org, manager):
    from accounts.directory import parse_text
    from accounts.services import directory_import
    from portal.core.actors import DIRECTORY_IMPORT

    scim(
        "POST",
        "Users",
        user_body("one@example.com", name="One Person", department="payments", manager=manager.pk),
    )
    header = "email,name,team,parent_team,manager_email,worker_type,status,start_date,end_date\n"
    today = User.objects.get(email="one@example.com").start_date.isoformat()
    directory_import(
        rows=parse_text(
            header + f"two@example.com,Two Person,payments,,{manager.email},employee,active,"
            f"{today},\n"
        ),
        full=False,
        dry_run=False,
        actor=DIRECTORY_IMPORT,
        source="hr.csv",
    )

    def shape(email: str, label: str) -> list:
        user = User.objects.get(email=email)
        created = AuditEvent.objects.get(action="user.created", target_id=str(user.pk))
        after = {k: v for k, v in created.after.items() if k not in ("email", "name")}
        return [created.actor_label == label, after]

    assert shape("one@example.com", "system:scim.okta") == [
        True,
        shape("two@example.com", "system:directory-import")[1],
    ]


def test_a_team_name_shared_by_two_teams_does_not_move_anyone(scim, org, requester):
    from tests.conftest import make_team

    twin = make_team("payments-eu")
    twin.name = requester.team.name
    twin.save()
    url = f"Users/{requester.pk}"
    response = scim(
        "PATCH", url, patch_body({"op": "replace", "path": "displayName", "value": "Renamed"})
    )
    assert response.status_code == 200
    requester.refresh_from_db()
    assert requester.team == org["payments"]
    assert not TeamMove.objects.filter(user=requester).exists()
