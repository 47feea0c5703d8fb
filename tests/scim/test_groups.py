"""SCIM Groups are teams: create (or take over an existing team), members by PATCH with value
filters, parent through the Tollgate extension, PUT, DELETE; the directory's events."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from accounts.models import Membership, Team
from audit.models import AuditEvent
from scim.constants import GROUP, TOLLGATE_GROUP
from tests.conftest import make_user

from .conftest import group_body, patch_body

pytestmark = pytest.mark.django_db


def members(team) -> set[str]:
    return set(Membership.objects.filter(team=team).values_list("user__email", flat=True))


def test_create_a_group_makes_a_team_with_members_and_a_parent(scim, org, requester, admin):
    body = group_body(
        "Data Platform",
        [requester.pk, admin.pk],
        externalId="00g1",
        **{TOLLGATE_GROUP: {"parent": {"value": str(org["platform"].pk)}}},
    )
    response = scim("POST", "Groups", body)

    assert response.status_code == 201, response.doc
    team = Team.objects.get(slug="data-platform")
    assert (team.name, team.parent) == ("Data Platform", org["platform"])
    assert members(team) == {requester.email, admin.email}
    assert response.doc["schemas"] == [GROUP, TOLLGATE_GROUP]
    assert response.doc["externalId"] == "00g1"
    assert response.doc[TOLLGATE_GROUP]["parent"]["value"] == str(org["platform"].pk)
    assert {m["value"] for m in response.doc["members"]} == {str(requester.pk), str(admin.pk)}
    labels = set(
        AuditEvent.objects.filter(
            action__in=["team.created", "team.membership_changed"]
        ).values_list("actor_label", flat=True)
    )
    assert labels == {"system:scim.okta"}
    (changed,) = AuditEvent.objects.filter(action="team.membership_changed")
    assert (changed.target_type, changed.target_id) == ("accounts.team", str(team.pk))
    assert sorted(changed.after["added"]) == sorted([requester.email, admin.email])
    again = scim("POST", "Groups", group_body("data platform"))
    assert again.status_code == 409 and again.doc["scimType"] == "uniqueness"


def test_an_existing_team_is_taken_over_by_name(scim, org, requester):
    response = scim("POST", "Groups", group_body(org["search"].name, [requester.pk]))
    assert response.status_code == 201
    assert response.doc["id"] == str(org["search"].pk)
    assert requester.email in members(org["search"])
    assert not AuditEvent.objects.filter(action="team.created").exists()


def test_patch_members_add_remove_with_value_filters(scim, org):
    team = org["search"]
    scim("POST", "Groups", group_body(team.name))
    a, b, c = (make_user(f"{n}@corp.test", team=org["other"]) for n in "abc")
    url = f"Groups/{team.pk}"
    add = scim(
        "PATCH",
        url,
        patch_body(
            {
                "op": "add",
                "path": "members",
                "value": [{"value": str(a.pk)}, {"value": str(b.pk)}, {"value": str(c.pk)}],
            }
        ),
    )
    assert add.status_code == 200, add.doc
    assert {"a@corp.test", "b@corp.test", "c@corp.test"} <= members(team)
    removed = scim(
        "PATCH",
        url,
        patch_body({"op": "remove", "path": f'members[value eq "{a.pk}" or value eq "{b.pk}"]'}),
    )
    assert removed.status_code == 200, removed.doc
    assert "a@corp.test" not in members(team) and "b@corp.test" not in members(team)
    assert "c@corp.test" in members(team)
    # Entra ID's form: remove with a value list.
    entra = scim(
        "PATCH",
        url,
        patch_body({"op": "remove", "path": "members", "value": [{"value": str(c.pk)}]}),
    )
    assert entra.status_code == 200
    assert "c@corp.test" not in members(team)
    gone = AuditEvent.objects.filter(action="team.membership_changed", before__isnull=False)
    assert [sorted(e.before["removed"]) for e in gone.order_by("seq")] == [
        ["a@corp.test", "b@corp.test"],
        ["c@corp.test"],
    ]
    unknown = scim(
        "PATCH", url, patch_body({"op": "add", "path": "members", "value": [{"value": "999999"}]})
    )
    assert unknown.status_code == 400 and unknown.doc["scimType"] == "invalidValue"


def test_home_team_members_and_leads_are_kept_when_removed(scim, org, requester, manager):
    team = org["payments"]  # requester's home team; manager leads it
    scim("POST", "Groups", group_body(team.name, [requester.pk, manager.pk]))
    response = scim("PUT", f"Groups/{team.pk}", group_body(team.name, []))
    assert response.status_code == 200
    assert members(team) == {requester.email, manager.email}


def test_rename_reparent_put_and_cycle_refused(scim, org):
    platform = org["platform"]
    scim("POST", "Groups", group_body(platform.name))
    payments = org["payments"]
    url = f"Groups/{payments.pk}"
    scim("POST", "Groups", group_body(payments.name))
    body = group_body(
        "Payments Core", **{TOLLGATE_GROUP: {"parent": {"value": str(org["other"].pk)}}}
    )
    response = scim("PUT", url, body)
    assert response.status_code == 200, response.doc
    payments.refresh_from_db()
    assert (payments.name, payments.parent) == ("Payments Core", org["other"])
    updated = AuditEvent.objects.filter(action="team.updated").last()
    assert updated.after == {"name": "Payments Core", "parent": "other"}
    cycle = scim(
        "PATCH",
        f"Groups/{platform.pk}",
        patch_body(
            {
                "op": "replace",
                "path": f"{TOLLGATE_GROUP}:parent",
                "value": {"value": str(org["search"].pk)},
            }
        ),
    )
    assert cycle.status_code == 400 and "cycle" in cycle.doc["detail"]
    platform.refresh_from_db()
    assert platform.parent is None


def test_delete_a_group_keeps_the_team_and_hides_it(scim, org, admin):
    response = scim("POST", "Groups", group_body("Guild", [admin.pk]))
    team = Team.objects.get(slug="guild")
    assert scim("DELETE", f"Groups/{team.pk}").status_code == 204
    assert Team.objects.filter(pk=team.pk).exists()
    assert members(team) == set()
    assert scim("GET", f"Groups/{team.pk}").status_code == 404
    filtered = scim("GET", "Groups?filter=" + quote('displayName eq "Guild"'))
    assert filtered.doc["totalResults"] == 0
    again = scim("POST", "Groups", group_body("Guild"))
    assert again.status_code == 201 and again.doc["id"] == response.doc["id"]


def test_group_etag_412(scim, org):
    scim("POST", "Groups", group_body(org["search"].name))
    url = f"Groups/{org['search'].pk}"
    response = scim("PUT", url, group_body("Renamed"), **{"If-Match": 'W/"nope"'})
    assert response.status_code == 412 and response.doc["status"] == "412"
    org["search"].refresh_from_db()
    assert org["search"].name != "Renamed"
