"""The FOCUS export of allocated costs: re-imported it gives the same totals (CSV and
Parquet, a team's month and the org's); the API and the page serve it scoped like the
summary, and the allocated-lines API adds up to the summary API to the cent."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum

from costs import services
from costs.chargeback.focus_export import COLUMNS
from costs.models import CostLine
from portal.core.actors import COSTS

from .analytics_data import line, load_rows, standard_org_costs
from .conftest import do_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def costs(tmp_path, org):
    today = standard_org_costs(tmp_path, org, days=50)
    services.rule_save(
        actor=COSTS,
        rule=None,
        data={"name": "shared net", "tag_key": "shared", "tag_value": "net", "method": "fixed"},
        shares=[("payments", "3"), ("search", "2"), ("other", "1")],
    )
    rows = []
    for back in range(50, -1, -1):
        row = line(today - dt.timedelta(days=back), None, Decimal("10.00001"), resource="nat-1")
        row["Tags"] = json.dumps({"shared": "net"})
        rows.append(row)
    load_rows(tmp_path, rows, source="shared")
    return today.replace(day=1) - dt.timedelta(days=1)  # a complete month: last month's last day


def _summary(client, slug, month) -> dict:
    return client.get(f"/api/v1/teams/{slug}/costs/summary", {"month": f"{month:%Y-%m}"}).json()


def _reimported_total(path, source: str) -> tuple[Decimal, Decimal]:
    run = do_import(path, source=source)
    assert run.status == "succeeded", run.errors
    agg = CostLine.objects.filter(import_run_id=run.pk).aggregate(
        b=Sum("billed_cost"), e=Sum("effective_cost")
    )
    return agg["b"], agg["e"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_team_export_reimported_gives_the_summary(client, costs, finance, tmp_path, fmt):
    month = costs.replace(day=1)
    client.force_login(finance)
    out = tmp_path / f"payments.{fmt}"
    call_command(
        "export_focus",
        month=f"{month:%Y-%m}",
        team="payments",
        output=str(out),
        stdout=io.StringIO(),
    )
    summary = _summary(client, "payments", month)
    if fmt == "csv":
        with open(out, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert tuple(rows[0].keys()) == COLUMNS
        cents = sum((Decimal(r["x_AllocatedBilledCost"]) for r in rows), Decimal(0))
        assert {r["x_Team"] for r in rows} == {"payments"}
        assert {r["x_AllocationMethod"] for r in rows} == {"direct", "shared"}
        shared = [r for r in rows if r["x_AllocationMethod"] == "shared"]
        assert {r["x_AllocationRule"] for r in shared} == {"shared net"}
        assert {Decimal(r["x_AllocationShare"]) for r in shared} == {Decimal("0.5")}
        assert all(Decimal(r["x_LineBilledCost"]) == Decimal("10.00001") for r in shared)
    else:
        table = pq.read_table(out)
        assert tuple(table.column_names) == COLUMNS
        cents = sum(table.column("x_AllocatedBilledCost").to_pylist(), Decimal(0))
    assert str(cents) == summary["billed_cost"]
    # re-imported as a FOCUS file elsewhere (a new source here): the same numbers
    billed, effective = _reimported_total(out, f"reimport-{fmt}")
    assert f"{billed:.2f}" == summary["billed_cost"]
    assert f"{effective:.2f}" == summary["effective_cost"]


def test_org_export_reimported_gives_the_org_total(costs, tmp_path):
    month = costs.replace(day=1)
    nxt = costs + dt.timedelta(days=1)
    total = CostLine.objects.filter(
        charge_period_start__date__gte=month, charge_period_start__date__lt=nxt
    ).aggregate(s=Sum("billed_cost"))["s"]
    out = tmp_path / "org.parquet"
    call_command("export_focus", month=f"{month:%Y-%m}", output=str(out), stdout=io.StringIO())
    table = pq.read_table(out)
    teams = set(table.column("x_Team").to_pylist())
    assert teams == {"payments", "search", "other", ""}
    assert sum(table.column("BilledCost").to_pylist(), Decimal(0)) == total
    billed, _ = _reimported_total(out, "reimport-org")
    assert billed == total


def test_export_command_refuses_bad_input(costs, tmp_path):
    out = tmp_path / "x.csv"
    with pytest.raises(CommandError, match="--month must be YYYY-MM"):
        call_command("export_focus", month="2024-13", output=str(out))
    with pytest.raises(CommandError, match="no team with slug 'nope'"):
        call_command("export_focus", month="2024-01", team="nope", output=str(out))
    assert not out.exists()


def test_allocated_lines_api_adds_up_to_the_summary_api(client, costs, manager):
    month = costs.replace(day=1)
    client.force_login(manager)  # the payments lead
    summary = _summary(client, "payments", month)
    seen, offset, total = [], 0, None
    while True:
        body = client.get(
            "/api/v1/costs/allocated/",
            {"month": f"{month:%Y-%m}", "team": "payments", "limit": 40, "offset": offset},
        ).json()
        total = body["count"]
        seen += body["results"]
        if not body["next"]:
            break
        offset += 40
    assert len(seen) == total == len({(r["id"], r["team"]) for r in seen})
    assert (
        str(sum((Decimal(r["allocated_billed_cost"]) for r in seen), Decimal(0)))
        == summary["billed_cost"]
    )
    assert (
        str(sum((Decimal(r["allocated_effective_cost"]) for r in seen), Decimal(0)))
        == summary["effective_cost"]
    )
    shared = [r for r in seen if r["allocation"] == "shared"]
    assert shared and {r["rule"] for r in shared} == {"shared net"}
    assert {r["team"] for r in seen} == {"payments"}
    # the raw lines API still returns only the team's direct lines: the gap the issue named
    direct = client.get(
        "/api/v1/costs/lines/", {"month": f"{month:%Y-%m}", "team": "payments", "limit": 500}
    ).json()
    assert direct["count"] == len(seen) - len(shared)


def test_another_teams_lead_is_refused(client, costs, org):
    from tests.conftest import make_user

    month = f"{costs:%Y-%m}"
    search_lead = make_user("lead@search.example", team=org["search"], lead=True)
    client.force_login(search_lead)
    for url in ("/api/v1/costs/allocated/", "/api/v1/costs/export/"):
        assert client.get(url, {"month": month, "team": "payments"}).status_code == 404
        assert client.get(url, {"month": month, "team": "search"}).status_code == 200
    assert (
        client.get("/costs/export/focus/", {"month": month, "team": "payments"}).status_code == 404
    )
    # without a team, a team lead gets its own teams only, never the org's unallocated rows
    body = client.get("/api/v1/costs/allocated/", {"month": month, "limit": 500}).json()
    assert {r["team"] for r in body["results"]} == {"search"}
    client.logout()
    assert client.get("/api/v1/costs/allocated/", {"month": month}).status_code == 401


def test_export_api_and_page_download(client, costs, finance):
    month = f"{costs:%Y-%m}"
    client.force_login(finance)
    response = client.get("/api/v1/costs/export/", {"month": month, "team": "search"})
    assert response.status_code == 200
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="focus-allocated-search-{month}.csv"'
    )
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    summary = _summary(client, "search", costs.replace(day=1))
    assert (
        str(sum((Decimal(r["x_AllocatedBilledCost"]) for r in rows), Decimal(0)))
        == summary["billed_cost"]
    )
    page = client.get("/costs/export/focus/", {"month": month, "output": "parquet"})
    assert page.status_code == 200
    data = b"".join(page.streaming_content)
    assert data[:4] == b"PAR1"
    bad = client.get("/api/v1/costs/export/", {"month": month, "output": "xlsx"})
    assert bad.status_code == 400
    assert "output" in bad.content.decode() and "csv, parquet" in bad.content.decode()
    assert client.get("/api/v1/costs/export/", {"month": "2024-13"}).status_code == 400
    dash = client.get("/teams/search/costs/").content.decode()
    assert "/costs/export/focus/?team=search&amp;month=" in dash


def test_python_writer_matches_the_database_writer(costs, tmp_path, org):
    """The embedded default (SQLite) formats rows in Python: same rows, same amounts."""
    from costs.chargeback.allocation import Scope
    from costs.chargeback.focus_export import export_rows, write_csv

    scope = Scope(month=costs.replace(day=1), team_ids=(org["payments"].pk,))
    py = io.StringIO()
    write_csv(export_rows(scope), py)
    out = tmp_path / "db.csv"
    call_command(
        "export_focus",
        month=f"{costs:%Y-%m}",
        team="payments",
        output=str(out),
        stdout=io.StringIO(),
    )
    with open(out, newline="") as fh:
        db_rows = list(csv.DictReader(fh))
    py_rows = list(csv.DictReader(io.StringIO(py.getvalue())))
    key = lambda r: int(r["x_LineId"])  # noqa: E731
    assert len(py_rows) == len(db_rows)
    for a, b in zip(sorted(py_rows, key=key), sorted(db_rows, key=key), strict=True):
        for column in ("BilledCost", "x_AllocatedBilledCost", "x_AllocationShare", "ListCost"):
            assert Decimal(a[column] or 0) == Decimal(b[column] or 0), column
        for column in (
            "x_Team",
            "x_AllocationMethod",
            "x_AllocationRule",
            "ChargePeriodStart",
            "Tags",
        ):
            assert a[column].replace(" ", "") == b[column].replace(" ", ""), column


def test_csv_export_writes_formulas_as_text(tmp_path, org, finance, client):
    from .analytics_data import tag_rules

    tag_rules(org["payments"])
    day = dt.date.today() - dt.timedelta(days=1)
    load_rows(tmp_path, [line(day, "payments", "5", resource="=HYPERLINK(1)", service="-2+3")])
    client.force_login(finance)
    response = client.get("/api/v1/costs/export/", {"month": f"{day:%Y-%m}", "team": "payments"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["ResourceId"] == "'=HYPERLINK(1)"
    assert rows[0]["ServiceName"] == "'-2+3"
    assert rows[0]["BilledCost"].startswith("5.")
