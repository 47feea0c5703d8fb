"""The home page in a real browser, per persona: each sees what waits on them and nothing of
anyone else's, and each item leads to where it is done."""

from __future__ import annotations

import re

import pytest
from django.db import connections

from access import services as access_services

from ..access.factories import grant_directly, make_entitlement, make_policy, make_service
from ..conftest import PASSWORD
from .test_request_flow import sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_each_persona_sees_their_own_to_do_list(
    live_server, org, requester, manager, other_team_user, browser_page
):
    for person in (requester, manager, other_team_user):
        person.set_password(PASSWORD)
        person.save()
    service = make_service(org["search"], slug="search-index")
    policy = make_policy("mgr", [("manager", 1)])
    req = access_services.access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=make_entitlement(service, slug="read", policy=policy),
        justification="x",
        duration_days=7,
    )
    grant_directly(requester, make_entitlement(service, slug="write"), days=3)
    page, base = browser_page, live_server.url
    try:
        sign_in(page, base, requester.email)
        waiting = page.locator("#home-waiting").inner_text()
        assert "Search Index · Write" in waiting and "Extend" in waiting
        assert f"#{req.pk} Search Index · Read" in page.locator("#home-requests").inner_text()
        page.locator("#home-waiting").get_by_role("button", name=re.compile("^Extend")).click()
        page.wait_for_url(re.compile(r".*/requests/new/\?entitlement=\d+$"))
        sign_out(page)

        sign_in(page, base, manager.email)
        waiting = page.locator("#home-waiting")
        assert "Search Index · Read" in waiting.inner_text()
        assert "Search Index · Write" not in waiting.inner_text()  # the requester's grant
        waiting.get_by_role("button", name=re.compile("^Decide")).click()
        page.wait_for_url(f"{base}/requests/{req.pk}/")
        sign_out(page)

        sign_in(page, base, other_team_user.email)
        assert page.locator("#home-waiting").inner_text().endswith("Nothing waits on you.")
        assert "Search Index" not in page.locator("main").inner_text()
    finally:
        connections.close_all()
