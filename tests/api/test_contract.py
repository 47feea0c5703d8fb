"""The API's contract beyond each operation: every answer under /api/ that is not a success is
problem+json (unknown paths, malformed path ids, 405, 401, 403), lists do bounded work per
call (``limit`` at most 500), and callers are throttled per token with 429 + Retry-After."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from access.models import AccessRequest
from tests.access.factories import grant_directly

from .conftest import session_api, token_api
from .test_check_api import CHECK, body, service_api

PROBLEM = "application/problem+json"


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    data = response.json()
    assert data["status"] == status
    assert data["type"].startswith("https://tollgate.test/problems/")
    return data


# --- problem+json everywhere -------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/no-such-thing",
        "/api/v2/me",
        "/api/",
        "/api/v1/requests/null,null/approve",
        "/api/v1/requests/abc",
        "/api/v1/grants/-1/revoke",
        "/api/v1/services/not a slug",
        "/api/v1/grants",  # a list path without its trailing slash
    ],
)
def test_unmatched_api_paths_answer_404_problem_json(requester, path):
    api = token_api(requester)
    for method in ("GET", "POST", "PUT", "DELETE"):
        data = _problem(api.call(method, path), 404)
        assert data["type"] == "https://tollgate.test/problems/not-found"
        assert "no API operation" in data["detail"]


@pytest.mark.django_db
def test_unmatched_api_paths_still_authenticate_first():
    assert _problem(Client().get("/api/v1/no-such-thing"), 401)
    bogus = {"Authorization": "Bearer not-a-real-token"}
    _problem(Client().get("/api/v1/requests/null,null/approve", headers=bogus), 401)


def test_malformed_path_id_reaches_no_view(requester, catalog):
    grant_directly(requester, catalog["read"])
    api = token_api(requester)
    _problem(api.post("/api/v1/requests/null,null/approve", {"reason": "x"}), 404)
    assert AccessRequest.objects.count() == 0


def test_wrong_method_is_405_problem_json_with_allow(requester):
    api = token_api(requester)
    response = api.call("DELETE", "/api/v1/me")
    data = _problem(response, 405)
    assert data["type"] == "https://tollgate.test/problems/method-not-allowed"
    assert "GET" in response["Allow"]
    _problem(api.call("GET", "/api/v1/requests/1/approve"), 405)


@pytest.mark.django_db
def test_401_and_403_are_problem_json(requester):
    bogus = {"Authorization": "Bearer not-a-real-token"}
    _problem(Client().get("/api/v1/me", headers=bogus), 401)
    _problem(Client().get("/api/v1/me"), 401)
    read_only = token_api(requester, scopes=["read"])
    data = _problem(read_only.post("/api/v1/requests/", {}), 403)
    assert "scopes" in data["detail"]
    # A personal token on the check API (service tokens only).
    _problem(token_api(requester).post(CHECK, body(requester.email)), 403)


# --- bounded lists ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=501", "limit"),
        ("limit=1000000000000", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=", "limit"),
        ("offset=1000001", "offset"),
        ("offset=99999999999999999999", "offset"),
        ("offset=x", "offset"),
    ],
)
def test_list_bounds_are_400_naming_the_parameter(requester, catalog, query, field):
    for path in ("/api/v1/services/", "/api/v1/grants/", "/api/v1/requests/"):
        data = _problem(token_api(requester).get(f"{path}?{query}"), 400)
        assert data["field"] == field
        assert f"{field} must be a whole number from" in data["detail"]


def test_limit_up_to_500_is_served(requester, catalog):
    api = token_api(requester)
    response = api.get("/api/v1/services/?limit=500&offset=0")
    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert len(api.get("/api/v1/services/?limit=1").json()["results"]) == 1


# --- throttling ---------------------------------------------------------------------------


@pytest.fixture
def rate_of_three(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "3/minute"},
    }


def test_a_token_over_its_rate_gets_429_with_retry_after(rate_of_three, requester, manager):
    api = token_api(requester)
    for _ in range(3):
        assert api.get("/api/v1/me").status_code == 200
    response = api.get("/api/v1/me")
    data = _problem(response, 429)
    assert data["type"] == "https://tollgate.test/problems/throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Counted per token: the same person's other token, and another person, are not held up.
    assert token_api(requester).get("/api/v1/me").status_code == 200
    assert token_api(manager).get("/api/v1/me").status_code == 200
    # Every operation counts, not only the one called.
    _problem(api.get("/api/v1/services/"), 429)


def test_a_session_is_throttled_per_person(rate_of_three, requester):
    api = session_api(requester)
    for _ in range(3):
        assert api.get("/api/v1/me").status_code == 200
    _problem(api.get("/api/v1/me"), 429)


def test_the_check_api_is_not_throttled(rate_of_three, requester, catalog):
    svc = service_api(catalog["search_db"])
    for _ in range(5):
        assert svc.post(CHECK, body(requester.email)).status_code == 200
    assert svc.post("/api/v1/check/batch", {"checks": [body(requester.email)]}).status_code == 200


def test_the_default_rate_is_set(settings):
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"] == "600/minute"
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == [
        "portal.core.throttling.TokenRateThrottle"
    ]


def test_a_server_error_under_the_api_is_problem_json_without_the_exception(rf):
    from portal.core.views import error_500

    response = error_500(rf.get("/api/v1/requests/"))

    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content)["status"] == 500
    page = error_500(rf.get("/requests/"))
    assert page["Content-Type"].startswith("text/html")
