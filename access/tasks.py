"""Celery entry points of the access app: take ids, load fresh rows, call one service."""

from __future__ import annotations

import logging
import random

from celery import shared_task

from portal.core.locks import advisory_lock

logger = logging.getLogger(__name__)


MAX_NOTIFY_RETRIES = 5


def _deliver(task, message, channels, retry_kwargs: dict) -> None:
    """Send on each channel once. A chat failure retries only the chat post (with backoff
    and jitter, bounded), so a flaky webhook never sends the e-mail twice."""
    from . import notifications

    channels = list(channels or notifications.CHANNELS)
    if "email" in channels:
        try:
            notifications.send_email(message)
        except OSError as exc:
            countdown = min(600, 10 * 2**task.request.retries) + random.randint(0, 5)  # noqa: S311
            raise task.retry(
                kwargs={**retry_kwargs, "channels": channels}, exc=exc, countdown=countdown
            ) from exc
    if "chat" in channels:
        try:
            notifications.post_chat(message)
        except OSError as exc:
            countdown = min(600, 10 * 2**task.request.retries) + random.randint(0, 5)  # noqa: S311
            raise task.retry(
                kwargs={**retry_kwargs, "channels": ["chat"]}, exc=exc, countdown=countdown
            ) from exc


@shared_task(
    bind=True, name="access.tasks.notify_approvers", max_retries=MAX_NOTIFY_RETRIES, queue="notify"
)
def notify_approvers(
    self, request_id: int, kind: str = "new", channels: list[str] | None = None
) -> None:
    from accounts.models import User

    from . import notifications
    from .models import AccessRequest, Approval, ApprovalAssignment
    from .workflow import active_delegations

    request = (
        AccessRequest.objects.select_related("principal", "entitlement__service")
        .filter(pk=request_id)
        .first()
    )
    if request is None or request.status != AccessRequest.Status.PENDING:
        return
    ids = set(
        ApprovalAssignment.objects.filter(request=request, stage=request.current_stage).values_list(
            "approver_id", flat=True
        )
    )
    ids |= set(
        active_delegations().filter(delegator_id__in=ids).values_list("delegate_id", flat=True)
    )
    # Those who already approved this stage (N of M) have nothing more to do.
    ids -= set(
        Approval.objects.filter(request=request, stage=request.current_stage).values_list(
            "approver_id", flat=True
        )
    )
    ids -= {request.requester_id, request.principal_id}
    emails = sorted(User.objects.filter(pk__in=ids, is_active=True).values_list("email", flat=True))
    if not emails:
        return
    message = notifications.approver_message(request, emails, kind)
    _deliver(self, message, channels, {"request_id": request_id, "kind": kind})


