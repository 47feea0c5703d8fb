"""Celery entry points of access patterns (queue ``reports``): take ids, call one service."""

from __future__ import annotations

import logging

from celery import shared_task

from portal.core.locks import advisory_lock

logger = logging.getLogger(__name__)


@shared_task(name="patterns.tasks.run_mining", ignore_result=True, acks_late=True)
def run_mining(run_id: int) -> None:
    from .services import mining_run_execute

    mining_run_execute(run_id=run_id)


@shared_task(name="patterns.tasks.sweep_mining_runs", ignore_result=True)
def sweep_mining_runs() -> None:
    from .services import mining_runs_sweep

    with advisory_lock("patterns.sweep_mining_runs") as acquired:
        if not acquired:
            logger.info("sweep_mining_runs already running elsewhere; skipped")
            return
        mining_runs_sweep()
