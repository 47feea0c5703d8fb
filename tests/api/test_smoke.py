"""Every GET list endpoint: anonymous → 401 problem+json; signed in → 200 with valid JSON."""

from __future__ import annotations

import pytest
from django.test import Client

from .conftest import session_api, token_api

LIST_ENDPOINTS = [
    "/api/v1/me",
    "/api/v1/services/",
    "/api/v1/entitlements/",
    "/api/v1/requests/",
    "/api/v1/approvals/",
    "/api/v1/grants/",
    "/api/v1/grants/?principal=me",
]

pytestmark = pytest.mark.django_db


@pytest.mark.sqlite
@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_anonymous_is_refused(path):
    response = Client().get(path)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 401


@pytest.mark.sqlite
@pytest.mark.parametrize("auth", ["session", "token"])
@pytest.mark.parametrize("path", LIST_ENDPOINTS)
def test_signed_in_gets_json(personas, catalog, path, auth):
    for user in personas.values():
        api = session_api(user) if auth == "session" else token_api(user)
        response = api.get(path)
        assert response.status_code == 200, (user.email, path, response.content)
        assert response["Content-Type"] == "application/json"
        body = response.json()
        if path != "/api/v1/me":
            assert set(body) == {"count", "next", "previous", "results"}
            assert isinstance(body["results"], list)
