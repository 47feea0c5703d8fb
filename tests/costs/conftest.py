"""Helpers for the costs tests: the FOCUS sample, derived files, an import helper."""

from __future__ import annotations

import csv
import gzip
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.db.models import Sum

from audit.models import AuditEvent
from costs import services
from costs.models import CostDaily, CostLine, ImportRun
from portal.core.actors import COSTS

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "focus10_sample_multicloud_1000.csv"


def read_sample() -> tuple[list[str], list[list[str]]]:
    with open(SAMPLE, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def raw_billed_total(path: Path) -> Decimal:
    """The billed total computed straight from the file (independent of the importer)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as fh:
        return sum((Decimal(r["BilledCost"]) for r in csv.DictReader(fh)), Decimal(0))


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, gz: bool = False) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def do_import(path, source="sample", period=None, focus_version=None, actor=COSTS):
    run = services.import_run_create(
        actor=actor,
        source_name=source,
        file_name=str(path),
        file_path=str(path),
        period=period,
        focus_version=focus_version,
    )
    return services.import_run_execute(run_id=run.pk, actor=actor)


def snapshot() -> dict:
    """Everything an import may change, to prove a refused one changed nothing."""
    return {
        "lines": sorted(
            CostLine.objects.values_list("id", "billed_cost", "import_run_id", "team_id")
        ),
        "daily": CostDaily.objects.aggregate(s=Sum("billed_cost"), n=Sum("lines")),
        "daily_rows": CostDaily.objects.count(),
        "audit": AuditEvent.objects.count(),
        "succeeded": ImportRun.objects.filter(status="succeeded").count(),
    }


@pytest.fixture
def sample_path():
    return SAMPLE
