"""The /tokens/ page: list mine, create (secret shown once), revoke by POST with CSRF."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from audit.models import AuditEvent
from tokens.models import ApiToken
from tokens.services import api_token_create, hash_secret

pytestmark = pytest.mark.django_db


def _client(user, **kw) -> Client:
    client = Client(**kw)
    client.force_login(user)
    return client


def test_anonymous_is_sent_to_sign_in(db):
    response = Client().get("/tokens/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert Client().post("/tokens/new", {"name": "x"}).status_code == 302
    assert not ApiToken.objects.exists()


@pytest.mark.sqlite
def test_create_shows_the_secret_once(requester):
    client = _client(requester)
    response = client.post(
        "/tokens/new", {"name": "laptop", "scopes": ["read", "write"], "expires_in": "30"}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    plaintext = re.search(r'<code id="new-token">([^<]+)</code>', body).group(1)
    token = ApiToken.objects.get()
    assert token.key_hash == hash_secret(plaintext)
    assert token.expires_at is not None
    listing = client.get("/tokens/").content.decode()
    assert "laptop" in listing
    assert token.prefix in listing
    assert plaintext not in listing


def test_list_shows_only_my_tokens(requester, manager):
    api_token_create(actor=requester, user=requester, name="mine-token")
    api_token_create(actor=manager, user=manager, name="managers-token")
    body = _client(requester).get("/tokens/").content.decode()
    assert "mine-token" in body
    assert "managers-token" not in body


def test_invalid_form_creates_nothing(requester):
    response = _client(requester).post(
        "/tokens/new", {"name": "", "scopes": ["read"], "expires_in": "30"}
    )
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_revoke_by_post_with_csrf(requester):
    token, _ = api_token_create(actor=requester, user=requester, name="ci")
    client = _client(requester, enforce_csrf_checks=True)
    page = client.get("/tokens/")
    csrf = page.context["csrf_token"]
    refused = client.post(f"/tokens/{token.pk}/revoke")
    assert refused.status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None
    response = client.post(f"/tokens/{token.pk}/revoke", {"csrfmiddlewaretoken": str(csrf)})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_create_needs_csrf(requester):
    client = _client(requester, enforce_csrf_checks=True)
    response = client.post("/tokens/new", {"name": "x", "scopes": ["read"], "expires_in": "30"})
    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_revoke_by_get_is_405(requester):
    token, _ = api_token_create(actor=requester, user=requester, name="ci")
    assert _client(requester).get(f"/tokens/{token.pk}/revoke").status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_someone_elses_token_is_404(requester, other_team_user):
    token, _ = api_token_create(actor=requester, user=requester, name="ci")
    client = _client(other_team_user)
    before = AuditEvent.objects.count()
    assert client.post(f"/tokens/{token.pk}/revoke").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert AuditEvent.objects.count() == before
