"""Scrape-time series of FOCUS ingestion (registered with ``portal.core.metrics``).

Totals over the import runs the database keeps: rows loaded and rejected, bytes of the files
that were imported, runs by state, failed runs (a counter: ``failed`` is final) and when the
last run succeeded or failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Max, Sum
from prometheus_client.core import CounterMetricFamily, Metric

from portal.core.metrics import gauge, register_collector

from .models import ImportRun


def collect_ingestion() -> Iterable[Metric]:
    by_status: dict[str, dict[str, Any]] = {
        row["status"]: dict(row)
        for row in ImportRun.objects.values("status").annotate(
            n=Count("pk"),
            loaded=Sum("rows_loaded"),
            rejected=Sum("rows_rejected"),
            size=Sum("file_size"),
            last=Max("finished_at"),
        )
    }
    empty: dict[str, Any] = {}
    ok = by_status.get(ImportRun.Status.SUCCEEDED, empty)
    failed = by_status.get(ImportRun.Status.FAILED, empty)
    rows = CounterMetricFamily(
        "tollgate_ingest_rows",
        "Cost rows read by successful imports, by outcome.",
        labels=["outcome"],
    )
    rows.add_metric(["loaded"], ok.get("loaded") or 0)
    rows.add_metric(["rejected"], ok.get("rejected") or 0)
    size = CounterMetricFamily(
        "tollgate_ingest_bytes", "Bytes of the FOCUS files imported successfully."
    )
    size.add_metric([], ok.get("size") or 0)
    failures = CounterMetricFamily("tollgate_ingest_failed_runs", "Imports that failed.")
    failures.add_metric([], failed.get("n") or 0)
    runs = gauge("tollgate_ingest_runs", "Import runs by state.", ["status"])
    for status in ImportRun.Status.values:
        runs.add_metric([status], by_status.get(status, empty).get("n") or 0)
    out: list[Metric] = [rows, size, failures, runs]
    for name, row in (("success", ok), ("failure", failed)):
        if row.get("last") is not None:
            last = gauge(
                f"tollgate_ingest_last_{name}_timestamp_seconds",
                f"When the last import ended in {name} (Unix time).",
            )
            last.add_metric([], row["last"].timestamp())
            out.append(last)
    return out


register_collector("costs.ingestion", collect_ingestion)
