from __future__ import annotations

import csv
from decimal import Decimal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum

from costs import services
from costs.ingest import pipeline
from costs.models import CostDaily, CostLine, ImportRun
from portal.core.actors import COSTS

from .conftest import do_import, raw_billed_total, read_sample, snapshot, write_csv

pytestmark = pytest.mark.django_db
SAMPLE_TOTAL = Decimal("20.52022672899")


def _totals():
    return (
        CostLine.objects.count(),
        CostLine.objects.aggregate(s=Sum("billed_cost"))["s"],
        CostDaily.objects.aggregate(s=Sum("billed_cost"))["s"],
    )


@pytest.mark.sqlite
def test_sample_csv_imports_with_the_raw_files_billed_total(sample_path):
    expected = raw_billed_total(sample_path)
    assert expected == SAMPLE_TOTAL
    run = do_import(sample_path)
    assert run.status == ImportRun.Status.SUCCEEDED, run.errors
    assert (run.rows_read, run.rows_loaded, run.error_count) == (1000, 1000, 0)
    assert run.focus_version == "1.0"
    assert run.file_format == "csv"
    assert run.periods == ["2024-09-01", "2024-10-01"]
    assert run.billed_total == expected
    count, lines_total, daily_total = _totals()
    assert count == 1000
    assert Decimal(lines_total).quantize(Decimal("1e-11")) == expected
    assert Decimal(daily_total).quantize(Decimal("1e-11")) == expected


def test_sample_totals_are_exact_on_postgresql(sample_path):
    do_import(sample_path)
    count, lines_total, daily_total = _totals()
    assert (count, lines_total, daily_total) == (1000, SAMPLE_TOTAL, SAMPLE_TOTAL)
    # messy values were normalised: wrong-case enum, NULL strings, dates without T/Z
    assert CostLine.objects.filter(charge_frequency="Usage-based").count() == 0
    assert CostLine.objects.filter(charge_frequency="Usage-Based").count() == 999
    assert CostLine.objects.filter(charge_class="").count() == 1000
    assert CostLine.objects.filter(contracted_cost__isnull=True).count() == 7
    assert CostLine.objects.exclude(tags={}).count() == 711


def test_gzipped_csv_imports_the_same(sample_path, tmp_path):
    header, rows = read_sample()
    path = write_csv(tmp_path / "sample.csv.gz", header, rows, gz=True)
    run = do_import(path)
    assert run.status == "succeeded" and run.file_format == "csv.gz"
    assert raw_billed_total(path) == SAMPLE_TOTAL
    assert _totals() == (1000, SAMPLE_TOTAL, SAMPLE_TOTAL)


def test_parquet_imports_the_same(sample_path, tmp_path):
    table = pacsv.read_csv(
        sample_path,
        convert_options=pacsv.ConvertOptions(
            null_values=["NULL", ""],
            column_types={"BilledCost": pa.float64(), "Tags": pa.string()},
        ),
    )
    path = tmp_path / "sample.parquet"
    pq.write_table(table, path)
    run = do_import(path)
    assert run.status == "succeeded", run.errors
    assert run.file_format == "parquet"
    assert _totals() == (1000, SAMPLE_TOTAL, SAMPLE_TOTAL)
    assert CostLine.objects.exclude(tags={}).count() == 711


@pytest.mark.sqlite
def test_reimport_replaces_the_period_without_doubling(sample_path):
    first = do_import(sample_path)
    before = _totals()
    second = do_import(sample_path)
    assert second.status == "succeeded"
    assert _totals() == before
    assert set(CostLine.objects.values_list("import_run_id", flat=True)) == {second.pk}
    assert first.pk != second.pk


def test_reimport_of_one_period_leaves_other_periods_and_sources(sample_path, tmp_path):
    header, rows = read_sample()
    i = header.index("BillingPeriodStart")
    september = [r for r in rows if r[i].startswith("2024-09")]
    do_import(sample_path)
    do_import(sample_path, source="other-source")
    october_before = CostLine.objects.filter(billing_period_start="2024-10-01").count()
    half = write_csv(tmp_path / "half.csv", header, september[:100])
    run = do_import(half, period="2024-09")
    assert run.status == "succeeded", run.errors
    assert (
        CostLine.objects.filter(source__name="sample", billing_period_start="2024-09-01").count()
        == 100
    )
    assert CostLine.objects.filter(billing_period_start="2024-10-01").count() == october_before == 2
    assert CostLine.objects.filter(source__name="other-source").count() == 1000


