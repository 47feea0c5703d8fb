"""SCIM clients (identity providers that push people and teams) and what SCIM adds to them.

People and teams themselves are ``accounts`` rows, written by the directory service. This app
keeps only what the SCIM protocol adds: the client's hashed bearer token, the client's own ids
(``externalId``) and the enterprise attributes Tollgate does not use (employee number, cost
centre), the resources' SCIM timestamps, and changes held for an admin's confirmation.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

PREFIX_LENGTH = 12


class ScimClient(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(
        max_length=40, unique=True, help_text="names the audit actor: system:scim.<slug>"
    )
    prefix = models.CharField(max_length=PREFIX_LENGTH, help_text="first characters, shown")
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret, hex")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    rotated_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class ScimUser(models.Model):
    """SCIM's view of a person: the client's id and the enterprise attributes Tollgate keeps
    without using them. Created at the first SCIM write of the person."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="scim"
    )
    external_id = models.CharField(max_length=254, blank=True, db_index=True)
    employee_number = models.CharField(max_length=64, blank=True)
    cost_center = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(default=timezone.now)
    last_modified = models.DateTimeField(default=timezone.now, db_index=True)
    client = models.ForeignKey(ScimClient, null=True, on_delete=models.SET_NULL, related_name="+")
    # Set by a SCIM DELETE: the person stays a leaver in Tollgate but is gone from SCIM
    # (GET answers 404) until a client creates them again (a rejoin).
    deleted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"SCIM user {self.user_id}"


class ScimGroup(models.Model):
    """SCIM's view of a team: the client's id and SCIM timestamps."""

    team = models.OneToOneField(
        "accounts.Team", on_delete=models.CASCADE, primary_key=True, related_name="scim"
    )
    external_id = models.CharField(max_length=254, blank=True, db_index=True)
    created = models.DateTimeField(default=timezone.now)
    last_modified = models.DateTimeField(default=timezone.now, db_index=True)
    client = models.ForeignKey(ScimClient, null=True, on_delete=models.SET_NULL, related_name="+")
    # Set by a SCIM DELETE: the team stays (teams are never deleted) without its SCIM members,
    # gone from SCIM until a client creates a group of that name again.
    deleted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"SCIM group {self.team_id}"


class HeldChange(models.Model):
    """A push that would have made too many people leave within an hour: kept, not applied,
    until an admin confirms (applied through the directory service) or discards it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for confirmation"
        APPLIED = "applied", "Confirmed and applied"
        DISCARDED = "discarded", "Discarded"

    client = models.ForeignKey(ScimClient, on_delete=models.PROTECT, related_name="held")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    email = models.EmailField()
    operation = models.CharField(max_length=64, help_text="the SCIM call, e.g. DELETE /Users/12")
    row = models.JSONField(help_text="the directory row that would be applied")
    extras = models.JSONField(default=dict, blank=True, help_text="SCIM-only attributes")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["email"],
                condition=Q(status="pending"),
                name="scim_heldchange_one_pending_per_person",
            )
        ]

    def __str__(self) -> str:
        return f"{self.operation} ({self.status})"
