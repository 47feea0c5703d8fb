"""Demo data for cost analytics, called at the end of :func:`demo.steps.costs.seed_costs`.

Adds a small second FOCUS source (``demo-analytics``, the last ~75 days) loaded through the
real importer, with what the dashboards and checks should show on first start: an idle
instance, an orphaned volume, a previous-generation instance, untagged spend on a sandbox
account (attributed by an account rule), a savings plan that is two-thirds used, a cost
spike and a level shift (anomalies). Then it builds the resource rollups, sets budgets
(one team over budget) and runs anomalies, suggestions and budget alerts. The unused paid
seats come from the usage demo's last-use data (``demo.steps.usage``, seeded before this step).
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import tempfile
from decimal import Decimal

from django.db.models import Sum

from accounts.models import Team
from costs import services as cost_services
from costs.analytics import services, suggestions
from costs.analytics.models import Suggestion
from costs.analytics.rollups import resource_rollups_rebuild
from costs.ingest.focus import COLUMNS, focus_row
from costs.models import AttributionRule, CostDaily, ImportRun
from portal.core.actors import DEMO

DAYS = 75
SANDBOX_ACCOUNT = "998877665544"


def _row(day: dt.date, **values) -> dict:
    """A FOCUS row of the demo's analytics account."""
    return focus_row(
        day,
        BillingAccountName="Tollgate Demo Org",
        SubAccountName="Analytics demo account",
        **values,
    )


def _resources(today: dt.date, rng) -> list:
    """(name, per-day function) pairs; each function returns a row dict for a day or None."""
    ec2 = {"ServiceName": "Amazon Elastic Compute Cloud", "ServiceCategory": "Compute"}
    spike_day = today - dt.timedelta(days=3)
    shift_from = today - dt.timedelta(days=6)
    idle_from = today - dt.timedelta(days=18)

    def idle(day):
        qty = Decimal("24") if day < idle_from else Decimal("0.2")
        return _row(
            day,
            cost=round(38 + rng.uniform(-2, 2), 4),
            tags={"team": "payments"},
            ResourceId="arn:aws:ec2:us-east-1:112233445566:instance/i-payments-reports",
            ResourceName="payments-reports",
            ResourceType="m5.xlarge",
            SkuId="M5XL-OD",
            ConsumedQuantity=qty,
            PricingQuantity=24,
            ConsumedUnit="Hrs",
            PricingUnit="Hrs",
            **ec2,
        )

    def orphan(day):
        return _row(
            day,
            cost=round(6 + rng.uniform(-0.2, 0.2), 4),
            tags={"team": "payments"},
            ResourceId="arn:aws:ec2:us-east-1:112233445566:volume/vol-payments-old",
            ResourceName="vol-payments-old",
            ResourceType="gp2",
            SkuId="EBS-GP2",
            ServiceName="Amazon Elastic Compute Cloud",
            ServiceCategory="Storage",
            ConsumedQuantity=0,
            PricingQuantity=500,
            ConsumedUnit="GB-Mo",
            PricingUnit="GB-Mo",
        )

    def oldgen(day):
        return _row(
            day,
            cost=round(30 + rng.uniform(-3, 3), 4),
            tags={"team": "payments"},
            ResourceId="arn:aws:ec2:us-east-1:112233445566:instance/i-payments-ledger",
            ResourceName="payments-ledger",
            ResourceType="m4.2xlarge",
            SkuId="M42XL-OD",
            ConsumedQuantity=24,
            PricingQuantity=24,
            ConsumedUnit="Hrs",
            PricingUnit="Hrs",
            **ec2,
        )

    def batch(day):  # normal ~20/day, a spike three days ago
        cost = 20 + rng.uniform(-3, 3) + (420 if day == spike_day else 0)
        return _row(
            day,
            cost=round(cost, 4),
            tags={"team": "payments"},
            ResourceId="arn:aws:ec2:us-east-1:112233445566:instance/i-payments-batch",
            ResourceName="payments-batch",
            ResourceType="c6i.4xlarge",
            SkuId="C6I4XL-OD",
            ConsumedQuantity=24,
            PricingQuantity=24,
            ConsumedUnit="Hrs",
            PricingUnit="Hrs",
            **ec2,
        )

    def sandbox(day):  # no tags at all: the account rule attributes it
        return _row(
            day,
            cost=round(14 + rng.uniform(-2, 2), 4),
            tags=None,
            account=SANDBOX_ACCOUNT,
            ResourceId=f"arn:aws:lambda:us-east-1:{SANDBOX_ACCOUNT}:function:sandbox-etl",
            ResourceName="sandbox-etl",
            ServiceName="AWS Lambda",
            ServiceCategory="Compute",
            ConsumedQuantity=90000,
            PricingQuantity=90000,
            ConsumedUnit="Lambda-GB-Second",
            PricingUnit="Lambda-GB-Second",
        )

    def plan_used(day):
        return _row(
            day,
            cost=0,
            effective=Decimal("50"),
            pricing="Committed",
            tags={"team": "payments"},
            ResourceId="arn:aws:ec2:us-east-1:112233445566:instance/i-payments-api",
            ResourceName="payments-api",
            ResourceType="m6i.2xlarge",
            SkuId="M6I2XL-SP",
            CommitmentDiscountId="arn:aws:savingsplans::112233445566:savingsplan/sp-demo",
            CommitmentDiscountName="sp-demo",
            CommitmentDiscountCategory="Spend",
            CommitmentDiscountType="Compute Savings Plan",
            CommitmentDiscountStatus="Used",
            ConsumedQuantity=24,
            PricingQuantity=24,
            ConsumedUnit="Hrs",
            PricingUnit="Hrs",
            **ec2,
        )

    def plan_unused(day):
        return _row(
            day,
            cost=25,
            effective=Decimal("25"),
            pricing="Committed",
            tags={"team": "payments"},
            ResourceId="arn:aws:savingsplans::112233445566:savingsplan/sp-demo",
            ResourceName="sp-demo",
            SkuId="SP-COMPUTE",
            CommitmentDiscountId="arn:aws:savingsplans::112233445566:savingsplan/sp-demo",
            CommitmentDiscountName="sp-demo",
            CommitmentDiscountCategory="Spend",
            CommitmentDiscountType="Compute Savings Plan",
            CommitmentDiscountStatus="Unused",
            ServiceName="Savings Plans for AWS Compute usage",
            ServiceCategory="Compute",
        )

    def search_db(day):  # a level shift six days ago
        cost = 60 + rng.uniform(-4, 4) + (160 if day >= shift_from else 0)
        return _row(
            day,
            cost=round(cost, 4),
            tags={"team": "search"},
            region="us-east-2",
            ResourceId="arn:aws:rds:us-east-2:223344556677:db/search-index-db",
            ResourceName="search-index-db",
            ResourceType="db.r6g.2xlarge",
            SkuId="RDS-R6G2XL",
            ServiceName="Amazon Relational Database Service",
            ServiceCategory="Databases",
            ConsumedQuantity=24,
            PricingQuantity=24,
            ConsumedUnit="Hrs",
            PricingUnit="Hrs",
        )

    return [idle, orphan, oldgen, batch, sandbox, plan_used, plan_unused, search_db]


