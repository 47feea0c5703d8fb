"""The catalog service page in a real browser: the connector block renders at once, and the
downstream health arrives by HTMX from a probe of a real SCIM server (never while the page
itself renders)."""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache

from access.models import Service

from ..conftest import PASSWORD
from ..connectors.scim_server import running_scim_server
from .test_request_flow import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKEN_ENV = "TOLLGATE_TEST_SCIM_BROWSER_TOKEN"


def test_the_health_badge_arrives_by_htmx(
    live_server, org, service_owner, browser_page, monkeypatch, tmp_path
):
    cache.clear()
    service_owner.set_password(PASSWORD)
    service_owner.save()
    with running_scim_server() as server:
        monkeypatch.setenv(TOKEN_ENV, server.token)
        service = Service.objects.create(
            slug="wiki",
            name="Wiki",
            owner_team=org["search"],
            connector="scim",
            connector_config={"base_url": server.base_url, "token_env": TOKEN_ENV},
        )
        page, base = browser_page, live_server.url
        sign_in(page, base, service_owner.email)
        page.goto(f"{base}/catalog/{service.slug}/")
        block = page.locator("dl.connector-status")
        assert "Last reconciliation" in block.inner_text()
        page.locator("#connector-health .badge").wait_for()
        text = page.locator("#connector-health").inner_text()
        shot = os.environ.get("TOLLGATE_SCREENSHOT_DIR")
        if shot:
            page.screenshot(path=f"{shot}/connector_health.png", full_page=True)
    assert text.startswith("healthy")
    assert f"SCIM at 127.0.0.1:{server.port} answers" in text
    assert server.token not in page.content()
