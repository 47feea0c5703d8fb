"""Reads of provisioning state, scoped by what the viewer may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from ..models import (
    DriftItem,
    Entitlement,
    FollowUpReview,
    Grant,
    ManualTask,
    ReconciliationRun,
    Service,
    SyncJob,
)
from ..policies import is_security
from .policies import user_group_names


def jobs_for_grant(*, grant) -> list[SyncJob]:
    return list(SyncJob.objects.filter(grant=grant).order_by("created_at", "pk"))


def failed_jobs() -> QuerySet[SyncJob]:
    return (
        SyncJob.objects.filter(status=SyncJob.Status.FAILED)
        .select_related("service", "grant")
        .order_by("-finished_at", "-pk")
    )


def job_counts() -> dict[str, int]:
    rows = SyncJob.objects.values("status").annotate(n=Count("pk"))
    counts = {status: 0 for status in SyncJob.Status.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def manual_tasks_for(*, viewer, include_closed: bool = False) -> QuerySet[ManualTask]:
    from accounts.policies import is_platform_admin

    qs = ManualTask.objects.select_related("job__service", "answered_by")
    if not is_platform_admin(viewer):
        qs = qs.filter(group__in=user_group_names(viewer))
    if not include_closed:
        qs = qs.filter(status=ManualTask.Status.OPEN)
    return qs.order_by("created_at", "pk")


def follow_ups_for(*, viewer, include_closed: bool = False) -> QuerySet[FollowUpReview]:
    cond = Q(reviewer=viewer)
    if is_security(viewer):
        cond |= Q(reviewer__isnull=True) | Q(kind=FollowUpReview.Kind.BREAK_GLASS)
    qs = (
        FollowUpReview.objects.filter(cond)
        .exclude(grant__principal=viewer)
        .select_related("grant__principal", "grant__entitlement__service", "reviewer")
    )
    if not include_closed:
        qs = qs.filter(status=FollowUpReview.Status.OPEN)
    return qs.order_by("due_at", "pk")


def last_run(*, service: Service) -> ReconciliationRun | None:
    return ReconciliationRun.objects.filter(service=service).order_by("-started_at", "-pk").first()


# A run still "running" this long after it started was lost (its worker stopped): the page
# says so and stops polling (the next run starts afresh; the advisory lock went with the worker).
RUN_LOST_AFTER = timedelta(hours=2)


@dataclass(frozen=True)
class RunProgress:
    """What the reconciliation progress bar shows of one run."""

    run: ReconciliationRun
    compared: int  # grants found downstream so far (all of them once done)
    total: int  # the service's active grants
    drift: int  # found so far; the run's drift once done
    lost: bool  # running, but for longer than RUN_LOST_AFTER

    @property
    def running(self) -> bool:
        return self.run.status == ReconciliationRun.Status.RUNNING and not self.lost

    @property
    def percent(self) -> int:
        if not self.running:
            return 100
        return min(99, self.compared * 100 // self.total) if self.total else 0


def run_progress(*, service: Service, run_id: int | None = None) -> RunProgress | None:
    """The progress of a run of the service (the last one when no id is given)."""
    runs = ReconciliationRun.objects.filter(service=service)
    run = (
        runs.filter(pk=run_id).first()
        if run_id is not None
        else runs.order_by("-started_at", "-pk").first()
    )
    if run is None:
        return None
    if run.status == ReconciliationRun.Status.RUNNING:
        total = Grant.objects.filter(
            entitlement__service=service, status=Grant.Status.ACTIVE
        ).count()
        lost = timezone.now() - run.started_at > RUN_LOST_AFTER
    else:
        total, lost = run.grants_checked, False
    return RunProgress(
        run=run,
        compared=run.grants_checked,
        total=total,
        drift=run.drift,
        lost=lost,
    )


def current_drift(*, service: Service) -> QuerySet[DriftItem]:
    """The drift found by the last completed run of the service."""
    run = (
        ReconciliationRun.objects.filter(service=service, status=ReconciliationRun.Status.DONE)
        .order_by("-started_at", "-pk")
        .first()
    )
    if run is None:
        return DriftItem.objects.none()
    return run.items.select_related("grant").order_by("kind", "principal_login")


def org_drift() -> list[ReconciliationRun]:
    """The last completed run of every service that has one (one query)."""
    latest = (
        ReconciliationRun.objects.filter(
            service=OuterRef("service"), status=ReconciliationRun.Status.DONE
        )
        .order_by("-started_at", "-pk")
        .values("pk")[:1]
    )
    return list(
        ReconciliationRun.objects.filter(pk=Subquery(latest))
        .select_related("service")
        .order_by("service__name")
    )


def break_glass_entitlements() -> QuerySet[Entitlement]:
    return (
        Entitlement.objects.filter(allows_break_glass=True)
        .select_related("service")
        .order_by("service__name", "name")
    )
