"""Provisioning: the outbox of SyncJob rows written with the grant change, run by workers.

Life of a job (``access.state.SYNC_JOB_TRANSITIONS``)::

    pending --start--> running --succeed--> done
                          |--defer--> pending      (transient error, backoff + jitter)
                          |--fail--> failed        (permanent error, or attempts exhausted)
                          |--wait_manual--> waiting_manual --complete--> done / --fail--> failed
                          '--requeue--> pending    (worker vanished: lease expired, sweeper)
    failed --retry--> pending   (the retry button)
    pending|waiting_manual|failed --cancel--> cancelled  (superseded by a revocation)

Lock order, everywhere (``LOCK_ORDER``): the grant row, then the job row, then the audit chain
head (``audit_record``). No network I/O happens inside a transaction: a run claims the job
(commit), calls the connector, then records the outcome (commit). What a job's outcome means
for its grant is written by :mod:`.grants` (``grant_sync_done``, ``grant_sync_failed``).
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from connectors.base import (
    ConnectorError,
    EntitlementRef,
    PermanentError,
    PrincipalRef,
    TransientError,
)
from connectors.registry import get_connector
from portal.core.actors import PROVISIONER, SYNC_SWEEPER, Actor, actor_may
from portal.core.errors import Conflict, NotFound, NotPermitted, ValidationError
from portal.core.state import transition

from .. import registry as actions
from ..models import OPEN_JOB_STATUSES, Entitlement, Grant, ManualTask, SyncJob
from ..state import SYNC_JOB_TRANSITIONS
from . import grants
from ._common import notify_queued
from .locks import lock_job, lock_manual_task, lock_open_jobs

logger = logging.getLogger(__name__)


# --- Writing jobs ---------------------------------------------------------------------
def _key(operation: str, grant: Grant | None, suffix: str) -> str:
    base = f"tg-{operation}-g{grant.pk}-v{grant.version}" if grant else f"tg-{operation}"
    return f"{base}-{suffix}"[:100]


def enqueue_job(job_id: int, *, countdown: float | None = None) -> None:
    """Send the job's message now (call it after commit). A broker outage raises."""
    from .. import tasks

    options = {"queue": settings.TOLLGATE_SYNC_QUEUE}
    if countdown:
        options["countdown"] = countdown
    tasks.run_sync_job.apply_async(args=[job_id], **options)


def _enqueue_on_commit(job: SyncJob, *, countdown: float | None = None) -> None:
    """After commit; ``robust``: a broker outage is logged, and the sweeper sends it later."""
    job_id = job.pk

    def send():
        enqueue_job(job_id, countdown=countdown)
        SyncJob.objects.filter(pk=job_id).update(enqueued_at=timezone.now())

    transaction.on_commit(send, robust=True)


def job_create(
    *,
    actor,
    service,
    operation: str,
    grant: Grant | None,
    origin: str,
    principal_email: str = "",
    principal_login: str = "",
    entitlement_slug: str = "",
    drift_item=None,
    key_suffix: str = "",
) -> SyncJob:
    """Write one outbox row in the caller's transaction and enqueue it after commit."""
    if grant is not None:
        principal_email = principal_email or grant.principal.email
        entitlement_slug = entitlement_slug or grant.entitlement.slug
    now = timezone.now()
    job = SyncJob.objects.create(
        service=service,
        connector=service.connector,
        operation=operation,
        grant=grant,
        origin=origin,
        principal_email=principal_email,
        principal_login=principal_login,
        entitlement_slug=entitlement_slug,
        drift_item=drift_item,
        idempotency_key=_key(operation, grant, key_suffix or now.strftime("%Y%m%d%H%M%S%f")),
        max_attempts=settings.TOLLGATE_SYNC_MAX_ATTEMPTS,
        next_attempt_at=now,
    )
    audit_record(
        actor=actor,
        action=actions.SYNC_JOB_CREATED,
        target=job,
        after={
            "operation": operation,
            "connector": service.connector,
            "service": service.slug,
            "grant": grant.pk if grant else None,
            "principal": principal_email or principal_login,
            "entitlement": entitlement_slug,
            "origin": origin,
            "idempotency_key": job.idempotency_key,
        },
    )
    _enqueue_on_commit(job)
    return job


def _job_transition(job: SyncJob, action: str, *, actor, reason: str = "", **fields) -> None:
    transition(
        job,
        table=SYNC_JOB_TRANSITIONS,
        action=action,
        actor=actor,
        audit_action=actions.SYNC_JOB_TRANSITIONS[action],
        reason=reason,
        extra_fields=fields,
        after_extra={"attempts": fields.get("attempts", job.attempts)},
    )


