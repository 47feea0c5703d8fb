"""Django's Redis cache backend with one Redis client per connection pool.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` object on every
call (about 0.3 ms of Python each); the check API makes two cache calls per request, so
that was a third of its server time. A ``redis.Redis`` object is thread-safe (it borrows
a connection from the pool per command), so one per pool is enough. Settings select this
backend with ``"BACKEND": "portal.core.cache.RedisCache"``; everything else is Django's.

It also carries this thread's near cache (:mod:`portal.core.nearcache`) and the writes
that keep near caches right: a change and the ``PUBLISH`` naming its keys in one
``MULTI``.
"""

from __future__ import annotations

import re

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

from .nearcache import CHANNEL_SUFFIX, NearCache


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._client(connection_pool=self._get_connection_pool(write))
            self._clients[index] = client
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
        self._near: NearCache | None = None

    @property
    def near(self) -> NearCache:
        if self._near is None:
            self._near = NearCache(self)
        return self._near

    @property
    def near_channel(self) -> str:
        # derived, so that writers (Celery workers, admin requests) never build a near cache
        return self.key_prefix + CHANNEL_SUFFIX

    def _notify(self, pipeline, keys) -> None:
        pipeline.publish(self.near_channel, "\n".join(keys))

    def _delivered(self) -> None:
        """One more round trip before the writer goes on.

        Redis may answer ``EXEC`` a few microseconds before it writes the published message
        to the subscribers' sockets (both leave in the same event-loop pass, the writer's
        reply first). By the time it answers a later ``PING`` that pass is over, so the
        message is in every local subscriber's socket: a check started after the write
        returned drains it. (Subscribers on other hosts get it one network hop later.)
        """
        self._cache.get_client(write=True).ping()

    def set_many_notify(self, mapping: dict, *, timeout: int) -> None:
        """Set ``mapping`` (each key expiring after ``timeout`` s) and tell near caches."""
        if not mapping:
            return
        pipeline = self._cache.get_client(write=True).pipeline(transaction=True)
        dumps = self._cache._serializer.dumps  # type: ignore[attr-defined]  # Django's own
        pipeline.mset({self.make_and_validate_key(k): dumps(v) for k, v in mapping.items()})
        for key in mapping:
            pipeline.expire(self.make_and_validate_key(key), int(timeout))
        self._notify(pipeline, mapping)
        pipeline.execute()
        self._delivered()

    def delete_many_notify(self, keys) -> None:
        if not keys:
            return
        pipeline = self._cache.get_client(write=True).pipeline(transaction=True)
        pipeline.delete(*(self.make_and_validate_key(k) for k in keys))
        self._notify(pipeline, keys)
        pipeline.execute()
        self._delivered()

    def clear(self) -> bool:  # type: ignore[override]  # Django's RedisCache returns bool too
        """Delete this namespace's keys only (Django's ``clear`` is ``FLUSHDB``).

        The Celery broker's queues live in the same Redis database by default
        (``CELERY_BROKER_URL`` = ``REDIS_URL``), and tests on parallel workers share one
        database under different key prefixes: a flush would wipe both.
        """
        client = self._cache.get_client(write=True)
        batch = []
        prefix = re.sub(r"([\\*?\[\]])", r"\\\1", self.key_prefix)  # glob-escaped
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
        # an empty message: every near cache of this namespace drops everything
        client.publish(self.near_channel, "")
        self._delivered()
        return True
