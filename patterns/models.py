"""Access patterns (P1–P3): mining runs and their proposals, adopted standard bundles, and
the record of what a bundle granted (or why it did not) to each joiner."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class MiningRun(models.Model):
    """One role-mining run over a team's or a service's active grants (feature P2)."""

    class Scope(models.TextChoices):
        TEAM = "team", "Team"
        SERVICE = "service", "Service"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    scope = models.CharField(max_length=8, choices=Scope.choices)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    service = models.ForeignKey(
        "access.Service", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    # Progress is not a state change: the task writes it directly (no audit event).
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=200, blank=True)
    time_limit = models.PositiveIntegerField(default=10, help_text="seconds")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    # Input size and result: users, entitlements, assignments, roles, lower_bound,
    # optimal, exact, elapsed.
    stats = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(scope="team", team__isnull=False, service__isnull=True))
                | Q(scope="service", service__isnull=False, team__isnull=True),
                name="miningrun_scope_matches_target",
            ),
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="miningrun_progress_0_1"
            ),
        ]
        indexes = [models.Index(fields=["team", "-created_at"])]

    def __str__(self) -> str:
        return f"mining run #{self.pk} of {self.scope_label} ({self.status})"

    @property
    def scope_label(self) -> str:
        if self.scope == self.Scope.TEAM:
            return f"team {self.team.slug}" if self.team_id else "team ?"
        return f"service {self.service.slug}" if self.service_id else "service ?"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def percent(self) -> int:
        return int(round(self.progress * 100))


class MiningProposal(models.Model):
    """One mined role: every listed user holds every listed entitlement (a biclique of the
    assignments); together the run's proposals cover its assignments exactly."""

    run = models.ForeignKey(MiningRun, on_delete=models.CASCADE, related_name="proposals")
    index = models.PositiveIntegerField()
    user_ids = models.JSONField(default=list)
    entitlement_ids = models.JSONField(default=list)
    # Assignments this role covers, and those only it covers (the rest are shared).
    cells = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="miningproposal_unique_index")
        ]

    def __str__(self) -> str:
        return f"proposal {self.index} of run #{self.run_id}"


class StandardBundle(models.Model):
    """A team's standard (birthright) bundle. Its contents live in versions; the newest
    version is the one joiners get."""

    team = models.OneToOneField(
        "accounts.Team", on_delete=models.PROTECT, related_name="standard_bundle"
    )
    name = models.CharField(max_length=200)
    active = models.BooleanField(default=True, help_text="retired bundles grant nothing")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__name"]

    def __str__(self) -> str:
        return self.name

    @property
    def current(self) -> BundleVersion | None:
        return self.versions.order_by("-number").first()


class BundleVersion(models.Model):
    """An immutable version of a bundle: adopting or editing writes a new one."""

    bundle = models.ForeignKey(StandardBundle, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    entitlements = models.ManyToManyField("access.Entitlement", related_name="+")
    source_proposal = models.ForeignKey(
        MiningProposal, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["bundle", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "number"], name="bundleversion_unique")
        ]

    def __str__(self) -> str:
        return f"{self.bundle} v{self.number}"

    @property
    def ref(self) -> str:
        return f"bundle:{self.bundle.team.slug}@v{self.number}"


class BundleApplication(models.Model):
    """What applying a bundle version to one joiner did for one entitlement: granted it,
    or skipped it and why. (Entitlements the joiner already held leave no row.)"""

    class Outcome(models.TextChoices):
        GRANTED = "granted", "Granted"
        NOT_REQUESTABLE = "not_requestable", "Skipped: not requestable"
        PREREQUISITE = "prerequisite", "Skipped: prerequisite missing"
        SOD = "sod", "Skipped: separation of duties"
        REFUSED = "refused", "Skipped: refused"

    version = models.ForeignKey(BundleVersion, on_delete=models.PROTECT, related_name="applied")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entitlement = models.ForeignKey(
        "access.Entitlement", on_delete=models.PROTECT, related_name="+"
    )
    grant = models.ForeignKey(
        "access.Grant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "user", "entitlement"], name="bundleapplication_once"
            )
        ]
        indexes = [models.Index(fields=["user", "outcome"])]

    def __str__(self) -> str:
        return f"{self.version} -> {self.user_id}/{self.entitlement_id}: {self.outcome}"
