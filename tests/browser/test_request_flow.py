"""The request flow in a real browser (Chromium through Playwright): the engineer requests,
the manager approves from the inbox, the engineer sees the active grant."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from django.db import connections

from access.models import AccessRequest, Grant

from ..access.factories import make_entitlement, make_policy, make_service
from ..conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_for_chromium(timeout: float = 300) -> None:
    """Chromium may still be installing (apt) when the suite starts."""
    deadline = time.monotonic() + timeout
    while not (Path(CHROMIUM).exists() and os.access(CHROMIUM, os.X_OK)):
        if time.monotonic() > deadline:
            pytest.fail(f"{CHROMIUM} did not appear within {timeout:.0f}s")
        time.sleep(2)


@pytest.fixture
def browser_page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    wait_for_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            yield page
        finally:
            context.close()
            browser.close()


def sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form[action='/accounts/login/'] button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/$"))
    assert page.locator("header.site-header").inner_text().count(email) == 1


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/accounts/login/.*"))


def test_engineer_requests_manager_approves_grant_appears(
    live_server, org, requester, manager, browser_page
):
    requester.set_password(PASSWORD)
    requester.save()
    manager.set_password(PASSWORD)
    manager.save()
    service = make_service(org["search"], slug="search-index")
    ent = make_entitlement(
        service, slug="read", max_days=30, policy=make_policy("mgr", [("manager", 1)])
    )
    page, base = browser_page, live_server.url

    # The engineer finds the entitlement in the catalog and requests it.
    sign_in(page, base, requester.email)
    page.goto(f"{base}/catalog/")
    page.fill("input[name=q]", "search")
    page.wait_for_url(re.compile(r".*/catalog/\?q=search.*"))  # HTMX live filter pushes the URL
    page.get_by_role("link", name="Search Index").click()
    page.locator(f"#entitlement-{ent.pk}").get_by_role("link", name="Request").click()
    page.wait_for_url(re.compile(rf".*/requests/new/\?entitlement={ent.pk}$"))
    preview = page.locator("#request-preview")
    assert "The principal's manager (1 approval): Manager" in preview.inner_text()
    page.fill("input[name=duration_days]", "45")
    page.fill("textarea[name=justification]", "investigate the ranking regression")
    page.locator("#request-preview").get_by_text(
        "Will be refused: duration must be between 1 and 30 days"
    ).wait_for()
    page.fill("input[name=duration_days]", "14")
    page.locator("textarea[name=justification]").focus()  # fires change on the duration
    page.locator("#request-preview").get_by_text("Will be refused").wait_for(state="detached")
    page.get_by_role("button", name="Submit the request").click()
    page.wait_for_url(re.compile(r".*/requests/\d+/$"))
    assert "submitted." in page.locator(".messages").inner_text()
    assert "Pending" in page.locator("h1").inner_text()
    sign_out(page)

    # The manager approves it from the inbox (an HTMX row swap).
    sign_in(page, base, manager.email)
    assert page.locator("#nav-group-access > summary").inner_text() == "Access 1"
    page.locator("#nav-group-access > summary").click()  # the header menu
    assert page.locator("#nav-approvals").inner_text() == "Approvals 1"
    page.goto(f"{base}/approvals/")
    row = page.locator("tr[id^=inbox-row-]")
    assert "investigate the ranking regression" in row.inner_text()
    row.locator("input[name=reason]").fill("fine for two weeks")
    row.get_by_role("button", name="Approve").click()
    page.locator("tr.inbox-done").get_by_text("approved; the grant is on its way.").wait_for()
    sign_out(page)

    # The engineer sees the active grant.
    sign_in(page, base, requester.email)
    page.goto(f"{base}/grants/")
    grant_row = page.locator("table.grant-table tbody tr").first
    assert grant_row.locator("td").nth(0).inner_text() == "Search Index · Read"
    assert grant_row.locator("td").nth(1).inner_text() == "Active"

    try:
        req = AccessRequest.objects.get()
        assert (req.status, req.requester_id, req.duration_days) == ("approved", requester.pk, 14)
        grant = Grant.objects.get(request=req)
        assert (grant.principal_id, grant.status, grant.approved_by) == (
            requester.pk,
            "active",
            [manager.email],
        )
    finally:
        # While Playwright runs, this code has a database connection of its own (greenlet
        # context): close it, or the test database cannot be dropped at the end of the run.
        connections.close_all()
