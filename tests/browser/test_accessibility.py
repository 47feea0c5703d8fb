"""The most used pages have no serious or critical axe-core violations (axe 4.14, vendored
under static/vendor/axe-core and loaded from the portal itself: the CSP allows only
same-origin scripts), and the request flow works with the keyboard alone."""

from __future__ import annotations

import re

import pytest
from django.db import connections
from django.urls import reverse

from access import services as access_services
from access.models import AccessRequest, Entitlement

from ..access.factories import grant_directly, make_entitlement, make_policy, make_service
from ..conftest import PASSWORD
from .test_request_flow import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = "/static/vendor/axe-core/axe.min.js"
RUN_AXE = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}`);
}"""


def violations(page, url: str) -> list[str]:
    page.goto(url)
    page.add_script_tag(url=AXE)
    return page.evaluate(RUN_AXE)


@pytest.fixture
def scene(org, requester, manager, admin):
    for person in (requester, manager, admin):
        person.set_password(PASSWORD)
        person.save()
    policy = make_policy("mgr", [("manager", 1)])
    service = make_service(org["search"], slug="search-index")
    ent = make_entitlement(service, slug="read", max_days=30, policy=policy)
    make_entitlement(service, slug="write", risk="medium", max_days=30, policy=policy)
    grant = grant_directly(requester, make_entitlement(service, slug="admin", risk="high"), days=5)
    req = access_services.access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=7
    )
    return {"service": service, "entitlement": ent, "grant": grant, "request": req}


def test_the_main_pages_have_no_serious_or_critical_violations(
    live_server, scene, manager, admin, browser_page
):
    page, base = browser_page, live_server.url
    pages = [
        reverse("home"),
        reverse("access:catalog"),
        reverse("access:service-detail", args=[scene["service"].slug]),
        reverse("access:request-new") + f"?entitlement={scene['entitlement'].pk}",
        reverse("access:request-list"),
        reverse("access:request-detail", args=[scene["request"].pk]),
        reverse("access:approvals"),
        reverse("access:grant-list"),
        reverse("access:grant-detail", args=[scene["grant"].pk]),
        reverse("team-list"),
        reverse("team-detail", args=["payments"]),
        reverse("reviews:mine"),
        reverse("usage:list"),
        reverse("standards:violations"),
        reverse("patterns:index"),
        reverse("access_sync:hub"),
        reverse("audit:search"),
        reverse("tokens:list"),
        reverse("costs-dash:team", args=["platform"]),
        reverse("costs-dash:suggestions"),
        reverse("costs-dash:anomalies"),
        reverse("costs-dash:overview"),
        reverse("costs-dash:budgets"),
    ]
    try:
        sign_in(page, base, admin.email)
        found = {url: violations(page, base + url) for url in pages}
        assert {url: v for url, v in found.items() if v} == {}
        page.context.clear_cookies()
        page.goto(base + reverse("account_login"))
        page.add_script_tag(url=AXE)
        assert page.evaluate(RUN_AXE) == []
    finally:
        connections.close_all()


def tab_to(page, text: str, limit: int = 80) -> None:
    """Press Tab until the focused element's text (or accessible name) starts with ``text``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement;"
            " return (e.getAttribute('aria-label') || e.labels?.[0]?.textContent || e.textContent || '').trim(); }"
        )
        if focused.startswith(text):
            return
    pytest.fail(f"no focusable element named {text!r} within {limit} Tabs")


def test_the_request_flow_works_with_the_keyboard_alone(
    live_server, scene, requester, browser_page
):
    page, base = browser_page, live_server.url
    ent = Entitlement.objects.get(service=scene["service"], slug="write")  # not yet requested
    try:
        sign_in(page, base, requester.email)
        # The header menu, the catalog, the service, its Request link: Tab and Enter only.
        tab_to(page, "Access")
        page.keyboard.press("Enter")
        tab_to(page, "Catalog")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/catalog/")
        tab_to(page, "Search Index")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/catalog/search-index/")
        page.locator(f"#entitlement-{ent.pk}").wait_for()
        for _ in range(80):  # the Request link of the entitlement's row
            page.keyboard.press("Tab")
            if page.evaluate(
                f"() => document.activeElement.closest('#entitlement-{ent.pk}') !== null"
                " && document.activeElement.textContent.trim() === 'Request'"
            ):
                break
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf".*/requests/new/\?entitlement={ent.pk}$"))
        tab_to(page, "Why")
        page.keyboard.type("keyboard only: investigate the ranking")
        tab_to(page, "Submit the request")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/requests/\d+/$"))
        req = AccessRequest.objects.get(entitlement=ent)
        assert (req.principal_id, req.entitlement_id, req.justification) == (
            requester.pk,
            ent.pk,
            "keyboard only: investigate the ranking",
        )
    finally:
        connections.close_all()
