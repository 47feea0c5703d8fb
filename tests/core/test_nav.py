"""portal.core.nav: apps contribute the header links; each shows only to who may use it."""

from __future__ import annotations

import pytest
from django.db import DatabaseError

from portal.core import nav

pytestmark = pytest.mark.django_db


def labels(user) -> dict[str, list[str]]:
    return {g.label: [link.label for link in g.links] for g in nav.nav_for(user)}


def test_the_groups_and_entries_of_a_requester(requester):
    assert labels(requester) == {
        "Access": [
            "Teams",
            "Catalog",
            "Request access",
            "My requests",
            "Approvals",
            "My grants",
            "Provisioning",
        ],
        "Governance": ["Reviews", "Standards", "Patterns", "Unused access"],
        "Settings": ["API tokens"],
    }


def test_policy_gated_entries_show_to_an_admin(admin):
    got = labels(admin)
    assert got["Costs"] == ["Org costs", "Cost data"]
    assert got["Governance"][-2:] == ["Recommendations", "Audit"]


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
