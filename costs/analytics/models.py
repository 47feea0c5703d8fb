"""Analytics data of the costs app: a resource-level daily rollup, budgets and their alerts,
anomalies and optimisation suggestions. App label ``costs`` (imported from ``costs.models``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

MONEY = {"max_digits": 30, "decimal_places": 12}


class CostResourceDaily(models.Model):
    """Daily rollup by team, service, region, resource and SKU (drill-down, checks, drivers).

    Built from cost lines per billing period by :mod:`costs.analytics.rollups`. Shared lines
    stay with ``team = NULL`` here (their split lives in ``CostDaily``); a team's resource
    breakdown therefore covers its directly attributed spend, and the dashboard shows the
    shared remainder as one row.
    """

    billing_period_start = models.DateField()
    day = models.DateField()
    team = models.ForeignKey(
        "accounts.Team", null=True, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    allocation = models.CharField(max_length=16)
    service_name = models.CharField(max_length=200, default="")
    service_category = models.CharField(max_length=100, default="")
    region_id = models.CharField(max_length=100, default="")
    charge_category = models.CharField(max_length=16, default="")
    pricing_category = models.CharField(max_length=16, default="")
    commitment_discount_status = models.CharField(max_length=16, default="")
    resource_id = models.TextField(default="")
    resource_name = models.TextField(default="")
    resource_type = models.CharField(max_length=200, default="")
    sku_id = models.CharField(max_length=200, default="")
    tagged = models.BooleanField(default=False, help_text="the line carried any tag")
    billing_currency = models.CharField(max_length=3, default="")
    billed_cost = models.DecimalField(**MONEY)
    effective_cost = models.DecimalField(**MONEY)
    list_cost = models.DecimalField(**MONEY)
    consumed_quantity = models.DecimalField(max_digits=38, decimal_places=15, default=0)
    lines = models.BigIntegerField(default=0)

    class Meta:
        app_label = "costs"
        indexes = [
            models.Index(fields=["team", "day"], name="costs_resday_team_day"),
            models.Index(fields=["billing_period_start"], name="costs_resday_period"),
            models.Index(fields=["day"], name="costs_resday_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.team_id} {self.resource_id} {self.billed_cost}"


class CostResourceTeamDaily(models.Model):
    """The team dashboard's narrow rollup: one row per team, day, resource and service.

    Built from ``CostResourceDaily`` by :func:`costs.analytics.rollups.resource_rollups_rebuild`
    (SKUs, regions, charge and pricing categories collapsed; commitment figures kept as
    columns), so the page's resource table, top movers and commitment coverage come from one
    grouped query over at most (team's resources × days in range) rows, whatever the number
    of cost lines. Directly attributed team spend only (``team`` is never NULL here).
    """

    billing_period_start = models.DateField()
    day = models.DateField()
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    resource_id = models.TextField(default="")
    service_name = models.CharField(max_length=200, default="")
    billed_cost = models.DecimalField(**MONEY)
    effective_cost = models.DecimalField(**MONEY)
    committed_cost = models.DecimalField(
        **MONEY, default=0, help_text="effective cost at committed pricing"
    )
    on_demand_compute_cost = models.DecimalField(
        **MONEY, default=0, help_text="effective cost of standard-priced compute usage"
    )
    commitment_used_cost = models.DecimalField(**MONEY, default=0)
    commitment_unused_cost = models.DecimalField(**MONEY, default=0)

    class Meta:
        app_label = "costs"
        indexes = [
            models.Index(fields=["team", "day"], name="costs_resteam_team_day"),
            models.Index(fields=["billing_period_start"], name="costs_resteam_period"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.team_id} {self.resource_id} {self.billed_cost}"


class CostCommitmentDaily(models.Model):
    """Daily rollup of commitment-relevant usage: what commitment utilisation, coverage and
    savings read (standard- and committed-priced usage, by commitment and its status).

    Built with the resource rollup (:func:`costs.analytics.rollups.resource_rollups_rebuild`)
    from the cost lines of a billing period. Shared lines keep ``team = NULL`` and their
    ``rule``; the reader splits them with the rule's weights, as the cost rollup does.
    ``on_demand_cost`` is the list cost (the on-demand equivalent), or the effective cost
    where a line has no list cost.
    """

    billing_period_start = models.DateField()
    day = models.DateField()
    team = models.ForeignKey(
        "accounts.Team", null=True, on_delete=models.PROTECT, db_constraint=False, related_name="+"
    )
    allocation = models.CharField(max_length=16)
    rule_id = models.BigIntegerField(null=True, help_text="the shared-cost rule of shared lines")
    service_name = models.CharField(max_length=200, default="")
    pricing_category = models.CharField(max_length=16, default="")
    commitment_discount_id = models.TextField(default="")
    commitment_discount_name = models.CharField(max_length=200, default="")
    commitment_discount_category = models.CharField(max_length=16, default="")
    commitment_discount_type = models.CharField(max_length=100, default="")
    commitment_discount_status = models.CharField(max_length=16, default="")
    billing_currency = models.CharField(max_length=3, default="")
    effective_cost = models.DecimalField(**MONEY)
    on_demand_cost = models.DecimalField(**MONEY)
    lines = models.BigIntegerField(default=0)

    class Meta:
        app_label = "costs"
        indexes = [
            models.Index(fields=["day"], name="costs_commit_day"),
            models.Index(fields=["billing_period_start"], name="costs_commit_period"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.commitment_discount_id or self.pricing_category} {self.effective_cost}"


class RollupBuild(models.Model):
    """When the resource rollup of a billing period was last built (staleness check)."""

    billing_period_start = models.DateField(unique=True)
    built_at = models.DateTimeField(default=timezone.now)
    rows = models.BigIntegerField(default=0)

    class Meta:
        app_label = "costs"

    def __str__(self) -> str:
        return f"resource rollup {self.billing_period_start} @ {self.built_at}"


class Budget(models.Model):
    """A team's monthly budget from ``month`` on (until a later budget row replaces it)."""

    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="+")
    month = models.DateField(help_text="first day of the first month it applies to")
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    thresholds = models.JSONField(
        default=list, blank=True, help_text="percentages; empty = 80, 100"
    )
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "costs"
        ordering = ["team", "-month"]
        constraints = [
            models.UniqueConstraint(fields=["team", "month"], name="costs_budget_team_month"),
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="costs_budget_amount_ge_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team} from {self.month:%Y-%m}: {self.amount} {self.currency}"


class BudgetAlert(models.Model):
    """One alert: a threshold of actual or forecast spend crossed in a month (sent once)."""

    class Kind(models.TextChoices):
        ACTUAL = "actual", "Actual spend"
        FORECAST = "forecast", "Forecast spend"

    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="+")
    month = models.DateField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    threshold = models.PositiveSmallIntegerField()
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    budget = models.DecimalField(max_digits=18, decimal_places=2)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "costs"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "month", "kind", "threshold"], name="costs_budgetalert_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.team} {self.month:%Y-%m} {self.kind} {self.threshold}%"


