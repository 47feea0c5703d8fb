"""Celery entry point: the on-call sweep (every minute, under an advisory lock)."""

from __future__ import annotations

import logging

from celery import shared_task

from portal.core.locks import advisory_lock

logger = logging.getLogger(__name__)


@shared_task(name="oncall.tasks.sweep_oncall", ignore_result=True, queue="sync")
def sweep_oncall() -> None:
    from .services import oncall_sweep

    with advisory_lock("oncall.sweep") as acquired:
        if not acquired:
            return
        logger.info("on-call sweep", extra={"counts": oncall_sweep()})
