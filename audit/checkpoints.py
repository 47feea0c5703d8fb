"""A second home for the audit checkpoints: POST them to ``AUDIT_CHECKPOINT_URL``.

The checkpoint file lives next to the portal; a copy kept by another system (a webhook
that stores what it is sent) is what still exists when the host is lost or rewritten. Each
POST carries ``{"checkpoints": [...]}`` (canonical JSON) and an
``X-Tollgate-Signature: sha256=<hex>`` header: HMAC-SHA256 of the body under
``AUDIT_CHAIN_KEY``, so the receiver can tell the portal sent it.

A failed POST never fails the checkpoint: it is logged, and the checkpoints not delivered are
kept (in the cache, the newest 100) and sent again with the next one. Should the cache lose
them, nothing is lost for verification: a checkpoint at seq N pins every row up to N, so the
next one delivered covers the older ones.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.cache import cache

from .chain import canonical_json

logger = logging.getLogger("portal.audit.checkpoints")

PENDING_KEY = "audit:checkpoints:undelivered"
MAX_PENDING = 100
SIGNATURE_HEADER = "X-Tollgate-Signature"


def sign(body: bytes) -> str:
    key = settings.AUDIT_CHAIN_KEY.encode("utf-8")
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _post(url: str, body: bytes) -> None:
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError("AUDIT_CHECKPOINT_URL must be an http(s) URL")
    req = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "tollgate-audit-checkpoint",
            SIGNATURE_HEADER: sign(body),
        },
    )
    with urllib.request.urlopen(req, timeout=settings.AUDIT_CHECKPOINT_TIMEOUT) as response:  # noqa: S310
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(url, response.status, "not 2xx", response.headers, None)


def _pending() -> list[dict[str, Any]]:
    try:
        return list(cache.get(PENDING_KEY) or [])
    except Exception:  # noqa: BLE001 - the cache is down: send the current one only
        logger.warning("cannot read undelivered audit checkpoints", exc_info=True)
        return []


def _keep(pending: list[dict[str, Any]]) -> None:
    try:
        if pending:
            cache.set(PENDING_KEY, pending[-MAX_PENDING:], timeout=None)
        else:
            cache.delete(PENDING_KEY)
    except Exception:  # noqa: BLE001
        logger.warning("cannot store undelivered audit checkpoints", exc_info=True)


def deliver(checkpoint: dict[str, Any]) -> bool:
    """POST this checkpoint (and any earlier ones not yet delivered); True when delivered."""
    url = settings.AUDIT_CHECKPOINT_URL
    if not url:
        return False
    batch = [*_pending(), checkpoint]
    body = canonical_json({"checkpoints": batch}).encode("utf-8")
    try:
        _post(url, body)
    except Exception as exc:  # noqa: BLE001 - any failure: keep them for the next run
        logger.warning(
            "audit checkpoint not delivered to AUDIT_CHECKPOINT_URL; will retry with the next one",
            extra={"error": f"{exc.__class__.__name__}: {exc}"[:300], "undelivered": len(batch)},
        )
        _keep(batch)
        return False
    _keep([])
    return True
