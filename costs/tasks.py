"""Celery entry points of the costs app (queue ``ingest``). Each takes ids and calls a service."""

from __future__ import annotations

import logging
import os
import shutil

from celery import shared_task
from django.conf import settings
from django.db import connection

from portal.core.actors import COSTS

from . import services
from .models import ImportRun

logger = logging.getLogger(__name__)
WATCH_SUFFIXES = (".csv", ".csv.gz", ".gz", ".parquet")


@shared_task(name="costs.tasks.import_run_task", ignore_result=True, acks_late=True)
def import_run_task(run_id: int) -> None:
    run = ImportRun.objects.filter(pk=run_id).first()
    if run is None:
        return
    services.import_run_execute(run_id=run_id, actor=run.created_by or services.SYSTEM)


@shared_task(name="costs.tasks.reattribute_task", ignore_result=True, acks_late=True)
def reattribute_task(run_id: int) -> None:
    services.reattribution_execute(run_id=run_id)


def _try_lock(key: int) -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [7302, key])
        return bool(cursor.fetchone()[0])


def _unlock(key: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [7302, key])


def watch_folder_once(folder: str | None = None) -> list[int]:
    """Import every FOCUS file dropped into the watched folder; returns the run ids.

    Layout: ``<folder>/<source-name>/<file>`` (a file directly in ``<folder>`` belongs to
    the source ``watched``). A file is moved to ``done/`` or ``failed/`` beside it after
    its import, so it is imported once. Files still being written (changed in the last
    ``COSTS_WATCH_SETTLE_SECONDS``) wait for the next scan.
    """
    import time

    folder = folder or str(settings.COSTS_WATCH_DIR)
    if not folder or not os.path.isdir(folder):
        return []
    settle = getattr(settings, "COSTS_WATCH_SETTLE_SECONDS", 5)
    run_ids: list[int] = []
    candidates: list[tuple[str, str]] = []
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if os.path.isdir(path) and entry not in ("done", "failed"):
            for name in sorted(os.listdir(path)):
                candidates.append((entry, os.path.join(path, name)))
        elif os.path.isfile(path):
            candidates.append(("watched", path))
    for source, path in candidates:
        if not os.path.isfile(path) or not path.lower().endswith(WATCH_SUFFIXES):
            continue
        if time.time() - os.path.getmtime(path) < settle:
            continue
        run = services.import_run_create(
            actor=COSTS,
            source_name=source,
            file_name=os.path.basename(path),
            file_path=path,
            origin=ImportRun.Origin.WATCHED,
        )
        run = services.import_run_execute(run_id=run.pk, actor=COSTS)
        outcome = "done" if run.status == ImportRun.Status.SUCCEEDED else "failed"
        target_dir = os.path.join(os.path.dirname(path), outcome)
        os.makedirs(target_dir, exist_ok=True)
        target = os.path.join(target_dir, f"{run.pk}_{os.path.basename(path)}")
        shutil.move(path, target)
        ImportRun.objects.filter(pk=run.pk).update(file_path=target)
        run_ids.append(run.pk)
    return run_ids


@shared_task(name="costs.tasks.watch_folder_scan", ignore_result=True)
def watch_folder_scan() -> None:
    """Beat task: scan the watched folder (an advisory lock keeps two scans apart)."""
    if not _try_lock(1):
        return
    try:
        watch_folder_once()
    finally:
        _unlock(1)
