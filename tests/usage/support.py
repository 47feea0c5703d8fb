"""Builders for the unused-access tests (hand-built grants, usage coverage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from access.models import Grant
from tests.access.factories import grant_directly
from usage.models import UsageSource
from usage.services import coverage_mark, source_for_events

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def at(days: float = 0, *, now: datetime | None = None) -> datetime:
    """``days`` before ``now`` (default: the test clock NOW)."""
    return (now or NOW) - timedelta(days=days)


def cover(
    service,
    *,
    since_days: float = 365,
    collected_hours_ago: float = 1,
    now: datetime | None = None,
    source: UsageSource | None = None,
) -> UsageSource:
    """Usage data for ``service``: covering since ``since_days`` ago, collected hours ago."""
    now = now or NOW
    source = source or source_for_events("cloudtrail")
    coverage_mark(
        source=source,
        service_ids=[service.pk],
        covered_since=now - timedelta(days=since_days),
        complete_until=now - timedelta(hours=collected_hours_ago),
        attempt_at=now,
    )
    return source


def aged_grant(
    principal,
    entitlement,
    *,
    age_days: float = 200,
    last_used_days: float | None = None,
    ends_in_days: float = 365,
    now: datetime | None = None,
    status: str = "active",
) -> Grant:
    """A grant that started ``age_days`` before ``now`` and was last used ``last_used_days``
    before it (``None`` = never seen)."""
    now = now or NOW
    grant = grant_directly(principal, entitlement, status=status)
    Grant.objects.filter(pk=grant.pk).update(
        starts_at=now - timedelta(days=age_days),
        created_at=now - timedelta(days=age_days),
        ends_at=now + timedelta(days=ends_in_days),
        last_used_at=None if last_used_days is None else now - timedelta(days=last_used_days),
    )
    grant.refresh_from_db()
    return grant
