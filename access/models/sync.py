"""Provisioning (the effect downstream): sync jobs, manual tasks, reconciliation, follow-ups."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .catalog import Service
from .requests import Grant

OPEN_JOB_STATUSES = ("pending", "running", "waiting_manual")


class SyncJob(models.Model):
    """The outbox: one effect on a downstream system, written with the change it carries.

    A job is the third record next to the request (intent) and the grant (fact). Its
    ``idempotency_key`` goes to the connector, so a redelivered task has one effect.
    """

    class Operation(models.TextChoices):
        GRANT = "grant", "Grant"
        REVOKE = "revoke", "Revoke"

    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        RUNNING = "running", "Running"
        WAITING_MANUAL = "waiting_manual", "Waiting for a person"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Origin(models.TextChoices):
        REQUEST = "request", "Approved request"
        REVOKE = "revoke", "Revocation"
        EXPIRY = "expiry", "Expiry"
        LEAVER = "leaver", "Leaver"
        BREAK_GLASS = "break_glass", "Break-glass"
        RECONCILE = "reconcile", "Reconciliation"
        RETRY = "retry", "Retry"

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="sync_jobs")
    connector = models.CharField(max_length=64)
    operation = models.CharField(max_length=8, choices=Operation.choices)
    grant = models.ForeignKey(
        Grant, null=True, blank=True, on_delete=models.PROTECT, related_name="sync_jobs"
    )
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.REQUEST)
    # Who and what downstream (a snapshot; for unmanaged holders there is no grant).
    principal_email = models.CharField(max_length=254, blank=True)
    principal_login = models.CharField(max_length=254, blank=True)
    entitlement_slug = models.CharField(max_length=80)
    drift_item = models.ForeignKey(
        "DriftItem", null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    idempotency_key = models.CharField(max_length=100, unique=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=8)
    last_error = models.TextField(blank=True)
    detail = models.CharField(max_length=500, blank=True)
    changed = models.BooleanField(
        null=True, blank=True, help_text="did the last call change anything"
    )
    next_attempt_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["grant", "operation"],
                condition=Q(status__in=OPEN_JOB_STATUSES, grant__isnull=False),
                name="syncjob_one_open_per_grant_operation",
            ),
            models.UniqueConstraint(
                fields=["service", "principal_login", "entitlement_slug", "operation"],
                condition=Q(status__in=OPEN_JOB_STATUSES, grant__isnull=True),
                name="syncjob_one_open_unmanaged",
            ),
            models.CheckConstraint(
                condition=Q(attempts__lte=models.F("max_attempts") + 1),
                name="syncjob_attempts_bounded",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"sync job #{self.pk} {self.operation} {self.entitlement_slug} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_JOB_STATUSES


class ManualTask(models.Model):
    """A person carries out a manual connector's job and answers "done" or "cannot"."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        CANNOT = "cannot", "Cannot be done"
        CANCELLED = "cancelled", "Cancelled"

    job = models.OneToOneField(SyncJob, on_delete=models.PROTECT, related_name="manual_task")
    group = models.CharField(max_length=150, help_text="the group whose members complete it")
    title = models.CharField(max_length=300)
    instructions = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    remind_after_hours = models.PositiveIntegerField(default=24)
    reminded_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"manual task #{self.pk} {self.title} ({self.status})"


class ReconciliationRun(models.Model):
    class Mode(models.TextChoices):
        REPORT = "report", "Report"
        ENFORCE = "enforce", "Enforce"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="reconciliation_runs"
    )
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.REPORT)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    actor_label = models.CharField(max_length=254, blank=True)
    grants_checked = models.PositiveIntegerField(default=0)
    holders_seen = models.PositiveIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)
    unmanaged = models.PositiveIntegerField(default=0)
    wrong_level = models.PositiveIntegerField(default=0)
    jobs_created = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["service", "-started_at"])]

    def __str__(self) -> str:
        return f"reconciliation #{self.pk} of {self.service_id} ({self.mode}, {self.status})"

    @property
    def drift(self) -> int:
        return self.missing + self.unmanaged + self.wrong_level


class DriftItem(models.Model):
    """One difference between Tollgate's grants and the downstream system, found by a run."""

    class Kind(models.TextChoices):
        MISSING = "missing", "Missing downstream"
        UNMANAGED = "unmanaged", "Unmanaged holder"
        WRONG_LEVEL = "wrong_level", "Wrong level"

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="items")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    grant = models.ForeignKey(
        Grant, null=True, blank=True, on_delete=models.PROTECT, related_name="drift_items"
    )
    principal_login = models.CharField(max_length=254)
    entitlement_slug = models.CharField(max_length=80)
    expected_level = models.CharField(max_length=32, blank=True)
    actual_level = models.CharField(max_length=32, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["service", "kind", "principal_login"]

    def __str__(self) -> str:
        return f"{self.kind} {self.principal_login} {self.entitlement_slug}"


class GrantReminder(models.Model):
    """An expiry reminder sent for one end date (an extension moves the end: new reminders)."""

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="reminders")
    days_before = models.PositiveSmallIntegerField()
    ends_at = models.DateTimeField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grant", "days_before", "ends_at"], name="grantreminder_once"
            )
        ]

    def __str__(self) -> str:
        return f"reminder {self.days_before}d for grant #{self.grant_id}"


class FollowUpReview(models.Model):
    """A review item that must be answered: after break-glass use, or a mover's old access."""

    class Kind(models.TextChoices):
        BREAK_GLASS = "break_glass", "Break-glass follow-up"
        MOVER = "mover", "Mover: access from the old team"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        KEPT = "kept", "Confirmed"
        REVOKED = "revoked", "Revoked"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    grant = models.ForeignKey(Grant, on_delete=models.PROTECT, related_name="follow_ups")
    team_move = models.ForeignKey(
        "accounts.TeamMove", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="follow_up_reviews",
        help_text="a named reviewer (the new manager); empty = the security group",
    )
    reason = models.TextField(blank=True)
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    due_at = models.DateTimeField()
    reminded_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["grant"],
                condition=Q(kind="break_glass"),
                name="followup_one_per_break_glass_grant",
            ),
            models.UniqueConstraint(
                fields=["team_move", "grant"],
                condition=Q(kind="mover"),
                name="followup_one_per_move_grant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"
