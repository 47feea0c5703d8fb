"""portal.core.tasks: the worker heartbeat and the round-trip ping (run eagerly here)."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings

from portal.celery import app as celery_app
from portal.core.health import HEARTBEAT_KEY
from portal.core.tasks import heartbeat, ping


def test_every_beat_entry_names_a_registered_task():
    """What beat schedules, a worker must know (a worker imports tasks modules like this)."""
    celery_app.loader.import_default_modules()
    assert settings.CELERY_BEAT_SCHEDULE["worker-heartbeat"]["task"] == (
        "portal.core.tasks.heartbeat"
    )
    missing = {
        name: entry["task"]
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        if entry["task"] not in celery_app.tasks
    }
    assert missing == {}


def test_core_tasks_route_to_the_default_queue():
    for name in ("portal.core.tasks.heartbeat", "portal.core.tasks.ping"):
        assert celery_app.amqp.router.route({}, name)["queue"].name == "default"


def test_ping_and_heartbeat_write_to_redis():
    url = settings.CELERY_BROKER_URL
    assert url.startswith("redis://"), f"needs REDIS_URL, not {url}"
    r = redis.Redis.from_url(url)
    token = uuid.uuid4().hex

    assert ping.delay(token).get(disable_sync_subtasks=False) == "pong"
    heartbeat.delay()

    assert r.get(f"tollgate:pong:{token}") == b"pong"
    assert float(r.get(HEARTBEAT_KEY)) > 0
    r.delete(f"tollgate:pong:{token}")


@pytest.mark.sqlite
def test_ping_and_heartbeat_are_harmless_without_redis(settings):
    settings.CELERY_BROKER_URL = "memory://"
    assert ping.delay("no-redis").get(disable_sync_subtasks=False) == "pong"
    assert heartbeat.delay().get(disable_sync_subtasks=False) is None
