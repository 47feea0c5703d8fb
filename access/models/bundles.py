"""Requestable bundles (access packages): entitlements requested as one item, and the
assignment rules that grant and remove a bundle by person attributes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .catalog import ApprovalPolicy, Entitlement


class AccessBundle(models.Model):
    """A set of entitlements anyone eligible may request as one item. Its approval path is
    the strictest of its own policy and its members' (``access.bundles.bundle_policy``)."""

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner_team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    policy = models.ForeignKey(
        ApprovalPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="bundles"
    )
    requestable = models.BooleanField(default=True)
    entitlements = models.ManyToManyField(Entitlement, related_name="access_bundles")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AssignmentRule(models.Model):
    """People who match every condition that is set (team, department = a team's subtree,
    worker type, manager subtree) hold the bundle; who stops matching loses it."""

    bundle = models.ForeignKey(AccessBundle, on_delete=models.CASCADE, related_name="rules")
    slug = models.SlugField(max_length=80)
    teams = models.JSONField(default=list, blank=True, help_text="team slugs (members)")
    departments = models.JSONField(
        default=list, blank=True, help_text="team slugs: the team and every team under it"
    )
    worker_types = models.JSONField(default=list, blank=True)
    manager_subtree = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["bundle", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "slug"], name="assignmentrule_unique_slug")
        ]

    def __str__(self) -> str:
        return f"{self.bundle.slug}/{self.slug}"


class BundleRequest(models.Model):
    """One request for a bundle: the member requests it made (one per entitlement the
    principal did not hold) all carry the same approval path."""

    bundle = models.ForeignKey(AccessBundle, on_delete=models.PROTECT, related_name="requests")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    principal = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bundle_requests"
    )
    justification = models.TextField()
    policy_slug = models.CharField(max_length=80, blank=True)
    already_held = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"bundle request #{self.pk}: {self.bundle.slug} for {self.principal_id}"


class BundleAssignment(models.Model):
    """A grant an assignment rule made: removed when the person no longer matches."""

    bundle = models.ForeignKey(AccessBundle, on_delete=models.PROTECT, related_name="assignments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entitlement = models.ForeignKey(Entitlement, on_delete=models.PROTECT, related_name="+")
    grant = models.ForeignKey("access.Grant", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["bundle", "user", "entitlement"]
        constraints = [
            models.UniqueConstraint(
                fields=["bundle", "user", "entitlement"],
                condition=Q(ended_at__isnull=True),
                name="bundleassignment_one_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.bundle.slug}: {self.user_id}/{self.entitlement_id}"
