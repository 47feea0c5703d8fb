"""GET /api/v1/me, /services/, /services/<slug>, /entitlements/."""

from __future__ import annotations

import pytest

from .conftest import session_api, token_api

pytestmark = pytest.mark.django_db


def test_me_without_team(db):
    from tests.conftest import make_user

    loner = make_user("loner@example.com")
    assert session_api(loner).get("/api/v1/me").json() == {
        "id": loner.pk,
        "email": "loner@example.com",
        "name": "Loner",
        "team": None,
    }


@pytest.mark.sqlite
def test_services_list_is_paginated_and_filtered(requester, catalog):
    api = token_api(requester)
    body = api.get("/api/v1/services/").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert [s["slug"] for s in body["results"]] == ["payments-api", "search-db"]
    search = body["results"][1]
    assert search == {
        "id": catalog["search_db"].pk,
        "slug": "search-db",
        "name": "Search Db",
        "owner_team": "search",
        "tier": 1,
        "description": "",
        "docs_url": "",
        "entitlement_count": 3,
    }
    assert [
        s["slug"] for s in api.get("/api/v1/services/", {"team": "payments"}).json()["results"]
    ] == ["payments-api"]
    assert [s["slug"] for s in api.get("/api/v1/services/", {"tier": "1"}).json()["results"]] == [
        "search-db"
    ]
    assert [
        s["slug"] for s in api.get("/api/v1/services/", {"risk": "medium"}).json()["results"]
    ] == ["search-db"]
    assert [s["slug"] for s in api.get("/api/v1/services/", {"q": "paym"}).json()["results"]] == [
        "payments-api"
    ]


def test_services_pagination_links(requester, catalog):
    body = token_api(requester).get("/api/v1/services/", {"limit": 1}).json()
    assert body["count"] == 2
    assert len(body["results"]) == 1
    assert body["previous"] is None
    assert "offset=1" in body["next"]


@pytest.mark.parametrize("params,field", [({"tier": "9"}, "tier"), ({"risk": "huge"}, "risk")])
def test_services_bad_filter_is_400_naming_it(requester, catalog, params, field):
    response = token_api(requester).get("/api/v1/services/", params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["field"] == field


def test_service_detail_lists_its_entitlements(other_team_user, catalog):
    response = token_api(other_team_user).get("/api/v1/services/search-db")
    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "search-db"
    assert body["entitlement_count"] == 3
    assert [e["slug"] for e in body["entitlements"]] == ["admin", "locked", "read"]


def test_unknown_service_is_404_problem_json(requester, catalog):
    response = token_api(requester).get("/api/v1/services/nope")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404


@pytest.mark.sqlite
def test_entitlements_filtered_by_service_and_text(requester, catalog):
    api = token_api(requester)
    body = api.get("/api/v1/entitlements/", {"service": "search-db", "q": "adm"}).json()
    assert body["count"] == 1
    assert body["results"][0] == {
        "id": catalog["admin"].pk,
        "service": "search-db",
        "slug": "admin",
        "name": "Admin",
        "description": "",
        "risk": "medium",
        "requestable": True,
        "default_duration_days": 14,
        "max_duration_days": 14,
        "seat_cost_monthly": "0.00",
        "policy": None,
        "allows_break_glass": False,
    }
    all_search = api.get("/api/v1/entitlements/", {"service": "search-db"}).json()
    assert [e["slug"] for e in all_search["results"]] == ["admin", "locked", "read"]
    requestable = api.get(
        "/api/v1/entitlements/", {"service": "search-db", "requestable": "true"}
    ).json()
    assert [e["slug"] for e in requestable["results"]] == ["admin", "read"]
    assert api.get("/api/v1/entitlements/").json()["count"] == 4


def test_entitlement_list_query_count_is_bounded(requester, catalog, django_assert_max_num_queries):
    from tests.access.factories import make_entitlement

    for i in range(20):
        make_entitlement(catalog["search_db"], slug=f"e{i}")
    api = token_api(requester)
    with django_assert_max_num_queries(6):
        response = api.get("/api/v1/entitlements/")
    assert response.json()["count"] == 24
