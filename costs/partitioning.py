"""Monthly partitions of ``costs_costline`` on PostgreSQL (a plain table on SQLite).

The approach, chosen as the simplest that keeps the Django model ordinary:

* Django's model keeps ``id`` (a ``BigAutoField``) as its primary key, so the ORM, admin
  and DRF work unchanged.
* On PostgreSQL the migration takes the ``CREATE TABLE`` that Django would write, moves the
  primary key to ``(id, billing_period_start)`` (PostgreSQL requires the partition key in
  every unique constraint) and adds ``PARTITION BY RANGE (billing_period_start)``. ``id``
  still comes from a single identity sequence, so it stays unique across partitions.
* A ``DEFAULT`` partition catches any month not yet created; writers call
  :func:`ensure_month_partitions` before loading a month, so real data lands in
  ``costs_costline_yYYYYmMM``. Dropping an old month is ``DROP TABLE`` of its partition.
* Indexes declared on the model are created on the parent (PostgreSQL cascades them to
  every partition, existing and future).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.db import connection, transaction

logger = logging.getLogger(__name__)
TABLE = "costs_costline"


def _month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    first = month.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return first, nxt


def create_costline_table(apps, schema_editor) -> None:
    model = apps.get_model("costs", "CostLine")
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.create_model(model)
        return
    sql, params = schema_editor.table_sql(model)
    assert " PRIMARY KEY" in sql, sql
    sql = sql.replace(" PRIMARY KEY", "", 1)
    assert sql.endswith(")"), sql
    sql = sql[:-1] + ', PRIMARY KEY ("id", "billing_period_start")) '
    sql += 'PARTITION BY RANGE ("billing_period_start")'
    schema_editor.execute(sql, params or None)
    schema_editor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")


def drop_costline_table(apps, schema_editor) -> None:
    schema_editor.execute(f"DROP TABLE IF EXISTS {TABLE} CASCADE")


def partition_name(month: dt.date) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def existing_partitions() -> set[str]:
    if connection.vendor != "postgresql":
        return set()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [TABLE],
        )
        return {row[0] for row in cur.fetchall()}


def ensure_month_partitions(months: Iterable[dt.date]) -> list[str]:
    """Create the monthly partitions for ``months`` that do not exist yet (PostgreSQL only).

    Safe inside a transaction. If the default partition already holds rows of that month,
    PostgreSQL refuses the new partition; the rows then stay in the default partition
    (still correct, only not pruned), and a warning is logged.
    """
    if connection.vendor != "postgresql":
        return []
    have = existing_partitions()
    created = []
    for month in sorted({m.replace(day=1) for m in months}):
        name = partition_name(month)
        if name in have:
            continue
        start, end = _month_bounds(month)
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {TABLE} "  # noqa: S608
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                )
            created.append(name)
        except Exception:  # noqa: BLE001 - rows for that month already in the default
            logger.warning("could not create partition %s; rows stay in the default", name)
    return created
