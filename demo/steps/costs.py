"""Demo step ``costs``: 12 months of FOCUS-shaped costs for the demo org's teams.

Modelled on the FOCUS 1.0 sample (FinOps Foundation, CC BY 4.0): its providers, services,
service categories, SKUs, regions, units and price ranges. Each team owns a handful of
resources that bill daily (with a weekly pattern and slow growth); most carry a ``team`` tag
that the demo rules attribute (some spelt ``Team``, to show that keys match in any case),
some carry none (they stay unallocated), and shared network and cluster costs are split by
shared-cost rules. The months are written as FOCUS CSV files and loaded through the real
importer, so the demo exercises the same code as production.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import tempfile
from decimal import Decimal

from accounts.models import Team
from costs import services
from costs.ingest.focus import COLUMNS
from costs.models import AttributionRule, ImportRun
from demo.tables import cloud_catalog
from portal.core.actors import DEMO

from .cost_analytics import seed_cost_analytics  # dashboards, budgets, anomalies, suggestions

# (provider, service, category, sku, unit, daily cost low, high, region) from the sample,
# in demo/data/cloud_catalog.csv: the team resources, then the two shared costs.
_CLOUD = cloud_catalog()
CATALOG = _CLOUD[""]
SHARED_NETWORK = _CLOUD["network"][0]
SHARED_CLUSTER = _CLOUD["cluster"][0]
BILLING_ACCOUNT = ("1234567890123", "Tollgate Demo Org")


def _resource_id(provider: str, service: str, account: str, name: str) -> str:
    if provider == "Microsoft":
        return (
            f"/subscriptions/{account}/resourceGroups/{name}/providers/Microsoft.Resources/{name}"
        )
    if provider == "Oracle":
        return f"ocid1.instance.oc1.iad.{name}"
    short = service.split()[-1].lower()
    return f"arn:aws:{short}:us-west-2:{account}:{name}"


def _month_start(months_back: int, today: dt.date) -> dt.date:
    y, m = today.year, today.month - months_back
    while m <= 0:
        y, m = y - 1, m + 12
    return dt.date(y, m, 1)


def _next_month(d: dt.date) -> dt.date:
    return (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _demo_rules(teams: list[Team]) -> None:
    if AttributionRule.objects.exists():
        return
    position = 10
    for team in teams:
        services.rule_save(
            actor=DEMO,
            rule=None,
            data={
                "name": f"Tagged team {team.slug}",
                "position": position,
                "tag_key": "team",
                "tag_value": team.slug,
                "method": "direct",
                "team": team.slug,
                "target_project": "",
            },
        )
        position += 10
    services.rule_save(
        actor=DEMO,
        rule=None,
        data={
            "name": "Shared network (even split)",
            "position": position,
            "tag_key": "shared",
            "tag_value": "network",
            "method": "even",
        },
        shares=[(t.slug, "1") for t in teams],
    )
    services.rule_save(
        actor=DEMO,
        rule=None,
        data={
            "name": "Shared Kubernetes cluster (by compute spend)",
            "position": position + 10,
            "resource_pattern": "arn:aws:*:cluster/shared-*",
            "method": "proportional",
            "proportional_category": "Compute",
        },
    )


def seed_costs(*, stdout, rng, months: int = 12, resources_per_team: int = 10) -> int:
    """Write the demo costs. Returns the number of cost lines loaded."""
    teams = [t for t in Team.objects.order_by("slug") if t.children.count() == 0] or list(
        Team.objects.order_by("slug")
    )
    if not teams:
        stdout.write("seed_costs: no teams, nothing to do\n")
        return 0
    if ImportRun.objects.filter(source__name="demo-cloud").exists():
        # A plain re-run of seed_demo changes nothing (the demo costs are already loaded).
        stdout.write("seed_costs: demo costs already present; skipped\n")
        return 0
    _demo_rules(teams)
    header = list(COLUMNS)
    accounts = {t.slug: str(rng.randrange(10**10, 10**11)) for t in teams}
    resources = []  # (team or None, catalog entry, resource id, tags, scale)
    for t_index, team in enumerate(teams):
        for i in range(resources_per_team):
            entry = rng.choice(CATALOG)
            rid = _resource_id(entry[0], entry[1], accounts[team.slug], f"{team.slug}-{i:02d}")
            roll = rng.random()
            if i == resources_per_team - 1 and t_index % 2 == 0:
                roll = 0.9  # every other team has one resource without a team tag
            if roll < 0.75:
                tags = {"team": team.slug, "environment": rng.choice(["prod", "dev"])}
            elif roll < 0.88:
                tags = {"Team": team.slug, "env": "prod"}  # key in another case: still matches
            elif roll < 0.95:
                tags = {"environment": "dev"}  # no team tag: unallocated
            else:
                tags = {}
            resources.append((team, entry, rid, tags, rng.uniform(0.6, 1.6)))
    shared_acct = str(rng.randrange(10**10, 10**11))
    resources.append(
        (
            None,
            SHARED_NETWORK,
            _resource_id("AWS", "vpc", shared_acct, "natgw-core"),
            {"shared": "network"},
            1.0,
        )
    )
    resources.append(
        (None, SHARED_CLUSTER, f"arn:aws:eks:us-west-2:{shared_acct}:cluster/shared-main", {}, 1.0)
    )
    today = dt.date.today()
    total_lines = 0
    with tempfile.TemporaryDirectory(prefix="tollgate-demo-") as tmp:
        for back in range(months - 1, -1, -1):
            start = _month_start(back, today)
            end = _next_month(start)
            last_day = min(end, today + dt.timedelta(days=1)) if back == 0 else end
            path = os.path.join(tmp, f"demo-{start:%Y-%m}.csv")
            growth = 1 + 0.03 * (months - back)
            with open(path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                day = start
                while day < last_day:
                    weekday = 0.8 if day.weekday() >= 5 else 1.0
                    for team, entry, rid, tags, scale in resources:
                        provider, service, category, sku, unit, low, high, region = entry
                        cost = Decimal(
                            str(round(rng.uniform(low, high) * scale * growth * weekday, 6))
                        )
                        qty = Decimal(str(round(float(cost) * rng.uniform(3, 12), 4)))
                        account = accounts[team.slug] if team else shared_acct
                        row = {
                            "BilledCost": cost,
                            "EffectiveCost": (cost * Decimal("0.92")).quantize(Decimal("1e-6")),
                            "ListCost": (cost * Decimal("1.08")).quantize(Decimal("1e-6")),
                            "ContractedCost": cost,
                            "ListUnitPrice": "",
                            "ContractedUnitPrice": "",
                            "PricingQuantity": qty,
                            "ConsumedQuantity": qty,
                            "BillingCurrency": "USD",
                            "BillingPeriodStart": f"{start} 00:00:00",
                            "BillingPeriodEnd": f"{end} 00:00:00",
                            "ChargePeriodStart": f"{day} 00:00:00",
                            "ChargePeriodEnd": f"{day + dt.timedelta(days=1)} 00:00:00",
                            "BillingAccountId": BILLING_ACCOUNT[0],
                            "BillingAccountName": BILLING_ACCOUNT[1],
                            "SubAccountId": account,
                            "SubAccountName": f"{team.name if team else 'Shared'} account",
                            "ChargeCategory": "Usage",
                            "ChargeClass": "",
                            "ChargeFrequency": "Usage-Based",
                            "ChargeDescription": f"{service} usage",
                            "ProviderName": provider,
                            "PublisherName": provider,
                            "InvoiceIssuerName": provider,
                            "ServiceName": service,
                            "ServiceCategory": category,
                            "RegionId": region,
                            "RegionName": region,
                            "AvailabilityZone": "",
                            "ResourceId": rid,
                            "ResourceName": rid.rsplit(":", 1)[-1].rsplit("/", 1)[-1],
                            "ResourceType": "",
                            "SkuId": sku,
                            "SkuPriceId": f"{sku}.DEMO",
                            "PricingCategory": "Standard",
                            "PricingUnit": unit,
                            "ConsumedUnit": unit,
                            "CommitmentDiscountId": "",
                            "CommitmentDiscountName": "",
                            "CommitmentDiscountCategory": "",
                            "CommitmentDiscountType": "",
                            "CommitmentDiscountStatus": "",
                            "Tags": json.dumps(tags) if tags else "NULL",
                        }
                        writer.writerow([row[c] for c in header])
                    day += dt.timedelta(days=1)
            run = services.import_run_create(
                actor=DEMO,
                source_name="demo-cloud",
                file_name=os.path.basename(path),
                file_path=path,
                origin=ImportRun.Origin.DEMO,
            )
            run = services.import_run_execute(run_id=run.pk, actor=DEMO)
            if run.status != ImportRun.Status.SUCCEEDED:
                raise RuntimeError(f"demo import failed: {run.errors[:3]}")
            total_lines += run.rows_loaded
            services.import_run_forget_file(run_id=run.pk)  # the temporary file is gone
    stdout.write(
        f"seed_costs: {total_lines:,} cost lines over {months} months for {len(teams)} teams\n"
    )
    seed_cost_analytics(stdout=stdout, rng=rng, months=months)
    return total_lines
