"""Load one FOCUS file into ``costs_costline``: validate, attribute, write, replace, roll up.

Called inside the caller's transaction (see ``costs.services.import_run_execute``):

1. the header is mapped to a FOCUS column set (:mod:`costs.ingest.focus`);
2. rows stream in batches; each value is parsed (:mod:`costs.ingest.values`) and each row
   attributed by the rules (:mod:`costs.attribution`, cached per distinct attribute set);
3. while no error has been seen, each batch is written straight into the cost-line table,
   by ``COPY`` (psycopg 3) on PostgreSQL and batched ``INSERT`` on SQLite, tagged with
   this run's id. The open transaction is the staging area: nobody else sees the rows;
4. at the end, with no errors, the previous lines of the same (source, billing period) are
   deleted set-wise and the daily rollups of those periods are rebuilt. With any error,
   :class:`ImportRefused` is raised and the caller's rollback leaves everything as it was.

The row parser is in :mod:`costs.ingest.rows`, the writers in :mod:`costs.ingest.writing`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction

from costs.attribution import Attributor
from costs.partitioning import ensure_month_partitions

from .focus import resolve_header
from .readers import Reader, UnreadableFile
from .rows import LINE_COLUMNS, MAX_ERRORS, NUMBER_FIELDS, TEXT_FIELDS, RowError, RowParser, _Errors
from .writing import _CsvCopy, _write_batch, _write_columnar, replace_previous

# The row path and the writers live in .rows and .writing; their names stay importable here.
__all__ = [
    "COLUMNAR",
    "LINE_COLUMNS",
    "MAX_ERRORS",
    "NUMBER_FIELDS",
    "TEXT_FIELDS",
    "ImportRefused",
    "LoadResult",
    "Progress",
    "RowError",
    "RowParser",
    "load_file",
    "replace_previous",
]


class ImportRefused(Exception):
    def __init__(self, errors: list[RowError], error_count: int, rows_read: int, version=""):
        super().__init__(f"{error_count} error(s)")
        self.errors = errors
        self.error_count = error_count
        self.rows_read = rows_read
        self.version = version


@dataclass
class LoadResult:
    version: str
    file_format: str
    rows_read: int
    rows_loaded: int
    periods: list[dt.date]
    billed_total: Decimal
    timings: dict = field(default_factory=dict)


Progress = Callable[[int, int, int], None]  # rows_read, bytes_done, bytes_total


# The columnar fast path (PostgreSQL only); tests switch it off to compare with the row path.
COLUMNAR = True


class _Prefetch:
    """Iterate ``batches`` in a reader thread, at most ``depth`` batches ahead.

    Reading and splitting the CSV (Arrow, GIL released) then overlaps the conversion of the
    previous batch. Exceptions raised by the reader (e.g. :class:`columnar.Abandon`) are
    re-raised in the caller at the point it reaches them.
    """

    _END = object()

    def __init__(self, batches, depth: int = 1):
        self._batches = batches
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="costs-read", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for batch in self._batches:
                if not self._put((batch, None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            self._put((None, exc))
            return
        finally:
            with contextlib.suppress(Exception):
                self._batches.close()
        self._put((self._END, None))

    def __iter__(self):
        try:
            while True:
                item, error = self._queue.get()
                if error is not None:
                    raise error
                if item is self._END:
                    return
                yield item
        finally:
            self._stop.set()
            self._thread.join()


class _Loader:
    """State shared by the two paths over one file."""

    def __init__(self, *, schema, source_id, run_id, rules, requested_period, progress):
        self.schema = schema
        self.source_id = source_id
        self.run_id = run_id
        self.rules = rules
        self.requested_period = requested_period
        self.progress = progress
        self.reset()

    def reset(self) -> None:
        self.errors = _Errors()
        self.parser = RowParser(
            self.schema,
            source_id=self.source_id,
            run_id=self.run_id,
            attributor=Attributor(self.rules),
            requested_period=self.requested_period,
            errors=self.errors,
        )
        self.rows_read = 0
        self.known_months: set[dt.date] = set()
        self.parse_s = self.write_s = 0.0
        self.path_used = "rows"

    def _partitions(self, periods) -> None:
        new_months = {p.replace(day=1) for p in periods} - self.known_months
        if new_months:
            ensure_month_partitions(new_months)
            self.known_months |= new_months

    def rows(self, reader: Reader) -> None:
        parser, errors = self.parser, self.errors
        parser.width = len(reader.header) if reader.format != "parquet" else None
        for batch in reader.batches():
            ta = time.perf_counter()
            out = []
            for offset, raw in enumerate(batch.rows):
                parsed = parser.parse(raw, batch.first_row + offset)
                if parsed is not None and not errors.count:
                    out.append(parsed)
            self.rows_read += len(batch.rows)
            tb = time.perf_counter()
            self.parse_s += tb - ta
            if not errors.count and out:
                self._partitions(parser.periods)
                _write_batch(out)
            self.write_s += time.perf_counter() - tb
            if self.progress is not None:
                self.progress(self.rows_read, batch.bytes_done, reader.total_bytes)

    def columns(self, reader: Reader, batch_rows: int) -> None:
        from . import columnar

        self.path_used = "columnar"
        parser, errors = self.parser, self.errors
        parser.width = len(reader.header) if reader.format != "parquet" else None
        width = len(reader.header)
        converter = columnar.Converter(self.schema, parser, requested_period=self.requested_period)
        indices = converter.indices
        stream = _CsvCopy()
        try:
            batches = columnar.arrow_batches(
                reader.path,
                reader.format,
                width=width,
                indices=indices,
                batch_rows=batch_rows,
                total_bytes=reader.total_bytes,
                bounded=reader.bounded,
            )
            for batch in _Prefetch(batches):
                ta = time.perf_counter()
                table, flagged, billed, periods = converter.convert(batch)
                fallback = []
                if flagged:  # the row parser decides these rows: accepted, or exact errors
                    raw_cols = {i: batch.raw[i].take(flagged).to_pylist() for i in indices}
                    for k, offset in enumerate(flagged):
                        raw = [None] * width
                        for i in indices:
                            raw[i] = raw_cols[i][k]
                        parsed = parser.parse(raw, batch.first_row + offset)
                        if parsed is not None:
                            fallback.append(parsed)
                parser.billed_total += billed
                parser.periods |= periods
                self.rows_read += len(batch)
                tb = time.perf_counter()
                self.parse_s += tb - ta
                if not errors.count:
                    if {p.replace(day=1) for p in parser.periods} - self.known_months:
                        stream.close()
                        self._partitions(parser.periods)
                    if table is not None:
                        _write_columnar(stream, table, source_id=self.source_id, run_id=self.run_id)
                    if fallback:
                        stream.close()
                        _write_batch(fallback)
                else:
                    stream.close()
                self.write_s += time.perf_counter() - tb
                if self.progress is not None:
                    self.progress(self.rows_read, batch.bytes_done, reader.total_bytes)
        finally:
            tc = time.perf_counter()
            stream.close()
            self.write_s += time.perf_counter() - tc


def _columnar_possible(reader: Reader, schema) -> bool:
    if not COLUMNAR or connection.vendor != "postgresql":
        return False
    if reader.format == "parquet":
        from . import columnar

        needed = sorted({idx for idx, *_ in schema.columns})
        if schema.version_column is not None:
            needed.append(schema.version_column)
        return columnar.parquet_supported(reader._parquet, needed)
    return True


def load_file(
    *,
    path: str,
    source_id: int,
    run_id: int,
    rules,
    requested_period: dt.date | None = None,
    focus_version: str | None = None,
    progress: Progress | None = None,
    batch_rows: int | None = None,
    file_name: str | None = None,
) -> LoadResult:
    """Must run inside a transaction; raises :class:`ImportRefused` on any bad input.

    On PostgreSQL the columnar path (:mod:`costs.ingest.columnar`) runs first inside a
    savepoint; if pyarrow reads the file differently from the csv module it is rolled back
    and the row path reads the whole file instead, so results never depend on the path.
    A compressed file that expands past ``COSTS_DECOMPRESSED_MAX_BYTES`` is refused on
    either path (``file_name``, default the path's base name, names it in the error).
    """
    from costs.rollups import rebuild_rollups

    from . import columnar

    timings: dict[str, float | str] = {}
    t0 = time.perf_counter()
    if connection.vendor == "postgresql":
        # The import is idempotent and re-runnable (it replaces its (source, period) whole),
        # so its commit need not wait for the WAL flush: after a crash it is either all there
        # or not there at all, and the run is simply imported again. Lasts to the commit.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
    try:
        reader = Reader(path, name=file_name, **({"batch_rows": batch_rows} if batch_rows else {}))
    except OSError as exc:
        raise ImportRefused([RowError(0, "(file)", f"cannot open: {exc}")], 1, 0) from exc
    version = ""
    loader = None
    try:
        with reader:
            schema, problems = resolve_header(reader.header, version=focus_version)
            if schema is None:
                errors = _Errors()
                for p in problems:
                    errors.add(0, p.column, p.reason)
                raise ImportRefused(errors.first, errors.count, 0)
            version = schema.version
            loader = _Loader(
                schema=schema,
                source_id=source_id,
                run_id=run_id,
                rules=rules,
                requested_period=requested_period,
                progress=progress,
            )
            done = False
            if _columnar_possible(reader, schema):
                try:
                    with transaction.atomic():
                        loader.columns(reader, batch_rows or columnar.BATCH_ROWS)
                        if loader.errors.count:
                            raise _Refuse
                    done = True
                except _Refuse:
                    done = True
                except columnar.Abandon:
                    loader.reset()
            if not done:
                loader.rows(reader)
            file_format = reader.format
    except UnreadableFile as exc:
        rows_read = loader.rows_read if loader else 0
        errors = loader.errors if loader else _Errors()
        errors.add(rows_read, "(file)", str(exc))
        raise ImportRefused(errors.first, errors.count, rows_read, version) from exc
    errors, parser, rows_read = loader.errors, loader.parser, loader.rows_read
    if not errors.count and rows_read == 0:
        errors.add(0, "(file)", "the file has a header but no data rows")
    if errors.count:
        raise ImportRefused(errors.first, errors.count, rows_read, version)
    timings["path"] = loader.path_used
    timings["parse"] = round(loader.parse_s, 3)
    timings["write"] = round(loader.write_s, 3)
    periods = sorted(parser.periods)
    t1 = time.perf_counter()
    replace_previous(source_id=source_id, run_id=run_id, periods=periods)
    t2 = time.perf_counter()
    timings["replace"] = round(t2 - t1, 3)
    rebuild_rollups(periods=periods, rules=rules)
    timings["rollup"] = round(time.perf_counter() - t2, 3)
    from costs.analytics.tasks import enqueue_resource_rollups

    enqueue_resource_rollups(periods)
    timings["total"] = round(time.perf_counter() - t0, 3)
    return LoadResult(
        version=version,
        file_format=file_format,
        rows_read=rows_read,
        rows_loaded=rows_read,
        periods=periods,
        billed_total=parser.billed_total,
        timings=timings,
    )


class _Refuse(Exception):
    """Leave the columnar savepoint (rolled back) when the file was refused."""
