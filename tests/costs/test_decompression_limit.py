"""A compressed FOCUS file is bounded while it is decompressed: a gzip bomb is refused once it
passes COSTS_DECOMPRESSED_MAX_BYTES (on the columnar and the row path), a Parquet file that
declares more is refused before a page is read, and a refused import stores nothing."""

from __future__ import annotations

import csv
import gzip
import io

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from costs import services
from costs.ingest import pipeline, readers
from costs.models import CostLine, ImportRun
from portal.core.actors import COSTS

from .conftest import SAMPLE, do_import, read_sample, snapshot, write_csv

pytestmark = pytest.mark.django_db
LIMIT = 1024 * 1024
BOMB_BYTES = 50 * 1024 * 1024


def _bomb(tmp_path, name: str):
    """A gzipped FOCUS CSV: the sample's header, then one valid row repeated to ~50 MB."""
    header, rows = read_sample()
    head = (",".join(header) + "\n").encode()
    buf = io.StringIO()
    csv.writer(buf).writerow(rows[0])
    row = buf.getvalue().encode()
    path = tmp_path / name
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(head)
        block = row * (1024 * 1024 // len(row))
        for _ in range(BOMB_BYTES // len(block)):
            fh.write(block)
    return path


@pytest.fixture
def counted(monkeypatch):
    """The most decompressed bytes any bounded stream handed out."""
    seen = {"max": 0}
    original = readers.Bounded.read

    def read(self, size=-1):
        try:
            return original(self, size)
        finally:
            seen["max"] = max(seen["max"], self.count)

    monkeypatch.setattr(readers.Bounded, "read", read)
    return seen


@pytest.mark.parametrize("columnar", [True, False], ids=["columnar", "rows"])
def test_a_gzip_bomb_is_refused_past_the_limit_and_nothing_is_stored(
    settings, monkeypatch, tmp_path, counted, columnar
):
    monkeypatch.setattr(pipeline, "COLUMNAR", columnar)
    do_import(SAMPLE)
    before = snapshot()
    path = _bomb(tmp_path, "bill-2024-09.csv.gz")
    assert path.stat().st_size < 1024 * 1024  # a small file that expands fifty-fold and more
    settings.COSTS_DECOMPRESSED_MAX_BYTES = LIMIT
    run = services.import_run_create(
        actor=COSTS, source_name="sample", file_name=str(path), file_path=str(path)
    )
    run = services.import_run_execute(run_id=run.pk, actor=COSTS, batch_rows=200)
    assert run.status == ImportRun.Status.FAILED
    assert run.rows_loaded == 0
    assert [e["column"] for e in run.errors] == ["(file)"]
    reason = run.errors[0]["reason"]
    assert reason.startswith("bill-2024-09.csv.gz: expands past the limit of 1,048,576 bytes")
    assert "COSTS_DECOMPRESSED_MAX_BYTES" in reason
    assert snapshot() == before  # the sample's lines as they were, no partial rows
    assert CostLine.objects.filter(import_run=run).count() == 0
    # refused while decompressing: never more than about a read beyond the limit
    assert LIMIT < counted["max"] <= LIMIT + 2 * 1024 * 1024


def test_a_gzipped_file_under_the_limit_still_imports(settings, tmp_path):
    header, rows = read_sample()
    path = write_csv(tmp_path / "ok.csv.gz", header, rows, gz=True)
    settings.COSTS_DECOMPRESSED_MAX_BYTES = 2 * SAMPLE.stat().st_size
    run = do_import(path)
    assert run.status == ImportRun.Status.SUCCEEDED, run.errors
    assert CostLine.objects.count() == 1000


def _parquet(tmp_path) -> tuple:
    table = pacsv.read_csv(
        SAMPLE,
        convert_options=pacsv.ConvertOptions(
            null_values=["NULL", ""],
            column_types={"BilledCost": pa.float64(), "Tags": pa.string()},
        ),
    )
    path = tmp_path / "bill.parquet"
    pq.write_table(table, path, compression="zstd", row_group_size=250)
    return path, readers.parquet_declared_bytes(pq.ParquetFile(path))


def test_a_parquet_file_declaring_more_than_the_limit_is_refused_before_reading(
    settings, monkeypatch, tmp_path
):
    do_import(SAMPLE)
    before = snapshot()
    path, declared = _parquet(tmp_path)
    assert declared > path.stat().st_size  # compressed: the metadata's size is the bigger one
    settings.COSTS_DECOMPRESSED_MAX_BYTES = declared - 1

    def no_reading(*args, **kwargs):
        raise AssertionError("a page was read")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", no_reading)
    run = do_import(path)
    assert run.status == ImportRun.Status.FAILED
    assert run.errors == [
        {
            "row": 0,
            "column": "(file)",
            "reason": f"bill.parquet: declares {declared:,} bytes of uncompressed data, more "
            f"than the limit of {declared - 1:,} bytes (COSTS_DECOMPRESSED_MAX_BYTES); "
            "refused, nothing stored",
        }
    ]
    assert snapshot() == before
    assert CostLine.objects.filter(import_run=run).count() == 0


def test_a_parquet_file_within_the_limit_imports(settings, tmp_path):
    path, declared = _parquet(tmp_path)
    settings.COSTS_DECOMPRESSED_MAX_BYTES = declared
    run = do_import(path)
    assert run.status == ImportRun.Status.SUCCEEDED, run.errors
    assert CostLine.objects.count() == 1000
