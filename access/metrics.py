"""Scrape-time series of provisioning (registered with ``portal.core.metrics``).

Sync jobs by state, the age of the oldest pending job (a stuck outbox shows here first), and
the drift the last reconciliation of each service found. Services are a catalog, so the
``service`` label is bounded.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Min
from django.utils import timezone
from prometheus_client.core import Metric

from portal.core.metrics import gauge, register_collector

from .models import SyncJob
from .sync import selectors


def collect_sync() -> Iterable[Metric]:
    jobs = gauge("tollgate_sync_jobs", "Provisioning jobs by state.", ["status"])
    for status, n in sorted(selectors.job_counts().items()):
        jobs.add_metric([status], n)
    oldest = SyncJob.objects.filter(status=SyncJob.Status.PENDING).aggregate(t=Min("created_at"))
    age = gauge(
        "tollgate_sync_job_oldest_pending_age_seconds",
        "Age of the oldest pending provisioning job (0 when none is pending).",
    )
    age.add_metric(
        [], (timezone.now() - oldest["t"]).total_seconds() if oldest["t"] is not None else 0.0
    )
    drift = gauge(
        "tollgate_drift_items",
        "Drift found by the last reconciliation of each service.",
        ["service", "kind"],
    )
    for run in selectors.org_drift():
        for kind, n in (
            ("missing", run.missing),
            ("unmanaged", run.unmanaged),
            ("wrong_level", run.wrong_level),
        ):
            drift.add_metric([run.service.slug, kind], n)
    return [jobs, age, drift]


register_collector("access.sync", collect_sync)
