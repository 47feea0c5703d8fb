"""Demo step ``recommend``: train the first recommendation model on the demo's decided requests."""

from __future__ import annotations

import random

from recommend.models import RecommendationModel
from recommend.selectors import training_data_status
from recommend.services import recommendation_model_train


def seed_recommendations(*, stdout, rng: random.Random) -> None:
    if RecommendationModel.objects.exists():
        stdout.write("recommend: a model is already trained; skipped")
        return
    row = recommendation_model_train()
    if row is None:
        status = training_data_status()
        stdout.write("recommend: no model: " + "; ".join(status["problems"]))
        return
    threshold = (
        f"auto-approvable at p ≥ {row.threshold:.4f}: {row.auto_share:.0%} of past decisions"
        if row.threshold is not None
        else "no threshold reaches 99% precision"
    )
    stdout.write(
        f"recommend: model v{row.version} on {row.training_size} decisions, "
        f"cross-validated AUC {row.cv_auc:.3f}; {threshold}"
    )
