"""The catalog: services, entitlements, approval policies, toxic pairs, delegations."""

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
    retired_at = models.DateTimeField(
        null=True, blank=True, help_text="removed from the configuration; kept for its history"
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

    class ChatApproval(models.TextChoices):
        """Whether the stages of this policy may be decided from chat (Slack)."""

        ON = "on", "Approve and deny from chat"
        WITH_REASON = "reason", "From chat, approvals with a reason too"
        OFF = "off", "Web only (chat messages carry the link, no buttons)"

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
    chat_approval = models.CharField(
        max_length=8,
        choices=ChatApproval.choices,
        default=ChatApproval.ON,
        help_text="off = decided on the web page only (e.g. critical risk: web with MFA)",
    )
    auto_approve_on_call = models.BooleanField(
        default=False,
        help_text="approve at once the person on call for the service (the oncall app); the "
        "grant ends with the shift, plus its grace",
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
    auto_approve_on_call = models.BooleanField(
        default=False,
        help_text="the person on call for the service passes this stage at once (the oncall "
        "app: a system approval naming the shift); the other stages still need approvers",
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
    retired_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="removed from the configuration after it had grants: not requestable, kept",
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


class CatalogChangeProposal(models.Model):
    """A change an owner may not make alone — lowering an entitlement's risk, changing its
    approval policy, turning break-glass on — waiting for a platform admin or a security
    member (not the proposer) to apply or reject it."""

    class Field(models.TextChoices):
        RISK = "risk", "Risk"
        POLICY = "policy", "Approval policy"
        ALLOWS_BREAK_GLASS = "allows_break_glass", "Break-glass"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPLIED = "applied", "Applied"
        REJECTED = "rejected", "Rejected"

    entitlement = models.ForeignKey(
        Entitlement, on_delete=models.CASCADE, related_name="change_proposals"
    )
    field = models.CharField(max_length=32, choices=Field.choices)
    old_value = models.JSONField(null=True, blank=True)  # a policy by id, risk and flag as is
    new_value = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["entitlement", "field"],
                condition=Q(status="pending"),
                name="catalogchange_one_pending_per_field",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entitlement}: {self.field} {self.old_value!r} → {self.new_value!r}"


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
