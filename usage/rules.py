"""The unused rule (P4), in one place. ``usage.selectors`` and ``costs`` read it from here.

A grant is **unused** at ``now`` when all of these hold:

1. it is active;
2. it has not been used for the window: ``last_used_at`` is empty or ``<= now - window``;
3. it is older than the window and past the grace for new grants:
   ``starts_at <= now - max(window, grace)``;
4. usage data for its service is **fresh**: some source covering the service was collected
   successfully within ``TOLLGATE_USAGE_STALE_HOURS`` *and* its data reaches back to the start
   of the window (``covered_since <= now - window``). No data, stale data or too short a
   history ⇒ never unused: absence of evidence is not evidence of absence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from access.models import Grant

from .models import UsageCoverage


@dataclass(frozen=True)
class UnusedRule:
    window_days: int
    grace_days: int
    stale_hours: int

    @classmethod
    def from_settings(cls, **overrides) -> UnusedRule:
        values = {
            "window_days": settings.TOLLGATE_UNUSED_WINDOW_DAYS,
            "grace_days": settings.TOLLGATE_UNUSED_GRACE_DAYS,
            "stale_hours": settings.TOLLGATE_USAGE_STALE_HOURS,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key, value in values.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive whole number, not {value!r}")
        return cls(**values)

    def cutoff(self, now: datetime) -> datetime:
        """Used at or before this time (or never) = not used for the window."""
        return now - timedelta(days=self.window_days)

    def started_before(self, now: datetime) -> datetime:
        return now - timedelta(days=max(self.window_days, self.grace_days))

    def fresh_after(self, now: datetime) -> datetime:
        return now - timedelta(hours=self.stale_hours)


def fresh_coverage(*, now: datetime, rule: UnusedRule) -> QuerySet[UsageCoverage]:
    """Coverage rows fresh enough, and reaching back far enough, to call a grant unused."""
    return UsageCoverage.objects.filter(
        last_success_at__gte=rule.fresh_after(now), covered_since__lte=rule.cutoff(now)
    )


def fresh_service_ids(*, now: datetime, rule: UnusedRule) -> set[int]:
    return set(fresh_coverage(now=now, rule=rule).values_list("service_id", flat=True))


def unused_grants(
    *, now: datetime | None = None, rule: UnusedRule | None = None
) -> QuerySet[Grant]:
    """Every grant that is unused at ``now`` under ``rule`` (default: the settings)."""
    now = now or timezone.now()
    rule = rule or UnusedRule.from_settings()
    cutoff = rule.cutoff(now)
    return Grant.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff),
        status=Grant.Status.ACTIVE,
        starts_at__lte=rule.started_before(now),
        entitlement__service_id__in=fresh_coverage(now=now, rule=rule).values("service_id"),
    )


def is_unused(grant: Grant, *, now: datetime | None = None, rule: UnusedRule | None = None) -> bool:
    return unused_grants(now=now, rule=rule).filter(pk=grant.pk).exists()
