"""The home page is a to-do list: what waits on the viewer, their open requests, their team's
costs against budget and the top savings — each item scoped to the viewer, each linking to
where it is done. Another person's items never show."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from access import services as access_services
from costs.analytics.models import Budget, Suggestion
from portal.core import home
from tests.access.factories import grant_directly, make_entitlement, make_policy, make_service
from tests.costs.analytics_data import standard_org_costs

pytestmark = pytest.mark.django_db


def sections(client, user) -> dict[str, list]:
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    return {s.key: s.items for s in response.context["sections"]}


def titles(items) -> list[str]:
    return [i.title for i in items]


@pytest.fixture
def pending(org, requester, manager, service_owner):
    """The requester's request for a search-owned entitlement, waiting on their manager."""
    policy = make_policy("two-stage", [("manager", 1), ("service_owner", 1)])
    service = make_service(org["search"], slug="search-api")
    ent = make_entitlement(service, slug="write", risk="medium", policy=policy)
    return access_services.access_request_submit(
        actor=requester,
        principal=requester,
        entitlement=ent,
        justification="on call",
        duration_days=7,
    )


def test_the_sections_are_there_in_order_and_empty_for_a_newcomer(client, other_team_user):
    got = sections(client, other_team_user)
    assert list(got) == ["waiting", "requests", "costs", "suggestions"]
    assert all(items == [] for items in got.values())
    page = client.get(reverse("home")).content.decode()
    assert "Nothing waits on you." in page and "You have no open requests." in page


def test_an_approval_waits_on_the_manager_and_on_nobody_else(
    client, pending, requester, manager, service_owner, other_team_user
):
    waiting = sections(client, manager)["waiting"]
    assert [(i.kind, i.url, i.action_label) for i in waiting] == [
        ("Approval", reverse("access:request-detail", args=[pending.pk]), "Decide")
    ]
    assert "stage 1 of 2" in waiting[0].detail
    # the owner's stage has not come yet; the requester and a stranger have nothing to decide
    for person in (service_owner, requester, other_team_user):
        assert sections(client, person)["waiting"] == []


def test_my_open_request_shows_its_stage_to_me_only(client, pending, requester, other_team_user):
    mine = sections(client, requester)["requests"]
    assert [i.url for i in mine] == [reverse("access:request-detail", args=[pending.pk])]
    assert mine[0].badge.startswith("stage 1 of 2")
    assert sections(client, other_team_user)["requests"] == []


def test_a_grant_ending_within_14_days_has_an_extend_button(client, org, requester, manager):
    service = make_service(org["payments"], slug="ledger")
    soon = grant_directly(requester, make_entitlement(service, slug="read"), days=5)
    grant_directly(requester, make_entitlement(service, slug="write"), days=30)  # not yet
    grant_directly(manager, make_entitlement(service, slug="admin"), days=3)  # someone else's
    waiting = sections(client, requester)["waiting"]
    assert [(i.kind, i.url) for i in waiting] == [
        ("Expiring", reverse("access:grant-detail", args=[soon.pk]))
    ]
    assert waiting[0].action_label == "Extend"
    assert (
        waiting[0].action_url
        == f"{reverse('access:request-new')}?entitlement={soon.entitlement_id}"
    )
    assert waiting[0].badge in ("ends in 4 days", "ends in 5 days")
    page = client.get(reverse("home")).content.decode()
    assert f'href="{waiting[0].action_url}"' in page and ">Extend<" in page


def test_team_costs_against_budget_with_a_text_trend(
    client, tmp_path, org, requester, other_team_user
):
    today = dt.date.today()
    standard_org_costs(tmp_path, org, days=70, today=today)
    Budget.objects.create(team=org["payments"], month=today.replace(day=1), amount=Decimal("5000"))
    (item,) = sections(client, requester)["costs"]
    assert item.url == reverse("costs-dash:team", args=["payments"])
    assert item.title.startswith("Payments: USD ")
    assert item.badge.endswith("% of budget")
    assert "of a USD 5,000.00 budget" in item.detail and "same days of last month" in item.detail
    assert item.table[0] == ("Month", "Cost (USD)") and len(item.table) == 1 + 6
    page = client.get(reverse("home")).content.decode()
    assert "<caption" in page and "Monthly cost, last 6 months" in page
    # another team's member sees their own team's figures, never the payments budget
    (theirs,) = sections(client, other_team_user)["costs"]
    assert theirs.title.startswith("Other: ") and "5,000.00" not in theirs.detail


def test_the_top_suggestions_are_the_viewers_teams_only(client, org, requester, other_team_user):
    def suggestion(team, saving, status=Suggestion.Status.OPEN):
        return Suggestion.objects.create(
            fingerprint=f"{team.slug}{saving}{status}".ljust(64, "x"),
            kind=Suggestion.Kind.IDLE,
            team=team,
            title=f"idle box of {team.slug} {saving}",
            estimated_monthly_saving=Decimal(saving),
            savings_method="test",
            confidence=Suggestion.Confidence.HIGH,
            status=status,
        )

    suggestion(org["payments"], "10")
    suggestion(org["payments"], "90")
    suggestion(org["payments"], "500", status=Suggestion.Status.DISMISSED)
    suggestion(org["other"], "999")
    got = sections(client, requester)["suggestions"]
    assert titles(got) == ["idle box of payments 90", "idle box of payments 10"]
    assert got[0].badge == "saves USD 90.00 a month"
    assert titles(sections(client, other_team_user)["suggestions"]) == ["idle box of other 999"]


def test_a_provider_that_fails_on_the_database_is_left_out(client, requester, monkeypatch):
    from django.db import DatabaseError

    def broken(user):
        raise DatabaseError("down")

    entry = home._providers["access.requests"]
    monkeypatch.setitem(
        home._providers, "access.requests", home.HomeProvider(**{**entry.__dict__, "items": broken})
    )
    assert sections(client, requester)["requests"] == []


def test_an_unknown_section_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        home.HomeProvider(key="x", section="misc", items=lambda user: [])


def test_the_home_page_reads_a_bounded_number_of_queries(
    client, pending, manager, django_assert_max_num_queries
):
    client.force_login(manager)
    with django_assert_max_num_queries(45):
        assert client.get(reverse("home")).status_code == 200