def _mutate(tmp_path, column: str, row_index: int, value: str, name="bad.csv"):
    header, rows = read_sample()
    rows[row_index][header.index(column)] = value
    return write_csv(tmp_path / name, header, rows)


BAD_CELLS = [
    ("BilledCost", 4, "abc", "not a number"),
    ("BilledCost", 5, "NaN", "not a finite number"),
    ("EffectiveCost", 9, "", "missing value"),
    ("ChargePeriodStart", 6, "2024-13-45 00:00:00", "not a date/time"),
    ("BillingPeriodStart", 2, "yesterday", "not a date/time"),
    ("BillingCurrency", 2, "US Dollars", "currency"),
    ("ChargeCategory", 7, "Refund", "unknown value"),
    ("Tags", 3, "[1, 2]", "JSON object"),
    ("Tags", 3, "{not json", "not valid JSON"),
]


@pytest.mark.parametrize(("column", "index", "value", "reason"), BAD_CELLS)
def test_a_bad_value_is_refused_with_row_and_column_and_changes_nothing(
    sample_path, tmp_path, column, index, value, reason
):
    do_import(sample_path)
    before = snapshot()
    run = do_import(_mutate(tmp_path, column, index, value))
    assert run.status == "failed"
    assert run.error_count == 1
    assert run.errors[0]["row"] == index + 1
    assert run.errors[0]["column"] == column
    assert reason in run.errors[0]["reason"]
    assert snapshot() == before


@pytest.mark.sqlite
def test_a_missing_mandatory_column_is_refused_and_changes_nothing(sample_path, tmp_path):
    do_import(sample_path)
    before = snapshot()
    header, rows = read_sample()
    i = header.index("BilledCost")
    path = write_csv(
        tmp_path / "nocost.csv", header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in rows]
    )
    run = do_import(path)
    assert run.status == "failed"
    assert run.errors == [
        {"row": 0, "column": "BilledCost", "reason": "missing mandatory FOCUS column"}
    ]
    assert snapshot() == before


def test_an_unknown_focus_version_is_refused(sample_path, tmp_path):
    services.source_get_or_create(actor=COSTS, name="sample")
    before = snapshot()
    run = do_import(sample_path, focus_version="0.5")
    assert run.status == "failed"
    assert run.errors[0]["column"] == "FocusVersion"
    header, rows = read_sample()
    rows = [r + ["1.0"] for r in rows]
    rows[41][-1] = "2.7"
    run = do_import(write_csv(tmp_path / "v.csv", header + ["x_FocusVersion"], rows))
    assert run.status == "failed"
    assert run.errors == [
        {"row": 42, "column": "FocusVersion", "reason": "unknown FOCUS version '2.7'"}
    ]
    assert snapshot() == before


def test_a_file_with_many_errors_reports_the_first_100_and_the_count(sample_path, tmp_path):
    header, rows = read_sample()
    i = header.index("BilledCost")
    for r in rows[:250]:
        r[i] = "twelve"
    run = do_import(write_csv(tmp_path / "many.csv", header, rows))
    assert run.status == "failed"
    assert run.error_count == 250
    assert len(run.errors) == 100
    assert [e["row"] for e in run.errors] == list(range(1, 101))
    assert CostLine.objects.count() == 0


def test_rows_outside_the_requested_period_are_refused(sample_path):
    services.source_get_or_create(actor=COSTS, name="sample")
    before = snapshot()
    run = do_import(sample_path, period="2024-09")
    assert run.status == "failed"
    assert run.error_count == 1
    assert run.errors[0]["column"] == "BillingPeriodStart"
    assert snapshot() == before


def test_messy_but_unambiguous_values_are_accepted(tmp_path):
    header, rows = read_sample()
    row = rows[0]
    row[header.index("ChargePeriodStart")] = "2024-09-18T22:00:00Z"
    row[header.index("ChargePeriodEnd")] = "2024-09-19T00:00:00+01:00"
    row[header.index("BillingCurrency")] = "usd"
    row[header.index("ChargeCategory")] = "USAGE"
    row[header.index("BilledCost")] = " 8e-07 "
    row[header.index("ServiceCategory")] = "integration"
    run = do_import(write_csv(tmp_path / "messy.csv", header, [row]))
    assert run.status == "succeeded", run.errors
    line = CostLine.objects.get()
    assert (line.billing_currency, line.charge_category, line.service_category) == (
        "USD",
        "Usage",
        "Integration",
    )
    assert line.billed_cost == Decimal("0.0000008")
    assert line.charge_period_end.isoformat() == "2024-09-18T23:00:00+00:00"


