"""The org's unallocated cost (billed cost that reaches no team) is an org-wide figure: the team
dashboard, its CSV exports and the team summary API show it only to the org-wide roles
(platform admins, security, auditors, finance), never to people who see only their team."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.humanize.templatetags.humanize import intcomma

from .analytics_data import standard_org_costs
from .test_dashboard_pages import line_total

pytestmark = pytest.mark.django_db
TEAM_ONLY = ["requester", "manager"]
ORG_WIDE = ["finance", "admin", "security", "auditor"]
EXPORTS = ("service", "category", "region", "resource", "movers", "daily", "monthly", "seats")


@pytest.fixture
def costs(clock, tmp_path, org):
    return standard_org_costs(tmp_path, org, days=40)


def _unallocated_mtd(today: dt.date) -> Decimal:
    return line_total(None, today.replace(day=1), today)


@pytest.mark.parametrize("who", TEAM_ONLY)
def test_team_people_do_not_see_the_org_unallocated_cost(client, personas, costs, who):
    unallocated = _unallocated_mtd(costs)
    assert unallocated > 0
    client.force_login(personas["finance"])  # fills the dashboard cache shared by all viewers
    assert client.get("/teams/payments/costs/").status_code == 200
    client.force_login(personas[who])
    r = client.get("/teams/payments/costs/")
    assert r.status_code == 200
    assert "unallocated" not in r.context["summary"]
    page = r.content.decode()
    assert 'id="kpi-unallocated"' not in page
    assert "Org unallocated" not in page
    body = client.get("/api/v1/teams/payments/costs/summary").json()
    assert body["team"] == "payments"
    assert "unallocated" not in body
    for table in EXPORTS:
        export = client.get(f"/teams/payments/costs/?export={table}")
        assert export.status_code == 200, table
        assert "unallocated" not in export.content.decode().lower(), table


@pytest.mark.parametrize("who", ORG_WIDE)
def test_org_wide_roles_see_the_org_unallocated_cost(client, personas, costs, who):
    unallocated = _unallocated_mtd(costs)
    client.force_login(personas[who])
    r = client.get("/teams/payments/costs/")
    assert r.status_code == 200
    assert r.context["summary"]["unallocated"] == unallocated
    assert f'id="kpi-unallocated">{intcomma(f"{unallocated:.2f}")}<' in r.content.decode()
    body = client.get("/api/v1/teams/payments/costs/summary").json()
    assert Decimal(body["unallocated"]) == unallocated
