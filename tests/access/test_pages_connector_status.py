"""The catalog service page shows the service's connector, its downstream health and its last
reconciliation (issue #18). Health is probed by the periodic task or by an HTMX request with a
hard time limit, and cached: rendering the page never touches the downstream system."""

from __future__ import annotations

import html
import re
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from access import tasks
from access.models import ReconciliationRun, Service
from access.sync import health
from tests.connectors.scim_server import free_port, running_scim_server

pytestmark = pytest.mark.django_db

TOKEN_ENV = "TOLLGATE_TEST_SCIM_PAGE_TOKEN"


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return html.unescape(re.sub(r"\s+", " ", body).strip())


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def scim_server():
    with running_scim_server() as server:
        yield server


def scim_service(org, base_url: str, slug: str = "wiki", **extra) -> Service:
    return Service.objects.create(
        slug=slug,
        name=slug.title(),
        owner_team=org["search"],
        connector="scim",
        connector_config={"base_url": base_url, "token_env": TOKEN_ENV, **extra},
    )


def health_url(service) -> str:
    return reverse("access:service-connector-health", args=[service.slug])


def test_the_page_shows_the_connector_and_asks_for_health_without_probing(
    client, service_owner, org, monkeypatch
):
    monkeypatch.setenv(TOKEN_ENV, "t")
    service = scim_service(org, f"http://127.0.0.1:{free_port()}/v2")
    client.force_login(service_owner)

    response = client.get(reverse("access:service-detail", args=[service.slug]))

    assert response.status_code == 200
    body = text(response)
    assert "provisioned by the scim connector" in body
    assert "Connector scim Downstream health Checking the downstream system…" in body
    assert "Last reconciliation never reconciled" in body
    assert f'hx-get="{health_url(service)}" hx-trigger="load"' in response.content.decode()
    assert health.cached_health(service) is None  # the page itself probed nothing


def test_the_health_request_probes_the_real_scim_server_and_caches(
    client, service_owner, org, scim_server, monkeypatch
):
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    service = scim_service(org, scim_server.base_url)
    client.force_login(service_owner)

    response = client.get(health_url(service), headers={"HX-Request": "true"})

    assert response.status_code == 200
    body = text(response)
    assert body.startswith(f"healthy SCIM at 127.0.0.1:{scim_server.port} answers ·")
    assert scim_server.token not in response.content.decode()
    cached = health.cached_health(service)
    assert cached is not None and cached.ok is True
    page = text(client.get(reverse("access:service-detail", args=[service.slug])))
    assert f"Downstream health healthy SCIM at 127.0.0.1:{scim_server.port} answers" in page


def test_a_dead_downstream_is_unhealthy_within_the_limit(client, service_owner, org, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "t")
    service = scim_service(org, f"http://127.0.0.1:{free_port()}/v2", health_timeout=1)
    client.force_login(service_owner)

    started = time.monotonic()
    response = client.get(health_url(service))

    assert time.monotonic() - started < health.PROBE_LIMIT_SECONDS + 1
    assert text(response).startswith(
        f"unhealthy SCIM health check at {service.connector_config['base_url'][7:-3]} failed:"
    )


def test_a_downstream_that_hangs_is_cut_off_by_the_probe_limit(org, monkeypatch):
    """A server that accepts the connection and never answers: the connector's own timeout
    (3 s here) is longer than the probe's limit, which answers first."""
    monkeypatch.setenv(TOKEN_ENV, "t")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        service = scim_service(org, f"http://127.0.0.1:{port}/v2", health_timeout=3)
        started = time.monotonic()
        probed = health.probe_health(service, limit=0.5)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        listener.close()

    assert elapsed < 2.5  # the connector alone would wait 3 s
    assert (probed.ok, probed.detail) == (False, "scim connector did not answer within 0.5 s")
    assert health.cached_health(service) == probed


def test_the_last_reconciliation_is_shown(client, service_owner, org, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "t")
    service = scim_service(org, "http://127.0.0.1:9/v2")
    ReconciliationRun.objects.create(
        service=service,
        mode="enforce",
        status="done",
        grants_checked=12,
        holders_seen=11,
        missing=1,
        unmanaged=2,
        started_at=timezone.now() - timedelta(hours=2),
        finished_at=timezone.now() - timedelta(hours=2),
    )
    client.force_login(service_owner)

    body = text(client.get(reverse("access:service-detail", args=[service.slug])))

    assert "Last reconciliation Done" in body
    assert "(2 hours ago, enforce)" in body
    assert (
        "12 grants checked, 11 holders seen, drift: 1 missing, 2 unmanaged, 0 wrong level" in body
    )


def test_people_outside_the_owner_team_see_neither_health_nor_runs(
    client, requester, org, monkeypatch
):
    monkeypatch.setenv(TOKEN_ENV, "t")
    service = scim_service(org, "http://127.0.0.1:9/v2")
    client.force_login(requester)

    page = client.get(reverse("access:service-detail", args=[service.slug]))
    assert page.status_code == 200
    assert "provisioned by the scim connector" in text(page)
    assert "Downstream health" not in text(page)
    assert client.get(health_url(service)).status_code == 404
    assert health.cached_health(service) is None  # nothing was probed for them


def test_the_periodic_task_probes_every_service_with_a_connector(org, scim_server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    good = scim_service(org, scim_server.base_url, slug="good")
    bad = scim_service(org, f"http://127.0.0.1:{free_port()}/v2", slug="bad", health_timeout=1)
    plain = Service.objects.create(slug="plain", name="Plain", owner_team=org["search"])

    tasks.probe_connector_health.delay()

    assert health.cached_health(good).ok is True
    assert health.cached_health(bad).ok is False
    assert health.cached_health(plain) is None


def test_changing_the_settings_forgets_the_old_health(org, scim_server, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, scim_server.token)
    service = scim_service(org, scim_server.base_url)
    health.probe_health(service)
    assert health.cached_health(service).ok is True

    service.connector_config = {**service.connector_config, "timeout": 5}
    service.save()

    assert health.cached_health(service) is None


def test_a_connector_without_a_probe_says_so(client, service_owner, org):
    service = Service.objects.create(
        slug="dba",
        name="DBA",
        owner_team=org["search"],
        connector="manual",
        connector_config={"group": "dba-oncall"},
    )
    client.force_login(service_owner)

    body = text(client.get(health_url(service)))

    assert body.startswith("not probed manual connector has no health probe ·")
    assert "healthy" not in body
