"""Liveness and readiness probes.

``/healthz`` proves the process serves requests and touches nothing else.
``/readyz`` checks the database, the broker (when one is configured) and, when
``READYZ_REQUIRE_WORKER`` is set, that a worker has sent a heartbeat recently.
"""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .roles import user_in_group

HEARTBEAT_KEY = "tollgate:worker-heartbeat"
OPERATOR_GROUP = "platform-admin"  # accounts.models.PlatformRole.PLATFORM_ADMIN


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, connection.vendor
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return False, f"{exc.__class__.__name__}: {exc}"[:200]


def _redis_client():
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1
    )


def _check_broker() -> tuple[bool, str]:
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return True, "in-process (eager)"
    try:
        _redis_client().ping()
        return True, "redis"
    except Exception as exc:  # noqa: BLE001
        return False, f"{exc.__class__.__name__}: {exc}"[:200]


def _check_worker() -> tuple[bool, str]:
    try:
        raw = _redis_client().get(HEARTBEAT_KEY)
    except Exception as exc:  # noqa: BLE001
        return False, f"{exc.__class__.__name__}: {exc}"[:200]
    if raw is None:
        return False, "no worker heartbeat seen"
    age = time.time() - float(raw)
    if age > settings.WORKER_HEARTBEAT_MAX_AGE:
        return False, f"last worker heartbeat {age:.0f}s ago"
    return True, f"heartbeat {age:.0f}s ago"


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "broker": _check_broker()}
    if settings.READYZ_REQUIRE_WORKER:
        checks["worker"] = _check_worker()
    ok = all(passed for passed, _ in checks.values())
    body: dict[str, object] = {"status": "ok" if ok else "unavailable"}
    if _sees_details(request):
        # Exception text names hosts, ports and versions: only operators see it.
        body["checks"] = {
            name: {"ok": passed, "detail": detail} for name, (passed, detail) in checks.items()
        }
        if not ok:
            body["failing"] = [name for name, (passed, _) in checks.items() if not passed]
    return JsonResponse(body, status=200 if ok else 503)


def _sees_details(request) -> bool:
    """Staff and platform admins see which check failed and why; a probe sees ready or not."""
    user = request.user
    return bool(getattr(user, "is_staff", False) and user.is_active) or user_in_group(
        user, OPERATOR_GROUP
    )
