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
            raise task.retry(kwargs={**retry_kwargs, "channels": channels}, exc=exc, countdown=countdown) from exc
    if "chat" in channels:
        try:
            notifications.post_chat(message)
        except OSError as exc:
            countdown = min(600, 10 * 2**task.request.retries) + random.randint(0, 5)  # noqa: S311
            raise task.retry(kwargs={**retry_kwargs, "channels": ["chat"]}, exc=exc, countdown=countdown) from exc


@shared_task(bind=True, name="access.tasks.notify_approvers", max_retries=MAX_NOTIFY_RETRIES, queue="notify")
def notify_approvers(self, request_id: int, kind: str = "new", channels: list[str] | None = None) -> None:
    from accounts.models import User

    from . import notifications
    from .models import AccessRequest, Approval, ApprovalAssignment
    from .workflow import active_delegations

    request = AccessRequest.objects.select_related("principal", "entitlement__service").filter(pk=request_id).first()
    if request is None or request.status != AccessRequest.Status.PENDING:
        return
    ids = set(ApprovalAssignment.objects.filter(request=request, stage=request.current_stage).values_list("approver_id", flat=True))
    ids |= set(active_delegations().filter(delegator_id__in=ids).values_list("delegate_id", flat=True))
    # Those who already approved this stage (N of M) have nothing more to do.
    ids -= set(Approval.objects.filter(request=request, stage=request.current_stage).values_list("approver_id", flat=True))
    ids -= {request.requester_id, request.principal_id}
    emails = sorted(User.objects.filter(pk__in=ids, is_active=True).values_list("email", flat=True))
    if not emails:
        return
    message = notifications.approver_message(request, emails, kind)
    _deliver(self, message, channels, {"request_id": request_id, "kind": kind})


@shared_task(bind=True, name="access.tasks.notify_requester", max_retries=MAX_NOTIFY_RETRIES, queue="notify")
def notify_requester(self, request_id: int, channels: list[str] | None = None) -> None:
    from . import notifications
    from .models import AccessRequest

    request = AccessRequest.objects.select_related("principal", "requester", "entitlement__service").filter(pk=request_id).first()
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
