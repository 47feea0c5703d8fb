"""The check API (A10): decisions, caching with invalidation on commit, authentication."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from access import check
from access.models import Grant
from access.services import grant_revoke
from audit.models import AuditEvent
from portal.core.actors import CLI
from tests.access.factories import grant_directly
from tests.api.conftest import Api, token_api
from tokens.management.commands.create_service_token import service_token_create
from tokens.models import ApiToken
from tokens.services import api_token_revoke

CHECK = "/api/v1/check"
BATCH = "/api/v1/check/batch"


@pytest.fixture(autouse=True)
def _clean_check_cache():
    cache.clear()
    check.STATS.update(hits=0, misses=0, errors=0)
    yield
    cache.clear()


def service_api(service, *, scope_all: bool = False) -> Api:
    _token, plaintext = service_token_create(
        actor=CLI, service=service, name="svc", scope_all=scope_all
    )
    return Api(Client(), {"Authorization": f"Bearer {plaintext}"})


@pytest.fixture
def svc(catalog):
    return service_api(catalog["search_db"])


def body(principal, service="search-db", entitlement="read"):
    return {"principal": principal, "service": service, "entitlement": entitlement}


@pytest.mark.sqlite
def test_active_grant_is_allowed_by_email_and_by_id(svc, catalog, requester):
    grant = grant_directly(requester, catalog["read"], days=10)
    by_email = svc.post(CHECK, body("Requester@Example.com"))
    by_id = svc.post(CHECK, body(str(requester.pk)))
    expected = {
        "allowed": True,
        "reason": f"active grant #{grant.pk}",
        "grant": grant.pk,
        "expires_at": grant.ends_at.isoformat().replace("+00:00", "Z"),
    }
    assert (by_email.status_code, by_email.json()) == (200, expected)
    assert (by_id.status_code, by_id.json()) == (200, expected)


@pytest.mark.sqlite
def test_no_grant_is_denied(svc, catalog, requester):
    response = svc.post(CHECK, body(requester.email))
    assert (response.status_code, response.json()) == (
        200,
        {
            "allowed": False,
            "reason": "no grant: the principal does not hold this entitlement",
            "grant": None,
            "expires_at": None,
        },
    )


def test_pending_grant_is_denied(svc, catalog, requester):
    grant = grant_directly(requester, catalog["read"], status="pending")
    assert svc.post(CHECK, body(requester.email)).json() == {
        "allowed": False,
        "reason": f"grant #{grant.pk} is pending, not active",
        "grant": grant.pk,
        "expires_at": None,
    }


def test_expired_grant_is_denied_before_the_expiry_task_ran(svc, catalog, requester):
    grant = grant_directly(requester, catalog["read"])
    Grant.objects.filter(pk=grant.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    grant.refresh_from_db()
    data = svc.post(CHECK, body(requester.email)).json()
    assert data == {
        "allowed": False,
        "reason": f"grant #{grant.pk} expired at {grant.ends_at.isoformat()}",
        "grant": grant.pk,
        "expires_at": None,
    }
    grant.refresh_from_db()
    assert grant.status == Grant.Status.ACTIVE  # the check changes nothing


def test_cached_allow_is_not_served_after_the_grant_ends(svc, catalog, requester):
    grant = grant_directly(requester, catalog["read"])
    assert svc.post(CHECK, body(requester.email)).json()["allowed"] is True
    # The clock passes ends_at without any write (so no invalidation happens).
    later = grant.ends_at + timedelta(seconds=1)
    decision = check.check_one(
        principal=requester.email, service="search-db", entitlement="read", now=later
    )
    assert (decision.allowed, decision.reason) == (
        False,
        f"grant #{grant.pk} expired at {grant.ends_at.isoformat()}",
    )


def test_revocation_is_seen_by_the_next_check(
    svc, catalog, requester, admin, django_capture_on_commit_callbacks
):
    grant = grant_directly(requester, catalog["read"])
    assert svc.post(CHECK, body(requester.email)).json()["allowed"] is True
    assert svc.post(CHECK, body(requester.email)).json()["allowed"] is True
    assert check.STATS["hits"] == 1  # the second answer came from the cache
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(actor=admin, grant_id=grant.pk, reason="left the project")
    response = svc.post(CHECK, body(requester.email))
    assert response.json() == {
        "allowed": False,
        "reason": f"grant #{grant.pk} is revoked, not active",
        "grant": grant.pk,
        "expires_at": None,
    }
    assert check.STATS["hits"] == 1  # the revocation forced a database read
    by_id = svc.post(CHECK, body(str(requester.pk))).json()
    assert by_id["allowed"] is False


def test_deactivated_user_is_denied_at_once(
    svc, catalog, requester, django_capture_on_commit_callbacks
):
    grant_directly(requester, catalog["read"])
    assert svc.post(CHECK, body(requester.email)).json()["allowed"] is True
    with django_capture_on_commit_callbacks(execute=True):
        requester.is_active = False
        requester.save(update_fields=["is_active"])
    assert svc.post(CHECK, body(requester.email)).json() == {
        "allowed": False,
        "reason": "the principal is not active",
        "grant": None,
        "expires_at": None,
    }


@pytest.mark.parametrize(
    ("principal", "service", "entitlement", "reason"),
    [
        ("nobody@example.com", "search-db", "read", "unknown principal: 'nobody@example.com'"),
        ("999999", "search-db", "read", "unknown principal: '999999'"),
        ("requester@example.com", "no-such-db", "read", "unknown service: 'no-such-db'"),
        (
            "requester@example.com",
            "search-db",
            "nope",
            "unknown entitlement: 'nope' on service 'search-db'",
        ),
        (
            "requester@example.com",
            "search-db",
            "deploy",
            "unknown entitlement: 'deploy' on service 'search-db'",
        ),
    ],
)
def test_unknown_names_are_denied_and_say_so(
    catalog, requester, principal, service, entitlement, reason
):
    grant_directly(requester, catalog["deploy"])
    api = service_api(catalog["search_db"], scope_all=True)
    response = api.post(CHECK, body(principal, service, entitlement))
    assert (response.status_code, response.json()) == (
        200,
        {"allowed": False, "reason": reason, "grant": None, "expires_at": None},
    )


def test_other_service_needs_the_wide_scope(catalog, requester):
    grant_directly(requester, catalog["deploy"])
    narrow = service_api(catalog["search_db"])
    response = narrow.post(CHECK, body(requester.email, "payments-api", "deploy"))
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "https://tollgate.test/problems/permission-denied",
        "title": "Forbidden",
        "status": 403,
        "detail": "this service token may not check service(s): payments-api",
    }
    wide = service_api(catalog["search_db"], scope_all=True)
    assert (
        wide.post(CHECK, body(requester.email, "payments-api", "deploy")).json()["allowed"] is True
    )


def test_personal_token_is_refused_with_403(catalog, requester):
    grant_directly(requester, catalog["read"])
    response = token_api(requester).post(CHECK, body(requester.email))
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == (
        "The check API accepts service tokens only (manage.py create_service_token)."
    )


@pytest.mark.sqlite
@pytest.mark.parametrize("path", [CHECK, BATCH])
def test_anonymous_gets_401(catalog, path):
    response = Api(Client()).post(path, {"checks": [body("x@example.com")]})
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"] == 'Bearer realm="tollgate"'


def test_revoked_service_token_gets_401(catalog, requester):
    token, plaintext = service_token_create(actor=CLI, service=catalog["search_db"], name="s")
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    api = Api(Client(), {"Authorization": f"Bearer {plaintext}"})
    response = api.post(CHECK, body(requester.email))
    assert (response.status_code, response.json()["detail"]) == (
        401,
        "This token has been revoked.",
    )


def test_service_token_revocation_is_seen_by_the_next_call(
    catalog, requester, admin, django_capture_on_commit_callbacks
):
    token, plaintext = service_token_create(actor=CLI, service=catalog["search_db"], name="s")
    api = Api(Client(), {"Authorization": f"Bearer {plaintext}"})
    assert api.post(CHECK, body(requester.email)).status_code == 200
    assert cache.get(f"check:tok:{token.key_hash}")["service_slug"] == "search-db"  # cached
    with django_capture_on_commit_callbacks(execute=True):
        api_token_revoke(actor=admin, token_id=token.pk, reason="rotated")
    assert cache.get(f"check:tok:{token.key_hash}") is None
    response = api.post(CHECK, body(requester.email))
    assert (response.status_code, response.json()["detail"]) == (
        401,
        "This token has been revoked.",
    )


def test_service_token_is_still_refused_on_user_endpoints(svc):
    assert svc.get("/api/v1/me").status_code == 401


def test_batch_answers_each_check_in_order(svc, catalog, requester, other_team_user):
    grant = grant_directly(requester, catalog["read"])
    response = svc.post(
        BATCH,
        {
            "checks": [
                body(requester.email),
                body(other_team_user.email),
                body("ghost@example.com", entitlement="admin"),
            ]
        },
    )
    assert response.status_code == 200
    assert [(r["principal"], r["allowed"], r["reason"]) for r in response.json()["results"]] == [
        (requester.email, True, f"active grant #{grant.pk}"),
        (other_team_user.email, False, "no grant: the principal does not hold this entitlement"),
        ("ghost@example.com", False, "unknown principal: 'ghost@example.com'"),
    ]


def test_batch_of_100_passes_and_101_is_refused(svc, catalog, requester):
    grant_directly(requester, catalog["read"])
    ok = svc.post(BATCH, {"checks": [body(requester.email)] * 100})
    assert ok.status_code == 200
    assert len(ok.json()["results"]) == 100
    assert all(r["allowed"] for r in ok.json()["results"])
    too_many = svc.post(BATCH, {"checks": [body(requester.email)] * 101})
    assert too_many.status_code == 400
    assert too_many["Content-Type"] == "application/problem+json"
    assert too_many.json()["errors"] == {"checks": ["at most 100 checks per batch (got 101)"]}


def test_empty_batch_and_bad_input_are_400(svc):
    assert svc.post(BATCH, {"checks": []}).status_code == 400
    assert svc.post(CHECK, {"principal": "a b", "service": "x", "entitlement": "y"}).json()[
        "errors"
    ] == {"principal": ["an e-mail or an id has no spaces"]}


def test_batch_for_another_service_is_refused_whole(svc, catalog, requester):
    response = svc.post(
        BATCH, {"checks": [body(requester.email), body(requester.email, "payments-api", "deploy")]}
    )
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "this service token may not check service(s): payments-api"
    )


DOWN = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }
}


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.redis.RedisCache",
        "portal.core.cache.RedisCache",  # ours, with the near cache (which cannot subscribe)
    ],
)
def test_redis_down_answers_from_the_database(svc, catalog, requester, admin, backend):
    grant = grant_directly(requester, catalog["read"])
    with override_settings(CACHES={"default": {**DOWN["default"], "BACKEND": backend}}):
        with pytest.raises(RedisConnectionError):
            cache.get("probe")
        assert svc.post(CHECK, body(requester.email)).json()["allowed"] is True
        grant_revoke(actor=admin, grant_id=grant.pk, reason="gone")
        assert svc.post(CHECK, body(requester.email)).json()["reason"] == (
            f"grant #{grant.pk} is revoked, not active"
        )
        batch = svc.post(BATCH, {"checks": [body(requester.email), body("x@example.com")]})
        assert [r["allowed"] for r in batch.json()["results"]] == [False, False]
    assert check.STATS == {"hits": 0, "misses": 0, "errors": 3}


def test_create_service_token_command_prints_a_working_token(catalog, requester, capsys):
    grant_directly(requester, catalog["read"])
    before = AuditEvent.objects.count()
    call_command("create_service_token", "--service", "search-db", "--name", "search")
    plaintext = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(service=catalog["search_db"])
    assert (token.name, token.user, token.scopes, token.key_hash != plaintext) == (
        "search",
        None,
        ["check"],
        True,
    )
    assert AuditEvent.objects.count() == before + 1
    api = Api(Client(), {"Authorization": f"Bearer {plaintext}"})
    assert api.post(CHECK, body(requester.email)).json()["allowed"] is True


def test_create_service_token_scope_all_and_unknown_service(catalog):
    call_command("create_service_token", "--service", "payments-api", "--scope-all")
    assert ApiToken.objects.get(service=catalog["payments_api"]).scopes == ["check", "check:*"]
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no such service: nope"):
        call_command("create_service_token", "--service", "nope")
    assert ApiToken.objects.count() == 1