class Anomaly(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        DISMISSED = "dismissed", "Dismissed as expected"
        SNOOZED = "snoozed", "Snoozed"

    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="+")
    service_name = models.CharField(max_length=200)
    day = models.DateField()
    expected = models.DecimalField(**MONEY)
    actual = models.DecimalField(**MONEY)
    impact = models.DecimalField(**MONEY)
    score = models.FloatField(help_text="robust z-score (deviation / scaled MAD)")
    drivers = models.JSONField(default=list, blank=True)
    reason = models.CharField(max_length=300, blank=True, help_text="why it fired, in words")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    dismiss_reason = models.CharField(max_length=500, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "costs"
        ordering = ["-day", "-impact"]
        verbose_name_plural = "anomalies"
        constraints = [
            models.UniqueConstraint(
                fields=["team", "service_name", "day"], name="costs_anomaly_team_service_day"
            )
        ]
        indexes = [models.Index(fields=["team", "-day"], name="costs_anomaly_team_day")]

    def __str__(self) -> str:
        return f"anomaly {self.team_id} {self.service_name} {self.day}"


class Suggestion(models.Model):
    class Kind(models.TextChoices):
        IDLE = "idle_resource", "Idle resource"
        ORPHANED = "orphaned_resource", "Cost with no usage (orphaned)"
        UNTAGGED = "untagged_spend", "Untagged spend"
        UNALLOCATED = "unallocated_spend", "Unallocated spend"
        LOW_COMMITMENT_UTILISATION = "low_commitment_utilisation", "Low commitment utilisation"
        COMMITMENT_COVERAGE = "commitment_coverage", "On-demand spend a commitment would cover"
        PREVIOUS_GENERATION = "previous_generation", "Previous-generation SKU"
        UNUSED_SEAT = "unused_seat", "Unused paid access seat"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"

    class Confidence(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    fingerprint = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resource_id = models.TextField(blank=True)
    title = models.CharField(max_length=300)
    evidence = models.JSONField(default=dict, blank=True)
    estimated_monthly_saving = models.DecimalField(max_digits=18, decimal_places=2)
    savings_method = models.CharField(max_length=300, help_text="how the estimate was computed")
    confidence = models.CharField(max_length=8, choices=Confidence.choices)
    baseline_monthly_cost = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    realised_monthly_saving = models.DecimalField(
        max_digits=18, decimal_places=2, null=True, blank=True
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    dismiss_reason = models.CharField(max_length=500, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "costs"
        ordering = ["-estimated_monthly_saving", "id"]
        indexes = [models.Index(fields=["team", "status"], name="costs_suggestion_team_status")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"


class AnomalySuppression(models.Model):
    """A pattern the detector skips for one series (team × service), learnt from an anomaly
    dismissed as expected: the same weekday, the same day of the month, or any spike up to
    the dismissed one's cost."""

    class Pattern(models.TextChoices):
        WEEKDAY = "weekday", "Every week on this weekday"
        MONTHDAY = "monthday", "Every month on this day"
        LEVEL = "level", "Any spike up to this cost (+10 %)"

    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="+")
    service_name = models.CharField(max_length=200)
    pattern = models.CharField(max_length=16, choices=Pattern.choices)
    weekday = models.PositiveSmallIntegerField(null=True, blank=True, help_text="0 = Monday")
    monthday = models.PositiveSmallIntegerField(null=True, blank=True)
    max_actual = models.DecimalField(null=True, blank=True, **MONEY)
    reason = models.CharField(max_length=500)
    anomaly = models.ForeignKey(Anomaly, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "costs"
        indexes = [models.Index(fields=["team", "service_name"], name="costs_suppress_series")]

    def __str__(self) -> str:
        return f"skip {self.pattern} {self.team_id} {self.service_name}"


class AnomalySubscription(models.Model):
    """Who wants to hear about anomalies: of a team, of a (provider) service, or of the org,
    above a minimum impact, at once or in a daily or weekly digest, by e-mail or to a chat
    channel's incoming webhook."""

    class Scope(models.TextChoices):
        TEAM = "team", "A team"
        SERVICE = "service", "A service"
        ORG = "org", "The whole org"

    class Cadence(models.TextChoices):
        IMMEDIATE = "immediate", "Immediately"
        DAILY = "daily", "Daily digest"
        WEEKLY = "weekly", "Weekly digest"

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        CHAT = "chat", "Chat channel"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=16, choices=Scope.choices)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    service_name = models.CharField(max_length=200, blank=True)
    min_impact = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    cadence = models.CharField(max_length=16, choices=Cadence.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    chat_webhook_url = models.URLField(max_length=500, blank=True)
    active = models.BooleanField(default=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "costs"
        ordering = ["user", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(scope="team") | models.Q(team__isnull=False),
                name="costs_anomsub_team_scope_has_team",
            ),
            models.CheckConstraint(
                condition=models.Q(min_impact__gte=0), name="costs_anomsub_min_impact_ge_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.scope} {self.cadence} {self.channel}"


class AnomalyDelivery(models.Model):
    """The outbox of anomaly alerts: one row per (subscription, anomaly), written when the
    alert is due and marked sent by the task that delivered it (never twice)."""

    subscription = models.ForeignKey(
        AnomalySubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    anomaly = models.ForeignKey(Anomaly, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "costs"
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "anomaly"], name="costs_anomdelivery_once"
            )
        ]

    def __str__(self) -> str:
        return f"delivery {self.subscription_id} {self.anomaly_id}"


class BusinessMetric(models.Model):
    """A team's business metric (requests served, active customers …) for unit costs: the
    team's daily cost divided by the metric's daily value."""

    slug = models.SlugField(max_length=80, unique=True)
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    unit = models.CharField(max_length=40, help_text="what one unit is, e.g. request, customer")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "costs"
        ordering = ["team", "slug"]

    def __str__(self) -> str:
        return f"{self.slug} ({self.team_id})"


class MetricValue(models.Model):
    """One day's value of a business metric (a push for the same day replaces it)."""

    metric = models.ForeignKey(BusinessMetric, on_delete=models.CASCADE, related_name="values")
    day = models.DateField()
    value = models.DecimalField(max_digits=24, decimal_places=6)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "costs"
        ordering = ["metric", "day"]
        constraints = [
            models.UniqueConstraint(fields=["metric", "day"], name="costs_metricvalue_once"),
            models.CheckConstraint(condition=models.Q(value__gte=0), name="costs_metricvalue_ge_0"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_id} {self.day} {self.value}"
