"""Is this request from Slack, and the first time we see it?

Slack signs each request: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>"
under the signing secret>`` and ``X-Slack-Request-Timestamp``. slack-sdk's ``SignatureVerifier``
computes and compares it (in constant time) and refuses a timestamp more than five minutes
away. A signature once accepted is stored (``SlackSeenSignature``, unique) for longer than
that window, so the same request sent again is refused too. The store is PostgreSQL, not
Redis: a Redis restarted empty or from an older snapshot would forget what it has seen.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import IntegrityError, transaction
from slack_sdk.signature import Clock, SignatureVerifier

from ..models import SlackSeenSignature

WINDOW_SECONDS = 5 * 60


class Unverified(Exception):
    """The request is not Slack's, too old, or a replay (the message says which, for logs)."""


class _Clock(Clock):
    def now(self) -> float:
        return time.time()  # time-machine freezes this in the tests


def verify(*, body: bytes, timestamp: str | None, signature: str | None) -> None:
    """Raise ``Unverified`` unless the request is signed by Slack, recent and new."""
    secret = settings.SLACK_SIGNING_SECRET
    if not secret:
        raise Unverified("Slack is not configured (SLACK_SIGNING_SECRET is empty)")
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit():
        raise Unverified("missing or malformed X-Slack-Request-Timestamp")
    if not signature or not signature.startswith("v0=") or len(signature) > 80:
        raise Unverified("missing or malformed X-Slack-Signature")
    if abs(time.time() - int(timestamp)) > WINDOW_SECONDS:
        raise Unverified("stale timestamp (more than five minutes away)")
    verifier = SignatureVerifier(secret, clock=_Clock())
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise Unverified("bad signature")
    try:
        with transaction.atomic():
            SlackSeenSignature.objects.create(signature=signature, request_ts=int(timestamp))
    except IntegrityError as exc:
        raise Unverified("replayed request (signature already seen)") from exc


def seen_prune() -> int:
    """Forget signatures whose timestamp can no longer pass the window (beat sweep): a replay
    of one of them is refused as stale."""
    cutoff = int(time.time()) - WINDOW_SECONDS - 60
    deleted, _ = SlackSeenSignature.objects.filter(request_ts__lt=cutoff).delete()
    return deleted
