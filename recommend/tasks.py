"""Celery entry points of approval recommendations (P5)."""

from __future__ import annotations

from celery import shared_task

from portal.core.actors import RECOMMEND
from portal.core.locks import advisory_lock

from . import services


@shared_task(name="recommend.tasks.retrain_model")
def retrain_model() -> None:
    """Retrain on every human decision so far (never two runs at once)."""
    with advisory_lock("recommend.retrain") as acquired:
        if acquired:
            services.recommendation_model_train(actor=RECOMMEND)
