"""Per-caller throttling for the REST API: a fixed-window counter per API token.

Its own module (not portal.core.api) because DRF imports the throttle classes named in
settings while its views module loads.
"""

from __future__ import annotations

import logging
import math
import time

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)


class TokenRateThrottle(BaseThrottle):
    """At most N calls per period per API token (per person for a browser session), counted
    in a fixed window by one cache increment. The rate is read at each call from
    ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]`` (``"600/minute"``; unset = no limit).
    Anonymous calls are refused by authentication before throttling runs. When the cache is
    unavailable calls are let through (logged): throttling protects the database, it is not
    an authorisation.
    """

    scope = "user"

    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    @staticmethod
    def parse_rate(rate: str) -> tuple[int, int]:
        count, _, period = rate.partition("/")
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[:1]]
        return int(count), seconds

    def ident(self, request) -> str | None:
        token = request.auth
        if token is not None and getattr(token, "pk", None) is not None:
            return f"token:{token.pk}"
        user = request.user
        if user is not None and user.is_authenticated:
            return f"user:{user.pk}"
        return None

    def allow_request(self, request, view) -> bool:
        rate = (api_settings.DEFAULT_THROTTLE_RATES or {}).get(self.scope)
        ident = self.ident(request)
        if not rate or ident is None:
            return True
        allowed, period = self.parse_rate(str(rate))
        now = time.time()
        window = int(now // period)
        key = f"throttle:{self.scope}:{ident}:{window}"
        try:
            count = self._increment(key, timeout=period + 1)
        except Exception:  # noqa: BLE001 - cache down: let the call through
            logger.warning("API throttle unavailable; %s not counted", ident, exc_info=True)
            return True
        if count is None or count <= allowed:
            return True
        self.wait_seconds = (window + 1) * period - now
        return False

    @staticmethod
    def _increment(key: str, *, timeout: int) -> int | None:
        try:
            return cache.incr(key)
        except ValueError:  # the window's first call
            if cache.add(key, 1, timeout=timeout):
                return 1
        try:
            return cache.incr(key)
        except ValueError:  # a cache that stores nothing (DummyCache)
            return None

    def wait(self) -> float | None:
        return math.ceil(self.wait_seconds) if self.wait_seconds is not None else None
