"""Provisioning figures: job counts by status, drift per service, connector health."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from connectors.base import ConnectorError
from connectors.registry import get_connector

from ..models import SyncJob
from . import selectors


@dataclass(frozen=True)
class Health:
    connector: str
    ok: bool
    detail: str
    open_jobs: int
    failed_jobs: int


def connector_health(service) -> Health:
    """Configuration valid, plus how many of its jobs are open or failed (no network I/O)."""
    counts = {
        row["status"]: row["n"]
        for row in SyncJob.objects.filter(service=service).values("status").annotate(n=Count("pk"))
    }
    open_jobs = sum(counts.get(s, 0) for s in ("pending", "running", "waiting_manual"))
    failed = counts.get("failed", 0)
    if not service.connector:
        return Health("", True, "no connector: grants are active at once", 0, 0)
    try:
        description = get_connector(service.connector, service.connector_config).describe()
    except ConnectorError as exc:
        return Health(service.connector, False, exc.message, open_jobs, failed)
    ok = failed == 0
    detail = description.notes or ", ".join(r.name for r in description.resource_types)
    return Health(service.connector, ok, detail, open_jobs, failed)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def prometheus_text() -> str:
    lines = [
        "# HELP tollgate_sync_jobs Provisioning jobs by status.",
        "# TYPE tollgate_sync_jobs gauge",
    ]
    for status, n in sorted(selectors.job_counts().items()):
        lines.append(f'tollgate_sync_jobs{{status="{status}"}} {n}')
    lines += [
        "# HELP tollgate_drift_items Drift found by the last reconciliation of each service.",
        "# TYPE tollgate_drift_items gauge",
    ]
    for run in selectors.org_drift():
        slug = _label(run.service.slug)
        for kind, n in (
            ("missing", run.missing),
            ("unmanaged", run.unmanaged),
            ("wrong_level", run.wrong_level),
        ):
            lines.append(f'tollgate_drift_items{{service="{slug}",kind="{kind}"}} {n}')
    return "\n".join(lines) + "\n"
