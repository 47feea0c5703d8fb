"""Requests (intent), approvals and grants (fact)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .catalog import Entitlement


class AccessRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    class Kind(models.TextChoices):
        NEW = "new", "New access"
        EXTENSION = "extension", "Extension"

    OPEN_STATUSES = (Status.PENDING,)

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="requests_made"
    )
    principal = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests"
    )
    entitlement = models.ForeignKey(Entitlement, on_delete=models.PROTECT, related_name="requests")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.NEW)
    extends_grant = models.ForeignKey(
        "Grant", null=True, blank=True, on_delete=models.PROTECT, related_name="extension_requests"
    )
    bundle_request = models.ForeignKey(
        "access.BundleRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="member_requests",
        help_text="the bundle request this request is a member of",
    )
    justification = models.TextField()
    duration_days = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    # The stages as they were when the request was submitted (policy edits do not move
    # in-flight requests): [{"name", "kind", "required", "group_id", "user_ids", "source"}].
    stages = models.JSONField(default=list)
    current_stage = models.PositiveSmallIntegerField(default=0)
    stage_started_at = models.DateTimeField(default=timezone.now)
    auto_approval_reason = models.CharField(max_length=300, blank=True)
    routed_to_security = models.BooleanField(default=False)
    decision_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["principal", "entitlement"],
                condition=Q(status="pending"),
                name="accessrequest_one_open_per_principal_entitlement",
            ),
        ]
        indexes = [models.Index(fields=["status", "stage_started_at"])]

    def __str__(self) -> str:
        return f"request #{self.pk} {self.principal} → {self.entitlement}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.PENDING

    @property
    def stage(self) -> dict | None:
        if 0 <= self.current_stage < len(self.stages):
            return self.stages[self.current_stage]
        return None


class ApprovalAssignment(models.Model):
    """Who a pending stage waits on (materialised at stage entry and on escalation).

    The inbox reads these; the decision re-checks eligibility from live data.
    """

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="assignments")
    stage = models.PositiveSmallIntegerField()
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="approval_assignments"
    )
    escalated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["request", "stage", "approver"], name="assignment_unique"
            )
        ]
        indexes = [models.Index(fields=["approver", "request"])]

    def __str__(self) -> str:
        return f"{self.approver} on {self.request_id}/{self.stage}"


class Approval(models.Model):
    """One approver's decision at one stage."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approved"
        DENY = "deny", "Denied"

    request = models.ForeignKey(AccessRequest, on_delete=models.PROTECT, related_name="approvals")
    stage = models.PositiveSmallIntegerField()
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals_given"
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=8, choices=Decision.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "stage", "approver"], name="approval_one_per_approver_stage"
            )
        ]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision} #{self.request_id}"


class Grant(models.Model):
    """The fact that a principal holds an entitlement. Never deleted."""

    class Status(models.TextChoices):
        PENDING = "pending", "Provisioning"
        ACTIVE = "active", "Active"
        FAILED = "failed", "Provisioning failed"
        REVOKING = "revoking", "Revoking"
        REVOKE_FAILED = "revoke_failed", "Revocation failed"
        REVOKED = "revoked", "Revoked"

    HELD_STATUSES = (Status.PENDING, Status.ACTIVE, Status.FAILED)

    principal = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grants"
    )
    entitlement = models.ForeignKey(Entitlement, on_delete=models.PROTECT, related_name="grants")
    request = models.ForeignKey(
        AccessRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="grants"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True, db_index=True)
    reason = models.CharField(
        max_length=300, blank=True, help_text="the request or rule that gave it"
    )
    approved_by = models.JSONField(
        default=list, blank=True, help_text="e-mails of the approvers, or the rule"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=300, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    break_glass = models.BooleanField(default=False, help_text="emergency self-service grant")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["principal", "entitlement"],
                condition=Q(status__in=["pending", "active", "failed"]),
                name="grant_one_held_per_principal_entitlement",
            ),
        ]
        indexes = [
            models.Index(fields=["entitlement", "status"]),
            models.Index(fields=["principal", "status"]),
        ]

    def __str__(self) -> str:
        return f"grant #{self.pk} {self.principal} {self.entitlement} ({self.status})"


# --- Provisioning (A6), reconciliation (A7), follow-ups (A5/A8) ----------------------
