"""Approval recommendations (P5): trained models and the policies that adopt them.

A ``RecommendationModel`` row is one training run: its figures and the fitted model itself,
pickled into ``blob`` (a few hundred kB for thousands of decisions). The newest row is the
live model; older rows keep their figures for the history table and lose their blob after
``KEEP_BLOBS`` newer ones exist.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from access.models import ApprovalPolicy, Risk


class RecommendationModel(models.Model):
    KEEP_BLOBS = 3

    version = models.PositiveIntegerField(unique=True)
    trained_at = models.DateTimeField(default=timezone.now)
    training_size = models.PositiveIntegerField(help_text="decided requests trained on")
    approved = models.PositiveIntegerField(help_text="... of which approved")
    cv_folds = models.PositiveSmallIntegerField()
    cv_auc = models.FloatField(help_text="cross-validated area under the ROC curve")
    target_precision = models.FloatField(default=0.99)
    threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="lowest probability auto-approved at the target precision (None: none reaches it)",
    )
    auto_share = models.FloatField(
        default=0.0, help_text="share of past decisions at or above the threshold"
    )
    spec = models.JSONField(default=dict, help_text="the features used")
    blob = models.BinaryField(help_text="the pickled recommend.model.ApprovalModel")

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"recommendation model v{self.version}"


class AutoApproveAdoption(models.Model):
    """A policy auto-approves requests the live model scores at or above ``min_probability``."""

    policy = models.OneToOneField(
        ApprovalPolicy, on_delete=models.CASCADE, related_name="recommendation_adoption"
    )
    min_probability = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        validators=[MinValueValidator(0.5), MaxValueValidator(1)],
    )
    max_risk = models.CharField(max_length=16, choices=Risk.choices, default=Risk.LOW)
    enabled = models.BooleanField(default=True)
    adopted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["policy__slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(min_probability__gte=0.5, min_probability__lte=1),
                name="recommend_adoption_probability_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.policy.slug} adopts p ≥ {self.min_probability} up to {self.max_risk} risk"
