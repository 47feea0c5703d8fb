"""The team dashboard's narrow resource rollup and its cache (C3 performance): the page's
resource table, movers and commitment figures equal the resource rollup's; a cached page
is invalidated by the next import."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext, override_settings

from costs.analytics import selectors
from costs.analytics.models import CostResourceDaily, CostResourceTeamDaily

from .analytics_data import line, load_rows, standard_org_costs

pytestmark = pytest.mark.django_db
CENT = Decimal("0.01")


@pytest.fixture
def costs(tmp_path, org):
    today = standard_org_costs(tmp_path, org)
    rows = []
    for back in range(40, -1, -1):
        d = today - dt.timedelta(days=back)
        rows.append(
            line(
                d,
                "payments",
                Decimal("6"),
                resource="i-pay-ri",
                pricing="Committed",
                CommitmentDiscountStatus="Used" if back % 4 else "Unused",
            )
        )
    load_rows(tmp_path, rows, source="commitments")
    return today


def test_narrow_rollup_sums_equal_the_resource_rollup(org, costs):
    narrow = CostResourceTeamDaily.objects.aggregate(b=Sum("billed_cost"), e=Sum("effective_cost"))
    wide = CostResourceDaily.objects.filter(team__isnull=False).aggregate(
        b=Sum("billed_cost"), e=Sum("effective_cost")
    )
    assert narrow == wide
    assert narrow["b"] > 0
    per_resource = dict(
        CostResourceTeamDaily.objects.filter(team=org["payments"])
        .values("resource_id")
        .annotate(s=Sum("billed_cost"))
        .values_list("resource_id", "s")
    )
    assert set(per_resource) == {"i-pay-1", "i-pay-2", "db-pay", "i-pay-ri"}
    assert not CostResourceTeamDaily.objects.filter(resource_id="i-nobody").exists()


@pytest.mark.sqlite
def test_dashboard_commitment_and_resources_equal_the_resource_rollup(client, manager, org, costs):
    today = costs
    month = today.replace(day=1)
    client.force_login(manager)
    r = client.get(f"/teams/payments/costs/?start={month}&end={today}&compare=previous")
    assert r.status_code == 200
    ctx = r.context
    expected = selectors.commitment_stats(team_id=org["payments"].pk, start=month, end=today)
    assert ctx["commitment"] == expected
    assert expected["committed"] == (Decimal("6") * ((today - month).days + 1)).quantize(CENT)
    assert 0 < expected["utilisation_pct"] < 100
    wide = dict(
        CostResourceDaily.objects.filter(team=org["payments"], day__gte=month, day__lte=today)
        .values("resource_id")
        .annotate(s=Sum("billed_cost"))
        .values_list("resource_id", "s")
    )
    shown = {row["key"]: row["amount"] for row in ctx["by_resource"]}
    assert set(shown) == set(wide)
    # each resource within a cent of its exact amount, and together its rounded total
    assert all(abs(shown[k] - wide[k]) < CENT for k in wide)
    assert sum(shown.values()) == sum(wide.values()).quantize(CENT) == ctx["range_total"]
    amounts = [row["amount"] for row in ctx["by_resource"]]
    assert amounts == sorted(amounts, reverse=True)


def test_cached_dashboard_is_invalidated_by_an_import(client, manager, org, costs, tmp_path):
    today = costs
    month = today.replace(day=1)
    url = f"/teams/payments/costs/?start={month}&end={today}"
    client.force_login(manager)
    with override_settings(COST_DASHBOARD_CACHE_SECONDS=300):
        with CaptureQueriesContext(connection) as cold:
            first = client.get(url).context
        with CaptureQueriesContext(connection) as warm:
            again = client.get(url).context
        assert again["range_total"] == first["range_total"]
        assert again["by_resource"] == first["by_resource"]
        assert len(warm) == len(cold) - 4  # series, month totals, breakdowns, resources
        assert not any("costresourceteamdaily" in q["sql"] for q in warm.captured_queries)
        load_rows(tmp_path, [line(today, "payments", "100", resource="i-new")], source="late")
        after = client.get(url).context
    assert after["range_total"] == first["range_total"] + Decimal("100.00")
    assert after["summary"]["billed_cost"] == first["summary"]["billed_cost"] + Decimal("100.00")
    assert {row["key"]: row["amount"] for row in after["by_resource"]}["i-new"] == Decimal("100.00")


def test_dashboard_without_cache_reads_the_rollups_every_time(client, manager, costs):
    client.force_login(manager)
    with override_settings(COST_DASHBOARD_CACHE_SECONDS=0):
        with CaptureQueriesContext(connection) as one:
            client.get("/teams/payments/costs/")
        with CaptureQueriesContext(connection) as two:
            client.get("/teams/payments/costs/")
    assert len(one) == len(two)
    assert sum("costresourceteamdaily" in q["sql"] for q in two.captured_queries) == 1
