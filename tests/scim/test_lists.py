"""Listing Users and Groups: filters (every operator, and/or/not, grouping, attribute paths,
meta.lastModified), pagination bounds, attributes/excludedAttributes, sorting."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from scim.constants import ENTERPRISE, LIST
from scim.models import ScimUser
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(org):
    ann = make_user("ann@corp.test", team=org["payments"], name="Ann Able")
    bob = make_user("bob@corp.test", team=org["search"], name="Bob Baker", worker_type="contractor")
    cat = make_user(
        "cat@other.test", team=org["search"], name="Cat Cole", is_active=False, status="leaver"
    )
    return ann, bob, cat


def emails(scim, text: str) -> list[str]:
    response = scim("GET", f"Users?filter={quote(text)}&sortBy=userName")
    assert response.status_code == 200, (text, response.doc)
    assert response.doc["schemas"] == [LIST]
    assert response.doc["totalResults"] == len(response.doc["Resources"])
    return [r["userName"] for r in response.doc["Resources"]]


def test_every_operator_and_logic(scim, people):
    assert emails(scim, 'userName eq "ANN@corp.test"') == ["ann@corp.test"]
    assert emails(scim, 'userName ne "ann@corp.test"') == ["bob@corp.test", "cat@other.test"]
    assert emails(scim, 'userName co "corp"') == ["ann@corp.test", "bob@corp.test"]
    assert emails(scim, 'userName sw "b"') == ["bob@corp.test"]
    assert emails(scim, 'userName ew "other.test"') == ["cat@other.test"]
    assert emails(scim, "displayName pr") == ["ann@corp.test", "bob@corp.test", "cat@other.test"]
    assert emails(scim, 'userName gt "b"') == ["bob@corp.test", "cat@other.test"]
    assert emails(scim, 'userName ge "bob@corp.test"') == ["bob@corp.test", "cat@other.test"]
    assert emails(scim, 'userName lt "b"') == ["ann@corp.test"]
    assert emails(scim, 'userName le "bob@corp.test"') == ["ann@corp.test", "bob@corp.test"]
    assert emails(scim, 'active eq true and userType eq "contractor"') == ["bob@corp.test"]
    assert emails(scim, 'userName sw "a" or userName sw "c"') == ["ann@corp.test", "cat@other.test"]
    assert emails(scim, 'not (userName sw "a" or active eq false)') == ["bob@corp.test"]
    assert emails(scim, f'{ENTERPRISE}:department eq "search"') == [
        "bob@corp.test",
        "cat@other.test",
    ]
    assert emails(scim, 'emails.value co "other"') == ["cat@other.test"]
    assert emails(scim, 'emails[value eq "ann@corp.test"]') == ["ann@corp.test"]


def test_meta_last_modified_and_external_id(scim, people):
    ann, bob, _ = people
    now = timezone.now()
    ScimUser.objects.create(user=ann, external_id="00uA", last_modified=now + timedelta(hours=1))
    stamp = (now + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert emails(scim, f'meta.lastModified gt "{stamp}"') == ["ann@corp.test"]
    assert "ann@corp.test" not in emails(scim, f'meta.lastModified lt "{stamp}"')
    assert emails(scim, 'externalId eq "00uA"') == ["ann@corp.test"]


def test_bad_filters_are_invalid_filter(scim, people):
    for text in (
        'nope eq "x"',
        "userName eq",
        "userName zz 1",
        'meta.lastModified gt "soon"',
        '(userName eq "a"',
    ):
        response = scim("GET", f"Users?filter={quote(text)}")
        assert response.status_code == 400, text
        assert response.doc["scimType"] == "invalidFilter", text


def test_pagination_bounds(scim, people):
    first = scim("GET", "Users?startIndex=1&count=2&sortBy=userName")
    assert (first.doc["totalResults"], first.doc["itemsPerPage"], first.doc["startIndex"]) == (
        3,
        2,
        1,
    )
    assert [r["userName"] for r in first.doc["Resources"]] == ["ann@corp.test", "bob@corp.test"]
    last = scim("GET", "Users?startIndex=3&count=2&sortBy=userName")
    assert [r["userName"] for r in last.doc["Resources"]] == ["cat@other.test"]
    beyond = scim("GET", "Users?startIndex=10&count=2")
    assert (beyond.doc["totalResults"], beyond.doc["Resources"]) == (3, [])
    low = scim("GET", "Users?startIndex=0&count=-5")  # below 1 means 1; negative count means 0
    assert (low.doc["startIndex"], low.doc["itemsPerPage"], low.doc["totalResults"]) == (1, 0, 3)
    huge = scim("GET", "Users?count=100000")
    assert huge.doc["itemsPerPage"] == 3
    bad = scim("GET", "Users?count=ten")
    assert bad.status_code == 400 and bad.doc["scimType"] == "invalidValue"


def test_sorting_descending_and_unknown_sort(scim, people):
    response = scim("GET", "Users?sortBy=userName&sortOrder=descending")
    assert [r["userName"] for r in response.doc["Resources"]] == [
        "cat@other.test",
        "bob@corp.test",
        "ann@corp.test",
    ]
    assert scim("GET", "Users?sortBy=nickName").status_code == 400


def test_attributes_and_excluded_attributes(scim, people):
    ann = people[0]
    only = scim("GET", f"Users/{ann.pk}?attributes=userName,name.givenName,{ENTERPRISE}:department")
    assert only.doc == {
        "schemas": only.doc["schemas"],
        "id": str(ann.pk),
        "userName": "ann@corp.test",
        "name": {"givenName": "Ann"},
        ENTERPRISE: {"department": ann.team.name},
    }
    without = scim("GET", f"Users/{ann.pk}?excludedAttributes=emails,groups,name.familyName")
    assert "emails" not in without.doc and "groups" not in without.doc
    assert without.doc["name"] == {"formatted": "Ann Able", "givenName": "Ann"}
    listed = scim("GET", "Users?attributes=userName&count=1&sortBy=userName")
    assert listed.doc["Resources"] == [
        {
            "schemas": listed.doc["Resources"][0]["schemas"],
            "id": str(ann.pk),
            "userName": "ann@corp.test",
        }
    ]


def test_groups_list_and_member_filter(scim, org, people):
    ann, bob, _ = people
    response = scim("GET", "Groups?filter=" + quote('displayName eq "Payments"'))
    names = [g["displayName"] for g in response.doc["Resources"]]
    assert names == [org["payments"].name]
    response = scim("GET", "Groups?filter=" + quote('members[value eq "' + str(bob.pk) + '"]'))
    assert [g["id"] for g in response.doc["Resources"]] == [str(org["search"].pk)]
    response = scim("GET", "Groups?count=2&startIndex=2&sortBy=displayName")
    assert response.doc["totalResults"] == 5 and response.doc["itemsPerPage"] == 2
