"""The team cost dashboard in a real browser: charts render with data (plotly.js served
locally under the strict CSP), and a screenshot is saved as a test artifact."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest

from demo.steps.costs import seed_costs

from .test_request_flow import browser_page, sign_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboard_charts_render_with_data(
    live_server,
    org,
    manager,
    browser_page,  # noqa: F811
    tmp_path,
):
    from ..conftest import PASSWORD

    manager.set_password(PASSWORD)
    manager.save()
    seed_costs(stdout=io.StringIO(), rng=random.Random(3), months=3, resources_per_team=3)
    page = browser_page
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, live_server.url, manager.email)
    page.goto(f"{live_server.url}/teams/payments/costs/")
    page.wait_for_selector("[data-chart='chart-daily'][data-rendered]")
    for chart in (
        "chart-daily",
        "chart-monthly",
        "chart-burn",
        "chart-service",
        "chart-category",
        "chart-region",
    ):
        el = page.locator(f"[data-chart='{chart}']")
        el.locator(".main-svg").first.wait_for()
        traces = page.evaluate(
            "(id) => document.querySelector(`[data-chart='${id}']`).data.length", chart
        )
        points = page.evaluate(
            "(id) => document.querySelector(`[data-chart='${id}']`).data.reduce((n, t) => n + (t.x || t.values || []).length, 0)",
            chart,
        )
        assert traces > 0 and points > 0, chart
    assert page.locator(".js-plotly-plot .main-svg").count() >= 6
    assert page.locator("#kpi-mtd").inner_text() != "0.00"
    assert not [e for e in errors if "Content Security Policy" in e], errors
    artifacts = Path(os.environ.get("TEST_ARTIFACT_DIR", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "cost_dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # a bar click drills down to the resources behind it
    page.goto(f"{live_server.url}/teams/payments/costs/drill/?dim=service&value=AWS+Lambda")
    assert page.locator("h1").inner_text().startswith("Service:")
