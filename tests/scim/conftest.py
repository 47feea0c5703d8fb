"""SCIM test helpers: a client with its token, and a caller speaking application/scim+json."""

from __future__ import annotations

import json

import pytest

from portal.core.actors import CLI
from scim.constants import CONTENT_TYPE, ENTERPRISE, GROUP, PATCH_OP, USER
from scim.services import scim_client_create


@pytest.fixture
def okta(db):
    client, token = scim_client_create(actor=CLI, name="Okta")
    return client, token


class Scim:
    def __init__(self, client, token: str):
        self.client = client
        self.token = token

    def __call__(self, method: str, path: str, body=None, *, token=None, **headers):
        extra = {"HTTP_AUTHORIZATION": f"Bearer {token or self.token}"}
        extra.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
        url = path if path.startswith("/") else f"/scim/v2/{path}"
        data = json.dumps(body) if body is not None else None
        call = getattr(self.client, method.lower())
        if data is None:
            response = call(url, **extra)
        else:
            response = call(url, data=data, content_type=CONTENT_TYPE, **extra)
        response.doc = json.loads(response.content) if response.content else None
        return response


@pytest.fixture
def scim(client, okta):
    return Scim(client, okta[1])


def user_body(email: str, *, name: str = "", department: str | None = None, **extra) -> dict:
    body: dict = {"schemas": [USER, ENTERPRISE], "userName": email, "active": True}
    if name:
        body["displayName"] = name
    ent: dict = {}
    if department is not None:
        ent["department"] = department
    if "manager" in extra:
        ent["manager"] = {"value": str(extra.pop("manager"))}
    for key in ("employeeNumber", "costCenter"):
        if key in extra:
            ent[key] = extra.pop(key)
    if ent:
        body[ENTERPRISE] = ent
    body.update(extra)
    return body


def group_body(name: str, members=(), **extra) -> dict:
    return {
        "schemas": [GROUP],
        "displayName": name,
        "members": [{"value": str(m)} for m in members],
        **extra,
    }


def patch_body(*ops) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}
