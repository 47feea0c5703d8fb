"""Unused access (P4): usage sources and their freshness, mapping rules, removals.

* :class:`UsageSource` — where last-use data comes from: a service's connector (polled) or an
  event log (CloudTrail-style files imported by ``import_usage_events``).
* :class:`UsageCoverage` — freshness per (source, service): since when the source's data
  covers the service and when it was last collected successfully. A grant can only be found
  unused when its service has fresh coverage that spans the whole window.
* :class:`UsageMappingRule` — glob rules mapping an event (``eventSource:eventName``) to an
  entitlement; :class:`PrincipalAlias` maps a log identity (ARN, user name) to a person.
* :class:`UsageImport` — one imported file and its counts (unknown principals and actions).
* :class:`UnusedRemoval` — the removal life cycle of one unused grant (see ``state.py``).

``Grant.last_used_at`` itself belongs to the access app and is written only through
``access.services.grants_record_use``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class UsageSource(models.Model):
    class Kind(models.TextChoices):
        CONNECTOR = "connector", "Connector (polled)"
        EVENTS = "events", "Event log import"

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    service = models.ForeignKey(
        "access.Service",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="usage_sources",
        help_text="the polled service (connector sources only)",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class UsageCoverage(models.Model):
    """Freshness of one source's data for one service."""

    source = models.ForeignKey(UsageSource, on_delete=models.CASCADE, related_name="coverage")
    service = models.ForeignKey(
        "access.Service", on_delete=models.CASCADE, related_name="usage_coverage"
    )
    covered_since = models.DateTimeField(help_text="the data covers use from this time on")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["source__slug", "service__slug"]
        constraints = [
            models.UniqueConstraint(fields=["source", "service"], name="usagecoverage_unique")
        ]
        indexes = [models.Index(fields=["service", "last_success_at"])]

    def __str__(self) -> str:
        return f"{self.source} → {self.service}"


class UsageMappingRule(models.Model):
    """``event_source:event_name`` globs (fnmatch, case-insensitive) → an entitlement.

    Every matching rule counts: a ``GetObject`` may be use of both ``read`` and ``write``.
    ``source`` empty = the rule applies to every event source (log) imported.
    """

    source = models.ForeignKey(
        UsageSource, null=True, blank=True, on_delete=models.CASCADE, related_name="rules"
    )
    event_source = models.CharField(max_length=200, help_text="e.g. s3.amazonaws.com")
    event_name = models.CharField(max_length=200, help_text="e.g. Get* or *")
    entitlement = models.ForeignKey(
        "access.Entitlement", on_delete=models.CASCADE, related_name="usage_rules"
    )
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["event_source", "event_name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_source", "event_name", "entitlement"],
                name="usagemappingrule_unique",
            ),
            models.UniqueConstraint(  # NULLs are distinct: "any source" rules need their own
                fields=["event_source", "event_name", "entitlement"],
                condition=Q(source__isnull=True),
                name="usagemappingrule_unique_any_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_source}:{self.event_name} → {self.entitlement}"


class PrincipalAlias(models.Model):
    """A log identity (an ARN, an IAM user name, a session name) that is this person."""

    external_id = models.CharField(max_length=500, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_aliases"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["external_id"]

    def __str__(self) -> str:
        return f"{self.external_id} = {self.user}"


class UsageImport(models.Model):
    source = models.ForeignKey(UsageSource, on_delete=models.CASCADE, related_name="imports")
    file_name = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    events = models.PositiveIntegerField(default=0)
    matched_events = models.PositiveIntegerField(default=0)
    grants_used = models.PositiveIntegerField(default=0)
    grants_moved = models.PositiveIntegerField(default=0)
    unknown_principals = models.PositiveIntegerField(default=0)
    unknown_actions = models.PositiveIntegerField(default=0)
    not_held = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True, help_text="top unknowns")
    first_event_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    imported_at = models.DateTimeField(default=timezone.now)
    imported_by = models.CharField(max_length=254, blank=True)

    class Meta:
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.source}: {self.file_name}"


OPEN_REMOVAL_STATUSES = ("detected", "scheduled", "opted_out")


class UnusedRemoval(models.Model):
    """The removal life cycle of one unused grant (transitions in ``state.py``)."""

    class Status(models.TextChoices):
        DETECTED = "detected", "Detected"
        SCHEDULED = "scheduled", "Scheduled for removal"
        OPTED_OUT = "opted_out", "Kept (opt-out)"
        OPT_OUT_ENDED = "opt_out_ended", "Opt-out ended"
        CANCELLED = "cancelled", "Cancelled"
        REMOVED = "removed", "Removed"
        RESTORED = "restored", "Restored"

    grant = models.ForeignKey(
        "access.Grant", on_delete=models.PROTECT, related_name="unused_removals"
    )
    principal = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="unused_removals"
    )
    service = models.ForeignKey(
        "access.Service", on_delete=models.PROTECT, related_name="unused_removals"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DETECTED, db_index=True
    )
    window_days = models.PositiveIntegerField()
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="at detection")
    detected_at = models.DateTimeField(default=timezone.now)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    remove_after = models.DateTimeField(null=True, blank=True, db_index=True)
    opted_out_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opt_out_reason = models.CharField(max_length=500, blank=True)
    opt_out_until = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=300, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    restored_grant = models.ForeignKey(
        "access.Grant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    restored_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    restored_at = models.DateTimeField(null=True, blank=True)
    restore_reason = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-detected_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["grant"],
                condition=Q(status__in=OPEN_REMOVAL_STATUSES),
                name="unusedremoval_one_open_per_grant",
            )
        ]
        indexes = [models.Index(fields=["status", "remove_after"])]

    def __str__(self) -> str:
        return f"unused removal #{self.pk} (grant #{self.grant_id}, {self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_REMOVAL_STATUSES
