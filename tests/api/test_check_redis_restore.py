"""A revocation is final, whatever Redis went through: Redis restarted from a snapshot taken
before the revocation (what a restore or a failover to a lagging replica does) brings back the
cached "allowed" answers, version keys and token entries together; the check API must notice
and answer from the database.

The test starts its own throw-away ``redis-server`` on a free loopback port with a data
directory in ``tmp_path``, takes a snapshot (``SAVE``), revokes, and restarts the server from
that snapshot.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

from access import check
from access.services import grant_revoke
from portal.core.cache import LIFE_KEY
from tests.access.factories import grant_directly
from tests.api.test_check_api import BATCH, CHECK, body, service_api
from tokens.models import ApiToken
from tokens.services import api_token_revoke

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SnapshotRedis:
    """A redis-server of our own whose RDB snapshot we control."""

    def __init__(self, data_dir: Path):
        self.port = _free_port()
        self.dir = data_dir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (.ci/run installs it)"
        self.process = subprocess.Popen(  # noqa: S603 (fixed arguments)
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def snapshot(self) -> None:
        self.client().save()

    def restart_from_snapshot(self) -> None:
        """Stop without saving (the revocation is lost) and start again from the snapshot."""
        with contextlib.suppress(redis.ConnectionError):  # it closes the connection as it stops
            self.client().shutdown(nosave=True)
        assert self.process is not None
        self.process.wait(timeout=10)
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path):
    server = SnapshotRedis(tmp_path)
    server.start()
    caches_setting = {"default": {**settings.CACHES["default"], "LOCATION": server.url}}
    try:
        with override_settings(CACHES=caches_setting, CACHE_NEAR=True):
            cache.clear()
            yield server
    finally:
        server.stop()


def _allowed(api, principal) -> bool:
    response = api.post(CHECK, body(principal))
    assert response.status_code == 200, response.content
    return response.json()["allowed"]


def test_a_redis_restored_from_before_a_revocation_does_not_undo_it(
    own_redis, catalog, requester, admin, django_capture_on_commit_callbacks
):
    grant = grant_directly(requester, catalog["read"])
    svc = service_api(catalog["search_db"])
    for _ in range(3):  # cached in Redis and in this process's near cache
        assert _allowed(svc, requester.email) is True
    assert check.check_one(principal=str(requester.pk), service="search-db", entitlement="read")
    own_redis.snapshot()  # the state a restore will bring back: "allowed" cached

    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(actor=admin, grant_id=grant.pk, reason="left the project")
    assert _allowed(svc, requester.email) is False

    own_redis.restart_from_snapshot()
    old_life = own_redis.client().get(cache.make_key(LIFE_KEY))
    assert old_life is not None  # the snapshot carries the old server life's mark

    # The fast path, the DRF path (a batch) and the service-side function all refuse.
    assert _allowed(svc, requester.email) is False
    batch = svc.post(BATCH, {"checks": [body(requester.email), body(str(requester.pk))]})
    assert [answer["allowed"] for answer in batch.json()["results"]] == [False, False]
    decision = check.check_one(principal=str(requester.pk), service="search-db", entitlement="read")
    assert (decision.allowed, decision.reason) == (
        False,
        f"grant #{grant.pk} is revoked, not active",
    )
    assert own_redis.client().get(cache.make_key(LIFE_KEY)) != old_life


def test_a_service_token_revoked_after_the_snapshot_stays_revoked(
    own_redis, catalog, requester, admin, django_capture_on_commit_callbacks
):
    grant_directly(requester, catalog["read"])
    svc = service_api(catalog["search_db"])
    assert _allowed(svc, requester.email) is True  # the token's entry is cached now
    token = ApiToken.objects.get(service=catalog["search_db"])
    own_redis.snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        api_token_revoke(actor=admin, token_id=token.pk)
    assert svc.post(CHECK, body(requester.email)).status_code == 401

    own_redis.restart_from_snapshot()

    assert svc.post(CHECK, body(requester.email)).status_code == 401


def test_a_restart_with_the_same_data_only_costs_a_cold_cache(own_redis, catalog, requester):
    grant_directly(requester, catalog["read"])
    svc = service_api(catalog["search_db"])
    assert _allowed(svc, requester.email) is True
    own_redis.snapshot()
    own_redis.restart_from_snapshot()

    assert _allowed(svc, requester.email) is True  # answered from the database, then cached
    assert _allowed(svc, requester.email) is True