@shared_task(
    bind=True, name="access.tasks.notify_requester", max_retries=MAX_NOTIFY_RETRIES, queue="notify"
)
def notify_requester(self, request_id: int, channels: list[str] | None = None) -> None:
    from . import notifications
    from .models import AccessRequest

    request = (
        AccessRequest.objects.select_related("principal", "requester", "entitlement__service")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        return
    _deliver(self, notifications.requester_message(request), channels, {"request_id": request_id})


@shared_task(name="access.tasks.sweep_pending_requests", ignore_result=True)
def sweep_pending_requests() -> None:
    from .services import pending_requests_sweep

    with advisory_lock("access.sweep_pending_requests") as acquired:
        if not acquired:
            logger.info("sweep_pending_requests already running elsewhere; skipped")
            return
        counts = pending_requests_sweep()
        logger.info("pending requests swept", extra={"counts": counts})


# --- Provisioning (access.sync; docs/PROVISIONING.md) ----------------------------------
def _sync_limits() -> dict:
    from django.conf import settings

    return {
        "soft_time_limit": settings.TOLLGATE_SYNC_SOFT_TIME_LIMIT,
        "time_limit": settings.TOLLGATE_SYNC_TIME_LIMIT,
    }


@shared_task(
    name="access.tasks.run_sync_job",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    queue="sync",
    **_sync_limits(),
)
def run_sync_job(job_id: int) -> None:
    """One delivery of a job: claim, call the connector, record. Redelivery is a no-op."""
    from .services.provisioning import sync_job_run

    outcome = sync_job_run(job_id=job_id)
    logger.info("sync job %s: %s", job_id, outcome)


def _locked_periodic(name: str, func, **kwargs) -> None:
    with advisory_lock(name) as acquired:
        if not acquired:
            logger.info("%s already running elsewhere; skipped", name)
            return
        result = func(**kwargs)
        logger.info("%s done", name, extra={"counts": result})


@shared_task(name="access.tasks.sweep_sync_jobs", ignore_result=True, queue="sync")
def sweep_sync_jobs() -> None:
    from .services.provisioning import sync_jobs_sweep

    _locked_periodic("access.sweep_sync_jobs", sync_jobs_sweep)


@shared_task(name="access.tasks.expire_grants", ignore_result=True, queue="sync")
def expire_grants() -> None:
    from .services.lifecycle import grants_expiry_sweep

    _locked_periodic("access.expire_grants", grants_expiry_sweep)


@shared_task(name="access.tasks.reconcile_all", ignore_result=True, queue="sync")
def reconcile_all() -> None:
    from .services.reconciliation import reconcile_all as run_all

    _locked_periodic("access.reconcile_all", run_all)


@shared_task(name="access.tasks.probe_connector_health", ignore_result=True, queue="sync")
def probe_connector_health() -> None:
    """Probe each service's downstream system and cache the answer for the catalog page."""
    from .sync.health import probe_all

    _locked_periodic("access.probe_connector_health", probe_all)


@shared_task(name="access.tasks.reconcile_service", ignore_result=True, queue="sync")
def reconcile_service(
    service_id: int, mode: str = "report", user_id: int | None = None, run_id: int | None = None
) -> None:
    """A run started by a person (``user_id``, re-checked by the service; ``run_id``: the
    running row their page shows) or the reconciler."""
    from accounts.models import User
    from portal.core.actors import RECONCILER

    from .services.reconciliation import reconcile_service as run

    user = User.objects.filter(pk=user_id).first() if isinstance(user_id, int) else None
    if user_id is not None and user is None:
        logger.warning("reconcile_service: no user #%s; not run", user_id)
        return
    run(service_id=service_id, mode=mode, actor=user or RECONCILER, run_id=run_id)


@shared_task(name="access.tasks.sweep_follow_ups", ignore_result=True, queue="sync")
def sweep_follow_ups() -> None:
    from .services.lifecycle import follow_ups_sweep

    _locked_periodic("access.sweep_follow_ups", follow_ups_sweep)


@shared_task(name="access.tasks.sweep_bundle_assignments", ignore_result=True, queue="sync")
def sweep_bundle_assignments() -> None:
    """Assignment rules follow people who move teams, managers or worker type."""
    from .services.bundles import bundle_assignments_sweep

    _locked_periodic("access.sweep_bundle_assignments", bundle_assignments_sweep)


def _send(task, message, channels, retry_kwargs) -> None:
    if message.to or "chat" in (channels or ()):
        _deliver(task, message, channels, retry_kwargs)


@shared_task(
    bind=True,
    name="access.tasks.notify_sync_failed",
    max_retries=MAX_NOTIFY_RETRIES,
    queue="notify",
)
def notify_sync_failed(self, job_id: int, channels: list[str] | None = None) -> None:
    from .models import SyncJob
    from .sync import notifications

    job = SyncJob.objects.select_related("service").filter(pk=job_id).first()
    if job is None or job.status != SyncJob.Status.FAILED:
        return
    _send(self, notifications.sync_failed_message(job), channels, {"job_id": job_id})


@shared_task(
    bind=True,
    name="access.tasks.notify_grant_expiry",
    max_retries=MAX_NOTIFY_RETRIES,
    queue="notify",
)
def notify_grant_expiry(self, grant_id: int, days: int, channels: list[str] | None = None) -> None:
    from .models import Grant
    from .sync import notifications

    grant = (
        Grant.objects.select_related("principal", "entitlement__service")
        .filter(pk=grant_id, status=Grant.Status.ACTIVE)
        .first()
    )
    if grant is None:
        return
    message = notifications.expiry_reminder_message(grant, days)
    _send(self, message, channels or ["email"], {"grant_id": grant_id, "days": days})


@shared_task(
    bind=True,
    name="access.tasks.notify_break_glass",
    max_retries=MAX_NOTIFY_RETRIES,
    queue="notify",
)
def notify_break_glass(self, grant_id: int, channels: list[str] | None = None) -> None:
    from .models import Grant
    from .sync import notifications

    grant = (
        Grant.objects.select_related("principal", "entitlement__service")
        .filter(pk=grant_id)
        .first()
    )
    if grant is None:
        return
    _send(self, notifications.break_glass_message(grant), channels, {"grant_id": grant_id})


@shared_task(
    bind=True, name="access.tasks.notify_follow_up", max_retries=MAX_NOTIFY_RETRIES, queue="notify"
)
def notify_follow_up(self, item_id: int, channels: list[str] | None = None) -> None:
    from .models import FollowUpReview
    from .sync import notifications

    item = (
        FollowUpReview.objects.select_related(
            "reviewer", "grant__principal", "grant__entitlement__service"
        )
        .filter(pk=item_id, status=FollowUpReview.Status.OPEN)
        .first()
    )
    if item is None:
        return
    _send(self, notifications.follow_up_message(item), channels or ["email"], {"item_id": item_id})


@shared_task(
    bind=True,
    name="access.tasks.notify_manual_task",
    max_retries=MAX_NOTIFY_RETRIES,
    queue="notify",
)
def notify_manual_task(self, task_id: int, channels: list[str] | None = None) -> None:
    from .models import ManualTask
    from .sync import notifications

    task = ManualTask.objects.filter(pk=task_id, status=ManualTask.Status.OPEN).first()
    if task is None:
        return
    _send(
        self, notifications.manual_task_message(task), channels or ["email"], {"task_id": task_id}
    )
