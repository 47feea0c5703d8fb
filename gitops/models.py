"""Which objects the configuration repository manages (the mark the edit guard reads)."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone


class ManagedObject(models.Model):
    """One object applied from a configuration repository: its kind and key (slug-based, as in
    the files), the file it comes from and the row it is. Written and removed only by
    ``gitops.services.config_apply``."""

    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=300)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    source = models.CharField(max_length=300, help_text="file in the repository")
    repository = models.CharField(max_length=64, help_text="the gitops actor's name")
    applied_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "key"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "key"], name="gitops_managed_unique_key"),
        ]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.source})"
