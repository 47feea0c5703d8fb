"""A per-process copy of hot Redis cache keys, dropped the moment Redis says they changed.

Why: on this class of machine a Redis round trip costs about as much as Django's whole
middleware stack (0.2 ms), so the check API's hot path (one MGET per request) could not
come near the throughput of a trivial endpoint. Holding the hot keys in the worker's
memory removes the round trip; what makes that safe is invalidation, not a TTL.

How it stays correct:

* Every writer of a near-cached key (check versions, answers, token entries) goes
  through :func:`set_many_notify` / :func:`delete_many_notify`: the change and a
  ``PUBLISH`` of the changed keys on the namespace's channel run in one ``MULTI``, so no
  key changes without its message.
* Each process (each cache backend instance: Django's caches are per thread) subscribes
  to the channel. Before every lookup it drains the subscription without blocking (a
  ``poll``, about 7 microseconds) and drops every key named; an empty message body
  (``cache.clear()``) drops everything. The writer waits for one more round trip (a
  ``PING``) after its ``EXEC``: by then Redis has written the message into every local
  subscriber's socket, so a check that starts after a revocation returned sees it.
* The copy is trusted only while the subscription is known to be alive: subscribed,
  and a heartbeat ``PING`` on the subscription answered within ``FRESH`` seconds
  (one is sent every ``HEARTBEAT`` seconds while requests come). A broken subscription
  (Redis restarted, connection killed) drops the whole copy; a hung Redis stops the
  heartbeats, and the copy is then ignored within ``FRESH`` seconds, so requests fall
  back to Redis and its timeouts, and from there to the database, as before.
* A value read from Redis is kept only if no invalidation was processed since the read
  began (a generation counter), and only if the subscription was already confirmed when
  the read began: a change published after the read is always heard.
* Entries live at most ``CHECK_CACHE_TTL`` seconds, the bound the answers in Redis
  already carry for the one case invalidation cannot cover (a writer whose Redis write
  failed while Redis itself stayed up), and at most ``MAX_ENTRIES`` are held (oldest
  first out; about 0.7 KB each, so 70 MB per process when full).

Only the check API's hot path reads through it (:func:`near_cache`); everything else
keeps reading Redis directly. The embedded default (no Redis) has no near cache.
"""

from __future__ import annotations

import logging
import os
import time

from django.conf import settings
from django.core.cache import caches

logger = logging.getLogger(__name__)

CHANNEL_SUFFIX = ":near-invalidate"


class NearCache:
    HEARTBEAT = 0.25  # seconds between heartbeat PINGs while requests come
    FRESH = 1.0  # the copy is trusted only if a heartbeat came back this recently
    RETRY = 1.0  # seconds before subscribing again after a failure
    MAX_ENTRIES = 100_000

    def __init__(self, backend):
        self._backend = backend
        self.channel = backend.near_channel
        self._entries: dict[str, tuple[object, float]] = {}
        self.max_age = float(getattr(settings, "CHECK_CACHE_TTL", 300))
        self._pubsub = None
        self._pid = os.getpid()
        self._subscribed = False
        self._last_pong = float("-inf")
        self._last_ping = float("-inf")
        self._retry_at = float("-inf")
        self.generation = 0
        self.stats = {"hits": 0, "misses": 0, "invalidations": 0, "resets": 0}

    # --- the subscription --------------------------------------------------------

    def _reset(self, why: str) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:  # noqa: BLE001 - the connection is already gone
                logger.debug("closing the near-cache subscription failed", exc_info=True)
        self._pubsub = None
        self._subscribed = False
        self._entries.clear()
        self.generation += 1
        self.stats["resets"] += 1
        logger.info("near cache dropped: %s", why)

    def _drain(self, now: float) -> None:
        """Apply every message already waiting; subscribe or send a heartbeat when due."""
        if self._pid != os.getpid():  # forked after use: the socket is the parent's
            self._pubsub, self._pid = None, os.getpid()
            self._reset("forked")
        if self._pubsub is None:
            if now < self._retry_at:
                return
            try:
                self._pubsub = self._backend._cache.get_client().pubsub()
                self._pubsub.subscribe(self.channel)
            except Exception:  # noqa: BLE001 - Redis unreachable: no near copy for now
                self._retry_at = now + self.RETRY
                self._reset("could not subscribe")
                return
        try:
            while (message := self._pubsub.get_message(timeout=0)) is not None:
                kind = message["type"]
                if kind == "message":
                    self._invalidate(message["data"])
                elif kind == "pong":
                    self._last_pong = now
                elif kind == "subscribe":
                    self._subscribed = True
                    self._last_pong = now
            if self._subscribed and now - self._last_ping >= self.HEARTBEAT:
                self._pubsub.ping()
                self._last_ping = now
        except Exception:  # noqa: BLE001 - the subscription broke: forget everything
            self._retry_at = now + self.RETRY
            self._reset("the subscription broke")

    def _invalidate(self, data: bytes) -> None:
        self.generation += 1
        self.stats["invalidations"] += 1
        if not data:
            self._entries.clear()
            return
        for key in data.decode().split("\n"):
            self._entries.pop(key, None)

    def _trusted(self, now: float) -> bool:
        return self._subscribed and now - self._last_pong <= self.FRESH

    def close(self) -> None:
        """Unsubscribe and forget everything (the backend is being discarded)."""
        self._reset("closed")

    # --- reads -------------------------------------------------------------------------

    def lookup(self, keys: list[str]) -> tuple[dict | None, int | None]:
        """(every key's value, None) when all are held and trusted; else (None, ticket).

        Pass the ticket to :meth:`remember` with what the caller then read from Redis.
        A ticket of ``None`` means: do not remember this read.
        """
        now = time.monotonic()
        self._drain(now)
        if not self._trusted(now):
            return None, None
        found = {}
        entries = self._entries
        for key in keys:
            entry = entries.get(key)
            if entry is None or now - entry[1] > self.max_age:
                self.stats["misses"] += 1
                return None, self.generation
            found[key] = entry[0]
        self.stats["hits"] += 1
        return found, None

    def remember(self, ticket: int | None, found: dict) -> None:
        if ticket is None or ticket != self.generation or not found:
            return  # something was invalidated since the read began: it may be stale
        now = time.monotonic()
        entries = self._entries
        for key, value in found.items():
            entries.pop(key, None)  # re-insert: the dict's order is the age order
            entries[key] = (value, now)
        while len(entries) > self.MAX_ENTRIES:
            del entries[next(iter(entries))]


def near_cache(alias: str = "default") -> NearCache | None:
    """This thread's near cache for ``alias``, or None (no Redis, or switched off)."""
    if not getattr(settings, "CACHE_NEAR", True):
        return None
    return getattr(caches[alias], "near", None)


def set_many_notify(mapping: dict, *, timeout: int, alias: str = "default") -> None:
    """``cache.set_many`` that also tells every near cache (atomically, on Redis)."""
    backend = caches[alias]
    notify = getattr(backend, "set_many_notify", None)
    if notify is None:
        backend.set_many(mapping, timeout=timeout)
    else:
        notify(mapping, timeout=timeout)


def delete_many_notify(keys: list[str], *, alias: str = "default") -> None:
    backend = caches[alias]
    notify = getattr(backend, "delete_many_notify", None)
    if notify is None:
        backend.delete_many(keys)
    else:
        notify(keys)
