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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction

from costs.attribution import Attributor, LineAttrs, attr_key
from costs.partitioning import ensure_month_partitions

from . import values as V
from .focus import VERSIONS, resolve_header
from .readers import Reader, UnreadableFile

MAX_ERRORS = 100

TEXT_FIELDS = (
    "billing_account_id",
    "billing_account_name",
    "sub_account_id",
    "sub_account_name",
    "charge_category",
    "charge_class",
    "charge_frequency",
    "charge_description",
    "provider_name",
    "publisher_name",
    "invoice_issuer_name",
    "service_name",
    "service_category",
    "region_id",
    "region_name",
    "availability_zone",
    "resource_id",
    "resource_name",
    "resource_type",
    "sku_id",
    "sku_price_id",
    "pricing_category",
    "pricing_unit",
    "consumed_unit",
    "billing_currency",
    "commitment_discount_id",
    "commitment_discount_name",
    "commitment_discount_category",
    "commitment_discount_type",
    "commitment_discount_status",
)
NUMBER_FIELDS = (
    "billed_cost",
    "effective_cost",
    "list_cost",
    "contracted_cost",
    "list_unit_price",
    "contracted_unit_price",
    "pricing_quantity",
    "consumed_quantity",
)
LINE_COLUMNS = (
    ("source_id", "import_run_id", "billing_period_start", "billing_period_end")
    + ("charge_period_start", "charge_period_end")
    + TEXT_FIELDS
    + NUMBER_FIELDS
    + ("tags", "attr_key", "allocation", "team_id", "attributed_service", "project", "rule_id")
)
_DEFAULTS = dict.fromkeys(TEXT_FIELDS, "") | dict.fromkeys(NUMBER_FIELDS)


@dataclass
class RowError:
    row: int
    column: str
    reason: str

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "reason": self.reason}


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


class _Errors:
    def __init__(self):
        self.first: list[RowError] = []
        self.count = 0

    def add(self, row: int, column: str, reason: str) -> None:
        self.count += 1
        if len(self.first) < MAX_ERRORS:
            self.first.append(RowError(row, column, reason))


def _converter(kind: str, column: str):
    base = kind.rstrip("!")
    if base == "money":
        return V.money
    if base == "quantity":
        return V.quantity
    if base in ("date", "datetime"):
        return V.timestamp
    if base == "currency":
        return V.currency
    if base == "enum":
        return lambda raw: V.enum(column, raw)
    if base == "category":
        return V.category
    if base == "tags":
        return V.tags
    return V.text


_NULL_TOKENS = frozenset({"", "NULL", "null", "Null"})
TEXT, MONEY, QTY, TS, OTHER, TAGS = range(6)
_KIND_CODES = {
    "text": TEXT,
    "money": MONEY,
    "quantity": QTY,
    "date": TS,
    "datetime": TS,
    "tags": TAGS,
}


def _is_null(cell) -> bool:
    if cell is None:
        return True
    if isinstance(cell, str):
        if cell in _NULL_TOKENS:
            return True
        if cell[:1].isspace() or cell[-1:].isspace():
            return cell.strip().lower() in ("", "null")
    return False


