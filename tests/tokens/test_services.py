"""Token services: create (hashed, shown once), revoke (owner or admin), the leaver hook."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from accounts.services import LEAVER_HOOKS, user_mark_leaver, user_set_roles
from audit.models import AuditEvent
from portal.core.actors import CLI, DIRECTORY_IMPORT
from portal.core.errors import Conflict, NotFound, NotPermitted, ValidationError
from tests.access.factories import make_service
from tokens.models import ApiToken
from tokens.services import (
    DEFAULT_TOKEN_DAYS,
    POWERFUL_TOKEN_MAX_DAYS,
    api_token_create,
    api_token_revoke,
    api_tokens_revoke_for_leaver,
)

pytestmark = pytest.mark.django_db


@pytest.mark.sqlite
def test_create_stores_only_the_hash_and_audits(requester):
    token, plaintext = api_token_create(actor=requester, user=requester, name="laptop")
    assert plaintext.startswith("tg_")
    assert len(plaintext) > 40
    token.refresh_from_db()
    assert token.prefix == plaintext[:8]
    assert token.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert all(plaintext not in str(f.value_from_object(token)) for f in ApiToken._meta.fields)
    assert token.scopes == ["read", "write"]
    assert (token.user, token.service, token.revoked_at) == (requester, None, None)
    expected = timezone.now() + timedelta(days=DEFAULT_TOKEN_DAYS)
    assert abs(token.expires_at - expected) < timedelta(minutes=1)
    event = AuditEvent.objects.get(action="api_token.created")
    assert (event.actor_id, event.target_id) == (requester.pk, str(token.pk))
    assert event.after["prefix"] == token.prefix
    assert plaintext not in str(event.after)


def test_two_tokens_have_different_secrets(requester):
    _a, first = api_token_create(actor=requester, user=requester, name="a")
    _b, second = api_token_create(actor=requester, user=requester, name="b")
    assert first != second


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "scopes": ["admin"]}, "scopes"),
        ({"name": "ok", "scopes": []}, "scopes"),
        ({"name": "ok", "expires_at": "past"}, "expires_at"),
    ],
)
def test_create_refuses_bad_input(requester, kwargs, field):
    if kwargs.get("expires_at") == "past":
        kwargs["expires_at"] = timezone.now() - timedelta(minutes=1)
    with pytest.raises(ValidationError) as exc:
        api_token_create(actor=requester, user=requester, **kwargs)
    assert exc.value.field == field
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.filter(action="api_token.created").exists()


def test_nobody_creates_a_token_for_someone_else(requester, admin):
    with pytest.raises(NotPermitted):
        api_token_create(actor=admin, user=requester, name="impersonate")
    assert not ApiToken.objects.exists()


@pytest.mark.sqlite
def test_owner_revokes_own_token(requester):
    token, _ = api_token_create(actor=requester, user=requester, name="ci")
    api_token_revoke(actor=requester, token_id=token.pk)
    token.refresh_from_db()
    assert token.revoked_at is not None
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert (event.actor_id, event.target_id) == (requester.pk, str(token.pk))


def test_platform_admin_revokes_anyones_token(requester, admin):
    token, _ = api_token_create(actor=requester, user=requester, name="ci")
    api_token_revoke(actor=admin, token_id=token.pk)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.get(action="api_token.revoked").actor_id == admin.pk


@pytest.mark.parametrize("persona", ["manager", "other_team_user", "security"])
def test_others_get_not_found_and_nothing_changes(personas, persona):
    requester = personas["requester"]
    token, _ = api_token_create(actor=requester, user=requester, name="ci")
    before = AuditEvent.objects.count()
    with pytest.raises(NotFound):
        api_token_revoke(actor=personas[persona], token_id=token.pk)
    token.refresh_from_db()
    assert token.revoked_at is None
    assert AuditEvent.objects.count() == before


def test_revoking_twice_is_a_conflict(requester):
    token, _ = api_token_create(actor=requester, user=requester, name="ci")
    api_token_revoke(actor=requester, token_id=token.pk)
    before = AuditEvent.objects.count()
    with pytest.raises(Conflict):
        api_token_revoke(actor=requester, token_id=token.pk)
    assert AuditEvent.objects.count() == before


def test_leaver_hook_is_registered():
    assert api_tokens_revoke_for_leaver in LEAVER_HOOKS
    assert LEAVER_HOOKS.count(api_tokens_revoke_for_leaver) == 1


@pytest.mark.sqlite
def test_leaver_loses_every_token(requester, manager, admin):
    live_a, plain_a = api_token_create(actor=requester, user=requester, name="a")
    live_b, _ = api_token_create(actor=requester, user=requester, name="b")
    old, _ = api_token_create(actor=requester, user=requester, name="old")
    api_token_revoke(actor=requester, token_id=old.pk)
    old.refresh_from_db()
    old_revoked_at = old.revoked_at
    managers_token, _ = api_token_create(actor=manager, user=manager, name="m")

    user_mark_leaver(user=requester, actor=admin, reason="left the company")

    for token in (live_a, live_b, old, managers_token):
        token.refresh_from_db()
    assert live_a.revoked_at is not None and live_b.revoked_at is not None
    assert old.revoked_at == old_revoked_at
    assert managers_token.revoked_at is None
    events = AuditEvent.objects.filter(action="api_token.revoked", reason="leaver")
    assert sorted(int(e.target_id) for e in events) == sorted([live_a.pk, live_b.pk])
    assert {e.actor_id for e in events} == {admin.pk}


def test_leaver_token_is_refused_by_the_api(requester, admin):
    from django.test import Client

    _token, plaintext = api_token_create(actor=requester, user=requester, name="a")
    client = Client(headers={"Authorization": f"Bearer {plaintext}"})
    assert client.get("/api/v1/me").status_code == 200
    user_mark_leaver(user=requester, actor=admin)
    assert client.get("/api/v1/me").status_code == 401


def test_exactly_one_owner_is_enforced_by_the_database(requester, org):
    service = make_service(org["search"])
    for owner in ({"user": None, "service": None}, {"user": requester, "service": service}):
        with pytest.raises(IntegrityError), transaction.atomic():
            ApiToken.objects.create(name="x", prefix="x", key_hash=f"h-{owner['user']}", **owner)
    ApiToken.objects.create(name="svc", prefix="svc", key_hash="h-svc", service=service)
    assert ApiToken.objects.filter(service=service).count() == 1


# --- tokens of powerful people ----------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin", "security"])
def test_a_powerful_persons_token_expires_within_thirty_days(persona, request):
    person = request.getfixturevalue(persona)
    token, _ = api_token_create(actor=person, user=person, name="default")
    limit = timezone.now() + timedelta(days=POWERFUL_TOKEN_MAX_DAYS)
    assert abs(token.expires_at - limit) < timedelta(minutes=1)
    before = ApiToken.objects.count()

    for expires_at in (None, timezone.now() + timedelta(days=POWERFUL_TOKEN_MAX_DAYS + 1)):
        with pytest.raises(ValidationError) as excinfo:
            api_token_create(
                actor=person, user=person, name="long", scopes=["read"], expires_at=expires_at
            )
        assert excinfo.value.field == "expires_at"
    assert ApiToken.objects.count() == before


def test_never_expiring_tokens_are_read_only_tokens_of_ordinary_people(requester):
    token, _ = api_token_create(
        actor=requester, user=requester, name="reader", scopes=["read"], expires_at=None
    )
    assert token.expires_at is None
    with pytest.raises(ValidationError, match="must expire"):
        api_token_create(actor=requester, user=requester, name="writer", expires_at=None)
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["reader"]


def test_a_powerful_persons_token_needs_a_session_that_passed_a_second_factor(admin, settings):
    settings.REQUIRE_MFA_FOR_ADMINS = True
    with pytest.raises(NotPermitted, match="second factor"):
        api_token_create(actor=admin, user=admin, name="laptop")
    assert not ApiToken.objects.exists()

    api_token_create(actor=admin, user=admin, name="laptop", mfa_session=True)
    api_token_create(actor=CLI, user=admin, name="operator")  # an operator's command on the host
    assert ApiToken.objects.count() == 2


def test_losing_a_powerful_role_revokes_every_token(admin, requester):
    token, plaintext = api_token_create(actor=admin, user=admin, name="laptop")
    engineers, _ = api_token_create(actor=requester, user=requester, name="ci")

    user_set_roles(actor=DIRECTORY_IMPORT, user=requester, roles=["auditor"])
    user_set_roles(actor=DIRECTORY_IMPORT, user=admin, roles=[])

    token.refresh_from_db()
    engineers.refresh_from_db()
    assert token.revoked_at is not None and engineers.revoked_at is None
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert (event.target_id, event.reason) == (str(token.pk), "lost role platform-admin")
    response = Client().get("/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 401
