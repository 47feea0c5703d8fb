"""Reads of the usage app, scoped by the viewer. Not visible ⇒ Http404."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.selectors import user_reports

from .models import UnusedRemoval, UsageCoverage, UsageImport, UsageMappingRule
from .policies import may_manage_usage, sees_all_usage
from .rules import UnusedRule, unused_grants  # noqa: F401  (the rule, re-exported for costs)


def removals_for_viewer(*, viewer) -> QuerySet[UnusedRemoval]:
    """Holders see their own; managers their reports'; owner teams their services';
    security, auditors and admins all; anyone else nothing."""
    qs = UnusedRemoval.objects.select_related(
        "grant__entitlement__service", "principal", "service", "opted_out_by", "restored_grant"
    )
    if not getattr(viewer, "is_authenticated", False) or not viewer.is_active:
        return qs.none()
    if sees_all_usage(viewer):
        return qs
    team_ids = set(viewer.memberships.values_list("team_id", flat=True))
    if viewer.team_id:
        team_ids.add(viewer.team_id)
    reports = user_reports(user=viewer).values("pk")
    return qs.filter(
        Q(principal=viewer) | Q(principal_id__in=reports) | Q(service__owner_team_id__in=team_ids)
    )


def removal_get(*, viewer, pk: int) -> UnusedRemoval:
    removal = removals_for_viewer(viewer=viewer).filter(pk=pk).first()
    if removal is None:
        raise Http404("no such removal")
    return removal


def coverage_overview(*, viewer, now: datetime | None = None) -> list[dict]:
    """Freshness of every source × service the viewer may see removals of (all for the
    privileged), with a fresh/stale verdict under the current rule."""
    now = now or timezone.now()
    rule = UnusedRule.from_settings()
    qs = UsageCoverage.objects.select_related("source", "service").order_by(
        "service__slug", "source__slug"
    )
    if not sees_all_usage(viewer):
        service_ids = removals_for_viewer(viewer=viewer).values("service_id")
        team_ids = set(viewer.memberships.values_list("team_id", flat=True))
        if viewer.team_id:
            team_ids.add(viewer.team_id)
        qs = qs.filter(Q(service_id__in=service_ids) | Q(service__owner_team_id__in=team_ids))
    out = []
    for row in qs:
        fresh = row.last_success_at is not None and row.last_success_at >= rule.fresh_after(now)
        spans = row.covered_since <= rule.cutoff(now)
        out.append(
            {
                "coverage": row,
                "fresh": fresh,
                "spans_window": spans,
                "counts": fresh and spans,
            }
        )
    return out


def rules_for_admin(*, viewer) -> QuerySet[UsageMappingRule]:
    if not may_manage_usage(viewer):
        raise Http404("no such page")
    return UsageMappingRule.objects.select_related("source", "entitlement__service")


def recent_imports(*, viewer, limit: int = 20) -> list[UsageImport]:
    if not may_manage_usage(viewer):
        raise Http404("no such page")
    return list(UsageImport.objects.select_related("source")[:limit])
