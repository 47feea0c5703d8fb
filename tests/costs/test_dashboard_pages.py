"""Team dashboard, drill-down, CSV export, org overview, showback and the API (C3, C4):
numbers equal totals computed straight from cost lines; scoping per persona; query caps."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import plotly.graph_objects as go
import pytest
from django.db.models import Sum

from accounts.models import PlatformRole
from audit.models import AuditEvent
from costs.analytics.models import Budget
from costs.models import CostLine

from ..conftest import TRICKY_DATES, make_user
from .analytics_data import standard_org_costs

pytestmark = pytest.mark.django_db
CENT = Decimal("0.01")


def line_total(team, start: dt.date, end: dt.date, field: str = "billed_cost") -> Decimal:
    """Independent of the rollups: straight from the lines, by charge day."""
    lo = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    hi = dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
    qs = CostLine.objects.filter(charge_period_start__gte=lo, charge_period_start__lt=hi)
    qs = qs.filter(team__isnull=True) if team is None else qs.filter(team=team)
    return (qs.aggregate(s=Sum(field))["s"] or Decimal(0)).quantize(CENT)


@pytest.fixture
def costs(request, clock, tmp_path, org):
    """The org's costs around today; with ``@ON_TRICKY_DATES``, around each of those dates."""
    if getattr(request, "param", None) is not None:
        clock.move_to(request.param)
    return standard_org_costs(tmp_path, org)


ON_TRICKY_DATES = pytest.mark.parametrize(
    "costs", list(TRICKY_DATES.values()), ids=list(TRICKY_DATES), indirect=True
)


@ON_TRICKY_DATES
def test_dashboard_numbers_equal_line_totals(client, manager, org, costs):
    today = costs
    month = today.replace(day=1)
    last_month = (month - dt.timedelta(days=1)).replace(day=1)
    client.force_login(manager)
    r = client.get(f"/teams/payments/costs/?start={month}&end={today}&compare=previous")
    assert r.status_code == 200
    ctx = r.context
    assert ctx["summary"]["billed_cost"] == line_total(org["payments"], month, today)
    assert ctx["summary"]["effective_cost"] == line_total(
        org["payments"], month, today, "effective_cost"
    )
    assert ctx["last_month_total"] == line_total(
        org["payments"], last_month, month - dt.timedelta(days=1)
    )
    assert ctx["range_total"] == line_total(org["payments"], month, today)
    by_service = {row["key"]: row["amount"] for row in ctx["by_service"]}
    assert set(by_service) == {"Amazon Elastic Compute Cloud", "Amazon Relational Database Service"}
    assert sum(by_service.values()) == ctx["range_total"]
    by_resource = {row["key"]: row["amount"] for row in ctx["by_resource"]}
    assert set(by_resource) == {"i-pay-1", "i-pay-2", "db-pay"}
    assert sum(by_resource.values()) == ctx["range_total"]
    assert f'id="kpi-mtd">{ctx["summary"]["billed_cost"]:,.2f}' in r.content.decode()
    for fig in ctx["figures"].values():
        go.Figure(fig)  # every figure is a valid Plotly figure
    assert len(ctx["figures"]["chart-daily"]["data"][0]["x"]) == (today - month).days + 1


@ON_TRICKY_DATES
@pytest.mark.sqlite
def test_api_summary_equals_line_totals(client, requester, finance, org, costs):
    today = costs
    month = today.replace(day=1)
    client.force_login(requester)
    r = client.get(f"/api/v1/teams/payments/costs/summary?month={month:%Y-%m}")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {  # the org's unallocated cost is not a team member's to see
        "team",
        "month",
        "currency",
        "billed_cost",
        "effective_cost",
        "forecast",
        "budget",
    }
    assert (
        body["team"] == "payments"
        and body["month"] == f"{month:%Y-%m}"
        and body["currency"] == "USD"
    )
    assert Decimal(body["billed_cost"]) == line_total(org["payments"], month, today)
    assert Decimal(body["effective_cost"]) == line_total(
        org["payments"], month, today, "effective_cost"
    )
    assert body["budget"] is None
    assert Decimal(body["forecast"]) >= Decimal(body["billed_cost"])
    last_month = (month - dt.timedelta(days=1)).replace(day=1)
    r = client.get(f"/api/v1/teams/payments/costs/summary?month={last_month:%Y-%m}")
    total = line_total(org["payments"], last_month, month - dt.timedelta(days=1))
    assert Decimal(r.json()["billed_cost"]) == total and Decimal(r.json()["forecast"]) == total
    client.force_login(finance)
    r = client.get(f"/api/v1/teams/payments/costs/summary?month={month:%Y-%m}")
    assert {k: v for k, v in r.json().items() if k != "unallocated"} == body
    assert Decimal(r.json()["unallocated"]) == line_total(None, month, today)


def test_api_summary_bad_month_and_other_team(client, requester, costs):
    client.force_login(requester)
    assert client.get("/api/v1/teams/payments/costs/summary?month=2024-13").status_code == 400
    assert client.get("/api/v1/teams/search/costs/summary").status_code == 404
    assert client.get("/api/v1/teams/nope/costs/summary").status_code == 404


