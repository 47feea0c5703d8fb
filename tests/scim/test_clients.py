"""SCIM clients: tokens shown once and stored hashed, rotate, revoke, last used; token scope
both ways; the page and the command refuse non-admins; discovery; rate limits."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from scim.constants import CONTENT_TYPE, ENTERPRISE, ERROR, GROUP, LIST, SPC, TOLLGATE_GROUP, USER
from scim.models import ScimClient
from scim.services import hash_secret

pytestmark = pytest.mark.django_db


def test_the_token_is_stored_hashed_and_last_use_is_stamped(scim, okta):
    client, token = okta
    assert client.key_hash == hash_secret(token) and token not in client.key_hash
    assert client.prefix == token[:12]
    assert scim("GET", "ServiceProviderConfig").status_code == 200
    client.refresh_from_db()
    assert client.last_used_at is not None


def test_scim_tokens_do_scim_only_and_api_tokens_do_not_do_scim(scim, okta, requester, client):
    from tokens.services import api_token_create

    _, scim_token = okta
    api = client.get("/api/v1/requests/", HTTP_AUTHORIZATION=f"Bearer {scim_token}")
    assert api.status_code in (401, 403)
    _, personal = api_token_create(actor=requester, user=requester, name="ci")
    refused = scim("GET", "Users", token=personal)
    assert refused.status_code == 401
    assert refused.doc["schemas"] == [ERROR] and refused.doc["status"] == "401"
    assert refused["WWW-Authenticate"].startswith("Bearer")
    anonymous = client.get("/scim/v2/Users")
    assert anonymous.status_code == 401 and anonymous["Content-Type"] == CONTENT_TYPE
    client.force_login(requester)  # a session is not a SCIM credential either
    assert client.get("/scim/v2/Users").status_code == 401


def test_rotate_and_revoke(scim, okta, admin):
    from scim.services import scim_client_revoke, scim_client_rotate

    client, old = okta
    _, new = scim_client_rotate(actor=admin, client_id=client.pk)
    assert scim("GET", "Users", token=old).status_code == 401
    assert scim("GET", "Users", token=new).status_code == 200
    scim_client_revoke(actor=admin, client_id=client.pk)
    assert scim("GET", "Users", token=new).status_code == 401
    actions = list(
        AuditEvent.objects.filter(target_type="scim.scimclient").values_list("action", flat=True)
    )
    assert actions == ["scim.client_created", "scim.client_rotated", "scim.client_revoked"]


def test_the_page_refuses_non_admins_and_shows_a_new_token_once(client, admin, requester):
    client.force_login(requester)
    assert client.get("/scim/").status_code == 404
    assert client.post("/scim/clients/new", {"name": "Entra"}).status_code == 404
    assert not ScimClient.objects.exists()
    client.force_login(admin)
    assert client.get("/scim/").status_code == 200
    response = client.post("/scim/clients/new", {"name": "Entra ID"})
    assert response.status_code == 200
    body = response.content.decode()
    made = ScimClient.objects.get()
    token = body.split('<code id="new-token">')[1].split("</code>")[0]
    assert made.key_hash == hash_secret(token)
    assert token not in client.get("/scim/").content.decode()
    client.force_login(requester)
    assert client.post(f"/scim/clients/{made.pk}/revoke").status_code == 404
    assert client.post(f"/scim/clients/{made.pk}/rotate").status_code == 404
    made.refresh_from_db()
    assert made.revoked_at is None and made.key_hash == hash_secret(token)


def test_the_command_prints_a_working_token_and_refuses_non_admins(scim, admin, requester):
    out = StringIO()
    call_command("create_scim_token", "--name", "okta prod", stdout=out, stderr=StringIO())
    token = out.getvalue().strip()
    made = ScimClient.objects.get(slug="okta-prod")
    assert made.key_hash == hash_secret(token)
    assert scim("GET", "ResourceTypes", token=token).status_code == 200
    with pytest.raises(CommandError, match="only platform admins"):
        call_command("create_scim_token", "--name", "x", "--as", requester.email, stdout=StringIO())
    assert not ScimClient.objects.filter(slug="x").exists()
    call_command(
        "create_scim_token",
        "--name",
        "y",
        "--as",
        admin.email,
        stdout=StringIO(),
        stderr=StringIO(),
    )
    assert ScimClient.objects.get(slug="y").created_by == admin
    with pytest.raises(CommandError, match="exists already"):
        call_command("create_scim_token", "--name", "okta prod", stdout=StringIO())


def test_discovery_describes_what_is_supported(scim):
    spc = scim("GET", "ServiceProviderConfig")
    assert spc["Content-Type"] == CONTENT_TYPE
    assert spc.doc["schemas"] == [SPC]
    assert (spc.doc["patch"]["supported"], spc.doc["bulk"]["supported"]) == (True, False)
    assert (spc.doc["filter"]["supported"], spc.doc["filter"]["maxResults"]) == (True, 1000)
    assert spc.doc["etag"]["supported"] and spc.doc["sort"]["supported"]
    assert not spc.doc["changePassword"]["supported"]
    types = scim("GET", "ResourceTypes")
    assert types.doc["schemas"] == [LIST]
    assert {t["id"] for t in types.doc["Resources"]} == {"User", "Group"}
    assert scim("GET", "ResourceTypes/User").doc["schemaExtensions"][0]["schema"] == ENTERPRISE
    schemas = scim("GET", "Schemas")
    assert {s["id"] for s in schemas.doc["Resources"]} == {USER, ENTERPRISE, GROUP, TOLLGATE_GROUP}
    user = scim("GET", f"Schemas/{USER}").doc
    assert {a["name"] for a in user["attributes"]} == {
        "userName",
        "name",
        "displayName",
        "emails",
        "active",
        "userType",
        "groups",
    }
    assert scim("GET", "Schemas/urn:nope").status_code == 404
    assert scim("GET", "ResourceTypes/Nope").status_code == 404
    assert scim("POST", "ServiceProviderConfig", {}).status_code == 405


def test_rate_limit_answers_429_and_is_audited_once(scim, okta, settings):
    settings.TOLLGATE_SCIM_RATE_PER_MINUTE = 3
    codes = [scim("GET", "ServiceProviderConfig").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    limited = scim("GET", "Users")
    assert limited.doc["status"] == "429" and int(limited["Retry-After"]) >= 0
    assert AuditEvent.objects.filter(action="scim.rate_limited").count() == 1
    assert json.loads(limited.content)["schemas"] == [ERROR]
