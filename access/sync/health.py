"""Downstream health of each service's connector, probed off the request path and cached.

``Connector.health()`` reads the downstream system (a SCIM user id, a PostgreSQL connection,
a signed webhook GET). A page never waits on it for long: the periodic task
``access.tasks.probe_connector_health`` probes every service with a connector and caches the
answer for :data:`TTL_SECONDS`; the catalog page shows the cached answer, and only when there
is none yet asks for it through an HTMX request that probes with a hard limit of
:data:`PROBE_LIMIT_SECONDS` (a downstream that hangs past it is reported as not answering).

The cache key carries a digest of the connector name and settings, so editing a service's
connector settings shows a fresh probe rather than the old system's health.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import asdict, dataclass
from datetime import datetime

from django.core.cache import cache
from django.utils import timezone

from connectors.base import Connector, ConnectorError
from connectors.registry import get_connector

from ..models import Service

logger = logging.getLogger(__name__)

TTL_SECONDS = 600
PROBE_LIMIT_SECONDS = 5.0


@dataclass(frozen=True)
class ProbedHealth:
    ok: bool
    detail: str
    latency_ms: float | None
    checked_at: datetime
    #: False for a connector with nothing to probe (manual, fake): its "ok" says nothing
    probed: bool = True

    @property
    def age_seconds(self) -> float:
        return (timezone.now() - self.checked_at).total_seconds()


def _key(service: Service) -> str:
    settings_digest = hashlib.sha256(
        json.dumps(
            [service.connector, service.connector_config], sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:16]
    return f"connector-health:{service.pk}:{settings_digest}"


def cached_health(service: Service) -> ProbedHealth | None:
    """The last probe's answer for the service's current settings, if any (no network)."""
    if not service.connector:
        return None
    raw = cache.get(_key(service))
    if not isinstance(raw, dict):
        return None
    try:
        return ProbedHealth(**raw)
    except TypeError:
        return None


def probe_health(service: Service, *, limit: float = PROBE_LIMIT_SECONDS) -> ProbedHealth | None:
    """Probe the service's connector now (at most ``limit`` seconds) and cache the answer.

    ``None`` for a service without a connector. Never raises: a bad configuration, an
    exception or no answer in time are unhealthy answers.
    """
    if not service.connector:
        return None
    answer: dict = {}

    def run() -> None:
        try:
            connector = get_connector(service.connector, service.connector_config)
            health = connector.health()
            answer.update(
                ok=health.ok,
                detail=health.detail,
                latency_ms=health.latency_ms,
                probed=type(connector).health is not Connector.health,
            )
        except ConnectorError as exc:
            answer.update(ok=False, detail=exc.message, latency_ms=None)
        except Exception as exc:  # a connector bug must not break a page
            logger.exception("health probe of %s failed", service.slug)
            answer.update(ok=False, detail=f"health probe failed: {type(exc).__name__}")

    worker = threading.Thread(target=run, name=f"health-{service.slug}", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive() or "ok" not in answer:
        answer = {
            "ok": False,
            "detail": f"{service.connector} connector did not answer within {limit:g} s",
            "latency_ms": None,
        }
    probed = ProbedHealth(
        ok=bool(answer["ok"]),
        detail=str(answer.get("detail") or "")[:500],
        latency_ms=answer.get("latency_ms"),
        checked_at=timezone.now(),
        probed=bool(answer.get("probed", True)),
    )
    cache.set(_key(service), asdict(probed), TTL_SECONDS)
    return probed


def probe_all() -> dict[str, int]:
    """Probe every service with a connector (the periodic task)."""
    counts = {"ok": 0, "unhealthy": 0}
    for service in Service.objects.exclude(connector="").order_by("pk"):
        probed = probe_health(service)
        if probed is not None:
            counts["ok" if probed.ok else "unhealthy"] += 1
    return counts
