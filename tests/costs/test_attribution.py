from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from costs import services
from costs.attribution import (
    DIRECT,
    SHARED,
    UNALLOCATED,
    Attributor,
    LineAttrs,
    RuleSpec,
    split_amount,
)
from costs.models import Allocation, CostDaily, CostLine, ReattributionRun
from portal.core.actors import COSTS
from tests.queue_helpers import enqueued_task_names

from .conftest import do_import, read_sample, write_csv


def rule(id, **kw):
    kw.setdefault("team_id", id * 100)
    return RuleSpec(id=id, name=f"r{id}", **kw)


# --- pure engine -------------------------------------------------------------------------


@pytest.mark.sqlite
def test_first_matching_rule_wins():
    a = Attributor([rule(1, tag_key="team", tag_value="pay*"), rule(2, service_name="AWS Lambda")])
    line = LineAttrs(service_name="AWS Lambda", tags={"team": "payments"})
    assert a.attribute(line).rule_id == 1
    assert a.attribute(LineAttrs(service_name="aws lambda")).rule_id == 2
    assert a.attribute(LineAttrs(service_name="Amazon S3")).allocation == UNALLOCATED


@pytest.mark.sqlite
def test_tag_keys_match_case_insensitively_and_missing_equals_empty():
    by_key = Attributor([rule(1, tag_key="Environment", tag_value="prod")])
    assert by_key.attribute(LineAttrs(tags={"environment": "PROD"})).rule_id == 1
    assert by_key.attribute(LineAttrs(tags={" ENVIRONMENT ": "prod"})).rule_id == 1
    assert by_key.attribute(LineAttrs(tags={"environment": "dev"})).allocation == UNALLOCATED
    untagged = Attributor([rule(1, tag_key="team", tag_value="")])
    assert untagged.attribute(LineAttrs(tags={})).rule_id == 1
    assert untagged.attribute(LineAttrs(tags={"Team": ""})).rule_id == 1
    assert untagged.attribute(LineAttrs(tags={"Team": None})).rule_id == 1
    assert untagged.attribute(LineAttrs(tags={"team": "x"})).allocation == UNALLOCATED


def test_account_resource_region_conditions():
    a = Attributor(
        [
            rule(1, sub_account_id="111, 222", region="US-EAST-1"),
            rule(2, resource_pattern="arn:aws:s3:::logs-*"),
            rule(3, resource_pattern=r"i-0[0-9a-f]{3}$", resource_pattern_kind="regex"),
            rule(4, billing_account_id="acct-9"),
        ]
    )
    assert a.attribute(LineAttrs(sub_account_id="222", region_id="us-east-1")).rule_id == 1
    assert a.attribute(LineAttrs(sub_account_id="222", region_id="eu-west-1")).rule_id is None
    assert a.attribute(LineAttrs(resource_id="arn:aws:s3:::logs-2024")).rule_id == 2
    assert a.attribute(LineAttrs(resource_id="xarn:aws:s3:::logs-2024")).rule_id is None
    assert a.attribute(LineAttrs(resource_id="instance/i-0abc")).rule_id == 3
    assert a.attribute(LineAttrs(billing_account_id="acct-9")).rule_id == 4


@pytest.mark.sqlite
def test_split_remainder_goes_to_the_largest_share_to_the_cent():
    assert split_amount(
        Decimal("100.00"), [("a", Decimal(1)), ("b", Decimal(1)), ("c", Decimal(1))]
    ) == {
        "a": Decimal("33.34"),
        "b": Decimal("33.33"),
        "c": Decimal("33.33"),
    }
    parts = split_amount(
        Decimal("10.00"), [("a", Decimal(1)), ("b", Decimal(2)), ("c", Decimal(4))]
    )
    assert parts == {"a": Decimal("1.42"), "b": Decimal("2.85"), "c": Decimal("5.73")}
    credit = split_amount(Decimal("-0.05"), [("a", Decimal(1)), ("b", Decimal(1))])
    assert credit == {"a": Decimal("-0.03"), "b": Decimal("-0.02")}
    fine = split_amount(Decimal("0.000000800000"), [("a", Decimal(1)), ("b", Decimal(2))])
    assert fine == {"a": Decimal("2E-7"), "b": Decimal("6E-7")}


@given(
    amount=st.decimals(min_value=-(10**6), max_value=10**6, places=12, allow_nan=False),
    weights=st.lists(
        st.decimals(min_value="0.01", max_value=1000, places=2), min_size=1, max_size=8
    ),
)
def test_split_always_sums_exactly(amount, weights):
    parts = split_amount(amount, list(enumerate(weights)))
    assert sum(parts.values(), Decimal(0)) == amount
    assert set(parts) == set(range(len(weights)))


# --- with the database -------------------------------------------------------------------


@pytest.fixture
def teams(org):
    return org


