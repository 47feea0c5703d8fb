"""Catalog, approval policies, requests (intent), approvals and grants (fact).

Three records for three things: the AccessRequest is the intent, the Grant is the
fact, and (from the provisioning issue) the SyncJob is the effect downstream.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Risk(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


RISK_ORDER = {Risk.LOW: 0, Risk.MEDIUM: 1, Risk.HIGH: 2, Risk.CRITICAL: 3}


class Service(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    owner_team = models.ForeignKey(
        "accounts.Team", on_delete=models.PROTECT, related_name="services"
    )
    tier = models.PositiveSmallIntegerField(
        default=2, validators=[MaxValueValidator(3)], help_text="0 = most critical"
    )
    description = models.TextField(blank=True)
    docs_url = models.URLField(blank=True)
    connector = models.CharField(
        max_length=64, blank=True, help_text="registered connector name; empty = none"
    )
    connector_config = models.JSONField(
        default=dict, blank=True, help_text="non-secret settings only"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(tier__lte=3), name="service_tier_0_3")]

    def __str__(self) -> str:
        return self.name


class ApprovalPolicy(models.Model):
    class SodAction(models.TextChoices):
        REFUSE = "refuse", "Refuse the request"
        ROUTE_TO_SECURITY = "security", "Add a security approval stage"

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Auto-approval: all configured conditions of one rule must hold.
    auto_approve_max_risk = models.CharField(
        max_length=16,
        choices=Risk.choices,
        blank=True,
        help_text="empty = never auto-approve on peers",
    )
    auto_approve_peer_ratio = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="share of the principal's team who hold it",
    )
    auto_approve_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", help_text="allow list"
    )
    sod_action = models.CharField(
        max_length=16, choices=SodAction.choices, default=SodAction.REFUSE
    )
    remind_after = models.DurationField(default=timedelta(hours=24))
    escalate_after = models.DurationField(default=timedelta(hours=72))
    expire_after = models.DurationField(default=timedelta(days=14))
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "approval policies"

    def __str__(self) -> str:
        return self.name


class PolicyStage(models.Model):
    class ApproverKind(models.TextChoices):
        MANAGER = "manager", "The principal's manager"
        SERVICE_OWNER = "service_owner", "The service's owner team"
        SECURITY = "security", "The security group"
        GROUP = "group", "A named group"
        USERS = "users", "Named people"

    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.CASCADE, related_name="stages")
    order = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100, blank=True)
    approver_kind = models.CharField(max_length=16, choices=ApproverKind.choices)
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    required = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="N of M"
    )

    class Meta:
        ordering = ["policy", "order"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "order"], name="policystage_unique_order"),
            models.CheckConstraint(
                condition=Q(required__gte=1), name="policystage_required_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy}: stage {self.order} ({self.approver_kind})"


class Entitlement(models.Model):
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="entitlements")
    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    risk = models.CharField(max_length=16, choices=Risk.choices, default=Risk.LOW)
    requestable = models.BooleanField(default=True)
    default_duration_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)]
    )
    max_duration_days = models.PositiveIntegerField(default=90, validators=[MinValueValidator(1)])
    seat_cost_monthly = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0.00")
    )
    prerequisites = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="required_by"
    )
    policy = models.ForeignKey(
        ApprovalPolicy,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entitlements",
        help_text="empty = the default policy",
    )
    allows_break_glass = models.BooleanField(default=False)
    connector_config = models.JSONField(
        default=dict,
        blank=True,
        help_text='non-secret per-entitlement connector settings, e.g. {"role": "analytics_read"}',
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["service__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "slug"], name="entitlement_unique_slug_per_service"
            ),
            models.CheckConstraint(
                condition=Q(default_duration_days__lte=models.F("max_duration_days")),
                name="entitlement_default_within_max",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service.slug}/{self.slug}"


class ToxicPair(models.Model):
    """Separation of duties: nobody may hold both entitlements."""

    first = models.ForeignKey(Entitlement, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Entitlement, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=300)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["first", "second"], name="toxicpair_unique"),
            models.CheckConstraint(
                condition=~Q(first=models.F("second")), name="toxicpair_distinct"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first} ⟂ {self.second}"


class Delegation(models.Model):
    """While away, ``delegator``'s approvals may be given by ``delegate``."""

    delegator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_given"
    )
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_received"
    )
    starts_on = models.DateField()
    ends_on = models.DateField()
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=Q(starts_on__lte=models.F("ends_on")), name="delegation_dates_ordered"
            ),
            models.CheckConstraint(
                condition=~Q(delegator=models.F("delegate")), name="delegation_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.delegator} → {self.delegate} ({self.starts_on}–{self.ends_on})"


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
