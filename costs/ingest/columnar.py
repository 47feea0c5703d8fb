"""The columnar fast path of ingestion (PostgreSQL): whole columns checked at once with pyarrow.

The row parser (:class:`costs.ingest.rows.RowParser`) stays the authority on what a
value means. This module only handles the values it can prove the row parser would accept
and convert to the same thing; every row with anything else in it (an error, or a messy
form this module does not recognise, such as a number with an exponent) is *flagged* and
handed to the row parser, which accepts it or reports row, column and reason exactly as
before. So for any file the stored lines and the error list are the same as the row path's.

Per batch (all columns read as strings):

* nulls: a cell is null exactly when the row parser's ``_is_null`` says so (``""`` /
  ``NULL`` / ``null`` / ``Null``, or any case when the cell has surrounding whitespace;
  Arrow's ``utf8_trim_whitespace`` strips exactly what ``str.strip`` strips);
* money and quantities: a plain decimal (no exponent, at most 12 / 15 decimals, below
  1e18 / 1e23) is passed to PostgreSQL as text, which stores the same ``numeric`` as the
  row parser's quantised ``Decimal``; everything else is flagged;
* timestamps: ``YYYY-MM-DD``, ``YYYY-MM-DD[ Tt]HH:MM[:SS[.ffffff]]`` with an optional
  ``Z``/`` UTC``/``±HH:MM`` are cast by Arrow (which refuses impossible dates); if a cast
  fails, every row of that form in the batch is flagged;
* enums, service category and currency: trimmed, looked up case-insensitively;
* attribution, the attribute key and the tags' JSON: computed once per distinct
  (account, sub account, resource, service, region, tags) combination of the batch by the
  row parser's own (cached) function, and spread back with ``take``.

The converted batch goes to PostgreSQL as CSV (``pyarrow.csv.write_csv``) through
psycopg 3 ``COPY ... FROM STDIN``. A file pyarrow reads differently from Python's csv
module (a row of the wrong width, an empty line, bad UTF-8) raises :class:`Abandon`; the
caller then rolls back to a savepoint and runs the row path over the whole file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from costs.attribution import UNALLOCATED_OUTCOME

from .focus import ENUMS, SERVICE_CATEGORIES, VERSIONS
from .readers import Bounded

BLOCK_BYTES = 1 << 20
BATCH_ROWS = 10_000
SEP = "\x1f"
NULL_TOKENS = pa.array(["", "NULL", "null", "Null"])
MONEY_RE = r"^[+-]?(\d{1,18}(\.\d{0,12})?|\.\d{1,12})$"
QTY_RE = r"^[+-]?(\d{1,23}(\.\d{0,15})?|\.\d{1,15})$"
_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"[ Tt]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?"
NAIVE_TS_RE = f"^{_DATE}({_TIME})?$"
ZONED_TS_RE = f"^{_DATE}{_TIME}(Z|z| UTC|[+-]\\d{{2}}:\\d{{2}})$"
CURRENCY_RE = r"^[A-Za-z]{3}$"
TS_TYPE = pa.timestamp("us", "UTC")
ATTR_FIELDS = ("billing_account_id", "sub_account_id", "resource_id", "service_name", "region_id")
# Parquet column types whose string cast is the text the row parser would see
_PARQUET_OK = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer)


class Abandon(Exception):
    """The file cannot take the fast path; roll back and use the row path."""


@dataclass
class ArrowBatch:
    columns: dict[int, pa.Array]  # file column index -> string array
    raw: dict[int, pa.Array]  # file column index -> the original array (typed for Parquet)
    first_row: int
    bytes_done: int

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def parquet_supported(parquet_file, indices: list[int]) -> bool:
    schema = parquet_file.schema_arrow
    return all(any(ok(schema.field(i).type) for ok in _PARQUET_OK) for i in indices)


def arrow_batches(
    path: str,
    fmt: str,
    *,
    width: int,
    indices: list[int],
    batch_rows: int,
    total_bytes: int,
    bounded: Callable[[Any], Bounded] | None = None,
) -> Iterator[ArrowBatch]:
    """Stream the needed columns as string arrays, at most ``batch_rows`` rows a batch.

    ``bounded`` wraps the decompressing stream of a gzipped file so that its decompressed
    bytes are counted and refused past the limit (:class:`~.readers.TooLarge`)."""
    if fmt == "parquet":
        yield from _parquet_batches(path, indices, batch_rows, total_bytes)
        return
    invalid: list = []

    def on_invalid(row) -> str:
        invalid.append(row)
        return "skip"

    names = [f"c{i}" for i in range(width)]
    raw_file = pa.OSFile(path, "r")
    stream: Any = raw_file
    if fmt == "csv.gz":
        stream = pa.CompressedInputStream(raw_file, "gzip")
        if bounded is not None:
            stream = bounded(stream)
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=BLOCK_BYTES, use_threads=True
            ),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={names[i]: pa.string() for i in indices},
                include_columns=[names[i] for i in indices],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
            ),
        )
        row_no = 1
        pending: list = []
        buffered = 0
        while True:
            try:
                record_batch = reader.read_next_batch()
            except StopIteration:
                record_batch = None
            if invalid:
                raise Abandon("a row pyarrow could not read as the header's width")
            if record_batch is not None:
                pending.append(record_batch)
                buffered += record_batch.num_rows
                if buffered < batch_rows:
                    continue
            if not buffered:
                break
            table = pa.Table.from_batches(pending).combine_chunks()
            done = min(raw_file.tell(), total_bytes)
            whole = buffered - buffered % batch_rows if record_batch is not None else buffered
            for start in range(0, whole, batch_rows):
                part = table.slice(start, min(batch_rows, whole - start))
                cols = {i: part.column(k).chunk(0) for k, i in enumerate(indices)}
                yield ArrowBatch(cols, cols, row_no, done)
                row_no += part.num_rows
            rest = table.slice(whole)
            pending = rest.to_batches() if rest.num_rows else []
            buffered = rest.num_rows
            if record_batch is None:
                break
        if invalid:
            raise Abandon("a row pyarrow could not read as the header's width")
    except (pa.ArrowInvalid, pa.ArrowException, UnicodeDecodeError, OSError) as exc:
        raise Abandon(str(exc)) from exc
    finally:
        stream.close()
        raw_file.close()


def _parquet_batches(path, indices, batch_rows, total_bytes) -> Iterator[ArrowBatch]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    row_no = 1
    groups = max(pf.num_row_groups, 1)
    done = 0
    for record_batch in pf.iter_batches(
        batch_size=batch_rows, columns=[names[i] for i in indices], use_threads=True
    ):
        raw = {i: record_batch.column(k) for k, i in enumerate(indices)}
        cols = {i: pc.cast(a, pa.string()) for i, a in raw.items()}
        done = min(groups, done + 1)
        yield ArrowBatch(cols, raw, row_no, total_bytes * done // groups)
        row_no += record_batch.num_rows


# --- conversion ----------------------------------------------------------------------------


def _lookup(values: tuple[str, ...]) -> tuple[pa.Array, pa.Array]:
    return pa.array([v.lower() for v in values]), pa.array(list(values))


_ENUM_TABLES = {column: _lookup(values) for column, values in ENUMS.items()}
_CATEGORY_TABLE = _lookup(SERVICE_CATEGORIES)
_VERSION_SET = pa.array(["", *VERSIONS])


class Converter:
    """Converts one batch; rows it cannot vouch for are flagged for the row parser."""

    def __init__(self, schema, parser, *, requested_period: dt.date | None):
        self.plan = [(idx, column, fname, kind) for idx, column, fname, kind in schema.columns]
        self.version_column = schema.version_column
        self.parser = parser
        self.requested_period = requested_period
        self.index = {fname: idx for idx, _, fname, _ in schema.columns}

    @property
    def indices(self) -> list[int]:
        out = sorted({idx for idx, *_ in self.plan})
        if self.version_column is not None and self.version_column not in out:
            out.append(self.version_column)
        return out

    def convert(self, batch: ArrowBatch) -> tuple[pa.Table | None, list[int], Decimal, set]:
        """(the table of good rows in LINE_COLUMNS order, flagged row offsets, billed, periods)."""
        from .rows import NUMBER_FIELDS, TEXT_FIELDS

        n = len(batch)
        flag = pa.array([False] * n) if n else pa.array([], pa.bool_())
        out: dict[str, pa.Array] = {}
        str_type = pa.string()

        def add_flag(mask) -> None:
            nonlocal flag
            flag = pc.or_(flag, pc.fill_null(mask, True))

        for idx, column, fname, kind in self.plan:
            raw = pc.fill_null(batch.columns[idx], "")
            trimmed = pc.utf8_trim_whitespace(raw)
            null = pc.is_in(raw, value_set=NULL_TOKENS)
            padded = pc.not_equal(trimmed, raw)
            if pc.any(padded).as_py():  # only padded cells can be nulls in another case
                null = pc.or_(
                    null,
                    pc.and_(
                        padded,
                        pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(["", "null"])),
                    ),
                )
            base = kind.rstrip("!")
            required = kind.endswith("!")
            if required:
                add_flag(null)
            if base == "text":
                out[fname] = pc.if_else(null, "", raw)
            elif base in ("money", "quantity"):
                ok = pc.match_substring_regex(trimmed, MONEY_RE if base == "money" else QTY_RE)
                add_flag(pc.and_(pc.invert(null), pc.invert(ok)))
                out[fname] = pc.if_else(
                    pc.or_(null, pc.invert(ok)), pa.scalar(None, str_type), trimmed
                )
            elif base in ("date", "datetime"):
                out[fname] = self._timestamps(trimmed, null, add_flag)
            elif base == "currency":
                ok = pc.match_substring_regex(trimmed, CURRENCY_RE)
                add_flag(pc.and_(pc.invert(null), pc.invert(ok)))
                out[fname] = pc.if_else(null, "", pc.utf8_upper(trimmed))
            elif base == "enum":
                lower, spelled = _ENUM_TABLES[column]
                pos = pc.index_in(pc.utf8_lower(trimmed), value_set=lower)
                add_flag(pc.and_(pc.invert(null), pc.is_null(pos)))
                out[fname] = pc.if_else(null, "", pc.fill_null(pc.take(spelled, pos), ""))
            elif base == "category":
                lower, spelled = _CATEGORY_TABLE
                pos = pc.index_in(pc.utf8_lower(trimmed), value_set=lower)
                known = pc.take(spelled, pos)
                out[fname] = pc.if_else(null, "", pc.coalesce(known, trimmed))
            elif base == "tags":
                out["__tags_raw"] = raw
                out["__tags_null"] = null
            else:  # pragma: no cover - every kind is listed above
                raise Abandon(f"no columnar conversion for {kind}")
        if self.version_column is not None:
            version = pc.utf8_trim_whitespace(pc.fill_null(batch.columns[self.version_column], ""))
            add_flag(pc.invert(pc.is_in(version, value_set=_VERSION_SET)))

        bps_ts, bpe_ts = out["billing_period_start"], out["billing_period_end"]
        bps = pc.cast(bps_ts, pa.date32())
        bpe = pc.cast(bpe_ts, pa.date32())
        if self.requested_period is not None:
            rp = self.requested_period
            add_flag(
                pc.or_(
                    pc.not_equal(pc.year(bps_ts), rp.year), pc.not_equal(pc.month(bps_ts), rp.month)
                )
            )
        add_flag(pc.less(out["charge_period_end"], out["charge_period_start"]))

        attrs = self._attribution(out, n, add_flag)
        for fname in TEXT_FIELDS + NUMBER_FIELDS:
            if fname not in out:
                out[fname] = pa.nulls(n, str_type) if fname in NUMBER_FIELDS else _const(n, "")

        keep = pc.invert(flag)
        flagged = pc.indices_nonzero(flag).to_pylist()
        arrays = {
            "billing_period_start": bps,
            "billing_period_end": bpe,
            "charge_period_start": out["charge_period_start"],
            "charge_period_end": out["charge_period_end"],
            **{f: out[f] for f in TEXT_FIELDS},
            **{f: out[f] for f in NUMBER_FIELDS},
            **attrs,
        }
        table = pa.table(arrays)
        if flagged:
            table = table.filter(keep)
        if table.num_rows == 0:
            return None, flagged, Decimal(0), set()
        billed = pc.sum(
            pc.cast(pc.fill_null(table.column("billed_cost"), "0"), pa.decimal128(38, 12))
        ).as_py()
        periods = set(pc.unique(table.column("billing_period_start")).to_pylist())
        return table, flagged, billed or Decimal(0), periods

    def _timestamps(self, trimmed, null, add_flag):
        naive = pc.match_substring_regex(trimmed, NAIVE_TS_RE)
        rest = pc.and_(pc.invert(null), pc.invert(naive))
        if pc.any(rest).as_py():  # the second regex only when some value is not naive
            zoned = pc.match_substring_regex(trimmed, ZONED_TS_RE)
            add_flag(pc.and_(rest, pc.invert(zoned)))
        else:
            zoned = pc.and_(naive, pc.invert(naive))  # all false
        result = pa.nulls(len(trimmed), TS_TYPE)
        naive_text = trimmed
        if pc.any(pc.match_substring(trimmed, "t")).as_py():  # a lower-case separator
            naive_text = pc.replace_substring_regex(trimmed, r"^(\d{4}-\d{2}-\d{2})t", r"\1T")
        for mask, text, target in (
            (naive, naive_text, pa.timestamp("us")),
            (zoned, None, TS_TYPE),
        ):
            if not pc.any(mask).as_py():
                continue
            if text is None:
                text = pc.replace_substring_regex(trimmed, r"^(\d{4}-\d{2}-\d{2})t", r"\1T")
                text = pc.replace_substring_regex(text, r"(Z|z| UTC)$", "+00:00")
            candidates = pc.if_else(mask, text, pa.scalar(None, pa.string()))
            try:
                cast = pc.cast(candidates, target)
            except pa.ArrowInvalid:  # an impossible date somewhere: the row parser says where
                add_flag(mask)
                continue
            if target != TS_TYPE:
                cast = pc.cast(cast, TS_TYPE)
            result = pc.if_else(mask, cast, result)
        return result

    def _attribution(self, out: dict, n: int, add_flag) -> dict[str, pa.Array]:
        tags_raw = out.pop("__tags_raw", None)
        tags_null = out.pop("__tags_null", None)
        parts = [out.get(f, _const(n, "")) for f in ATTR_FIELDS]
        parts.append(tags_raw if tags_raw is not None else _const(n, ""))
        joined = pc.binary_join_element_wise(*parts, SEP)
        # a separator inside a value would make the split ambiguous: flag those rows
        add_flag(pc.not_equal(pc.count_substring(joined, SEP), len(parts) - 1))
        encoded = pc.dictionary_encode(joined)
        combos = encoded.dictionary.to_pylist()
        if tags_null is not None:
            null_combo = pc.take(
                tags_null, pc.index_in(encoded.dictionary, value_set=joined)
            ).to_pylist()
        else:
            null_combo = [True] * len(combos)
        keys, allocations, teams, services, projects, rules, tags_json, bad = ([] for _ in range(8))
        for combo, tags_is_null in zip(combos, null_combo, strict=True):
            acct, sub, rid, svc, region, cell = combo.split(SEP)
            hit = self.parser.attribution_for(
                acct,
                sub,
                rid,
                svc,
                region,
                None if tags_raw is None else cell,
                {} if tags_is_null else None,
            )
            if hit is None:
                bad.append(True)
                hit = (0, UNALLOCATED_OUTCOME, "{}")
            else:
                bad.append(False)
            key, outcome, tj = hit
            keys.append(key)
            allocations.append(outcome.allocation)
            teams.append(outcome.team_id)
            services.append(outcome.service)
            projects.append(outcome.project)
            rules.append(outcome.rule_id)
            tags_json.append(tj)
        idx = encoded.indices
        if any(bad):
            add_flag(pc.take(pa.array(bad), idx))
        return {
            "tags": pc.take(pa.array(tags_json, pa.string()), idx),
            "attr_key": pc.take(pa.array(keys, pa.int64()), idx),
            "allocation": pc.take(pa.array(allocations, pa.string()), idx),
            "team_id": pc.take(pa.array(teams, pa.int64()), idx),
            "attributed_service": pc.take(pa.array(services, pa.string()), idx),
            "project": pc.take(pa.array(projects, pa.string()), idx),
            "rule_id": pc.take(pa.array(rules, pa.int64()), idx),
        }


def _const(n: int, value) -> pa.Array:
    return pc.fill_null(pa.nulls(n, pa.string()), value)


def to_csv(table: pa.Table, *, source_id: int, run_id: int) -> memoryview:
    """The table as CSV in :data:`costs.ingest.rows.LINE_COLUMNS` order."""
    n = table.num_rows
    for name in ("charge_period_start", "charge_period_end"):
        # Arrow formats zoned timestamps slowly (a zone lookup per value): format the UTC
        # wall time as naive text and mark it UTC explicitly ("...+00").
        i = table.schema.get_field_index(name)
        naive = pc.cast(pc.cast(table.column(i), pa.timestamp("us")), pa.string())
        table = table.set_column(i, name, pc.binary_join_element_wise(naive, "+00", ""))
    table = table.add_column(0, "import_run_id", pc.fill_null(pa.nulls(n, pa.int64()), run_id))
    table = table.add_column(0, "source_id", pc.fill_null(pa.nulls(n, pa.int64()), source_id))
    # straight into Arrow's memory, handed to psycopg without a copy into a bytes object
    buf = pa.BufferOutputStream()
    pacsv.write_csv(
        table,
        buf,
        write_options=pacsv.WriteOptions(
            include_header=False, quoting_style="all_valid", batch_size=8192
        ),
    )
    return memoryview(buf.getvalue())
