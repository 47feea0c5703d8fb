"""API test helpers: a small catalog, and clients authenticated by session or token."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.access.factories import make_entitlement, make_service
from tokens.services import api_token_create


class Api:
    """A thin JSON client: ``api.get(path)``, ``api.post(path, body)``."""

    def __init__(self, client: Client, headers: dict | None = None):
        self.client = client
        self.headers = headers or {}

    def get(self, path: str, params: dict | None = None):
        return self.client.get(path, params or {}, headers=self.headers)

    def post(self, path: str, body=None):
        data = json.dumps(body if body is not None else {})
        return self.client.post(path, data, content_type="application/json", headers=self.headers)

    def call(self, method: str, path: str):
        return getattr(self.client, method.lower())(path, headers=self.headers)


def session_api(user) -> Api:
    client = Client()
    client.force_login(user)
    return Api(client)


def token_api(user, **kwargs) -> Api:
    _token, plaintext = api_token_create(actor=user, user=user, name="test", **kwargs)
    return Api(Client(), {"Authorization": f"Bearer {plaintext}"})


@pytest.fixture
def as_user():
    """``as_user(user)`` → an Api signed in with a session."""
    return session_api


@pytest.fixture
def catalog(org):
    """search-db (owned by the search team): read (low), admin (medium, 14 days max),
    locked (not requestable); payments-api (owned by payments): deploy (low)."""
    search_db = make_service(org["search"], slug="search-db", tier=1)
    payments_api = make_service(org["payments"], slug="payments-api", tier=0)
    return {
        "search_db": search_db,
        "payments_api": payments_api,
        "read": make_entitlement(search_db, slug="read", risk="low"),
        "admin": make_entitlement(search_db, slug="admin", risk="medium", max_days=14),
        "locked": make_entitlement(search_db, slug="locked", risk="high", requestable=False),
        "deploy": make_entitlement(payments_api, slug="deploy", risk="low"),
    }
