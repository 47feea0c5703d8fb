"""Messages of provisioning, expiry, break-glass and follow-ups (sent by notify-queue tasks)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import PlatformRole, User

from ..notifications import Message, absolute


def _emails(users) -> list[str]:
    return sorted({u.email for u in users if u.is_active})


def group_emails(name: str) -> list[str]:
    group = Group.objects.filter(name=name).first()
    if group is None:
        return []
    return _emails(group.user_set.filter(is_active=True))


def platform_team_emails() -> list[str]:
    return group_emails(PlatformRole.PLATFORM_ADMIN)


def owner_emails(service) -> list[str]:
    return _emails(
        User.objects.filter(memberships__team_id=service.owner_team_id, is_active=True).distinct()
    )


def sync_failed_message(job) -> Message:
    link = absolute(reverse("access_sync:failed-jobs"))
    grant = f" (grant #{job.grant_id})" if job.grant_id else ""
    subject = (
        f"[Tollgate] Provisioning failed: {job.operation} {job.service.slug}/{job.entitlement_slug}"
        f" for {job.principal_email or job.principal_login}"
    )
    body = (
        f"Sync job #{job.pk}{grant} failed after {job.attempts} attempt(s) on connector "
        f"{job.connector}.\nError: {job.last_error}\n\nRetry or investigate: {link}\n"
    )
    return Message(platform_team_emails(), subject, body, link)


def expiry_reminder_message(grant, days: int) -> Message:
    link = absolute(reverse("access:request-new") + f"?entitlement={grant.entitlement_id}")
    when = "tomorrow" if days == 1 else f"in {days} days"
    subject = f"[Tollgate] Your access to {grant.entitlement} ends {when}"
    body = (
        f"Grant #{grant.pk} ({grant.entitlement}) ends {grant.ends_at:%Y-%m-%d %H:%M} UTC.\n"
        f"Extend it (a new approval through the entitlement's policy): {link}\n"
    )
    return Message([grant.principal.email], subject, body, link)


def break_glass_message(grant) -> Message:
    link = absolute(reverse("access:grant-detail", args=[grant.pk]))
    service = grant.entitlement.service
    recipients = sorted(set(group_emails(PlatformRole.SECURITY)) | set(owner_emails(service)))
    subject = f"[Tollgate] BREAK-GLASS: {grant.principal.email} took {grant.entitlement}"
    body = (
        f"{grant.principal.email} took emergency access to {grant.entitlement} until "
        f"{grant.ends_at:%Y-%m-%d %H:%M} UTC.\nReason: {grant.reason}\n\n"
        f"A follow-up review must be answered: {absolute(reverse('access_sync:follow-ups'))}\n"
        f"Grant: {link}\n"
    )
    return Message(recipients, subject, body, link)


def follow_up_message(item) -> Message:
    link = absolute(reverse("access_sync:follow-ups"))
    recipients = [item.reviewer.email] if item.reviewer_id else group_emails(PlatformRole.SECURITY)
    subject = (
        f"[Tollgate] Review needed: {item.get_kind_display()} for {item.grant.principal.email}"
    )
    body = (
        f"{item.get_kind_display()}: grant #{item.grant_id} ({item.grant.entitlement}) of "
        f"{item.grant.principal.email}.\n{item.reason}\nAnswer by {item.due_at:%Y-%m-%d}: {link}\n"
    )
    return Message(recipients, subject, body, link)


def manual_task_message(task) -> Message:
    link = absolute(reverse("access_sync:manual-tasks"))
    subject = f"[Tollgate] Manual provisioning task: {task.title}"
    body = f"{task.title}\n{task.instructions}\n\nMark it done (or say why not): {link}\n"
    return Message(group_emails(task.group), subject, body, link)
