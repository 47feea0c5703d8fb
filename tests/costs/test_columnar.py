"""The columnar fast path stores exactly what the row path stores, and refuses alike."""

from __future__ import annotations

import pytest

from accounts.models import Team
from costs.ingest import pipeline
from costs.models import AttributionRule, CostDaily, CostLine

from .conftest import do_import, read_sample, write_csv

pytestmark = pytest.mark.django_db

LINE_FIELDS = [f for f in pipeline.LINE_COLUMNS if f not in ("import_run_id", "source_id")]


def _stored():
    lines = sorted(tuple(str(v) for v in row) for row in CostLine.objects.values_list(*LINE_FIELDS))
    daily = sorted(
        tuple(str(v) for v in row)
        for row in CostDaily.objects.values_list(
            "billing_period_start",
            "day",
            "team_id",
            "allocation",
            "service_name",
            "billed_cost",
            "effective_cost",
            "list_cost",
            "lines",
        )
    )
    return lines, daily


def _import_both(monkeypatch, path, **kw):
    """Import with the row path, then (after clearing) with the columnar path."""
    out = []
    for columnar in (False, True):
        monkeypatch.setattr(pipeline, "COLUMNAR", columnar)
        CostLine.objects.all().delete()
        CostDaily.objects.all().delete()
        run = do_import(path, **kw)
        out.append((run, _stored()))
    return out


@pytest.fixture
def rules():
    team = Team.objects.create(slug="payments", name="Payments")
    AttributionRule.objects.create(
        name="by bu", position=1, tag_key="BUSINESS_UNIT", tag_value="*finance", team=team
    )
    AttributionRule.objects.create(
        name="sqs",
        position=2,
        service_name="amazon simple queue service",
        team=team,
        target_project="queues",
    )
    return team


def test_columnar_and_row_paths_store_the_same_rows(monkeypatch, sample_path, rules):
    (row_run, row_stored), (col_run, col_stored) = _import_both(monkeypatch, sample_path)
    assert row_run.timings["path"] == "rows"
    assert col_run.timings["path"] == "columnar"
    assert col_run.status == row_run.status == "succeeded"
    assert col_run.billed_total == row_run.billed_total
    assert col_run.periods == row_run.periods
    assert col_stored == row_stored
    assert len(col_stored[0]) == 1000
    assert CostLine.objects.exclude(team=None).count() > 0


def test_messy_rows_go_to_the_row_parser_and_store_the_same(monkeypatch, tmp_path, rules):
    header, rows = read_sample()
    col = header.index
    rows[0][col("BilledCost")] = " 8e-07 "  # exponent and spaces: flagged, accepted
    for i in (1, 2, 10):
        rows[i][col("ChargePeriodStart")] = "2024-09-18 20:00:00"
        rows[i][col("ChargePeriodEnd")] = "2024-09-30 23:00:00"
    rows[1][col("ChargePeriodStart")] = "2024-09-18t20:00:00"
    rows[2][col("ChargePeriodEnd")] = "2024-09-19T00:00:00+01:00"
    rows[3][col("BillingCurrency")] = "usd"
    rows[4][col("ChargeCategory")] = "USAGE"
    rows[5][col("ServiceCategory")] = " integration "
    rows[6][col("ListCost")] = "1.1234567890125"  # 13 decimals: the row parser rounds
    rows[7][col("ChargeClass")] = " null "
    rows[8][col("ResourceName")] = "nULL"  # not a null token without spaces: kept
    rows[9][col("Tags")] = ""
    rows[10][col("ChargePeriodStart")] = "2024-09-18 20:00:00 UTC"
    path = write_csv(tmp_path / "messy.csv", header, rows)
    (row_run, row_stored), (col_run, col_stored) = _import_both(monkeypatch, path)
    assert col_run.status == row_run.status == "succeeded", col_run.errors
    assert col_stored == row_stored
    assert col_run.billed_total == row_run.billed_total


def test_a_file_with_errors_reports_the_same_on_both_paths(monkeypatch, tmp_path, rules):
    header, rows = read_sample()
    col = header.index
    rows[3][col("BilledCost")] = "abc"
    rows[10][col("ChargePeriodStart")] = "2024-02-30 00:00:00"
    rows[20][col("BillingCurrency")] = "US Dollars"
    rows[30][col("ChargeCategory")] = "Refund"
    rows[40][col("Tags")] = "{not json"
    rows[50][col("EffectiveCost")] = "NULL"
    rows[60][col("ChargePeriodEnd")] = "2024-09-01 00:00:00"
    rows[60][col("ChargePeriodStart")] = "2024-09-02 00:00:00"
    path = write_csv(tmp_path / "bad.csv", header, rows)
    (row_run, row_stored), (col_run, col_stored) = _import_both(monkeypatch, path)
    assert col_run.status == row_run.status == "failed"
    assert col_run.errors == row_run.errors
    assert col_run.error_count == row_run.error_count == 7
    assert [e["row"] for e in col_run.errors] == [4, 11, 21, 31, 41, 51, 61]
    assert col_stored == row_stored == ([], [])


def test_a_row_of_the_wrong_width_falls_back_to_the_row_path(monkeypatch, tmp_path):
    header, rows = read_sample()
    rows[500] = rows[500][:-1]
    path = write_csv(tmp_path / "short.csv", header, rows)
    (row_run, _), (col_run, col_stored) = _import_both(monkeypatch, path)
    assert col_run.status == "failed"
    assert (
        col_run.errors
        == row_run.errors
        == [
            {
                "row": 501,
                "column": "(row)",
                "reason": f"row has {len(header) - 1} fields; the header has {len(header)}",
            }
        ]
    )
    assert col_stored == ([], [])


def test_a_requested_period_is_checked_on_the_columnar_path(monkeypatch, sample_path):
    (row_run, _), (col_run, _) = _import_both(monkeypatch, sample_path, period="2024-09")
    assert col_run.status == "failed"
    assert col_run.errors == row_run.errors
    assert col_run.error_count == 1