def cancel_open_jobs(*, grant: Grant, actor, reason: str) -> int:
    """Cancel the grant's jobs that have not started (call with the grant row locked)."""
    cancelled = 0
    jobs = lock_open_jobs(grant_ids=[grant.pk])
    for job in jobs:
        if job.status in (SyncJob.Status.PENDING, SyncJob.Status.WAITING_MANUAL):
            _job_transition(job, "cancel", actor=actor, reason=reason, finished_at=timezone.now())
            ManualTask.objects.filter(job=job, status=ManualTask.Status.OPEN).update(
                status=ManualTask.Status.CANCELLED, updated_at=timezone.now()
            )
            cancelled += 1
    # A failed grant job is superseded by the revocation as well.
    for job in jobs:
        if job.status == SyncJob.Status.FAILED and job.operation == SyncJob.Operation.GRANT:
            _job_transition(job, "cancel", actor=actor, reason=reason)
            cancelled += 1
    return cancelled


# --- Jobs of grants (called by .grants) -----------------------------------------------
def grant_job_create(*, grant: Grant, actor: Actor) -> None:
    """A new grant of a service with a connector: write its grant job (grant stays pending)."""
    origin = SyncJob.Origin.BREAK_GLASS if grant.break_glass else SyncJob.Origin.REQUEST
    job_create(
        actor=actor,
        service=grant.entitlement.service,
        operation=SyncJob.Operation.GRANT,
        grant=grant,
        origin=origin,
        key_suffix="new",
    )


def revoke_job_create(*, grant: Grant, actor: Actor, origin: str = SyncJob.Origin.REVOKE) -> None:
    """The grant went to revoking: cancel what has not run, write the revoke job."""
    cancel_open_jobs(grant=grant, actor=actor, reason="superseded by the revocation")
    job_create(
        actor=actor,
        service=grant.entitlement.service,
        operation=SyncJob.Operation.REVOKE,
        grant=grant,
        origin=origin,
        key_suffix="revoke",
    )


