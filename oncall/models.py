"""On-call rotas: schedules (one per service's rota), their shifts, and the grants a shift
justified."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class Schedule(models.Model):
    """A rota for a service. While on shift, the person holds ``entitlements`` (granted at
    the shift's start, revoked at its end plus ``grace``), and a policy with
    ``auto_approve_on_call`` approves their requests for the service at once."""

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    service = models.ForeignKey("access.Service", on_delete=models.PROTECT, related_name="+")
    entitlements = models.ManyToManyField("access.Entitlement", blank=True, related_name="+")
    grace = models.DurationField(default=timedelta(minutes=30))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class Shift(models.Model):
    class Source(models.TextChoices):
        API = "api", "Pushed through the API"
        ICAL = "ical", "Imported from iCalendar"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="shifts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    source = models.CharField(max_length=8, choices=Source.choices)
    external_id = models.CharField(max_length=300, blank=True, help_text="e.g. the iCal UID")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["schedule", "starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(starts_at__lt=F("ends_at")), name="oncall_shift_ordered"
            )
        ]
        indexes = [models.Index(fields=["schedule", "starts_at", "ends_at"])]

    def __str__(self) -> str:
        return f"{self.schedule.slug}: {self.user_id} {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%H:%M}"

    @property
    def label(self) -> str:
        return (
            f"oncall:{self.schedule.slug}#shift-{self.pk} "
            f"({self.starts_at:%Y-%m-%dT%H:%MZ}–{self.ends_at:%Y-%m-%dT%H:%MZ})"
        )


class ShiftGrant(models.Model):
    """A grant a shift justified (granted at its start, or approved because the person was on
    call); revoked when the shift ends plus the schedule's grace."""

    shift = models.ForeignKey(Shift, on_delete=models.PROTECT, related_name="grants")
    grant = models.OneToOneField("access.Grant", on_delete=models.PROTECT, related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["shift", "grant"]

    def __str__(self) -> str:
        return f"shift #{self.shift_id} -> grant #{self.grant_id}"
