"""Commitment utilisation, coverage and savings on the FOCUS sample (its savings-plan rows),
computed by hand from the file in the test and compared with the page, the API and the
finance suggestion; scoped like the other cost pages.

The sample's four savings-plan rows are all ``Used`` with an effective cost of 0 (the
sample is anonymised), so three derived rows are appended for one savings plan: one more
``Used`` row with a cost, and two ``Unused`` rows, so its utilisation is not 0/0.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest

from costs import services
from costs.analytics.commitments import commitment_report, month_figures
from costs.analytics.models import Suggestion
from costs.analytics.rollups import resource_rollups_rebuild
from costs.analytics.suggestions import check_unused_commitments
from costs.models import CostDaily
from portal.core.actors import COSTS
from portal.core.money import money

from .conftest import SAMPLE, do_import

pytestmark = pytest.mark.django_db

PLAN_A = "arn:aws:savingsplans::365499461711:savingsplan/37985e61-4fcb-4023-9dd7-e524c80342a2"
PLAN_B = "arn:aws:savingsplans::961082193871:savingsplan/493f5705-db1c-4867-8e5c-ee9a66fa6d3f"
MONTH = dt.date(2024, 9, 1)


def _null(v: str) -> bool:
    return v.strip() in ("", "NULL")


def _derived_rows(header, template):
    """Three rows for plan A, built from one of its sample rows."""
    out = []
    for status, effective, listed, day in (
        ("Used", "1.5", "2.0", "2024-09-10 00:00:00"),
        ("Unused", "30.25", "30.25", "2024-09-11 00:00:00"),
        ("Unused", "0.25", "0.25", "2024-09-12 00:00:00"),
    ):
        row = dict(template)
        row.update(
            CommitmentDiscountStatus=status,
            EffectiveCost=effective,
            BilledCost="0",
            ListCost=listed,
            ChargePeriodStart=day,
            ChargePeriodEnd=day.replace(" 00:", " 01:"),
        )
        out.append([row[c] for c in header])
    return out


@pytest.fixture
def sample(tmp_path, org):
    with open(SAMPLE, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        rows = list(reader)
    template = next(r for r in rows if r["CommitmentDiscountId"] == PLAN_A)
    path = tmp_path / "focus_with_unused.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([r[c] for c in header] for r in rows)
        writer.writerows(_derived_rows(header, template))
    # plan A's account goes to payments; plan B's is shared 1:3 by payments and search
    services.rule_save(
        actor=COSTS,
        rule=None,
        data={
            "name": "acct payments",
            "sub_account_id": "18938484842",
            "method": "direct",
            "team": "payments",
        },
    )
    services.rule_save(
        actor=COSTS,
        rule=None,
        data={"name": "acct shared", "sub_account_id": "69918885631", "method": "fixed"},
        shares=[("payments", "1"), ("search", "3")],
    )
    run = do_import(path)
    assert run.status == "succeeded", run.errors
    resource_rollups_rebuild(
        periods=list(CostDaily.objects.values_list("billing_period_start", flat=True).distinct())
    )
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _by_hand(rows):
    """The definitions of docs/COST_ANALYTICS.md, straight from the file."""
    used, unused, savings = defaultdict(Decimal), defaultdict(Decimal), defaultdict(Decimal)
    for r in rows:
        cid = "" if _null(r["CommitmentDiscountId"]) else r["CommitmentDiscountId"]
        eff = Decimal(r["EffectiveCost"])
        od = eff if _null(r["ListCost"]) else Decimal(r["ListCost"])
        if cid and r["CommitmentDiscountStatus"] == "Used":
            used[cid] += eff
            savings[cid] += od - eff
        elif cid and r["CommitmentDiscountStatus"] == "Unused":
            unused[cid] += eff
    usage = [r for r in rows if r["ChargeCategory"] == "Usage"]
    eligible_services = {r["ServiceName"] for r in usage if r["PricingCategory"] == "Committed"}
    coverage = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for r in usage:
        if r["ServiceName"] not in eligible_services or r["CommitmentDiscountStatus"] == "Unused":
            continue
        if r["PricingCategory"] not in ("Standard", "Committed"):
            continue
        od = Decimal(r["EffectiveCost"]) if _null(r["ListCost"]) else Decimal(r["ListCost"])
        coverage[r["ServiceName"]][1] += od
        if r["PricingCategory"] == "Committed":
            coverage[r["ServiceName"]][0] += od
    return used, unused, savings, coverage


def test_utilisation_coverage_and_savings_match_the_hand_computation(sample):
    used, unused, savings, coverage = _by_hand(sample)
    figures = month_figures(month=MONTH)
    got = {c["id"]: c for c in figures["commitments"]}
    assert set(got) == {PLAN_A, PLAN_B}
    # plan A: used 1.5 of 1.5 + 30.5 -> 4.69 %
    assert used[PLAN_A] == Decimal("1.5") and unused[PLAN_A] == Decimal("30.5")
    assert got[PLAN_A]["utilisation_pct"] == Decimal("4.69")
    assert got[PLAN_A]["unused"] == Decimal("30.50")
    assert got[PLAN_A]["savings"] == money(savings[PLAN_A])
    # plan B: the sample's one used row with no amortised cost: no utilisation figure
    assert got[PLAN_B]["utilisation_pct"] is None
    assert got[PLAN_B]["savings"] == money(Decimal("0.0464")) == Decimal("0.05")
    # coverage per service at on-demand prices
    services_got = {r["service"]: r for r in figures["coverage_by_service"]}
    assert (
        set(services_got)
        == set(coverage)
        == {
            "Amazon Elastic Compute Cloud",
            "Amazon Elastic Container Service",
        }
    )
    for name, (committed, eligible) in coverage.items():
        row = services_got[name]
        assert row["committed"] == money(committed) and row["eligible"] == money(eligible), name
        assert row["coverage_pct"] == (committed / eligible * 100).quantize(Decimal("0.01")), name
    ec2 = coverage["Amazon Elastic Compute Cloud"]
    assert ec2[0] == Decimal("2.1426")  # 0.0464 + 0.0112 + 0.0850 + the derived 2.0
    total_committed = sum((v[0] for v in coverage.values()), Decimal(0))
    total_eligible = sum((v[1] for v in coverage.values()), Decimal(0))
    assert figures["coverage_pct"] == (total_committed / total_eligible * 100).quantize(
        Decimal("0.01")
    )
    assert figures["utilisation_pct"] == Decimal("4.69")


def test_shared_commitment_savings_are_split_the_way_costs_are(sample, org):
    figures = month_figures(month=MONTH)
    plan_b = next(c for c in figures["commitments"] if c["id"] == PLAN_B)
    # 0.0464 of savings, account shared 1:3 -> 0.0116 and 0.0348, rounded to sum to 0.05
    assert [(t["team"], t["savings"], t["share_pct"]) for t in plan_b["teams"]] == [
        ("payments", Decimal("0.01"), Decimal("25.00")),
        ("search", Decimal("0.04"), Decimal("75.00")),
    ]
    plan_a = next(c for c in figures["commitments"] if c["id"] == PLAN_A)
    assert [t["team"] for t in plan_a["teams"]] == ["payments"]
    # search's view lists only the commitment it benefits from
    search = month_figures(month=MONTH, team_id=org["search"].pk)
    assert [c["id"] for c in search["commitments"]] == [PLAN_B]
    assert [r["team"] for r in search["coverage_by_team"]] == ["search"]


def test_trend_by_month_and_unused_commitment_suggestion(sample, finance):
    report = commitment_report(viewer=finance, month=MONTH)
    assert [t["month"] for t in report["trend"]][-2:] == [dt.date(2024, 8, 1), MONTH]
    assert report["trend"][-1]["utilisation_pct"] == Decimal("4.69")
    assert report["trend"][-2]["coverage_pct"] is None  # no data in August
    candidates = check_unused_commitments(dt.date(2024, 9, 30))
    assert [(c.resource_id, c.team_id, c.saving, c.kind) for c in candidates] == [
        (PLAN_A, None, Decimal("30.50"), Suggestion.Kind.LOW_COMMITMENT_UTILISATION)
    ]
    assert candidates[0].evidence["utilisation_pct"] == "4.7"


def test_page_and_api_are_scoped(client, sample, finance, manager, org):
    from tests.conftest import make_user

    client.force_login(finance)
    page = client.get("/costs/commitments/", {"month": "2024-09"})
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="commit-utilisation">4.7%' in body and "chart-commitments" in body
    api = client.get("/api/v1/costs/commitments/", {"month": "2024-09"}).json()
    assert api["utilisation_pct"] == "4.69" and len(api["commitments"]) == 2
    assert len(api["trend"]) == 6
    client.force_login(manager)  # payments lead: its team, not the org, not search
    assert client.get("/costs/commitments/", {"month": "2024-09"}).status_code == 404
    assert client.get("/api/v1/costs/commitments/", {"month": "2024-09"}).status_code == 404
    mine = client.get("/api/v1/costs/commitments/", {"month": "2024-09", "team": "payments"})
    assert mine.status_code == 200 and mine.json()["team"] == "payments"
    search_lead = make_user("lead@search.example", team=org["search"], lead=True)
    client.force_login(search_lead)
    assert (
        client.get(
            "/api/v1/costs/commitments/", {"month": "2024-09", "team": "payments"}
        ).status_code
        == 404
    )
    assert (
        client.get("/costs/commitments/", {"month": "2024-09", "team": "payments"}).status_code
        == 404
    )
    assert client.get("/api/v1/costs/commitments/", {"month": "2024-13"}).status_code == 400
