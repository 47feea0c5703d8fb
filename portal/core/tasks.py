import time

import redis
from celery import shared_task
from django.conf import settings

from .health import HEARTBEAT_KEY, _redis_client


@shared_task(name="portal.core.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Record that a worker is alive; /readyz reads it."""
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        _redis_client().set(
            HEARTBEAT_KEY, str(time.time()), ex=settings.WORKER_HEARTBEAT_MAX_AGE * 10
        )


@shared_task(name="portal.core.tasks.ping")
def ping(token: str) -> str:
    """Round-trip probe used by the integration tests and `make worker` smoke check."""
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        redis.Redis.from_url(settings.CELERY_BROKER_URL).set(
            f"tollgate:pong:{token}", "pong", ex=60
        )
    return "pong"
