"""portal.core.cache.RedisCache: one client per pool, and a clear() that stays in its lane."""

from __future__ import annotations

import uuid

from django.core.cache import caches


def test_clear_deletes_only_this_namespace():
    """FLUSHDB would also wipe the Celery broker's queues (same Redis database by default)
    and other namespaces (parallel test workers)."""
    backend = caches["default"]
    client = backend._cache.get_client(write=True)
    other = f"other-{uuid.uuid4().hex}:1:k"
    broker_like = f"celery-queue-{uuid.uuid4().hex}"
    client.set(other, b"x")
    client.rpush(broker_like, b"task")
    try:
        backend.set_many({f"k{i}": i for i in range(2500)}, timeout=60)  # > one SCAN batch
        assert backend.get("k2499") == 2499
        assert backend.clear() is True
        assert backend.get_many([f"k{i}" for i in range(2500)]) == {}
        assert client.get(other) == b"x"
        assert client.lrange(broker_like, 0, -1) == [b"task"]
    finally:
        client.delete(other, broker_like)


def test_one_client_per_pool():
    backend = caches["default"]
    assert backend._cache.get_client() is backend._cache.get_client()


def test_values_from_another_server_life_are_dropped_before_use():
    from portal.core.cache import LIFE_KEY

    backend = caches["default"]
    backend.clear()  # an empty namespace is marked with the current server life
    run_id = backend._cache.run_id
    assert run_id and backend.get(LIFE_KEY) == run_id
    backend.set("check:a:someone|svc|read", {"a": True})
    assert backend.same_life(backend.get_many(["check:a:someone|svc|read", LIFE_KEY]))

    backend.set(LIFE_KEY, "0" * 40)  # as a snapshot of an earlier server life would hold

    assert not backend.same_life(backend.get_many(["check:a:someone|svc|read", LIFE_KEY]))
    assert backend.get("check:a:someone|svc|read") is None
    assert backend.get(LIFE_KEY) == run_id
    assert not backend.same_life({})  # no mark at all is not trusted either