# --- Running jobs ---------------------------------------------------------------------
def backoff_seconds(attempts: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter in its upper half, capped."""
    base = settings.TOLLGATE_SYNC_BACKOFF_BASE
    cap = settings.TOLLGATE_SYNC_BACKOFF_CAP
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay * (0.5 + (rng or random).random() / 2)  # noqa: S311 - jitter, not crypto


def refs_for(job: SyncJob, connector) -> tuple[PrincipalRef, EntitlementRef]:
    config = {}
    if job.grant is not None:
        config = dict(job.grant.entitlement.connector_config or {})
    elif job.entitlement_slug:
        # An unmanaged holder's revoke (reconciliation) has no grant: the entitlement's own
        # settings (a SCIM group, a PostgreSQL role) still say where it lives downstream.
        config = dict(
            Entitlement.objects.filter(service_id=job.service_id, slug=job.entitlement_slug)
            .values_list("connector_config", flat=True)
            .first()
            or {}
        )
    principal = PrincipalRef(email=job.principal_email, login=job.principal_login)
    return principal, EntitlementRef(job.service.slug, job.entitlement_slug, config=config)


def _blocked_by_earlier(job: SyncJob) -> bool:
    """Jobs of one grant run in order: a revoke waits for a grant job still running."""
    if job.grant_id is None:
        return False
    return (
        SyncJob.objects.filter(grant_id=job.grant_id, pk__lt=job.pk, status__in=OPEN_JOB_STATUSES)
        .exclude(pk=job.pk)
        .exists()
    )


def _claim(job_id: int, now: datetime) -> tuple[str, SyncJob | None]:
    lease = timedelta(seconds=settings.TOLLGATE_SYNC_LEASE_SECONDS)
    with transaction.atomic():
        job, _ = lock_job(job_id)
        if job is None:
            return "missing", None
        if job.status == SyncJob.Status.RUNNING:
            if job.started_at and job.started_at > now - lease:
                return "busy", job  # another delivery of this job is running it
            _job_transition(
                job,
                "requeue",
                actor=SYNC_SWEEPER,
                reason="the worker running it vanished (lease expired)",
            )
        if job.status != SyncJob.Status.PENDING:
            return "noop", job  # done, failed, cancelled or waiting for a person
        if job.next_attempt_at > now + timedelta(seconds=1):
            return "early", job  # a duplicate or early message; the scheduled one runs it
        if _blocked_by_earlier(job):
            job.next_attempt_at = now + timedelta(seconds=2)
            job.save(update_fields=["next_attempt_at"])
            if not _eager():
                _enqueue_on_commit(job, countdown=2)
            return "blocked", job
        _job_transition(job, "start", actor=PROVISIONER, attempts=job.attempts + 1, started_at=now)
    return "started", job


def _call_connector(job: SyncJob):
    """Run the downstream call. Returns (connector, result, error, transient, retry_after):
    ``retry_after`` is the wait the downstream system asked for (HTTP Retry-After), if any."""
    try:
        connector = get_connector(job.service.connector, job.service.connector_config)
        principal, entitlement = refs_for(job, connector)
        if job.operation == SyncJob.Operation.GRANT:
            result = connector.grant(principal, entitlement, idempotency_key=job.idempotency_key)
        else:
            result = connector.revoke(principal, entitlement, idempotency_key=job.idempotency_key)
        return connector, result, None, False, None
    except TransientError as exc:
        return None, None, exc.message, True, getattr(exc, "retry_after", None)
    except PermanentError as exc:
        return None, None, exc.message, False, None
    except ConnectorError as exc:  # pragma: no cover - every ConnectorError is one of the two
        return None, None, exc.message, False, None
    except Exception as exc:  # a connector bug: transient, but bounded by max_attempts
        logger.exception("connector %s raised unexpectedly", job.service.connector)
        return None, None, f"unexpected {type(exc).__name__}: {str(exc)[:300]}", True, None


def sync_job_run(*, job_id: int, now: datetime | None = None) -> str:
    """Run one job once (a task delivery). Idempotent: a repeat or late delivery is a no-op.

    Returns what happened: started jobs end ``done``, ``deferred``, ``failed`` or
    ``waiting_manual``; otherwise ``missing``, ``busy``, ``noop``, ``early`` or ``blocked``.
    """
    now = now or timezone.now()
    outcome, job = _claim(job_id, now)
    if outcome != "started" or job is None:
        return outcome
    attempt = job.attempts
    connector, result, error, transient, retry_after = _call_connector(job)
    return _record(job_id, attempt, connector, result, error, transient, retry_after)


def _record(
    job_id: int, attempt: int, connector, result, error, transient, retry_after=None
) -> str:
    now = timezone.now()
    with transaction.atomic():
        job, grant = lock_job(job_id)
        if job is None or job.status != SyncJob.Status.RUNNING or job.attempts != attempt:
            return "superseded"  # the sweeper re-queued it meanwhile; the other run records
        if result is not None and result.done:
            _job_transition(
                job,
                "succeed",
                actor=PROVISIONER,
                reason=result.detail,
                finished_at=now,
                changed=result.changed,
                detail=(result.detail or "")[:500],
                last_error="",
            )
            _complete_grant(job, grant, actor=PROVISIONER)
            return "done"
        if result is not None:  # pending_manual: a person carries it out
            _job_transition(
                job,
                "wait_manual",
                actor=PROVISIONER,
                reason=result.detail,
                detail=(result.detail or "")[:500],
            )
            _open_manual_task(job, connector)
            return "waiting_manual"
        if transient and job.attempts < job.max_attempts:
            # Never sooner than the downstream system asked (Retry-After), nor than backoff.
            delay = max(backoff_seconds(job.attempts), float(retry_after or 0))
            _job_transition(
                job,
                "defer",
                actor=PROVISIONER,
                reason=error,
                last_error=error,
                next_attempt_at=now + timedelta(seconds=delay),
            )
            if not _eager():
                _enqueue_on_commit(job, countdown=delay)
            return "deferred"
        if transient:
            error = f"gave up after {job.attempts} attempts: {error}"
        _fail(job, grant, error=error, actor=PROVISIONER)
        return "failed"


def _eager() -> bool:
    from portal.celery import app

    return bool(app.conf.task_always_eager)


def _complete_grant(job: SyncJob, grant: Grant | None, *, actor: Actor) -> None:
    if grant is not None:
        grants.grant_sync_done(grant, job=job, actor=actor)


def _fail(job: SyncJob, grant: Grant | None, *, error: str, actor) -> None:
    _job_transition(
        job, "fail", actor=actor, reason=error, last_error=error, finished_at=timezone.now()
    )
    if grant is not None:
        grants.grant_sync_failed(grant, job=job, actor=actor, error=error)
    _notify_failed(job)


def _notify_failed(job: SyncJob) -> None:
    from .. import tasks

    job_id = job.pk
    transaction.on_commit(
        lambda: tasks.notify_sync_failed.apply_async(
            args=(job_id,), queue=settings.TOLLGATE_NOTIFY_QUEUE
        ),
        robust=True,
    )


def _open_manual_task(job: SyncJob, connector) -> ManualTask:
    principal, entitlement = refs_for(job, connector)
    spec = connector.task_for(job.operation, principal, entitlement)
    task, created = ManualTask.objects.get_or_create(
        job=job,
        defaults={
            "group": spec.group,
            "title": spec.title[:300],
            "instructions": spec.instructions,
            "remind_after_hours": spec.remind_after_hours,
        },
    )
    if created:
        notify_queued("notify_manual_task", task.pk)
    if not created and task.status != ManualTask.Status.OPEN:  # a retried job: ask again
        task.status = ManualTask.Status.OPEN
        task.answered_by = None
        task.answered_at = None
        task.reminded_at = None
        task.updated_at = timezone.now()
        task.save()
    return task


# --- People act on jobs ---------------------------------------------------------------
def sync_job_retry(*, actor, job_id: int, reason: str = "") -> SyncJob:
    """The retry button: a failed job runs again (and its grant leaves the failed state)."""
    from ..sync.policies import may_retry_jobs

    if not actor_may(actor, may_retry_jobs):
        raise NotPermitted("only the platform team retries provisioning jobs")
    with transaction.atomic():
        job, grant = lock_job(job_id)
        if job is None:
            raise NotFound("no such job")
        if job.status != SyncJob.Status.FAILED:
            raise Conflict(f"job #{job.pk} is {job.status}, not failed")
        if grant is not None:
            grants.grant_sync_retry(grant, job=job, actor=actor, reason=reason)
        _job_transition(
            job,
            "retry",
            actor=actor,
            reason=reason,
            attempts=0,
            next_attempt_at=timezone.now(),
            finished_at=None,
        )
        _enqueue_on_commit(job)
    return job


def manual_task_answer(*, actor, task_id: int, outcome: str, note: str = "") -> ManualTask:
    """A member of the task's group answers: ``done`` completes the job, ``cannot`` fails it."""
    from ..sync.policies import may_answer_manual_task

    if outcome not in ("done", "cannot"):
        raise ValidationError("answer done or cannot", field="outcome")
    if outcome == "cannot" and not (note or "").strip():
        raise ValidationError("say why it cannot be done", field="note")
    job_id = ManualTask.objects.filter(pk=task_id).values_list("job_id", flat=True).first()
    if job_id is None:
        raise NotFound("no such task")
    with transaction.atomic():
        job, grant = lock_job(job_id)
        if job is None:
            raise NotFound("no such task")
        task = lock_manual_task(task_id)
        if not actor_may(actor, lambda user: may_answer_manual_task(user, task)):
            raise NotFound("no such task")
        if task.status != ManualTask.Status.OPEN or job.status != SyncJob.Status.WAITING_MANUAL:
            raise Conflict(f"this task is already {task.get_status_display().lower()}")
        now = timezone.now()
        task.status = ManualTask.Status.DONE if outcome == "done" else ManualTask.Status.CANNOT
        task.answered_by = actor
        task.answered_at = now
        task.note = (note or "")[:500]
        task.updated_at = now
        task.save(update_fields=["status", "answered_by", "answered_at", "note", "updated_at"])
        audit_record(
            actor=actor,
            action=actions.MANUAL_TASK_ANSWERED,
            target=task,
            before={"status": ManualTask.Status.OPEN},
            after={"status": task.status, "job": job.pk},
            reason=note,
        )
        if outcome == "done":
            _job_transition(
                job, "complete", actor=actor, reason=note, finished_at=now, changed=True
            )
            _complete_grant(job, grant, actor=actor)
        else:
            _fail(job, grant, error=f"cannot be done: {note}"[:500], actor=actor)
    return task


# --- The sweeper ----------------------------------------------------------------------
def sync_jobs_sweep(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Re-enqueue jobs whose message was lost: pending and overdue by the grace period
    (broker down at commit, retry message lost), or running past the lease (worker killed).
    Sending twice is harmless: a run claims the job under a row lock."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.TOLLGATE_SYNC_SWEEP_GRACE_SECONDS)
    lease = timedelta(seconds=settings.TOLLGATE_SYNC_LEASE_SECONDS)
    overdue = list(
        SyncJob.objects.filter(status=SyncJob.Status.PENDING, next_attempt_at__lte=now - grace)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    stale = list(
        SyncJob.objects.filter(status=SyncJob.Status.RUNNING, started_at__lte=now - lease)
        .order_by("started_at")
        .values_list("pk", flat=True)[:limit]
    )
    counts = {"overdue": 0, "stale": 0, "errors": 0}
    for kind, ids in (("overdue", overdue), ("stale", stale)):
        for job_id in ids:
            try:
                enqueue_job(job_id)
            except Exception:  # the broker is still down: the next sweep tries again
                logger.warning("sweeper could not enqueue sync job %s", job_id, exc_info=True)
                counts["errors"] += 1
                continue
            SyncJob.objects.filter(pk=job_id).update(enqueued_at=timezone.now())
            counts[kind] += 1
    return counts


def job_create_safely(**kwargs) -> SyncJob | None:
    """job_create in a savepoint; None when an open job for the same target exists."""
    try:
        with transaction.atomic():
            return job_create(**kwargs)
    except IntegrityError:
        return None
