"""The FOCUS export on PostgreSQL: the database formats the rows (``COPY … TO STDOUT``).

The allocation statement (:func:`costs.chargeback.allocation.allocation_sql`) is wrapped in
a ``SELECT`` that names the FOCUS columns, formats timestamps and fixes each decimal's
scale; ``COPY`` streams it as CSV in blocks, so Python only moves bytes and memory stays
flat for any month. For Parquet, pyarrow's streaming CSV reader turns those blocks into
typed record batches that a ``ParquetWriter`` writes one row group at a time.

For a CSV meant for people (a spreadsheet), text cells that a spreadsheet would run as a
formula get a leading apostrophe, as :func:`portal.core.csvsafe.neutralise` does; numbers
stay numbers. Parquet is not opened by spreadsheets and carries the text as it is.
"""

from __future__ import annotations

import os
import threading
from typing import IO, Any

from django.db import connection, transaction

from .allocation import Scope, allocation_sql, month_periods, split_weights
from .focus_export import _LINE, COLUMNS, KINDS

_SCALE = {"money": "numeric(38, 12)", "cents": "numeric(38, 2)", "quantity": "numeric(38, 15)"}
# SQL literals (constants: no placeholder, no quote but the doubled one)
_NUMBER = r"'^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$'"
_TRIGGER = "('''', '=', '+', '-', '@', E'\\t', E'\\r')"  # SQL: a quote, = + - @, tab, CR


def _text(expr: str, safe: bool) -> str:
    if not safe:
        return f"COALESCE({expr}, '')"
    return (
        f"(CASE WHEN left({expr}, 1) IN {_TRIGGER} AND {expr} !~ {_NUMBER} "
        f"THEN '''' || {expr} ELSE COALESCE({expr}, '') END)"
    )


def _expr(column: str, safe: bool) -> str:
    kind = KINDS.get(column, "text")
    special = {
        "BilledCost": "a.allocated_billed_exact",
        "EffectiveCost": "a.allocated_effective_exact",
        "ListCost": "CASE WHEN a.list_cost IS NULL THEN NULL ELSE a.allocated_list_exact END",
        "ContractedCost": "trunc(a.contracted_cost * a.share, 12)",
        "x_Team": "t.slug",
        "x_AllocationMethod": (
            "CASE WHEN a.alloc_team_id IS NULL THEN 'unallocated' ELSE a.allocation END"
        ),
        "x_AllocationRule": "r.name",
        "x_AllocationShare": "round(a.share, 18)",
        "x_AllocatedBilledCost": "a.allocated_billed",
        "x_AllocatedEffectiveCost": "a.allocated_effective",
        "x_LineBilledCost": "a.billed_cost",
        "x_LineEffectiveCost": "a.effective_cost",
        "x_LineId": "a.id",
        "x_AttributedService": "a.attributed_service",
        "x_Project": "a.project",
    }
    if column in special:
        expr = special[column]
    else:
        field = _LINE[column][0]
        expr = "''" if field is None else f"a.{field}"
    if kind in _SCALE:
        return f"({expr})::{_SCALE[kind]}"
    if kind == "date":
        return f"to_char({expr}, 'YYYY-MM-DD\"T00:00:00Z\"')"
    if kind == "datetime":
        return f"to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    if kind in ("int", "share"):
        return expr
    return _text(expr, safe)


def export_sql(scope: Scope, *, safe: bool) -> tuple[str, list[Any]] | None:
    periods = month_periods(scope)
    if not periods:
        return None
    inner, params = allocation_sql(scope, periods, split_weights(periods), ordered=False)
    select = ", ".join(f'{_expr(c, safe)} AS "{c}"' for c in COLUMNS)
    sql = (
        f"SELECT {select} FROM ({inner}) a "  # noqa: S608 - column names and placeholders only
        "LEFT JOIN accounts_team t ON t.id = a.alloc_team_id "
        "LEFT JOIN costs_attributionrule r ON r.id = a.rule_id"
    )
    return sql, params


def _copy_blocks(scope: Scope, *, safe: bool, header: bool):
    """CSV blocks (bytes) of the scope's export, streamed by COPY."""
    built = export_sql(scope, safe=safe)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # the lines have no statistics right after an import: the planner expects one row
        # and picks nested loops (minutes at 1M rows); hash joins are right at every size
        cursor.execute("SET LOCAL enable_nestloop = off")
        if built is None:
            if header:
                yield (",".join(COLUMNS) + "\n").encode()
            return
        sql, params = built
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        statement = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER {str(header).lower()})"
        with raw.copy(statement, params) as copy:
            for block in copy:
                yield bytes(block)


def copy_csv(scope: Scope, out: IO[bytes]) -> None:
    """Write the CSV to ``out``."""
    for block in _copy_blocks(scope, safe=True, header=True):
        out.write(block)


def csv_stream(scope: Scope):
    """The CSV as byte blocks, for a streaming HTTP response."""
    yield from _copy_blocks(scope, safe=True, header=True)


def copy_parquet(scope: Scope, path: str, *, block_bytes: int = 16 << 20) -> int:
    """Write the Parquet file at ``path``; the number of rows.

    This thread reads COPY's blocks (Django's connection belongs to it) and writes them
    into a pipe; a worker thread, which never touches Django, parses the pipe with
    pyarrow's streaming CSV reader and writes one row group per block.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from .focus_export import _arrow_schema

    schema = _arrow_schema()
    read_fd, write_fd = os.pipe()
    outcome: dict[str, Any] = {"rows": 0}

    def consume() -> None:
        try:
            with open(read_fd, "rb") as pipe:
                reader = pacsv.open_csv(
                    pa.PythonFile(pipe, mode="r"),
                    read_options=pacsv.ReadOptions(use_threads=False, block_size=block_bytes),
                    convert_options=pacsv.ConvertOptions(
                        column_types={f.name: f.type for f in schema},
                        null_values=[""],
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=False,
                    ),
                )
                with pq.ParquetWriter(path, schema, compression="zstd") as writer:
                    for batch in reader:
                        writer.write_batch(batch)
                        outcome["rows"] += batch.num_rows
                    if outcome["rows"] == 0:
                        writer.write_table(pa.Table.from_pylist([], schema=schema))
        except BaseException as exc:  # handed to the calling thread below
            outcome["error"] = exc

    worker = threading.Thread(target=consume, name="focus-parquet", daemon=True)
    worker.start()
    try:
        with open(write_fd, "wb") as pipe:
            for block in _copy_blocks(scope, safe=False, header=True):
                pipe.write(block)
    except BrokenPipeError:
        pass  # the reader stopped: its error is raised below
    finally:
        worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return int(outcome["rows"])
