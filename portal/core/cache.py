"""Django's Redis cache backend with one Redis client per connection pool.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` object on every
call (about 0.3 ms of Python each); the check API makes two cache calls per request, so
that was a third of its server time. A ``redis.Redis`` object is thread-safe (it borrows
a connection from the pool per command), so one per pool is enough. Settings select this
backend with ``"BACKEND": "portal.core.cache.RedisCache"``; everything else is Django's.

It also carries this thread's near cache (:mod:`portal.core.nearcache`) and the writes
that keep near caches right: a change and the ``PUBLISH`` naming its keys in one
``MULTI``.

And it notices when Redis lost its state or came back with an older one (a restart from a
snapshot, a restore, a failover to a lagging replica): every connection asks the server for
its ``run_id`` when it connects, and the namespace holds ``LIFE_KEY`` = the run id of the
server life that wrote it. A reader that fetches ``LIFE_KEY`` together with the values it
is about to trust (:meth:`RedisCache.same_life`) learns whether they were written in this
server life; if not, every cached value of the namespace is dropped (``clear``, which also
empties every near cache) before anything is served, so a revocation that committed before
the old state was restored is never undone by it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

from .nearcache import CHANNEL_SUFFIX, NearCache

logger = logging.getLogger(__name__)

#: The run id of the Redis server life whose writes the namespace holds.
LIFE_KEY = "redis-life"
_RUN_ID = re.compile(rb"^run_id:([0-9a-f]+)\s*$", re.MULTILINE)


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}
        self.run_id: str | None = None  # of the server the newest connection reached
        self._pool_options["redis_connect_func"] = self._on_connect  # type: ignore[attr-defined]  # Django sets it

    def _on_connect(self, connection) -> None:
        """redis-py's handshake, then ``INFO server`` for the server's run id."""
        connection.on_connect()
        connection.send_command("INFO", "server")
        info = connection.read_response()
        found = _RUN_ID.search(info if isinstance(info, bytes) else str(info).encode())
        if found is None:  # never trust values of a server we cannot tell apart
            raise ConnectionError("Redis did not report its run_id")
        run_id = found.group(1).decode()
        if run_id != self.run_id:
            if self.run_id is not None:
                logger.warning("Redis server changed: run_id %s -> %s", self.run_id, run_id)
            self.run_id = run_id

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._client(connection_pool=self._get_connection_pool(write))
            self._clients[index] = client
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: Any, params: Any) -> None:
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

    def same_life(self, found: dict) -> bool:
        """Whether values read together with ``LIFE_KEY`` (``found``, from one ``get_many``)
        were written in the current Redis server life. If not, the namespace is cleared and
        marked with the current life, and the caller must not use what it read."""
        run_id = self._cache.run_id  # type: ignore[attr-defined]  # our client class
        if run_id is not None and found.get(LIFE_KEY) == run_id:
            return True
        logger.warning(
            "cache written by another Redis server life (%s, now %s): dropping every "
            "cached value before serving",
            found.get(LIFE_KEY),
            run_id,
        )
        self.clear()
        return False

    def clear(self) -> bool:  # type: ignore[override]  # Django's RedisCache returns bool too
        """Delete this namespace's keys only (Django's ``clear`` is ``FLUSHDB``), then mark
        the empty namespace with the current server life.

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
        # The namespace is empty now, so it holds nothing from another server life.
        run_id = self._cache.run_id  # type: ignore[attr-defined]  # our client class
        if run_id is not None:
            client.set(self.make_and_validate_key(LIFE_KEY), self._cache._serializer.dumps(run_id))  # type: ignore[attr-defined]
        # an empty message: every near cache of this namespace drops everything
        client.publish(self.near_channel, "")
        self._delivered()
        return True


def same_life(found: dict, alias: str = "default") -> bool:
    """:meth:`RedisCache.same_life` for the ``alias`` cache; True for caches without a server
    that could lose or roll back its state (the embedded default's local memory)."""
    check = getattr(caches[alias], "same_life", None)
    return True if check is None else bool(check(found))
