"""Kubernetes costs from OpenCost: a hand-written ``/allocation`` response (the documented
schema: daily windows, pods with properties and labels, ``__idle__``, ``__unallocated__``)
lands on teams through namespace and label rules; idle cost is shared by usage; importing
the same window again replaces it; a malformed payload changes nothing."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum

from audit.models import AuditEvent
from costs import services
from costs.analytics import selectors
from costs.chargeback.allocation import Scope, allocated_rows
from costs.models import CostLine, ImportRun
from costs.opencost import ensure_idle_rule, opencost_import
from portal.core.actors import COSTS

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parent.parent / "data" / "opencost" / "allocation_by_pod_2days.json"
MONTH = dt.date(2024, 9, 1)


@pytest.fixture
def rules(org):
    services.rule_save(
        actor=COSTS,
        rule=None,
        data={
            "name": "payments namespaces",
            "position": 10,
            "tag_key": "k8s:namespace",
            "tag_value": "payments-*",
            "method": "direct",
            "team": "payments",
        },
    )
    services.rule_save(
        actor=COSTS,
        rule=None,
        data={
            "name": "team label",
            "position": 20,
            "tag_key": "team",
            "tag_value": "search",
            "method": "direct",
            "team": "search",
        },
    )
    ensure_idle_rule(actor=COSTS)


def _billed(team) -> Decimal:
    return selectors.month_summary(team=team, month=MONTH, as_of=dt.date(2024, 9, 2))["billed_cost"]


def test_allocations_become_lines_on_teams_and_idle_is_shared_by_usage(rules, org):
    run = opencost_import(actor=COSTS, source_name="k8s-prod", payload=DATA.read_bytes())
    assert run.status == "succeeded", run.errors
    assert (run.rows_read, run.rows_loaded) == (7, 14)  # one line per non-zero component
    assert run.billed_total == Decimal("10.85")
    api = CostLine.objects.get(
        resource_id="k8s://prod-eu/payments-prod/api-7d9f",
        resource_type="cpu",
        charge_period_start=dt.datetime(2024, 9, 1, tzinfo=dt.UTC),
    )
    assert api.billed_cost == Decimal("1.6")  # cpuCost + cpuCostAdjustment
    assert api.consumed_quantity == Decimal("48") and api.consumed_unit == "Core-Hours"
    assert api.tags == {
        "app": "api",
        "k8s:cluster": "prod-eu",
        "k8s:namespace": "payments-prod",
        "k8s:controller": "api",
        "k8s:controller_kind": "deployment",
        "k8s:pod": "api-7d9f",
        "k8s:node": "node-a",
    }
    assert (api.team.slug, api.sub_account_id, api.service_name) == (
        "payments",
        "prod-eu",
        "Kubernetes",
    )
    ram = CostLine.objects.get(
        resource_id="k8s://prod-eu/payments-prod/api-7d9f",
        resource_type="ram",
        charge_period_start=dt.datetime(2024, 9, 1, tzinfo=dt.UTC),
    )
    assert ram.consumed_quantity == Decimal("96")  # 103079215104 byte-hours = 96 GiB-hours
    indexer = CostLine.objects.filter(resource_id="k8s://prod-eu/shared-tools/indexer-55c")
    assert {line.team.slug for line in indexer} == {"search"}  # by its pod label
    assert set(
        CostLine.objects.filter(resource_name="__unallocated__").values_list(
            "allocation", flat=True
        )
    ) == {"unallocated"}
    idle = CostLine.objects.filter(tags__contains={"k8s:idle": "true"})
    assert set(idle.values_list("allocation", flat=True)) == {"shared"}
    # direct Kubernetes usage: payments 2.75 + 3.00, search 1.00 + 1.00 -> weights 5.75 : 2.
    # The rollup splits each day's idle (2.00, then 1.00) at the cent, the smaller share
    # rounded down and the rest to the larger: search 0.51 + 0.25, payments 1.49 + 0.75.
    search_idle = sum(
        (
            (idle * 2 / Decimal("7.75")).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
            for idle in (Decimal(2), Decimal(1))
        ),
        Decimal(0),
    )
    assert search_idle == Decimal("0.76")
    assert _billed(org["search"]) == Decimal("2.00") + search_idle == Decimal("2.76")
    assert _billed(org["payments"]) == Decimal("5.75") + Decimal(3) - search_idle == Decimal("7.99")
    # and the allocated lines of each team add up to its summary
    for slug in ("payments", "search"):
        rows = list(allocated_rows(Scope(month=MONTH, team_ids=(org[slug].pk,))))
        assert sum((r["allocated_billed"] for r in rows), Decimal(0)) == _billed(org[slug])
    assert AuditEvent.objects.filter(action="costs.import_succeeded").count() == 1


def test_importing_the_same_window_again_replaces_it(rules, org):
    payload = json.loads(DATA.read_text())
    assert (
        opencost_import(actor=COSTS, source_name="k8s-prod", payload=payload).status == "succeeded"
    )
    before = CostLine.objects.count()
    again = opencost_import(actor=COSTS, source_name="k8s-prod", payload=payload)
    assert again.status == "succeeded"
    assert CostLine.objects.count() == before
    assert CostLine.objects.aggregate(s=Sum("billed_cost"))["s"] == Decimal("10.85")
    # a corrected second day replaces that day only
    day2 = {"code": 200, "data": [copy.deepcopy(payload["data"][1])]}
    day2["data"][0]["payments/api-7d9f"]["cpuCost"] = 4.0
    assert opencost_import(actor=COSTS, source_name="k8s-prod", payload=day2).status == "succeeded"
    assert CostLine.objects.aggregate(s=Sum("billed_cost"))["s"] == Decimal("12.85")
    assert CostLine.objects.filter(charge_period_start__date=dt.date(2024, 9, 1)).count() == 10
    # another source (another cluster) is not touched by this one's windows
    other = copy.deepcopy(payload)
    assert (
        opencost_import(actor=COSTS, source_name="k8s-staging", payload=other).status == "succeeded"
    )
    assert CostLine.objects.aggregate(s=Sum("billed_cost"))["s"] == Decimal("23.70")


def test_a_malformed_payload_changes_nothing_and_names_the_problem(rules):
    assert (
        opencost_import(actor=COSTS, source_name="k8s-prod", payload=DATA.read_bytes()).status
        == "succeeded"
    )
    lines = CostLine.objects.count()
    bad = json.loads(DATA.read_text())
    bad["data"][1]["search/indexer-55c"]["cpuCost"] = "lots"
    bad["data"][1]["__idle__"]["window"]["start"] = "yesterday"
    run = opencost_import(actor=COSTS, source_name="k8s-prod", payload=bad)
    assert run.status == "failed"
    assert {(e["column"], e["reason"]) for e in run.errors} == {
        ("data[1].search/indexer-55c.cpuCost", "not a number: 'lots'"),
        ("data[1].__idle__.window.start", "not an RFC 3339 time: 'yesterday'"),
    }
    assert CostLine.objects.count() == lines
    assert (
        opencost_import(actor=COSTS, source_name="k8s-prod", payload=b"{nope").errors[0]["column"]
        == "(file)"
    )
    assert (
        opencost_import(actor=COSTS, source_name="k8s-prod", payload={"items": []}).status
        == "failed"
    )
    assert ImportRun.objects.filter(status="succeeded").count() == 1


def test_only_cost_editors_import(rules, requester):
    from portal.core.errors import NotPermitted

    with pytest.raises(NotPermitted):
        opencost_import(actor=requester, source_name="k8s-prod", payload=DATA.read_bytes())
    assert CostLine.objects.count() == 0


def test_command(rules, tmp_path):
    out = io.StringIO()
    call_command("import_opencost", str(DATA), source="k8s-prod", idle_rule=True, stdout=out)
    assert "7 allocations, 14 cost lines, billed 10.85" in out.getvalue()
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [{"x": {"window": {"start": "2024-09-01T00:00:00Z"}}}]}')
    with pytest.raises(CommandError, match="refused: nothing changed"):
        call_command(
            "import_opencost",
            str(broken),
            source="k8s-prod",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
