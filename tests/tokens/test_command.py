"""manage.py create_api_token --user EMAIL [--name N]."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from audit.models import AuditEvent
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.mark.sqlite
def test_command_prints_a_working_token_once(requester):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_token",
        "--user",
        "Requester@Example.com",
        "--name",
        "deploy-bot",
        stdout=out,
        stderr=err,
    )
    plaintext = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.prefix) == (requester, "deploy-bot", plaintext[:8])
    assert plaintext not in err.getvalue()
    assert token.prefix in err.getvalue()
    event = AuditEvent.objects.get(action="api_token.created")
    assert (event.actor_id, event.actor_label) == (None, "system:cli")
    response = Client().get("/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert response.json()["email"] == "requester@example.com"


def test_command_default_name_and_scopes(requester):
    call_command(
        "create_api_token",
        "--user",
        requester.email,
        "--scope",
        "read",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    token = ApiToken.objects.get()
    assert (token.name, token.scopes) == ("cli", ["read"])


def test_command_unknown_user_fails_and_creates_nothing(db):
    with pytest.raises(CommandError, match="no such user"):
        call_command("create_api_token", "--user", "ghost@example.com", stdout=io.StringIO())
    assert not ApiToken.objects.exists()


def test_command_refuses_an_inactive_user(requester):
    requester.is_active = False
    requester.save(update_fields=["is_active"])
    with pytest.raises(CommandError, match="not active"):
        call_command("create_api_token", "--user", requester.email, stdout=io.StringIO())
    assert not ApiToken.objects.exists()