class RowParser:
    """Turns raw rows into cost-line tuples (in :data:`LINE_COLUMNS` order) or errors.

    The hot loop of ingestion: conversions are specialised per kind, and attribution,
    the attribute key and the tags' JSON are cached per distinct raw attribute set.
    """

    CACHE_LIMIT = 20_000

    def __init__(self, schema, *, source_id, run_id, attributor, requested_period, errors):
        self.plan = [
            (
                idx,
                column,
                fname,
                kind.endswith("!"),
                _KIND_CODES.get(kind.rstrip("!"), OTHER),
                _converter(kind, column),
            )
            for idx, column, fname, kind in schema.columns
        ]
        index = {fname: idx for idx, _, fname, _ in schema.columns}
        self.attr_idx = [
            index.get(f)
            for f in (
                "billing_account_id",
                "sub_account_id",
                "resource_id",
                "service_name",
                "region_id",
                "tags",
            )
        ]
        self.width = None
        self.version_column = schema.version_column
        self.source_id = source_id
        self.run_id = run_id
        self.attributor = attributor
        self.requested_period = requested_period
        self.errors = errors
        self.sqlite = connection.vendor == "sqlite"
        self.billed_total = Decimal(0)
        self.periods: set[dt.date] = set()
        self._attr_cache: dict = {}
        self._ts_text: dict = {}

    def attribution_for(self, acct, sub, rid, svc, region, tags_cell, tags=None):
        """(attr key, outcome, tags JSON) for one attribute set, cached per raw tags cell.

        ``tags``: the parsed tags, or ``None`` to parse ``tags_cell`` here (the columnar
        path; a null cell means no tags). Returns ``None`` if the tags do not parse.
        """
        cache_key = (acct, sub, rid, svc, region, tags_cell)
        hit = self._attr_cache.get(cache_key)
        if hit is None:
            if tags is None:
                if tags_cell is None or _is_null(tags_cell):
                    tags = {}
                else:
                    try:
                        tags = V.tags(tags_cell)
                    except V.Bad:
                        return None
            attrs = LineAttrs(acct, sub, rid, svc, region, tags)
            hit = (
                attr_key(attrs),
                self.attributor.attribute(attrs),
                json.dumps(tags, separators=(",", ":"), default=str),
            )
            if len(self._attr_cache) >= self.CACHE_LIMIT:
                self._attr_cache.clear()
            self._attr_cache[cache_key] = hit
        return hit

    def _attribution(self, values: dict, tags: dict, raw: list):
        i = self.attr_idx[5]
        return self.attribution_for(
            values["billing_account_id"],
            values["sub_account_id"],
            values["resource_id"],
            values["service_name"],
            values["region_id"],
            raw[i] if i is not None else None,
            tags,
        )

    def _ts_db(self, value: dt.datetime):
        if not self.sqlite:
            return value
        hit = self._ts_text.get(value)
        if hit is None:
            hit = value.replace(tzinfo=None).isoformat(" ")
            if len(self._ts_text) > 100_000:
                self._ts_text.clear()
            self._ts_text[value] = hit
        return hit

    def parse(self, raw: list, row_no: int) -> tuple | None:
        if self.width is not None and len(raw) != self.width:
            self.errors.add(
                row_no, "(row)", f"row has {len(raw)} fields; the header has {self.width}"
            )
            return None
        values = dict(_DEFAULTS)
        tags: dict = {}
        ok = True
        for idx, column, fname, required, code, convert in self.plan:
            cell = raw[idx]
            if _is_null(cell):
                if required:
                    self.errors.add(row_no, column, "missing value in a mandatory column")
                    ok = False
                continue
            if code == TEXT and cell.__class__ is str:
                values[fname] = cell
                continue
            try:
                value = convert(cell)
            except V.Bad as exc:
                self.errors.add(row_no, column, str(exc))
                ok = False
                continue
            if code == TAGS:
                tags = value
            else:
                values[fname] = value
        if self.version_column is not None:
            version = str(raw[self.version_column]).strip()
            if version and version not in VERSIONS:
                self.errors.add(row_no, "FocusVersion", f"unknown FOCUS version {version!r}")
                ok = False
        if not ok:
            return None
        period = values["billing_period_start"].date()
        if self.requested_period is not None and period.replace(day=1) != self.requested_period:
            self.errors.add(
                row_no,
                "BillingPeriodStart",
                f"billing period {period:%Y-%m} is not the requested {self.requested_period:%Y-%m}",
            )
            return None
        cps, cpe = values["charge_period_start"], values["charge_period_end"]
        if cpe < cps:
            self.errors.add(row_no, "ChargePeriodEnd", "ends before ChargePeriodStart")
            return None
        key, outcome, tags_json = self._attribution(values, tags, raw)
        self.billed_total += values["billed_cost"]
        self.periods.add(period)
        return (
            self.source_id,
            self.run_id,
            period,
            values["billing_period_end"].date(),
            self._ts_db(cps),
            self._ts_db(cpe),
            *[values[f] for f in TEXT_FIELDS],
            *[values[f] for f in NUMBER_FIELDS],
            tags_json,
            key,
            outcome.allocation,
            outcome.team_id,
            outcome.service,
            outcome.project,
            outcome.rule_id,
        )


def _write_batch(rows: list[tuple]) -> None:
    cols = ", ".join(LINE_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY costs_costline ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(LINE_COLUMNS))
            prepared = [tuple(str(v) if isinstance(v, Decimal) else v for v in row) for row in rows]
            cursor.executemany(
                f"INSERT INTO costs_costline ({cols}) VALUES ({marks})",  # noqa: S608
                prepared,
            )