@pytest.mark.parametrize(
    ("who", "slug", "status"),
    [
        ("requester", "payments", 200),
        ("requester", "search", 404),
        ("other_team_user", "payments", 404),
        ("manager", "payments", 200),
        ("manager", "other", 404),
        ("finance", "other", 200),
        ("admin", "search", 200),
        ("platform_lead", "search", 200),
        ("platform_lead", "payments", 200),
        ("platform_lead", "other", 404),
    ],
)
def test_dashboard_scoping(client, personas, org, costs, who, slug, status):
    personas["platform_lead"] = make_user("lead@example.com", team=org["platform"], lead=True)
    client.force_login(personas[who])
    assert client.get(f"/teams/{slug}/costs/").status_code == status
    assert client.get(f"/teams/{slug}/costs/drill/?dim=service&value=x").status_code == status
    assert client.get(f"/api/v1/teams/{slug}/costs/summary").status_code == status


def test_anonymous_is_sent_to_sign_in(client, costs):
    r = client.get("/teams/payments/costs/")
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]
    assert client.get("/api/v1/teams/payments/costs/summary").status_code in (401, 403)


@ON_TRICKY_DATES
def test_csv_export_of_every_table(client, manager, org, costs):
    client.force_login(manager)
    for table in (
        "service",
        "category",
        "region",
        "resource",
        "movers",
        "daily",
        "monthly",
        "seats",
    ):
        r = client.get(f"/teams/payments/costs/?export={table}")
        assert r.status_code == 200, table
        assert r["Content-Type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.content.decode())))
        assert len(rows) >= 1
    r = client.get("/teams/payments/costs/?export=service")
    rows = list(csv.DictReader(io.StringIO(r.content.decode())))
    month = costs.replace(day=1)
    assert sum(Decimal(x["amount"]) for x in rows) == line_total(org["payments"], month, costs)
    assert client.get("/teams/payments/costs/?export=nope").status_code == 404


def test_drilldown_lists_resources_behind_a_bar(client, manager, org, costs):
    client.force_login(manager)
    month = costs.replace(day=1)
    r = client.get(
        f"/teams/payments/costs/drill/?dim=service&value=Amazon+Elastic+Compute+Cloud&start={month}&end={costs}"
    )
    assert r.status_code == 200
    assert {row["resource_id"] for row in r.context["rows"]} == {"i-pay-1", "i-pay-2"}
    lo = dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)
    expected = CostLine.objects.filter(
        team=org["payments"],
        service_name="Amazon Elastic Compute Cloud",
        charge_period_start__gte=lo,
    ).aggregate(s=Sum("billed_cost"))["s"]
    assert r.context["total"] == expected.quantize(CENT)
    assert client.get("/teams/payments/costs/drill/?dim=bogus&value=x").status_code == 400


def test_dashboard_query_count_is_bounded(client, manager, costs, django_assert_max_num_queries):
    client.force_login(manager)
    client.get("/teams/payments/costs/")
    with django_assert_max_num_queries(30):
        assert client.get("/teams/payments/costs/?compare=year").status_code == 200


@ON_TRICKY_DATES
def test_overview_and_showback(client, finance, org, costs, django_assert_max_num_queries):
    client.force_login(finance)
    month = costs.replace(day=1)
    with django_assert_max_num_queries(20):
        r = client.get("/costs/overview/")
    assert r.status_code == 200
    ranked = {row["team"].slug: row["amount"] for row in r.context["ranked"]}
    assert ranked == {
        slug: line_total(org[slug], month, costs) for slug in ("payments", "search", "other")
    }
    assert r.context["unallocated"] == line_total(None, month, costs)
    r = client.get(f"/costs/showback/?month={month:%Y-%m}&format=csv")
    rows = {row["team"]: row for row in csv.DictReader(io.StringIO(r.content.decode()))}
    assert Decimal(rows["payments"]["billed"]) == line_total(org["payments"], month, costs)
    assert Decimal(rows["(unallocated)"]["billed"]) == line_total(None, month, costs)
    with django_assert_max_num_queries(20):
        assert client.get(f"/costs/showback/?month={month:%Y-%m}").status_code == 200


@pytest.mark.parametrize("who", ["requester", "manager", "other_team_user"])
def test_org_pages_are_404_for_team_people(client, personas, costs, who):
    client.force_login(personas[who])
    for url in ("/costs/overview/", "/costs/showback/", "/costs/budgets/"):
        assert client.get(url).status_code == 404


def test_finance_sets_a_budget_others_cannot(client, finance, manager, org, costs):
    month = costs.replace(day=1)
    client.force_login(manager)
    before = AuditEvent.objects.count()
    r = client.post(
        "/costs/budgets/", {"team": "payments", "month": f"{month:%Y-%m}", "amount": "500"}
    )
    assert r.status_code == 404
    assert Budget.objects.count() == 0 and AuditEvent.objects.count() == before
    client.force_login(finance)
    r = client.post(
        "/costs/budgets/",
        {"team": "payments", "month": f"{month:%Y-%m}", "amount": "500", "thresholds": "50,90"},
    )
    assert r.status_code == 302
    b = Budget.objects.get()
    assert (b.team, b.month, b.amount, b.thresholds) == (
        org["payments"],
        month,
        Decimal("500.00"),
        [50, 90],
    )
    assert AuditEvent.objects.filter(action="costs.budget_set").count() == 1
    r = client.post("/costs/budgets/", {"team": "payments", "month": "bad", "amount": "500"})
    assert r.status_code == 400 and Budget.objects.count() == 1
    client.force_login(manager)
    r = client.get("/teams/payments/costs/")
    assert r.context["summary"]["budget"] == Decimal("500.00")
    assert r.context["burn_pct"] == r.context["summary"]["billed_cost"] / Decimal("500") * 100
    client.force_login(make_user("fin2@example.com", roles=[PlatformRole.FINANCE]))
    r = client.get(f"/api/v1/teams/payments/costs/summary?month={month:%Y-%m}")
    assert r.json()["budget"] == "500.00"
