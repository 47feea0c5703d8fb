"""Standards as policy (P6): applied document versions, the standards they define,
violations found by scans, and compliance snapshots per team and service."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class PolicyVersion(models.Model):
    """One applied version of the standards document (the YAML text exactly as applied)."""

    number = models.PositiveIntegerField(unique=True)
    yaml_text = models.TextField()
    sha256 = models.CharField(max_length=64)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    author_label = models.CharField(max_length=254, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="the diff it applied")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"standards v{self.number}"


class Standard(models.Model):
    """A standard as the latest applied version defines it. Removed standards stay
    (inactive) so their violation history keeps its meaning."""

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    key = models.SlugField(max_length=80, unique=True, help_text="the id in the YAML document")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    owner = models.CharField(max_length=80, help_text='a team slug, or "service-owner"')
    kind = models.CharField(max_length=48)
    scope = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    position = models.PositiveIntegerField(default=0, help_text="order in the document")
    active = models.BooleanField(default=True)
    version = models.ForeignKey(
        PolicyVersion,
        on_delete=models.PROTECT,
        related_name="standards",
        help_text="last changed in",
    )

    class Meta:
        ordering = ["position", "key"]

    def __str__(self) -> str:
        return f"{self.key} ({self.kind})"

    def as_document(self) -> dict:
        """The standard as it is written in YAML (keys in a fixed order)."""
        out: dict = {"id": self.key, "title": self.title}
        if self.description:
            out["description"] = self.description
        out["severity"] = self.severity
        out["owner"] = self.owner
        if self.scope:
            out["scope"] = dict(self.scope)
        out["check"] = {"kind": self.kind, **self.params}
        return out


class ScanRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    actor_label = models.CharField(max_length=254, blank=True)
    version = models.ForeignKey(
        PolicyVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    standards = models.PositiveIntegerField(default=0)
    subjects = models.PositiveIntegerField(default=0)
    violating = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"standards scan #{self.pk} ({self.status})"


class Violation(models.Model):
    """A subject that breaks a standard, from first seen until a scan finds it fixed."""

    class SubjectType(models.TextChoices):
        GRANT = "grant", "Grant"
        SERVICE = "service", "Service"
        ENTITLEMENT = "entitlement", "Entitlement"
        USER = "user", "Person"

    standard = models.ForeignKey(Standard, on_delete=models.PROTECT, related_name="violations")
    subject_type = models.CharField(max_length=16, choices=SubjectType.choices)
    subject_id = models.BigIntegerField()
    # Unique per standard among open violations (a SoD pair adds the pair to the user id).
    subject_key = models.CharField(max_length=300)
    subject_label = models.CharField(max_length=300)
    detail = models.CharField(max_length=500, blank=True)
    owner_team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    service = models.ForeignKey(
        "access.Service", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fix_url = models.CharField(max_length=300, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-first_seen", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["standard", "subject_key"],
                condition=Q(resolved_at__isnull=True),
                name="violation_one_open_per_standard_subject",
            )
        ]
        indexes = [
            models.Index(fields=["owner_team", "resolved_at"]),
            models.Index(fields=["service", "resolved_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.standard.key}: {self.subject_label}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class ComplianceSnapshot(models.Model):
    """Share of evaluated subjects with no open violation, per team, service and the org,
    as one scan found it (so the score can be drawn over time)."""

    class Kind(models.TextChoices):
        ORG = "org", "Organisation"
        TEAM = "team", "Team"
        SERVICE = "service", "Service"

    scan = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="snapshots")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    service = models.ForeignKey(
        "access.Service", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    subjects = models.PositiveIntegerField()
    compliant = models.PositiveIntegerField()
    taken_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["taken_at", "pk"]
        indexes = [
            models.Index(fields=["kind", "team", "taken_at"]),
            models.Index(fields=["kind", "service", "taken_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(compliant__lte=models.F("subjects")),
                name="snapshot_compliant_le_subjects",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} compliance {self.compliant}/{self.subjects} (scan {self.scan_id})"

    @property
    def score(self) -> float | None:
        return round(100.0 * self.compliant / self.subjects, 1) if self.subjects else None
