"""Celery entry points of access reviews."""

from __future__ import annotations

from celery import shared_task

from portal.core.locks import advisory_lock

from . import services


@shared_task(name="reviews.tasks.reviews_sweep")
def reviews_sweep() -> None:
    """Start due campaigns, remind, escalate, apply deadlines and close (never overlapping)."""
    with advisory_lock("reviews.sweep") as acquired:
        if acquired:
            services.reviews_sweep()