@pytest.mark.parametrize(
    ("extra", "version"),
    [(["ServiceSubcategory", "SkuMeter"], "1.1"), (["InvoiceId", "PricingCurrency"], "1.2")],
)
def test_focus_11_and_12_column_sets_are_recognised(tmp_path, extra, version):
    header, rows = read_sample()
    rows = [r + ["x"] * len(extra) for r in rows[:10]]
    run = do_import(write_csv(tmp_path / "v.csv", header + extra, rows))
    assert run.status == "succeeded"
    assert run.focus_version == version


@pytest.mark.parametrize("columnar", [False, True])
def test_batches_stream_with_bounded_size(sample_path, monkeypatch, columnar):
    monkeypatch.setattr(pipeline, "COLUMNAR", columnar)
    sizes = []
    real = pipeline._write_batch
    monkeypatch.setattr(
        pipeline, "_write_batch", lambda rows: (sizes.append(len(rows)), real(rows))
    )
    real_columnar = pipeline._write_columnar
    monkeypatch.setattr(
        pipeline,
        "_write_columnar",
        lambda stream, table, **kw: (
            sizes.append(table.num_rows),
            real_columnar(stream, table, **kw),
        ),
    )

    run = services.import_run_create(
        actor=COSTS, source_name="s", file_name="f", file_path=str(sample_path)
    )
    run = services.import_run_execute(run_id=run.pk, actor=COSTS, batch_rows=128)
    assert sizes == [128] * 7 + [104]
    assert run.timings["path"] == ("columnar" if columnar else "rows")
    assert CostLine.objects.count() == 1000


@pytest.mark.sqlite
def test_command_exits_non_zero_and_names_row_and_column(tmp_path, sample_path):
    bad = _mutate(tmp_path, "BilledCost", 0, "1,5")
    with pytest.raises(CommandError, match="1 error"):
        call_command("import_focus", str(bad), "--source", "cmd", "--no-progress")
    assert CostLine.objects.count() == 0
    call_command("import_focus", str(sample_path), "--source", "cmd", "--no-progress")
    assert CostLine.objects.count() == 1000


def test_the_unallocated_invariant_holds_per_period(sample_path):
    do_import(sample_path)
    header, rows = read_sample()
    i = header.index("BillingPeriodStart")
    for period in ("2024-09", "2024-10"):
        raw = sum(
            (Decimal(r[header.index("BilledCost")]) for r in rows if r[i].startswith(period)),
            Decimal(0),
        )
        daily = CostDaily.objects.filter(billing_period_start=f"{period}-01")
        attributed = daily.filter(team__isnull=False).aggregate(s=Sum("billed_cost"))["s"] or 0
        unallocated = daily.filter(team__isnull=True).aggregate(s=Sum("billed_cost"))["s"] or 0
        assert attributed + unallocated == raw


def test_sample_row_count_matches_csv_module(sample_path):
    with open(sample_path, newline="") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == 1000


def test_cost_lines_carry_only_the_primary_key_and_one_brin_index():
    """Bulk-load cost: no b-tree beyond the primary key; one BRIN for source and charge month."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'costs_costline' "
            "ORDER BY indexname"
        )
        rows = cursor.fetchall()
    assert [name for name, _ in rows] == ["costs_costline_pkey", "costs_line_brin"]
    assert "USING brin (source_id, charge_period_start)" in dict(rows)["costs_line_brin"]


def test_import_commits_asynchronously_and_rollup_restores_sort(sample_path, monkeypatch):
    """The import transaction commits asynchronously; the rollup puts enable_sort back."""
    from django.db import connection

    seen = {}
    real = services.audit_record

    def spy(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            seen["sync"] = cursor.fetchone()[0]
            cursor.execute("SHOW enable_sort")
            seen["sort"] = cursor.fetchone()[0]
        return real(**kwargs)

    monkeypatch.setattr(services, "audit_record", spy)
    run = do_import(sample_path)
    assert run.status == "succeeded"
    # (SET LOCAL: it ends with the import's transaction, which the test's own wraps here)
    assert seen == {"sync": "off", "sort": "on"}