def replace_previous(*, source_id: int, run_id: int, periods: list[dt.date]) -> int:
    """Delete the lines of (source, period) that this run did not load."""
    if not periods:
        return 0
    marks = ", ".join(["%s"] * len(periods))
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM costs_costline WHERE source_id = %s AND import_run_id <> %s "  # noqa: S608
            f"AND billing_period_start IN ({marks})",
            [source_id, run_id, *periods],
        )
        return cursor.rowcount


# The columnar fast path (PostgreSQL only); tests switch it off to compare with the row path.
COLUMNAR = True


class _CsvCopy:
    """One ``COPY costs_costline ... FROM STDIN (FORMAT csv)`` kept open across batches.

    Two threads work behind the caller: an encoder turns each queued batch into CSV
    (Arrow, GIL released) and a sender streams the encoded bytes to PostgreSQL, so the
    server never waits for the encoding of its next batch while the caller converts the
    one after. Each queue holds one batch, so at most four converted batches are in flight
    (queued and being encoded, encoded and being sent): memory stays bounded. It is closed
    before any other statement on the connection (a new month's partition, rows from the
    row parser) and reopened on the next write.
    """

    QUEUE = 1

    def __init__(self):
        self._stack = None
        self._queue = None
        self._threads: list[threading.Thread] = []
        self._error: BaseException | None = None

    def _open(self) -> None:
        self._stack = contextlib.ExitStack()
        cursor = self._stack.enter_context(connection.cursor()).cursor
        cols = ", ".join(LINE_COLUMNS)
        copy = self._stack.enter_context(
            cursor.copy(f"COPY costs_costline ({cols}) FROM STDIN (FORMAT csv)")
        )
        self._queue = queue.Queue(maxsize=self.QUEUE)
        encoded: queue.Queue = queue.Queue(maxsize=self.QUEUE)
        self._error = None

        def encode() -> None:
            while (data := self._queue.get()) is not None:
                if self._error is None:
                    try:
                        encoded.put(data() if callable(data) else data)
                    except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                        self._error = exc
            encoded.put(None)

        def send() -> None:
            while (data := encoded.get()) is not None:
                if self._error is None:
                    try:
                        copy.write(data)
                    except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                        self._error = exc

        self._threads = [
            threading.Thread(target=encode, name="costs-encode", daemon=True),
            threading.Thread(target=send, name="costs-copy", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def write(self, data) -> None:
        """Queue ``data``: bytes, or a function returning bytes (run in the encoder thread)."""
        if self._stack is None:
            self._open()
        if self._error is not None:
            self.close()
        self._queue.put(data)

    def close(self) -> None:
        if self._stack is None:
            return
        self._queue.put(None)
        for thread in self._threads:
            thread.join()
        stack, self._stack, self._threads, self._queue = self._stack, None, [], None
        error, self._error = self._error, None
        if error is not None:
            with contextlib.suppress(Exception):
                stack.__exit__(type(error), error, error.__traceback__)
            raise error
        stack.close()


def _write_columnar(stream: _CsvCopy, table, *, source_id: int, run_id: int) -> None:
    """Send one converted Arrow batch (as CSV) down the open COPY.

    The CSV is encoded in the stream's encoder thread (Arrow releases the GIL),
    overlapping the conversion of the next batch and the sending of the previous one.
    """
    from . import columnar

    stream.write(functools.partial(columnar.to_csv, table, source_id=source_id, run_id=run_id))


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
) -> LoadResult:
    """Must run inside a transaction; raises :class:`ImportRefused` on any bad input.

    On PostgreSQL the columnar path (:mod:`costs.ingest.columnar`) runs first inside a
    savepoint; if pyarrow reads the file differently from the csv module it is rolled back
    and the row path reads the whole file instead, so results never depend on the path.
    """
    from costs.rollups import rebuild_rollups

    from . import columnar

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if connection.vendor == "postgresql":
        # The import is idempotent and re-runnable (it replaces its (source, period) whole),
        # so its commit need not wait for the WAL flush: after a crash it is either all there
        # or not there at all, and the run is simply imported again. Lasts to the commit.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
    try:
        reader = Reader(path, **({"batch_rows": batch_rows} if batch_rows else {}))
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
