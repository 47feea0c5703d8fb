"""Every breakdown sums to the total shown beside it (property-based): random amounts with
sub-cent digits and credits, random shared-cost splits, then every dashboard table, CSV
export, drill-down, org overview, showback and coverage figure is checked against its total.

Each example adds its own billing source; the data grow over the examples, and the property
holds for whatever data there are."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from itertools import count

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from costs import selectors as cost_selectors
from costs import services
from costs.analytics import selectors
from portal.core.actors import COSTS

from .analytics_data import line, load_rows, tag_rules

pytestmark = pytest.mark.django_db

TEAMS = ("payments", "search", "other")
SERVICES = ("Amazon Elastic Compute Cloud", "Amazon Relational Database Service", "Amazon S3")
amount = st.decimals(min_value=-5, max_value=250, places=4, allow_nan=False)
cost_line = st.tuples(
    st.integers(min_value=0, max_value=45),  # days back from today
    st.sampled_from((*TEAMS, None, "shared")),
    amount,
    st.sampled_from(SERVICES),
    st.sampled_from(("us-east-1", "eu-west-1", "")),
    st.integers(min_value=1, max_value=6),  # resource number
)
weights = st.lists(st.integers(min_value=1, max_value=9), min_size=3, max_size=3)


def _sums(rows, field="amount"):
    return sum((r[field] for r in rows if r[field] is not None), Decimal(0))


def _csv_sum(response, column):
    return sum(
        (Decimal(r[column]) for r in csv.DictReader(io.StringIO(response.content.decode()))),
        Decimal(0),
    )


@pytest.fixture
def example_numbers():
    return count()


@settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking a DB example takes minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(cost_line, min_size=1, max_size=40), split=weights)
def test_every_breakdown_sums_to_its_total(
    lines, split, tmp_path, client, org, finance, example_numbers
):
    n = next(example_numbers)
    if n == 0:
        tag_rules(*(org[slug] for slug in TEAMS))
    shared_key = f"split-{n}"
    services.rule_save(
        actor=COSTS,
        rule=None,
        data={"name": shared_key, "tag_key": "shared", "tag_value": shared_key, "method": "fixed"},
        shares=[(slug, str(w)) for slug, w in zip(TEAMS, split, strict=True)],
    )
    today = dt.date.today()
    rows = []
    for back, team, cost, service, region, resource in lines:
        row = line(
            today - dt.timedelta(days=back),
            team if team in TEAMS else None,
            cost,
            service=service,
            region=region,
            resource=f"r-{resource}",
        )
        if team == "shared":
            row["Tags"] = json.dumps({"shared": shared_key})
        rows.append(row)
    load_rows(tmp_path, rows, source=f"prop-{n}")

    month = today.replace(day=1)
    start = min(month, today - dt.timedelta(days=20))
    for slug in TEAMS:
        dash = selectors.team_dashboard(viewer=finance, slug=slug, start=start, end=today)
        total, prev_total = dash.range_total, dash.prev_total
        for table in ("by_service", "by_category", "by_region", "resources_all"):
            assert _sums(dash.table(table)) == total, (slug, table)
            assert _sums(dash.table(table), "prev") == prev_total, (slug, table)
            assert _sums(dash.table(table), "delta") == total - prev_total, (slug, table)
        assert sum(v for _, v in dash.daily) == total
        assert sum(v for _, v in dash.compare_daily) == prev_total
        assert dash.summary["billed_cost"] == dash.monthly[-1]["billed"]
        for row in dash.by_service:
            drill = selectors.team_drilldown(
                viewer=finance, slug=slug, dim="service", value=row["key"], start=start, end=today
            )
            # the drill-down is a breakdown of its own total (directly attributed resources)
            assert _sums(drill["rows"]) == drill["total"]

    client.force_login(finance)
    base = f"/teams/payments/costs/?start={start}&end={today}"
    dash = selectors.team_dashboard(viewer=finance, slug="payments", start=start, end=today)
    for table, column in (
        ("service", "amount"),
        ("category", "amount"),
        ("region", "amount"),
        ("resource", "amount"),
        ("daily", "billed_cost"),
    ):
        assert _csv_sum(client.get(f"{base}&export={table}"), column) == dash.range_total

    overview = selectors.org_overview(viewer=finance, month=month)
    assert _sums(overview["ranked"]) + overview["unallocated"] == overview["total"]
    report = selectors.showback(viewer=finance, month=month)
    for column in ("direct", "shared", "billed", "effective", "list", "seats"):
        parts = [r[column] for r in report["rows"]]
        if report["unallocated"]:
            parts.append(report["unallocated"][column])
        assert sum(parts, Decimal(0)) == report["totals"][column], column
    for period in cost_selectors.allocation_coverage(viewer=finance):
        assert period["attributed"] + period["unallocated"] == period["total"]
