"""portal.core.nav: apps contribute the header links; each shows only to who may use it."""

from __future__ import annotations

import pytest
from django.db import DatabaseError
from django.urls import reverse

from access.services import access_request_submit
from portal.core import nav
from tests.access.factories import make_entitlement, make_policy, make_service
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def labels(user) -> dict[str, list[str]]:
    return {g.label: [link.label for link in g.links] for g in nav.nav_for(user)}


def test_the_groups_and_entries_of_a_requester(requester):
    assert labels(requester) == {
        "Access": [
            "Catalog",
            "Request access",
            "Bundles",
            "My requests",
            "My grants",
            "Approvals",
            "Teams",
        ],
        "Costs": ["My team", "Suggestions", "Anomalies"],
        "Governance": ["Reviews", "Standards", "Patterns", "Unused access", "Provisioning"],
        "Settings": ["API tokens", "Security"],
    }


def test_the_bundles_entry_costs_no_query_and_opens_the_bundles_page(
    requester, client, django_assert_num_queries
):
    from django.contrib.auth.models import AnonymousUser

    entry = next(e for e in nav.registered() if e.url_name == "access:bundle-list")
    with django_assert_num_queries(0):
        assert entry.visible(requester) is True
        assert entry.visible(AnonymousUser()) is False
    link = next(link for g in nav.nav_for(requester) for link in g.links if link.label == "Bundles")
    assert link.url == reverse("access:bundle-list") == "/bundles/"
    client.force_login(requester)
    assert client.get(link.url).status_code == 200


def test_policy_gated_entries_show_to_an_admin(admin):
    got = labels(admin)
    assert got["Costs"] == [
        "My team",
        "Org costs",
        "Suggestions",
        "Anomalies",
        "Budgets",
        "Cost data",
    ]
    assert got["Governance"][-3:] == ["Recommendations", "Provisioning", "Audit"]


def test_my_team_links_to_the_viewers_own_team_and_is_absent_without_one(requester, org):
    links = {link.label: link.url for g in nav.nav_for(requester) for link in g.links}
    assert links["My team"] == reverse("costs-dash:team", args=["payments"])
    loner = make_user("loner@example.com")
    assert "My team" not in [link.label for g in nav.nav_for(loner) for link in g.links]


def test_a_group_counts_what_waits_on_the_viewer(org, requester, manager, service_owner):
    policy = make_policy("two-stage", [("manager", 1), ("service_owner", 1)])
    ent = make_entitlement(make_service(org["search"], slug="search-api"), policy=policy)
    access_request_submit(
        actor=requester, principal=requester, entitlement=ent, justification="x", duration_days=7
    )
    groups = {g.label: g for g in nav.nav_for(manager)}
    assert groups["Access"].count == 1
    assert {link.label: link.count for link in groups["Access"].links}["Approvals"] == 1
    assert {g.label: g.count for g in nav.nav_for(requester)}["Access"] == 0
    assert {g.label: g.count for g in nav.nav_for(service_owner)}["Access"] == 0


def test_a_database_error_hides_an_entry_instead_of_breaking_the_page(requester, monkeypatch):
    def broken(user):
        raise DatabaseError("down")

    entry = nav._entries["access:approvals"]
    monkeypatch.setitem(
        nav._entries,
        "access:approvals",
        nav.NavEntry(**{**entry.__dict__, "count": broken}),
    )
    links = {link.label: link for g in nav.nav_for(requester) for link in g.links}
    assert links["Approvals"].count is None
    monkeypatch.setitem(
        nav._entries, "access:approvals", nav.NavEntry(**{**entry.__dict__, "visible": broken})
    )
    assert "Approvals" not in labels(requester)["Access"]


def test_an_unknown_group_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        nav.NavEntry(group="Misc", label="x", url_name="home")
