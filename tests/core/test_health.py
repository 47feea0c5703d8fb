"""/healthz, /readyz, the worker heartbeat, and JSON logs with request ids."""

from __future__ import annotations

import importlib
import io
import json
import logging

import pytest
import redis
from django.conf import settings
from django.db import connection

from portal.core import context
from portal.core.health import HEARTBEAT_KEY
from portal.core.logging import RequestContextFilter
from portal.core.tasks import heartbeat

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


def _redis() -> redis.Redis:
    url = settings.CELERY_BROKER_URL
    assert url.startswith("redis://"), f"these tests need real Redis (REDIS_URL), not {url}"
    client = redis.Redis.from_url(url, socket_timeout=2)
    client.ping()  # fails (never skips) when Redis is down
    return client


@pytest.mark.sqlite
@pytest.mark.django_db
def test_healthz_answers_json_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_touches_no_database_for_a_signed_in_user_either(
    client, requester, django_assert_num_queries
):
    client.force_login(requester)
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200


@pytest.mark.django_db
def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.sqlite
@pytest.mark.django_db
def test_readyz_ok_with_database(client, admin, settings):
    settings.READYZ_REQUIRE_WORKER = False
    client.force_login(admin)
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["detail"] == connection.vendor
    assert "failing" not in body


@pytest.mark.django_db
def test_readyz_tells_people_without_an_operator_role_only_ready_or_not(
    client, requester, settings
):
    settings.CELERY_BROKER_URL = CLOSED_PORT_BROKER
    settings.READYZ_REQUIRE_WORKER = False
    client.force_login(requester)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    assert b"ConnectionError" not in response.content


@pytest.mark.django_db
def test_readyz_503_names_the_broker_when_it_is_unreachable(client, admin, settings):
    settings.CELERY_BROKER_URL = CLOSED_PORT_BROKER
    settings.READYZ_REQUIRE_WORKER = False

    anonymous = client.get("/readyz")
    assert (anonymous.status_code, anonymous.json()) == (503, {"status": "unavailable"})
    client.force_login(admin)
    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["broker"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is False
    assert "ConnectionError" in body["checks"]["broker"]["detail"]


@pytest.mark.django_db
def test_readyz_requires_a_fresh_worker_heartbeat_when_configured(client, admin, settings):
    settings.READYZ_REQUIRE_WORKER = True
    client.force_login(admin)
    r = _redis()
    r.delete(HEARTBEAT_KEY)

    missing = client.get("/readyz")
    assert missing.status_code == 503
    assert missing.json()["failing"] == ["worker"]
    assert missing.json()["checks"]["worker"]["detail"] == "no worker heartbeat seen"

    # A stale heartbeat is as bad as none.
    r.set(HEARTBEAT_KEY, "1000.0")
    stale = client.get("/readyz")
    assert stale.status_code == 503
    assert stale.json()["failing"] == ["worker"]

    heartbeat.delay()  # eager here: runs the task body against real Redis

    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"]["worker"]["ok"] is True
    assert 0 < r.ttl(HEARTBEAT_KEY) <= settings.WORKER_HEARTBEAT_MAX_AGE * 10
    r.delete(HEARTBEAT_KEY)


@pytest.mark.django_db
def test_readyz_names_worker_and_broker_when_redis_is_gone(client, admin, settings):
    settings.READYZ_REQUIRE_WORKER = True
    settings.CELERY_BROKER_URL = CLOSED_PORT_BROKER
    client.force_login(admin)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker", "worker"]


def test_json_formatter_renders_the_request_id():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_json_formatter())
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("tests.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        with context.bind(request_id="req-0123456789", ip="10.0.0.1"):
            logger.info("hello %s", "world", extra={"team": "payments"})
        logger.info("outside a request")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "hello world"
    assert first["level"] == "INFO"
    assert first["logger"] == "tests.json"
    assert first["request_id"] == "req-0123456789"
    assert first["team"] == "payments"
    assert "time" in first
    assert second["request_id"] == "-"


def _json_formatter() -> logging.Formatter:
    """Build the formatter exactly as settings.LOGGING declares it."""
    spec = dict(settings.LOGGING["formatters"]["json"])
    factory = spec.pop("()")
    module, _, name = factory.rpartition(".")
    return getattr(importlib.import_module(module), name)(**spec)


@pytest.mark.django_db
def test_response_carries_the_request_id(client):
    honoured = client.get("/healthz", headers={"X-Request-ID": "abc-123-DEF_4.5"})
    assert honoured["X-Request-ID"] == "abc-123-DEF_4.5"

    malformed = client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert malformed["X-Request-ID"] != "bad id\nwith newline"
    assert len(malformed["X-Request-ID"]) == 32

    generated = client.get("/healthz")
    assert len(generated["X-Request-ID"]) == 32
