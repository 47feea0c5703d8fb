"""The check API's near cache (portal.core.nearcache): answers from process memory, and
never one that Redis has since changed.

Real Redis, real pub/sub. "Warm" means the near cache answered the last call without
Redis (asserted through a spy on the backend's ``get_many``).
"""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache, caches
from django.test import Client, override_settings

from access.services import grant_revoke
from portal.core.actors import CLI
from portal.core.nearcache import NearCache, near_cache
from tests.access.factories import grant_directly
from tests.api.conftest import Api
from tests.api.test_check_api import CHECK, body, service_api
from tokens.management.commands.create_service_token import service_token_create
from tokens.services import api_token_revoke


@pytest.fixture(autouse=True)
def _clean():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def redis_reads(monkeypatch):
    """Every ``get_many`` that reached Redis, by the keys asked."""
    backend = caches["default"]
    calls = []
    original = backend.get_many

    def spy(keys, *args, **kwargs):
        calls.append(list(keys))
        return original(keys, *args, **kwargs)

    monkeypatch.setattr(backend, "get_many", spy)
    return calls


def warm(api, principal, redis_reads) -> dict:
    """Call until the near cache answers without Redis; the last answer."""
    for _ in range(10):
        before = len(redis_reads)
        answer = api.post(CHECK, body(principal)).json()
        if len(redis_reads) == before:
            return answer
        time.sleep(0.02)  # the subscription confirmation may still be on its way
    raise AssertionError("the near cache never answered")


def test_a_warm_near_cache_answers_without_redis(catalog, requester, redis_reads):
    grant = grant_directly(requester, catalog["read"])
    svc = service_api(catalog["search_db"])
    first = svc.post(CHECK, body(requester.email)).json()
    assert len(redis_reads) == 1  # the first call had to ask Redis
    assert warm(svc, requester.email, redis_reads) == first
    assert first["grant"] == grant.pk and first["allowed"] is True
    assert near_cache().stats["hits"] >= 1


def test_revocation_is_seen_by_the_next_call_through_a_warm_near_cache(
    catalog, requester, admin, redis_reads, django_capture_on_commit_callbacks
):
    grant = grant_directly(requester, catalog["read"])
    svc = service_api(catalog["search_db"])
    assert warm(svc, requester.email, redis_reads)["allowed"] is True
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(actor=admin, grant_id=grant.pk, reason="left the project")
    answer = svc.post(CHECK, body(requester.email)).json()
    assert (answer["allowed"], answer["reason"]) == (
        False,
        f"grant #{grant.pk} is revoked, not active",
    )


def test_service_token_revocation_is_seen_through_a_warm_near_cache(
    catalog, requester, admin, redis_reads, django_capture_on_commit_callbacks
):
    grant_directly(requester, catalog["read"])
    token, plaintext = service_token_create(actor=CLI, service=catalog["search_db"], name="s")
    api = Api(Client(), {"Authorization": f"Bearer {plaintext}"})
    assert warm(api, requester.email, redis_reads)["allowed"] is True
    with django_capture_on_commit_callbacks(execute=True):
        api_token_revoke(actor=admin, token_id=token.pk, reason="rotated")
    response = api.post(CHECK, body(requester.email))
    assert (response.status_code, response.json()["detail"]) == (
        401,
        "This token has been revoked.",
    )


def test_a_broken_subscription_drops_the_copy(
    catalog, requester, admin, redis_reads, django_capture_on_commit_callbacks
):
    """A change published while this process's subscription was down is never missed."""
    grant = grant_directly(requester, catalog["read"])
    svc = service_api(catalog["search_db"])
    assert warm(svc, requester.email, redis_reads)["allowed"] is True
    near = near_cache()
    host, port = near._pubsub.connection._sock.getsockname()[:2]
    cache._cache.get_client(write=True).client_kill(f"{host}:{port}")
    resets = near.stats["resets"]
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(actor=admin, grant_id=grant.pk, reason="left")
    before = len(redis_reads)
    answer = svc.post(CHECK, body(requester.email)).json()
    assert answer["allowed"] is False
    assert near.stats["resets"] == resets + 1
    assert len(redis_reads) == before + 1  # answered through Redis, not the dropped copy


def test_without_a_recent_heartbeat_the_copy_is_not_trusted(catalog, requester, redis_reads):
    """A hung Redis stops answering heartbeats: the copy is then ignored (Redis is asked,
    and its timeout sends the check to the database)."""
    grant_directly(requester, catalog["read"])
    svc = service_api(catalog["search_db"])
    warm(svc, requester.email, redis_reads)
    near = near_cache()
    near._last_pong = time.monotonic() - NearCache.FRESH - 1
    near._last_ping = time.monotonic()  # no heartbeat goes out during the next call
    before = len(redis_reads)
    assert svc.post(CHECK, body(requester.email)).json()["allowed"] is True
    assert len(redis_reads) == before + 1


def test_a_read_racing_an_invalidation_is_not_remembered():
    near = NearCache(caches["default"])
    near._subscribed, near._last_pong = True, time.monotonic()
    near._pubsub = _QuietPubSub()
    found, ticket = near.lookup(["k"])
    assert found is None and ticket is not None
    near._invalidate(b"k")  # a change arrived while the caller was reading Redis
    near.remember(ticket, {"k": "old"})
    assert near.lookup(["k"])[0] is None
    _, ticket = near.lookup(["k"])
    near.remember(ticket, {"k": "new"})
    assert near.lookup(["k"])[0] == {"k": "new"}


@override_settings(CHECK_CACHE_TTL=120)
def test_entries_older_than_the_answer_ttl_are_not_served():
    near = NearCache(caches["default"])
    assert near.max_age == 120
    near._subscribed, near._last_pong = True, time.monotonic()
    near._pubsub = _QuietPubSub()
    near.remember(near.generation, {"k": 1})
    near._entries["k"] = (1, time.monotonic() - 121)
    assert near.lookup(["k"])[0] is None


def test_clear_empties_every_near_copy(catalog, requester, redis_reads):
    grant_directly(requester, catalog["read"])
    svc = service_api(catalog["search_db"])
    warm(svc, requester.email, redis_reads)
    cache.clear()
    before = len(redis_reads)
    assert svc.post(CHECK, body(requester.email)).status_code == 200
    assert len(redis_reads) == before + 1  # the copy was emptied: Redis was asked


def test_switched_off_the_check_reads_redis_every_time(catalog, requester, redis_reads):
    grant_directly(requester, catalog["read"])
    svc = service_api(catalog["search_db"])
    with override_settings(CACHE_NEAR=False):
        for _ in range(3):
            assert svc.post(CHECK, body(requester.email)).json()["allowed"] is True
    assert len(redis_reads) == 3


class _QuietPubSub:
    """A subscription with nothing to say (unit tests of the bookkeeping)."""

    def get_message(self, timeout=0):
        return None

    def ping(self):
        return None
