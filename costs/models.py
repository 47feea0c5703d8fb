"""Cost data: billing sources, import runs, FOCUS cost lines, attribution rules, daily rollups.

Money is ``Decimal`` (``numeric`` on PostgreSQL). On PostgreSQL ``costs_costline`` is a
table partitioned by month of ``billing_period_start`` (migration 0002 creates it with raw
SQL; the database primary key is ``(id, billing_period_start)`` because PostgreSQL requires
the partition key in every unique constraint, while Django keeps ``id`` as its primary key:
``id`` comes from one identity sequence, so it is unique on its own). On SQLite it is a
plain table. Cost-line foreign keys carry no database constraint (``db_constraint=False``)
so the bulk load does not pay a trigger per row; teams, rules and sources are never
deleted, only disabled (``on_delete=PROTECT`` keeps Django from deleting them under lines).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

MONEY = {"max_digits": 30, "decimal_places": 12}
QUANTITY = {"max_digits": 38, "decimal_places": 15}


class BillingSource(models.Model):
    """Where FOCUS exports come from (one cloud account export, one provider's bill)."""

    name = models.SlugField(max_length=80, unique=True)
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ImportRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Origin(models.TextChoices):
        COMMAND = "command", "Command"
        UPLOAD = "upload", "Upload"
        WATCHED = "watched", "Watched folder"
        DEMO = "demo", "Demo seed"

    source = models.ForeignKey(BillingSource, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.COMMAND)
    file_name = models.CharField(max_length=300)
    file_path = models.CharField(max_length=500, blank=True, help_text="stored upload, if any")
    file_format = models.CharField(max_length=16, blank=True)
    file_size = models.BigIntegerField(default=0)
    focus_version = models.CharField(max_length=8, blank=True)
    requested_period = models.DateField(null=True, blank=True)
    periods = models.JSONField(default=list, blank=True, help_text="billing periods replaced")
    rows_read = models.BigIntegerField(default=0)
    rows_loaded = models.BigIntegerField(default=0)
    rows_rejected = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="the first 100 errors")
    billed_total = models.DecimalField(null=True, blank=True, **MONEY)
    timings = models.JSONField(default=dict, blank=True, help_text="seconds per stage")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["source", "-created_at"])]

    def __str__(self) -> str:
        return f"import #{self.pk} {self.source} {self.file_name} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class AttributionRule(models.Model):
    """One ordered rule: if every condition that is set matches, the line goes to the target."""

    class Method(models.TextChoices):
        DIRECT = "direct", "To one team"
        EVEN = "even", "Shared: split evenly"
        FIXED = "fixed", "Shared: fixed shares"
        PROPORTIONAL = "proportional", "Shared: in proportion to category spend"

    class PatternKind(models.TextChoices):
        GLOB = "glob", "Glob"
        REGEX = "regex", "Regular expression"

    name = models.CharField(max_length=120, unique=True)
    position = models.PositiveIntegerField(help_text="lower runs first; the first match wins")
    enabled = models.BooleanField(default=True)
    # conditions (blank = not part of the rule)
    tag_key = models.CharField(max_length=200, blank=True, help_text="matched case-insensitively")
    tag_value = models.CharField(
        max_length=200,
        blank=True,
        help_text="glob, case-insensitive; blank matches a missing or empty tag",
    )
    billing_account_id = models.CharField(max_length=200, blank=True)
    sub_account_id = models.CharField(max_length=200, blank=True)
    resource_pattern = models.CharField(max_length=500, blank=True)
    resource_pattern_kind = models.CharField(
        max_length=8, choices=PatternKind.choices, default=PatternKind.GLOB
    )
    service_name = models.CharField(max_length=200, blank=True, help_text="provider ServiceName")
    region = models.CharField(max_length=100, blank=True, help_text="RegionId")
    # target
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.DIRECT)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    target_service = models.SlugField(max_length=120, blank=True, help_text="catalog service slug")
    target_project = models.CharField(max_length=120, blank=True)
    proportional_category = models.CharField(
        max_length=100, blank=True, help_text="ServiceCategory whose spend sets the shares"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(method="direct") | models.Q(team__isnull=False),
                name="costs_rule_direct_has_team",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RuleShare(models.Model):
    """A team's share of a shared-cost rule (weight used by the ``fixed`` method)."""

    rule = models.ForeignKey(AttributionRule, on_delete=models.CASCADE, related_name="shares")
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="+")
    weight = models.DecimalField(max_digits=12, decimal_places=4, default=1)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "team"], name="costs_ruleshare_unique"),
            models.CheckConstraint(condition=models.Q(weight__gt=0), name="costs_share_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.rule}: {self.team} x{self.weight}"


class Allocation(models.TextChoices):
    DIRECT = "direct", "Attributed"
    SHARED = "shared", "Shared (split)"
    UNALLOCATED = "unallocated", "Unallocated"


class CostLine(models.Model):
    """One FOCUS row. The attribution columns are rewritten by re-attribution."""

    id = models.BigAutoField(primary_key=True)
    source = models.ForeignKey(
        BillingSource, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    import_run = models.ForeignKey(
        ImportRun, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    billing_period_start = models.DateField()
    billing_period_end = models.DateField()
    charge_period_start = models.DateTimeField()
    charge_period_end = models.DateTimeField()
    billing_account_id = models.CharField(max_length=200, default="")
    billing_account_name = models.CharField(max_length=200, default="")
    sub_account_id = models.CharField(max_length=200, default="")
    sub_account_name = models.CharField(max_length=200, default="")
    charge_category = models.CharField(max_length=16)
    charge_class = models.CharField(max_length=16, default="")
    charge_frequency = models.CharField(max_length=16, default="")
    charge_description = models.TextField(default="")
    provider_name = models.CharField(max_length=100, default="")
    publisher_name = models.CharField(max_length=200, default="")
    invoice_issuer_name = models.CharField(max_length=200, default="")
    service_name = models.CharField(max_length=200, default="")
    service_category = models.CharField(max_length=100, default="")
    region_id = models.CharField(max_length=100, default="")
    region_name = models.CharField(max_length=100, default="")
    availability_zone = models.CharField(max_length=100, default="")
    resource_id = models.TextField(default="")
    resource_name = models.TextField(default="")
    resource_type = models.CharField(max_length=200, default="")
    sku_id = models.CharField(max_length=200, default="")
    sku_price_id = models.CharField(max_length=300, default="")
    pricing_category = models.CharField(max_length=16, default="")
    pricing_quantity = models.DecimalField(null=True, **QUANTITY)
    pricing_unit = models.CharField(max_length=100, default="")
    consumed_quantity = models.DecimalField(null=True, **QUANTITY)
    consumed_unit = models.CharField(max_length=100, default="")
    billed_cost = models.DecimalField(**MONEY)
    effective_cost = models.DecimalField(**MONEY)
    list_cost = models.DecimalField(null=True, **MONEY)
    contracted_cost = models.DecimalField(null=True, **MONEY)
    list_unit_price = models.DecimalField(null=True, **MONEY)
    contracted_unit_price = models.DecimalField(null=True, **MONEY)
    billing_currency = models.CharField(max_length=3)
    commitment_discount_id = models.TextField(default="")
    commitment_discount_name = models.CharField(max_length=200, default="")
    commitment_discount_category = models.CharField(max_length=16, default="")
    commitment_discount_type = models.CharField(max_length=100, default="")
    commitment_discount_status = models.CharField(max_length=16, default="")
    tags = models.JSONField(default=dict)
    attr_key = models.BigIntegerField(help_text="hash of the attributes the rules read")
    # attribution
    allocation = models.CharField(max_length=16, choices=Allocation.choices)
    team = models.ForeignKey(
        "accounts.Team",
        null=True,
        on_delete=models.PROTECT,
        db_constraint=False,
        related_name="+",
    )
    attributed_service = models.CharField(max_length=120, default="")
    project = models.CharField(max_length=120, default="")
    rule = models.ForeignKey(
        AttributionRule,
        null=True,
        on_delete=models.PROTECT,
        db_constraint=False,
        related_name="+",
    )

    class Meta:
        # No b-tree beyond the primary key: every b-tree costs the bulk load a random insert
        # per row, and nothing needs one. Pages read the rollups; the queries on lines are
        # by billing period (partition pruning) or by charge month (the lines API), plus the
        # source for the import's replace step. On PostgreSQL migration 0003 adds one BRIN
        # index on (source_id, charge_period_start) for those (lines load in file order, so
        # both are physically clustered); SQLite has no BRIN and needs none at its sizes.
        indexes = []

    def __str__(self) -> str:
        return f"line {self.pk} {self.service_name} {self.billed_cost}"


class CostDaily(models.Model):
    """Daily rollup by team, service, category and region: what every cost page reads.

    Shared-cost rules are split here (one row per receiving team, summing to the cent),
    so ``sum(billed_cost)`` over a period equals the lines' total exactly.
    """

    billing_period_start = models.DateField()
    day = models.DateField()
    team = models.ForeignKey("accounts.Team", null=True, on_delete=models.PROTECT, related_name="+")
    allocation = models.CharField(max_length=16, choices=Allocation.choices)
    attributed_service = models.CharField(max_length=120, default="")
    project = models.CharField(max_length=120, default="")
    provider_name = models.CharField(max_length=100, default="")
    service_name = models.CharField(max_length=200, default="")
    service_category = models.CharField(max_length=100, default="")
    region_id = models.CharField(max_length=100, default="")
    charge_category = models.CharField(max_length=16, default="")
    billing_currency = models.CharField(max_length=3, default="")
    billed_cost = models.DecimalField(**MONEY)
    effective_cost = models.DecimalField(**MONEY)
    list_cost = models.DecimalField(**MONEY)
    lines = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["team", "day"], name="costs_daily_team_day"),
            models.Index(fields=["billing_period_start"], name="costs_daily_period"),
            models.Index(fields=["day"], name="costs_daily_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.team_id} {self.service_name} {self.billed_cost}"


class ReattributionRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    periods = models.JSONField(default=list, blank=True, help_text="empty = every period")
    lines_changed = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"reattribution #{self.pk} ({self.status})"


# Analytics models (dashboards, budgets, anomalies, suggestions) live in their own
# module and register under this app.
from .analytics.models import (  # noqa: E402, F401
    Anomaly,
    AnomalyDelivery,
    AnomalySubscription,
    AnomalySuppression,
    Budget,
    BudgetAlert,
    BusinessMetric,
    CostCommitmentDaily,
    CostResourceDaily,
    MetricValue,
    RollupBuild,
    Suggestion,
)
