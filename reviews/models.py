"""Access reviews (A9): a campaign snapshots grants into items that reviewers answer."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from access.models import Entitlement, Grant, Risk, Service
from accounts.models import Team


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    class Scope(models.TextChoices):
        SERVICE = "service", "One service"
        TEAM = "team", "One team (and its sub-teams)"
        RISK = "risk", "All grants of a risk level"

    class Reviewer(models.TextChoices):
        MANAGER = "manager", "The principal's manager"
        OWNER = "owner", "The service owner team"

    class DeadlineAction(models.TextChoices):
        REVOKE = "revoke", "Revoke unanswered items"
        ESCALATE = "escalate", "Escalate unanswered items to security"

    name = models.CharField(max_length=200)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    scope_service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    scope_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    scope_risk = models.CharField(max_length=16, choices=Risk.choices, blank=True)
    reviewer_rule = models.CharField(max_length=16, choices=Reviewer.choices)
    starts_at = models.DateTimeField()
    deadline = models.DateTimeField()
    deadline_action = models.CharField(max_length=16, choices=DeadlineAction.choices)
    remind_before = models.DurationField(default=timedelta(days=3))
    escalate_before = models.DurationField(default=timedelta(days=1))
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    # null: started by the system from a template's cadence
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    template = models.ForeignKey(
        "CampaignTemplate",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="campaigns",
        help_text="the template it was started from, if any",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    report_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(deadline__gt=models.F("starts_at")),
                name="review_campaign_deadline_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"campaign #{self.pk} {self.name} ({self.status})"


class CampaignTemplate(models.Model):
    """A campaign to run again and again: what is reviewed, by whom, for how long, and how
    often (``cadence``; none = started by hand). Kept in the configuration tree
    (``review_templates.yaml``, docs/GITOPS.md)."""

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    scope = models.CharField(max_length=16, choices=Campaign.Scope.choices)
    scope_service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    scope_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    scope_risk = models.CharField(max_length=16, choices=Risk.choices, blank=True)
    reviewer_rule = models.CharField(max_length=16, choices=Campaign.Reviewer.choices)
    deadline_action = models.CharField(
        max_length=16,
        choices=Campaign.DeadlineAction.choices,
        default=Campaign.DeadlineAction.ESCALATE,
    )
    duration = models.DurationField(
        default=timedelta(days=14), help_text="from the start to the deadline"
    )
    cadence = models.DurationField(
        null=True, blank=True, help_text="start a campaign this often; empty = by hand only"
    )
    last_started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class ReviewItem(models.Model):
    """One grant under review, snapshotted when the campaign starts."""

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting review"
        KEPT = "kept", "Kept"
        REVOKED = "revoked", "Revoked"
        ESCALATED = "escalated", "Unanswered: escalated to security"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="review_items")
    principal = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    entitlement = models.ForeignKey(Entitlement, on_delete=models.PROTECT, related_name="+")
    held_since = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Who answers: one person, or any member of a team (never the principal), or security.
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewer_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_security = models.BooleanField(default=False)
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["campaign_id", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "grant"], name="review_item_one_per_grant"),
        ]
        indexes = [models.Index(fields=["campaign", "status"])]

    def __str__(self) -> str:
        return f"review item #{self.pk} {self.principal} {self.entitlement} ({self.status})"

    @property
    def reviewer_label(self) -> str:
        if self.reviewer_id:
            return self.reviewer.email
        if self.reviewer_team_id:
            return f"team {self.reviewer_team.slug}"
        return "security"
