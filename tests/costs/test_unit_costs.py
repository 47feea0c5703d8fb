"""Unit costs: a team defines business metrics, pushes daily values through the API, and the
dashboard shows the cost per unit next to the cost. Scoped: another team's lead gets 404."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from costs.analytics import selectors
from costs.analytics.models import BusinessMetric, MetricValue
from costs.models import CostDaily

from .analytics_data import standard_org_costs

pytestmark = pytest.mark.django_db


@pytest.fixture
def costs(tmp_path, org):
    return standard_org_costs(tmp_path, org, days=10)


def test_push_values_and_read_cost_per_unit(client, costs, manager, requester, org):
    client.force_login(manager)
    created = client.post(
        "/api/v1/metrics/",
        {
            "team": "payments",
            "slug": "payments-requests",
            "name": "Requests served",
            "unit": "request",
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    day1, day2 = costs - dt.timedelta(days=2), costs - dt.timedelta(days=1)
    client.force_login(requester)  # a member of the team pushes (e.g. with a personal token)
    pushed = client.post(
        "/api/v1/metrics/payments-requests/values",
        {"values": [{"day": str(day1), "value": "1000"}, {"day": str(day2), "value": "0"}]},
        content_type="application/json",
    )
    assert pushed.status_code == 200 and pushed.json() == {"stored": 2}
    # pushing a day again replaces it
    client.post(
        "/api/v1/metrics/payments-requests/values",
        {"values": [{"day": str(day1), "value": "2000"}]},
        content_type="application/json",
    )
    assert MetricValue.objects.get(day=day1).value == Decimal("2000")
    body = client.get(
        "/api/v1/metrics/payments-requests/values", {"start": str(day1), "end": str(day2)}
    ).json()
    cost1 = sum(
        CostDaily.objects.filter(team=org["payments"], day=day1).values_list(
            "billed_cost", flat=True
        ),
        Decimal(0),
    )
    first, second = body["series"]
    assert first["cost"] == str(cost1.quantize(Decimal("0.01")))
    assert Decimal(first["unit_cost"]) == (cost1 / 2000).quantize(Decimal("0.000001"))
    assert second["value"] == "0.000000" and second["unit_cost"] is None  # no division by zero
    assert AuditEvent.objects.filter(action="costs.metric_values_pushed").count() == 2
    # the dashboard draws cost per unit next to cost
    client.force_login(manager)
    page = client.get(f"/teams/payments/costs/?start={day1}&end={day2}").content.decode()
    assert 'data-chart="chart-unit-payments-requests"' in page and "Cost per request" in page


def test_bad_pushes_change_nothing_and_other_teams_get_404(client, costs, manager, org):
    from tests.conftest import make_user

    client.force_login(manager)
    client.post(
        "/api/v1/metrics/",
        {"team": "payments", "slug": "customers", "name": "Active customers", "unit": "customer"},
        content_type="application/json",
    )
    url = "/api/v1/metrics/customers/values"
    ok_day = str(costs - dt.timedelta(days=1))
    for bad in (
        {"values": []},
        {"values": [{"day": ok_day, "value": "5"}, {"day": "2026-13-01", "value": "5"}]},
        {"values": [{"day": ok_day, "value": "-1"}]},
        {"values": [{"day": str(costs + dt.timedelta(days=400)), "value": "5"}]},
    ):
        response = client.post(url, bad, content_type="application/json")
        assert response.status_code == 400, bad
    assert MetricValue.objects.count() == 0
    search_lead = make_user("lead@search.example", team=org["search"], lead=True)
    client.force_login(search_lead)
    assert (
        client.post(
            url, {"values": [{"day": ok_day, "value": "5"}]}, content_type="application/json"
        ).status_code
        == 404
    )
    assert client.get(url).status_code == 404
    assert client.get("/api/v1/metrics/").json() == []
    refused = client.post(
        "/api/v1/metrics/",
        {"team": "payments", "slug": "sneaky", "name": "x", "unit": "y"},
        content_type="application/json",
    )
    assert refused.status_code == 400 and not BusinessMetric.objects.filter(slug="sneaky").exists()
    assert MetricValue.objects.count() == 0
    assert selectors.data_as_of() == costs