def _sandbox_rule(team: Team) -> None:
    name = "Payments sandbox account (untagged)"
    if AttributionRule.objects.filter(name=name).exists():
        return
    position = (
        AttributionRule.objects.order_by("-position").values_list("position", flat=True).first()
        or 0
    ) + 10
    cost_services.rule_save(
        actor=DEMO,
        rule=None,
        data={
            "name": name,
            "position": position,
            "sub_account_id": SANDBOX_ACCOUNT,
            "method": "direct",
            "team": team.slug,
            "target_project": "",
        },
    )


def seed_cost_analytics(*, stdout, rng, months: int = 12) -> None:
    if months < 3:  # the checks and baselines need ~75 days of history
        stdout.write("seed_cost_analytics: fewer than 3 months seeded, skipped\n")
        return
    teams = {t.slug: t for t in Team.objects.filter(slug__in=["payments", "search"])}
    if len(teams) < 2:
        stdout.write("seed_cost_analytics: demo teams missing, skipped\n")
        return
    today = dt.date.today()
    _sandbox_rule(teams["payments"])
    header = list(COLUMNS)
    with tempfile.TemporaryDirectory(prefix="tollgate-analytics-") as tmp:
        path = os.path.join(tmp, "demo-analytics.csv")
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for back in range(DAYS, -1, -1):
                day = today - dt.timedelta(days=back)
                for make in _resources(today, rng):
                    row = make(day)
                    writer.writerow([row.get(c, "") for c in header])
        run = cost_services.import_run_create(
            actor=DEMO,
            source_name="demo-analytics",
            file_name="demo-analytics.csv",
            file_path=path,
            origin=ImportRun.Origin.DEMO,
        )
        run = cost_services.import_run_execute(run_id=run.pk, actor=DEMO)
        if run.status != ImportRun.Status.SUCCEEDED:
            raise RuntimeError(f"demo analytics import failed: {run.errors[:3]}")
        cost_services.import_run_forget_file(run_id=run.pk)  # the temporary file is gone
    periods = sorted(
        set(CostDaily.objects.values_list("billing_period_start", flat=True).distinct())
    )
    rows = resource_rollups_rebuild(periods=periods)
    # budgets from last month's spend: payments runs over, the others have headroom
    month = today.replace(day=1)
    last_month = (month - dt.timedelta(days=1)).replace(day=1)
    spend = {
        r["team_id"]: r["s"]
        for r in CostDaily.objects.filter(day__gte=last_month, day__lt=month, team__isnull=False)
        .values("team_id")
        .annotate(s=Sum("billed_cost"))
    }
    for team in Team.objects.filter(pk__in=spend).order_by("slug"):
        factor = (
            Decimal("0.85")
            if team.slug == "payments"
            else Decimal(str(round(rng.uniform(1.05, 1.4), 2)))
        )
        amount = (spend[team.pk] * factor).quantize(Decimal("100"))
        services.budget_set(actor=DEMO, team=team, month=last_month, amount=amount)
    found = services.anomalies_detect(days=45)
    counts = suggestions.suggestions_run()
    # last-use data and its coverage come from the usage demo (seeded before this step)
    seats = Suggestion.objects.filter(kind=Suggestion.Kind.UNUSED_SEAT).count()
    alerts = services.budget_alerts_evaluate(notify=False)
    stdout.write(
        f"seed_cost_analytics: {run.rows_loaded} extra lines, {rows} resource-rollup rows, "
        f"{len(spend)} budgets, {len(alerts)} budget alerts, {len(found)} anomalies, "
        f"{counts['created']} suggestions ({seats} unused paid seats)\n"
    )
