"""Writing cost lines: batched ``COPY`` (or ``INSERT`` on SQLite), the open CSV ``COPY`` of
the columnar path with its encoder and sender threads, and the replacement of the previous
lines of a (source, period).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import queue
import threading
from decimal import Decimal

from django.db import connection

from .rows import LINE_COLUMNS


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
