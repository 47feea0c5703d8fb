"""Audit action names of approval recommendations (P5)."""

from audit.registry import register

MODEL_TRAINED = register("recommend.model_trained", "An approval-recommendation model was trained")
ADOPTION_CREATED = register(
    "recommend.adoption_created", "A policy adopted recommendation-based auto-approval"
)
ADOPTION_CHANGED = register(
    "recommend.adoption_changed", "A recommendation auto-approval adoption was changed"
)