def _invariant(period: str, expected: Decimal):
    daily = CostDaily.objects.filter(billing_period_start=period)
    attributed = daily.filter(team__isnull=False).aggregate(s=Sum("billed_cost"))["s"] or Decimal(0)
    unallocated = daily.filter(team__isnull=True).aggregate(s=Sum("billed_cost"))["s"] or Decimal(0)
    assert attributed + unallocated == expected


@pytest.mark.django_db
def test_reattribution_after_a_rule_change_moves_exactly_the_matching_lines(
    teams, sample_path, django_capture_on_commit_callbacks
):
    do_import(sample_path)
    assert set(CostLine.objects.values_list("allocation", flat=True)) == {UNALLOCATED}
    header, rows = read_sample()
    import json

    ti = header.index("Tags")
    matching = [
        r
        for r in rows
        if r[ti] not in ("", "NULL")
        and {k.strip().lower(): v for k, v in json.loads(r[ti]).items()}.get(
            "environment", ""
        ).lower()
        == "prod"
    ]
    expected = sum((Decimal(r[header.index("BilledCost")]) for r in matching), Decimal(0))
    services.rule_save(
        actor=COSTS,
        rule=None,
        data={
            "name": "prod to payments",
            "tag_key": "ENVIRONMENT",
            "tag_value": "prod",
            "method": "direct",
            "team": "payments",
        },
    )
    # saving alone moves nothing
    assert CostLine.objects.filter(team__isnull=False).count() == 0
    audit_before = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = services.reattribution_request(actor=COSTS, periods=["2024-09"])
    assert enqueued_task_names(callbacks) == [
        "costs.tasks.reattribute_task",
        "costs.analytics.tasks.resource_rollups_for_periods",  # sent by the re-attribution
    ]
    run.refresh_from_db()
    assert run.status == ReattributionRun.Status.SUCCEEDED
    assert run.lines_changed == len(
        [r for r in matching if r[header.index("BillingPeriodStart")].startswith("2024-09")]
    )
    assert AuditEvent.objects.count() == audit_before + 2  # requested + applied
    payments = teams["payments"]
    moved = CostLine.objects.filter(team=payments)
    assert moved.count() == run.lines_changed
    assert {line.rule.name for line in moved} == {"prod to payments"}
    assert CostDaily.objects.filter(team=payments).aggregate(s=Sum("billed_cost"))["s"] == expected
    _invariant(
        "2024-09-01",
        Decimal("20.52022672899")
        - sum(
            (
                Decimal(r[header.index("BilledCost")])
                for r in rows
                if r[header.index("BillingPeriodStart")].startswith("2024-10")
            ),
            Decimal(0),
        ),
    )
    # a second run with no rule change changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        again = services.reattribution_request(actor=COSTS)
    again.refresh_from_db()
    assert again.lines_changed == 0


@pytest.mark.django_db
def test_preview_says_what_moves_where(teams, sample_path, admin):
    from costs.selectors import rule_change_preview

    do_import(sample_path)
    spec = RuleSpec(id=None, name="lambda", service_name="AWS Lambda", team_id=teams["search"].pk)
    preview = rule_change_preview(viewer=admin, proposed=[spec])  # last three periods
    assert preview["periods"] == [dt.date(2024, 10, 1), dt.date(2024, 9, 1)]
    lines = CostLine.objects.filter(service_name="AWS Lambda")
    assert len(preview["moves"]) == 1
    move = preview["moves"][0]
    assert (move.source, move.target, move.lines) == ("unallocated", "Search", lines.count())
    assert move.amount == lines.aggregate(s=Sum("billed_cost"))["s"]
    assert CostLine.objects.filter(team__isnull=False).count() == 0  # nothing saved


