"""The header in a real browser: grouped menus that fit a 1280 px screen and a 390 px phone
without sideways scrolling, open and close with the keyboard, show only what the viewer may
use, and count what waits on them."""

from __future__ import annotations

import pytest
from django.db import connections

from access import services as access_services

from ..access.factories import make_entitlement, make_policy, make_service
from ..conftest import PASSWORD
from .test_request_flow import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_SIDEWAYS_SCROLL = (
    "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
)


OPEN_MENUS = (
    "() => [...document.querySelectorAll('details.nav-menu')].filter(e => e.open).map(e => e.id)"
)


def open_menus(page, expected: list[str] | None = None) -> list[str]:
    """The ids of the open menus, once they are ``expected`` (the toggle event is async)."""
    if expected is not None:
        page.wait_for_function(
            f"() => ({OPEN_MENUS})().join() === {expected!r}.join()".replace("'", '"')
        )
    return page.evaluate(OPEN_MENUS)


@pytest.fixture
def waiting(org, requester, manager):
    for person in (requester, manager):
        person.set_password(PASSWORD)
        person.save()
    policy = make_policy("mgr", [("manager", 1)])
    ent = make_entitlement(make_service(org["search"], slug="search-index"), policy=policy)
    access_services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=7
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_the_menus_fit_the_screen_open_by_keyboard_and_close_with_escape(
    live_server, waiting, manager, browser_page, width
):
    page, base = browser_page, live_server.url
    try:
        page.set_viewport_size({"width": width, "height": 800})
        sign_in(page, base, manager.email)
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        groups = page.locator("details.nav-menu > summary").all_inner_texts()
        assert [g.split()[0] for g in groups] == ["Access", "Costs", "Governance", "Settings"]
        assert groups[0] == "Access 1"  # one approval waits on the manager
        assert open_menus(page, []) == []

        # Tab to the Access menu, open it with Enter, walk into it, close it with Escape.
        page.locator("#nav-home").focus()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent").startswith("Access")
        page.keyboard.press("Enter")
        assert open_menus(page, ["nav-group-access"]) == ["nav-group-access"]
        assert page.locator("#nav-approvals").is_visible()
        assert page.evaluate(NO_SIDEWAYS_SCROLL)  # an open menu does not overflow either
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Catalog"
        page.keyboard.press("Escape")
        assert open_menus(page, []) == []
        assert page.evaluate("document.activeElement.id") == ""  # back on the summary
        assert page.evaluate("document.activeElement.tagName") == "SUMMARY"

        # Space opens it too; opening another menu closes the first.
        page.keyboard.press(" ")
        assert open_menus(page, ["nav-group-access"]) == ["nav-group-access"]
        page.locator("#nav-group-costs > summary").focus()
        page.keyboard.press("Enter")
        assert open_menus(page, ["nav-group-costs"]) == ["nav-group-costs"]
        page.mouse.click(5, 790)  # a click elsewhere closes it
        assert open_menus(page, []) == []

        # Following a link by keyboard.
        page.locator("#nav-group-access > summary").focus()
        page.keyboard.press("Enter")
        assert open_menus(page, ["nav-group-access"]) == ["nav-group-access"]
        page.locator("#nav-approvals").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/approvals/")
        assert page.locator("#nav-approvals").get_attribute("aria-current") == "page"
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
    finally:
        connections.close_all()


def test_a_requester_sees_no_menu_entry_they_may_not_use(live_server, requester, browser_page):
    requester.set_password(PASSWORD)
    requester.save()
    page, base = browser_page, live_server.url
    try:
        sign_in(page, base, requester.email)
        links = page.eval_on_selector_all(
            "details.nav-menu a", "els => els.map(e => e.textContent.trim())"
        )
        for hidden in ("Org costs", "Budgets", "Cost data", "Audit", "Recommendations"):
            assert hidden not in links
        assert {"Catalog", "My grants", "My team", "Reviews", "API tokens", "Security"} <= set(
            links
        )
    finally:
        connections.close_all()
