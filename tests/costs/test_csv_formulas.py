"""Every cost CSV download writes text from billing files as text: a service, resource or
region name that a spreadsheet would run as a formula gets a leading apostrophe, and amounts
(negative ones too) stay plain numbers."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from .analytics_data import line, load_rows, tag_rules

pytestmark = pytest.mark.django_db

EVIL_SERVICE = '=HYPERLINK("http://evil","x")'
EVIL_RESOURCE = "+cmd|' /C calc'!A0"
EVIL_NAME = "-2+3+cmd|' /C calc'!A0"
EVIL_REGION = "@SUM(1+1)"


@pytest.fixture
def hostile_costs(clock, tmp_path, org):
    """Payments' lines of today: one named by formulas, one credit of -12.50."""
    today = dt.date.today()
    tag_rules(org["payments"])
    load_rows(
        tmp_path,
        [
            line(
                today,
                "payments",
                "20.00",
                service=EVIL_SERVICE,
                resource=EVIL_RESOURCE,
                region=EVIL_REGION,
                ResourceName=EVIL_NAME,
            ),
            line(
                today,
                "payments",
                "-12.50",
                service="Credits",
                resource="credit-1",
                ChargeCategory="Credit",
            ),
        ],
    )
    return today


def _rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def _cells(rows) -> set[str]:
    return {cell for row in rows for cell in row}


def test_dashboard_exports_write_formulas_as_text(client, manager, hostile_costs):
    client.force_login(manager)
    service = _rows(client.get("/teams/payments/costs/?export=service"))
    by_key = {row[0]: row for row in service[1:]}
    assert set(by_key) == {"'" + EVIL_SERVICE, "Credits"}
    assert by_key["'" + EVIL_SERVICE][1] == "20.00"
    assert by_key["Credits"][1] == "-12.50"  # a negative amount stays a number
    assert EVIL_SERVICE not in _cells(service)

    resource = _rows(client.get("/teams/payments/costs/?export=resource"))
    assert "'" + EVIL_RESOURCE in _cells(resource)
    assert EVIL_RESOURCE not in _cells(resource)
    assert {row[1] for row in resource[1:] if row[0] == "credit-1"} == {"-12.50"}

    region = _rows(client.get("/teams/payments/costs/?export=region"))
    assert "'" + EVIL_REGION in _cells(region)
    assert EVIL_REGION not in _cells(region)

    daily = _rows(client.get("/teams/payments/costs/?export=daily"))
    today = hostile_costs.isoformat()
    assert [row[1] for row in daily[1:] if row[0] == today] == ["7.50"]


def test_drilldown_export_writes_formulas_as_text(client, manager, hostile_costs):
    client.force_login(manager)
    day = hostile_costs.isoformat()
    query = urlencode(
        {"dim": "service", "value": EVIL_SERVICE, "start": day, "end": day, "export": "rows"}
    )
    rows = _rows(client.get(f"/teams/payments/costs/drill/?{query}"))
    header, body = rows[0], rows[1:]
    assert len(body) == 1
    row = dict(zip(header, body[0], strict=True))
    assert row["resource_id"] == "'" + EVIL_RESOURCE
    assert row["resource_name"] == "'" + EVIL_NAME
    assert row["service_name"] == "'" + EVIL_SERVICE
    assert row["region_id"] == "'" + EVIL_REGION
    assert Decimal(row["amount"]) == Decimal("20.00")

    credit = urlencode(
        {"dim": "service", "value": "Credits", "start": day, "end": day, "export": "rows"}
    )
    rows = _rows(client.get(f"/teams/payments/costs/drill/?{credit}"))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["resource_id"] == "credit-1"
    assert Decimal(row["amount"]) == Decimal("-12.50")
    assert not row["amount"].startswith("'")


def test_org_exports_keep_negative_amounts_as_numbers(client, finance, hostile_costs):
    client.force_login(finance)
    month = hostile_costs.replace(day=1)
    teams = _rows(client.get(f"/costs/overview/?month={month:%Y-%m}&export=teams"))
    assert not any(cell.startswith("'") for cell in _cells(teams))
    showback = _rows(client.get(f"/costs/showback/?month={month:%Y-%m}&format=csv"))
    by_team = {row[0]: row for row in showback[1:]}
    assert Decimal(by_team["payments"][3]) == Decimal("7.50")
    assert not any(cell.startswith("'") for cell in _cells(showback))