@pytest.mark.django_db
def test_shared_rules_split_even_fixed_and_proportional(teams, tmp_path):
    header, rows = read_sample()
    col = header.index
    base = rows[0]

    def line(service, category, cost, tags):
        r = list(base)
        r[col("ServiceName")], r[col("ServiceCategory")] = service, category
        r[col("BilledCost")] = r[col("EffectiveCost")] = r[col("ListCost")] = cost
        r[col("Tags")] = tags
        return r

    data = [
        line("Compute A", "Compute", "30.00", '{"team": "payments"}'),
        line("Compute B", "Compute", "10.00", '{"team": "search"}'),
        line("Shared DB", "Databases", "100.00", '{"shared": "db"}'),
        line("Shared Net", "Networking", "10.00", '{"shared": "net"}'),
        line("Shared Mon", "Management and Governance", "1.00", '{"shared": "mon"}'),
    ]
    for slug in ("payments", "search"):
        services.rule_save(
            actor=COSTS,
            rule=None,
            data={
                "name": slug,
                "tag_key": "team",
                "tag_value": slug,
                "method": "direct",
                "team": slug,
            },
        )
    services.rule_save(
        actor=COSTS,
        rule=None,
        data={
            "name": "db",
            "tag_key": "shared",
            "tag_value": "db",
            "method": "proportional",
            "proportional_category": "compute",
        },
        shares=[("payments", "1"), ("search", "1")],
    )
    services.rule_save(
        actor=COSTS,
        rule=None,
        data={"name": "net", "tag_key": "shared", "tag_value": "net", "method": "fixed"},
        shares=[("payments", "1"), ("search", "2")],
    )
    services.rule_save(
        actor=COSTS,
        rule=None,
        data={"name": "mon", "tag_key": "shared", "tag_value": "mon", "method": "even"},
        shares=[("payments", "1"), ("search", "1"), ("platform", "1")],
    )
    run = do_import(write_csv(tmp_path / "shared.csv", header, data))
    assert run.status == "succeeded", run.errors
    assert CostLine.objects.filter(allocation=SHARED).count() == 3

    def team_total(slug, allocation):
        return CostDaily.objects.filter(team__slug=slug, allocation=allocation).aggregate(
            s=Sum("billed_cost")
        )["s"]

    assert team_total("payments", DIRECT) == Decimal("30")
    assert team_total("payments", SHARED) == Decimal("75") + Decimal("3.33") + Decimal("0.34")
    assert team_total("search", SHARED) == Decimal("25") + Decimal("6.67") + Decimal("0.33")
    assert team_total("platform", SHARED) == Decimal("0.33")
    _invariant(run.periods[0], Decimal("151.00"))


# --- the invariant, property-based over random rules and lines ---------------------------

TAG_KEYS = ["team", "Team", " env", "ENV", "owner"]
TAG_VALUES = ["payments", "search", "", "prod", "Dev"]
SERVICES = ["Amazon S3", "AWS Lambda", "Virtual Machines"]
ACCOUNTS = ["111", "222", "333"]
AMOUNTS = st.decimals(min_value="-50", max_value="500", places=4, allow_nan=False)

line_st = st.fixed_dictionaries(
    {
        "service": st.sampled_from(SERVICES),
        "account": st.sampled_from(ACCOUNTS),
        "cost": AMOUNTS,
        "tags": st.dictionaries(st.sampled_from(TAG_KEYS), st.sampled_from(TAG_VALUES), max_size=3),
    }
)
rule_st = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["tag", "service", "account"]),
        "key": st.sampled_from(TAG_KEYS),
        "value": st.sampled_from(TAG_VALUES + ["p*"]),
        "service": st.sampled_from(SERVICES),
        "account": st.sampled_from(ACCOUNTS),
        "method": st.sampled_from(["direct", "direct", "even", "fixed", "proportional"]),
        "teams": st.lists(
            st.sampled_from(["payments", "search", "platform"]), min_size=1, max_size=3, unique=True
        ),
    }
)


@pytest.mark.django_db
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(line_st, min_size=1, max_size=25), rules=st.lists(rule_st, max_size=5))
def test_attributed_plus_unallocated_equals_the_file_total(teams, tmp_path, lines, rules):
    from costs.models import AttributionRule, RuleShare

    CostLine.objects.all().delete()
    CostDaily.objects.all().delete()
    RuleShare.objects.all().delete()
    AttributionRule.objects.all().delete()
    for i, r in enumerate(rules):
        data = {"name": f"rule {i}", "method": r["method"], "position": i}
        if r["kind"] == "tag":
            data |= {"tag_key": r["key"], "tag_value": r["value"]}
        elif r["kind"] == "service":
            data["service_name"] = r["service"]
        else:
            data["sub_account_id"] = r["account"]
        if r["method"] == "direct":
            data["team"] = r["teams"][0]
        if r["method"] == "proportional":
            data["proportional_category"] = "Storage"
        shares = (
            [(t, str(n + 1)) for n, t in enumerate(r["teams"])] if r["method"] != "direct" else []
        )
        services.rule_save(actor=COSTS, rule=None, data=data, shares=shares)
    header, rows = read_sample()
    col = header.index
    out = []
    import json

    for spec in lines:
        row = list(rows[1])
        row[col("ServiceName")] = spec["service"]
        row[col("SubAccountId")] = spec["account"]
        row[col("BilledCost")] = str(spec["cost"])
        row[col("Tags")] = json.dumps(spec["tags"]) if spec["tags"] else "NULL"
        out.append(row)
    path = write_csv(tmp_path / "random.csv", header, out)
    run = do_import(path, source="random")
    assert run.status == "succeeded", run.errors
    total = sum((d["cost"] for d in lines), Decimal(0))
    _invariant(run.periods[0], total)
    assert CostDaily.objects.aggregate(n=Sum("lines"))["n"] == len(lines)
    assert CostLine.objects.filter(allocation=Allocation.DIRECT, team__isnull=True).count() == 0
