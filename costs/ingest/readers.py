"""Stream a FOCUS export in batches of raw rows: CSV, gzipped CSV or Parquet.

The format is recognised from the first bytes (gzip and Parquet magic numbers), not the
name. Memory is bounded by the batch size: nothing reads the whole file.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass

BATCH_ROWS = 10_000
csv.field_size_limit(10 * 1024 * 1024)


class UnreadableFile(Exception):
    pass


def sniff_format(path: str) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:2] == b"\x1f\x8b":
        return "csv.gz"
    if head == b"PAR1":
        return "parquet"
    return "csv"


@dataclass
class Batch:
    rows: list  # list of lists of raw values (str for CSV, Python objects for Parquet)
    first_row: int  # data row number (1-based) of rows[0]
    bytes_done: int


class Reader:
    """``header`` then ``batches()``; ``total_bytes`` for progress."""

    def __init__(self, path: str, *, batch_rows: int = BATCH_ROWS):
        self.path = path
        self.batch_rows = batch_rows
        self.format = sniff_format(path)
        self.total_bytes = os.path.getsize(path)
        self._raw = None
        self._text = None
        self._csv = None
        self._parquet = None
        self.header: list[str] = []

    def __enter__(self) -> Reader:
        try:
            if self.format == "parquet":
                import pyarrow.parquet as pq

                self._parquet = pq.ParquetFile(self.path)
                self.header = list(self._parquet.schema_arrow.names)
            else:
                self._raw = open(self.path, "rb")  # noqa: SIM115 - closed in __exit__
                stream = gzip.GzipFile(fileobj=self._raw) if self.format == "csv.gz" else self._raw
                self._text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
                self._csv = csv.reader(self._text)
                self.header = next(self._csv, [])
        except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
            self.close()
            raise UnreadableFile(f"cannot read the file: {exc}") from exc
        except Exception as exc:  # pyarrow raises its own errors for a broken Parquet file
            self.close()
            raise UnreadableFile(f"cannot read the file: {exc}") from exc
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for handle in (self._text, self._raw):
            if handle is not None:
                with contextlib.suppress(Exception):
                    handle.close()
        self._text = self._raw = None

    def _bytes_done(self) -> int:
        try:
            return self._raw.tell() if self._raw is not None else 0
        except (OSError, ValueError):
            return 0

    def batches(self) -> Iterator[Batch]:
        if self._parquet is not None:
            yield from self._parquet_batches()
            return
        row_no = 1
        batch: list = []
        try:
            for row in self._csv:
                batch.append(row)
                if len(batch) >= self.batch_rows:
                    yield Batch(batch, row_no, self._bytes_done())
                    row_no += len(batch)
                    batch = []
        except (csv.Error, UnicodeDecodeError, OSError, EOFError) as exc:
            raise UnreadableFile(
                f"cannot read the file after data row {row_no + len(batch) - 1}: {exc}"
            ) from exc
        if batch:
            yield Batch(batch, row_no, self.total_bytes)

    def _parquet_batches(self) -> Iterator[Batch]:
        pf = self._parquet
        row_no = 1
        done_groups = 0
        total_groups = max(pf.num_row_groups, 1)
        for record_batch in pf.iter_batches(batch_size=self.batch_rows):
            columns = [col.to_pylist() for col in record_batch.columns]
            rows = [list(r) for r in zip(*columns, strict=True)] if columns else []
            done_groups = min(total_groups, done_groups + 1)
            yield Batch(rows, row_no, self.total_bytes * done_groups // total_groups)
            row_no += len(rows)
