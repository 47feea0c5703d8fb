"""Every row lock the access services take, in one place, each noted against ``LOCK_ORDER``
(``portal.core.locks``): a person, then a request, then grants (by id), then their sync jobs,
then manual tasks and follow-up items; the audit chain head (the first ``audit_record``) last.

So a row a transaction changes is always locked before its first audit event: every audited
change holds the chain head until commit, and a row lock taken after it could deadlock with a
transaction that holds that row and is about to audit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from portal.core.locks import lock_note

from ..models import AccessRequest, FollowUpReview, Grant, ManualTask, SyncJob


def lock_person(user_id: int) -> Any:
    """The person's row, FOR NO KEY UPDATE: it serialises their submissions (so the "one open
    request" and separation-of-duties checks see each other) but not the inserts that only
    reference the user (grants, approvals)."""
    from accounts.models import User

    user = User.objects.select_for_update(no_key=True).filter(pk=user_id).first()
    lock_note("accounts.User", user_id)
    return user


def lock_request(request_id: int) -> AccessRequest:
    """The request row only (not the joined users, entitlement and service)."""
    request = (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("principal", "requester", "entitlement", "entitlement__service")
        .get(pk=request_id)
    )
    lock_note("access.AccessRequest", request_id)
    return request


def lock_open_requests_of(users: Iterable[Any]) -> list[AccessRequest]:
    """The pending requests ``users`` made or are the principal of (by id): a leaver's."""
    from django.db.models import Q

    ids = [getattr(u, "pk", u) for u in users]
    requests = list(
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("principal", "requester")
        .filter(Q(requester_id__in=ids) | Q(principal_id__in=ids))
        .filter(status=AccessRequest.Status.PENDING)
        .order_by("pk")
    )
    lock_note("access.AccessRequest", *[r.pk for r in requests])
    return requests


def lock_grant(grant_id: int) -> Grant:
    grant = (
        Grant.objects.select_for_update(of=("self",))
        .select_related("principal", "entitlement__service")
        .get(pk=grant_id)
    )
    lock_note("access.Grant", grant_id)
    return grant


def lock_held_grants(*, principal_id: int, entitlement_id: int) -> list[Grant]:
    """The held grant of (principal, entitlement), if any."""
    held = list(
        Grant.objects.select_for_update(of=("self",))
        .filter(
            principal_id=principal_id, entitlement_id=entitlement_id, status__in=Grant.HELD_STATUSES
        )
        .order_by("pk")
    )
    lock_note("access.Grant", *[g.pk for g in held])
    return held


def lock_grants_held_by(users: Iterable[Any]) -> list[Grant]:
    """Every held grant of ``users`` (by id), then their open and failed sync jobs."""
    grants = list(
        Grant.objects.select_for_update(of=("self",))
        .select_related("principal", "entitlement__service")
        .filter(principal__in=list(users), status__in=Grant.HELD_STATUSES)
        .order_by("pk")
    )
    lock_note("access.Grant", *[g.pk for g in grants])
    lock_open_jobs(grant_ids=[g.pk for g in grants])
    return grants


def lock_open_jobs(*, grant_ids: list[int]) -> list[SyncJob]:
    """The jobs of these grants that a revocation cancels (not started, waiting, failed)."""
    if not grant_ids:
        return []
    jobs = list(
        SyncJob.objects.select_for_update()
        .filter(
            grant_id__in=grant_ids,
            status__in=(
                SyncJob.Status.PENDING,
                SyncJob.Status.WAITING_MANUAL,
                SyncJob.Status.FAILED,
            ),
        )
        .order_by("pk")
    )
    lock_note("access.SyncJob", *[j.pk for j in jobs])
    return jobs


def lock_job(job_id: int) -> tuple[SyncJob | None, Grant | None]:
    """The job's grant (if any), then the job."""
    grant_id = SyncJob.objects.filter(pk=job_id).values_list("grant_id", flat=True).first()
    grant = lock_grant(grant_id) if grant_id is not None else None
    job = (
        SyncJob.objects.select_for_update(of=("self",))
        .select_related("service")
        .filter(pk=job_id)
        .first()
    )
    if job is not None:
        lock_note("access.SyncJob", job.pk)
        if grant is not None:
            job.grant = grant
    return job, grant


def lock_manual_task(task_id: int) -> ManualTask:
    task = ManualTask.objects.select_for_update().get(pk=task_id)
    lock_note("access.ManualTask", task_id)
    return task


def lock_follow_up(item_id: int) -> FollowUpReview:
    item = FollowUpReview.objects.select_for_update().get(pk=item_id)
    lock_note("access.FollowUpReview", item_id)
    return item
