"""Celery entry points of standards as policy."""

from __future__ import annotations

from celery import shared_task

from portal.core.locks import advisory_lock

from . import services


@shared_task(name="standards.tasks.standards_scan")
def standards_scan() -> None:
    """Evaluate every standard over current data (never two scans at once)."""
    with advisory_lock("standards.scan") as acquired:
        if acquired:
            services.standards_scan()
