"""Service tokens on the /tokens/ page: admins create (shown once), list and revoke them;
nobody else sees or creates them, and a revocation is seen by the service's next call."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from audit.models import AuditEvent
from portal.core.actors import CLI
from tests.access.factories import grant_directly, make_entitlement, make_service
from tokens.models import ApiToken
from tokens.services import hash_secret, service_token_create

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _check(plaintext: str, principal: str, service: str = "search-db"):
    return Client().post(
        "/api/v1/check",
        json.dumps({"principal": principal, "service": service, "entitlement": "read"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {plaintext}"},
    )


@pytest.fixture
def search_db(org):
    service = make_service(org["search"], slug="search-db", tier=1)
    make_entitlement(service, slug="read", risk="low")
    return service


@pytest.mark.sqlite
def test_admin_creates_a_service_token_that_works_and_is_shown_once(
    admin, requester, search_db, django_capture_on_commit_callbacks
):
    grant_directly(requester, search_db.entitlements.get(slug="read"), days=5)
    client = _client(admin)
    response = client.post(
        "/tokens/service/new",
        {"service": "search-db", "name": "search prod", "expires_in": "90"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    plaintext = re.search(r'<code id="new-token">([^<]+)</code>', response.content.decode())[1]
    token = ApiToken.objects.get(service=search_db)
    assert token.key_hash == hash_secret(plaintext)
    assert (token.user_id, token.scopes) == (None, ["check"])
    assert token.expires_at is not None
    assert AuditEvent.objects.filter(action="api_token.created", target_id=str(token.pk)).exists()
    assert _check(plaintext, requester.email).json()["allowed"] is True
    listing = client.get("/tokens/").content.decode()
    assert "search prod" in listing and token.prefix in listing and plaintext not in listing
    assert re.search(r"<title>(.*?)</title>", listing, re.S)[1].startswith("API tokens")
    assert listing.count('id="service-tokens"') == 1  # the section once, in the page body

    with django_capture_on_commit_callbacks(execute=True):
        revoked = client.post(f"/tokens/{token.pk}/revoke")
    assert revoked.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert _check(plaintext, requester.email).status_code == 401


def test_bad_service_token_form_names_the_field_and_creates_nothing(admin, search_db):
    response = _client(admin).post(
        "/tokens/service/new", {"service": "no-such", "name": "", "expires_in": "90"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Select a valid choice" in body and "This field is required" in body
    assert not ApiToken.objects.exists()


def test_people_who_are_not_admins_neither_see_nor_create_service_tokens(
    requester, auditor, search_db
):
    token, _ = service_token_create(actor=CLI, service=search_db, name="existing")
    for person in (requester, auditor):
        client = _client(person)
        page = client.get("/tokens/").content.decode()
        assert "Service tokens" not in page and token.prefix not in page
        refused = client.post("/tokens/service/new", {"service": "search-db", "name": "x"})
        assert refused.status_code == 403
        assert client.post(f"/tokens/{token.pk}/revoke").status_code == 404
    assert ApiToken.objects.count() == 1
    token.refresh_from_db()
    assert token.revoked_at is None


def test_service_token_create_refuses_non_admins_and_bad_names(requester, search_db):
    from portal.core.errors import NotPermitted, ValidationError

    with pytest.raises(NotPermitted):
        service_token_create(actor=requester, service=search_db, name="x")
    with pytest.raises(ValidationError, match="name"):
        service_token_create(actor=CLI, service=search_db, name=" ")
    assert not ApiToken.objects.exists()
