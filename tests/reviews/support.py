"""Builders for the access-review tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from audit.models import AuditEvent
from reviews import services
from reviews.models import Campaign, ReviewItem

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the frozen clock of these tests


def make_campaign(actor, *, scope="service", reviewer_rule="manager", action="revoke", **extra):
    return services.campaign_create(
        actor=actor,
        name=extra.pop("name", "Q1 review"),
        scope=scope,
        reviewer_rule=reviewer_rule,
        starts_at=extra.pop("starts_at", T0),
        deadline=extra.pop("deadline", T0 + timedelta(days=14)),
        deadline_action=action,
        **extra,
    )


def item_for(campaign, principal) -> ReviewItem:
    return ReviewItem.objects.get(campaign=campaign, principal=principal)


def state() -> dict:
    """What a refused action must leave exactly as it was."""
    from access.models import Grant, SyncJob

    return {
        # Signing in (auth.*) is audited too; it is not what the refused action changed.
        "audit": AuditEvent.objects.exclude(action__startswith="auth.").count(),
        "items": list(ReviewItem.objects.order_by("pk").values_list("pk", "status", "decided_at")),
        "campaigns": list(Campaign.objects.order_by("pk").values_list("pk", "status")),
        "grants": list(Grant.objects.order_by("pk").values_list("pk", "status")),
        "jobs": SyncJob.objects.count(),
    }
