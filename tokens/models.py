"""API tokens: personal tokens (a user's) and service tokens (a catalog service's).

Only the SHA-256 hash of the secret is stored; the plaintext is shown once at creation.
The first characters (``prefix``) are kept in clear so people can tell tokens apart.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

PREFIX_LENGTH = 8


class Scope(models.TextChoices):
    READ = "read", "Read (GET)"
    WRITE = "write", "Write (submit, decide, cancel, revoke)"


DEFAULT_SCOPES = [Scope.READ.value, Scope.WRITE.value]


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="api_tokens",
    )
    service = models.ForeignKey(
        "access.Service",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="api_tokens",
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=PREFIX_LENGTH, help_text="first characters, shown in the UI"
    )
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret, hex")
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(service__isnull=True))
                | (Q(user__isnull=True) & Q(service__isnull=False)),
                name="apitoken_exactly_one_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def is_usable(self, now=None) -> bool:
        return not self.is_revoked and not self.is_expired(now)
