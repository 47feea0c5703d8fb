"""Stream a FOCUS export in batches of raw rows: CSV, gzipped CSV or Parquet.

The format is recognised from the first bytes (gzip and Parquet magic numbers), not the
name. Memory is bounded by the batch size: nothing reads the whole file.

Compressed input is bounded too (a small file must not expand without end): a gzipped CSV is
counted as it is decompressed, in chunks, and refused with :class:`TooLarge` as soon as it
passes ``COSTS_DECOMPRESSED_MAX_BYTES``; a Parquet file is refused before any data is read
when its metadata declares more uncompressed bytes than that.
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
# Default of the setting COSTS_DECOMPRESSED_MAX_BYTES: what one file may expand to (16 times
# the default upload limit, COSTS_UPLOAD_MAX_BYTES).
DECOMPRESSED_MAX_BYTES = 32 * 1024**3
_CHUNK = 1 << 20


class UnreadableFile(Exception):
    pass


class TooLarge(UnreadableFile):
    """The file expands (or declares it expands) past the decompressed-size limit."""

    def __init__(self, name: str, limit: int, *, declared: int | None = None):
        self.name, self.limit, self.declared = name, limit, declared
        what = (
            f"expands past the limit of {limit:,} bytes when decompressed"
            if declared is None
            else f"declares {declared:,} bytes of uncompressed data, more than the limit of "
            f"{limit:,} bytes"
        )
        super().__init__(f"{name}: {what} (COSTS_DECOMPRESSED_MAX_BYTES); refused, nothing stored")


def decompressed_limit() -> int:
    """Read at call time, so a deployment (or a test) can lower it."""
    from django.conf import settings

    return int(getattr(settings, "COSTS_DECOMPRESSED_MAX_BYTES", DECOMPRESSED_MAX_BYTES))


class Bounded(io.RawIOBase):
    """A readable stream over ``inner`` (a decompressing stream) that counts the bytes it
    hands out and raises :class:`TooLarge` once they pass ``limit``. Reads are at most one
    request (``read(n)``) at a time, so the excess held in memory is one chunk."""

    def __init__(self, inner, *, limit: int, name: str):
        self._inner, self.limit, self.name, self.count = inner, limit, name, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(_CHUNK), b""))
        data = self._inner.read(size)
        self.count += len(data)
        if self.count > self.limit:
            raise TooLarge(self.name, self.limit)
        return bytes(data)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._inner.close()
        super().close()


def parquet_declared_bytes(parquet_file) -> int:
    """The uncompressed size a Parquet file's metadata declares (row groups and column chunks,
    whichever is larger), known before any page is decompressed."""
    meta = parquet_file.metadata
    total = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        chunks = sum(group.column(j).total_uncompressed_size for j in range(group.num_columns))
        total += max(group.total_byte_size, chunks)
    return total


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

    def __init__(self, path: str, *, batch_rows: int = BATCH_ROWS, name: str | None = None):
        self.path = path
        self.name = name or os.path.basename(path)
        self.limit = decompressed_limit()
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
                declared = parquet_declared_bytes(self._parquet)
                if declared > self.limit:
                    raise TooLarge(self.name, self.limit, declared=declared)
                self.header = list(self._parquet.schema_arrow.names)
            else:
                self._raw = open(self.path, "rb")  # noqa: SIM115 - closed in __exit__
                stream = self._raw
                if self.format == "csv.gz":
                    stream = io.BufferedReader(
                        self.bounded(gzip.GzipFile(fileobj=self._raw)), buffer_size=_CHUNK
                    )
                self._text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
                self._csv = csv.reader(self._text)
                self.header = next(self._csv, [])
        except UnreadableFile:
            self.close()
            raise
        except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
            self.close()
            raise UnreadableFile(f"cannot read the file: {exc}") from exc
        except Exception as exc:  # pyarrow raises its own errors for a broken Parquet file
            self.close()
            raise UnreadableFile(f"cannot read the file: {exc}") from exc
        return self

    def bounded(self, decompressing) -> Bounded:
        """``decompressing`` (gzip or pyarrow stream), counted against this file's limit."""
        return Bounded(decompressing, limit=self.limit, name=self.name)

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
