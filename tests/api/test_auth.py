"""Who gets in: session (with CSRF for writes), bearer tokens, and nobody else."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from access.models import AccessRequest
from audit.models import AuditEvent
from tokens.models import ApiToken
from tokens.services import api_token_create, api_token_revoke

from .conftest import Api, token_api

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def _bearer(plaintext: str) -> Api:
    return Api(Client(), {"Authorization": f"Bearer {plaintext}"})


def _assert_401(response):
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == 401
    assert body["type"].startswith("https://tollgate.test/problems/")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.sqlite
def test_bearer_token_authenticates_the_owner(requester):
    api = token_api(requester)
    response = api.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json() == {
        "id": requester.pk,
        "email": "requester@example.com",
        "name": "Requester",
        "team": "payments",
    }


@pytest.mark.sqlite
def test_anonymous_gets_401_problem_json(db):
    _assert_401(Client().get("/api/v1/me"))
    _assert_401(Client().post("/api/v1/requests/", "{}", content_type="application/json"))


def test_revoked_token_gets_401(requester):
    token, plaintext = api_token_create(actor=requester, user=requester, name="ci")
    assert _bearer(plaintext).get("/api/v1/me").status_code == 200
    api_token_revoke(actor=requester, token_id=token.pk)
    response = _bearer(plaintext).get("/api/v1/me")
    _assert_401(response)
    assert response.json()["detail"] == "This token has been revoked."


def test_expired_token_gets_401(requester):
    token, plaintext = api_token_create(
        actor=requester, user=requester, name="ci", expires_at=timezone.now() + timedelta(days=1)
    )
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _bearer(plaintext).get("/api/v1/me")
    _assert_401(response)
    assert response.json()["detail"] == "This token has expired."


def test_token_of_inactive_person_gets_401(requester):
    _token, plaintext = api_token_create(actor=requester, user=requester, name="ci")
    requester.is_active = False
    requester.save(update_fields=["is_active"])
    response = _bearer(plaintext).get("/api/v1/me")
    _assert_401(response)
    assert response.json()["detail"] == "The token's owner is not active."


@pytest.mark.parametrize(
    "header",
    ["Bearer tg_not-a-real-token", "Bearer", "Bearer a b", "Bearer " + "x" * 300],
)
def test_unknown_or_malformed_token_gets_401(requester, header):
    _assert_401(Client().get("/api/v1/me", headers={"Authorization": header}))


def test_service_token_is_refused_on_user_endpoints(catalog):
    from tokens.services import generate_secret, hash_secret

    plaintext = generate_secret()
    ApiToken.objects.create(
        service=catalog["search_db"],
        name="svc",
        prefix=plaintext[:8],
        key_hash=hash_secret(plaintext),
    )
    response = _bearer(plaintext).get("/api/v1/me")
    _assert_401(response)
    assert response.json()["detail"] == "Service tokens are not accepted here."


def test_last_used_is_stamped_at_most_once_a_minute(requester):
    token, plaintext = api_token_create(actor=requester, user=requester, name="ci")
    assert token.last_used_at is None
    api = _bearer(plaintext)
    api.get("/api/v1/me")
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    api.get("/api/v1/me")
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(seconds=61))
    api.get("/api/v1/me")
    token.refresh_from_db()
    assert token.last_used_at > first


def test_read_only_token_may_read_but_not_write(requester, catalog):
    api = token_api(requester, scopes=["read"])
    assert api.get("/api/v1/me").status_code == 200
    response = api.post(
        "/api/v1/requests/",
        {"entitlement": catalog["read"].pk, "justification": "x", "duration_days": 3},
    )
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert AccessRequest.objects.count() == 0


def test_token_post_needs_no_csrf(requester, catalog):
    _token, plaintext = api_token_create(actor=requester, user=requester, name="ci")
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/requests/",
        json.dumps({"entitlement": catalog["read"].pk, "justification": "on-call"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {plaintext}"},
    )
    assert response.status_code == 201


@pytest.mark.sqlite
def test_session_post_without_csrf_token_is_refused(requester, catalog):
    client = Client(enforce_csrf_checks=True)
    client.force_login(requester)
    before = AuditEvent.objects.count()
    response = client.post(
        "/api/v1/requests/",
        json.dumps({"entitlement": catalog["read"].pk, "justification": "on-call"}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert "CSRF" in response.json()["detail"]
    assert AccessRequest.objects.count() == 0
    assert AuditEvent.objects.count() == before


def test_session_post_with_csrf_token_is_accepted(requester, catalog):
    client = Client(enforce_csrf_checks=True)
    client.force_login(requester)
    client.get("/tokens/")  # any page sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    response = client.post(
        "/api/v1/requests/",
        json.dumps({"entitlement": catalog["read"].pk, "justification": "on-call"}),
        content_type="application/json",
        headers={"X-CSRFToken": csrf},
    )
    assert response.status_code == 201
    assert AccessRequest.objects.get().requester == requester


@pytest.mark.parametrize(
    "method,path",
    [
        ("delete", "/api/v1/me"),
        ("post", "/api/v1/me"),
        ("put", "/api/v1/services/"),
        ("post", "/api/v1/approvals/"),
        ("get", "/api/v1/requests/1/approve"),
        ("patch", "/api/v1/grants/"),
        ("get", "/api/v1/grants/1/revoke"),
    ],
)
def test_wrong_method_is_405_problem_json(requester, method, path):
    response = token_api(requester).call(method, path)
    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM
    assert response.json()["status"] == 405
